"""Reward lookup: built-in names and user plugins given as ``module:function``."""
import pytest

from apmpo_ray.rewards import builtin_rewards, get_reward_fn


def test_builtin_names():
    assert builtin_rewards() == ["arithmetic", "chain", "countdown", "math", "sql", "tool_answer", "tool_math"]
    assert get_reward_fn("arithmetic")("82 ", "82") == 1.0


def test_plugin_from_a_module_on_sys_path(tmp_path, monkeypatch):
    package = tmp_path / "my_reward_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "rewards.py").write_text(
        "def score(response, reference):\n    return 1.0 if response.strip().lower() == reference else 0.0\n"
        "NOT_CALLABLE = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    fn = get_reward_fn("my_reward_pkg.rewards:score")
    assert fn(" Yes", "yes") == 1.0 and fn("no", "yes") == 0.0
    with pytest.raises(ValueError, match="not callable"):
        get_reward_fn("my_reward_pkg.rewards:NOT_CALLABLE")
    with pytest.raises(ValueError, match="cannot load"):
        get_reward_fn("my_reward_pkg.rewards:missing")


@pytest.mark.parametrize("name", ["nope", "no_such_module_xyz:score", None])
def test_unknown_reward_is_a_clear_error(name):
    with pytest.raises(ValueError):
        get_reward_fn(name)
