"""TaskConfig/EvalConfig: presets load without their data on disk; bad entries fail by key."""
import pytest

from apmpo_ray.config import ConfigError, load_config
from apmpo_ray.config.task import BenchmarkSpec


def test_paper_math_preset():
    cfg = load_config("paper_math")
    assert (cfg.task.reward, cfg.task.prompt_template, cfg.task.chat_template) == ("math", "math", "on")
    assert cfg.task.dataset.endswith(".jsonl") and cfg.task.data_root
    names = [s.name for s in cfg.eval.specs()]
    assert names == ["math500", "aime24", "aime25", "amc23", "minerva", "olympiadbench"]
    assert (cfg.eval.k, cfg.eval.temperature) == (16, 0.6)


def test_paper_sql_preset():
    cfg = load_config("paper_sql")
    assert (cfg.task.reward, cfg.task.prompt_template, cfg.task.db_id_column) == ("sql", "sql", "db_id")
    specs = {s.name: s for s in cfg.eval.specs()}
    assert set(specs) == {"spider_dev", "bird_dev"}
    assert ("answer_column", "query") in specs["spider_dev"].overrides  # Spider names its gold SQL "query"
    assert any(k == "db_root" for k, _ in specs["spider_dev"].overrides)


def test_tiny_default_is_unchanged():
    cfg = load_config()
    assert (cfg.task.dataset, cfg.task.reward, cfg.task.prompt_template) == ("arithmetic", "arithmetic", "")
    # the tiny default evaluates held-out arithmetic every 40 steps, on the synthetic task only
    assert cfg.eval.every_steps == 40 and cfg.eval.benchmarks == ["arithmetic"] and cfg.eval.k == 4


def test_chat_template_on_off_survive_yaml_booleans():
    # YAML 1.1 reads a bare on/off as true/false.
    assert load_config(None, ["task.chat_template=on"]).task.chat_template == "on"
    assert load_config(None, ["task.chat_template=off"]).task.chat_template == "off"
    assert load_config(None, ["task.chat_template=auto"]).task.chat_template == "auto"


def test_benchmark_entries_parse():
    cfg = load_config(None, ["eval.benchmarks=[arithmetic, 'spider=spider/dev.json?answer_column=query&max_problems=5']"])
    assert cfg.eval.specs() == [
        BenchmarkSpec("arithmetic", ""),
        BenchmarkSpec("spider", "spider/dev.json", (("answer_column", "query"), ("max_problems", "5")))]
    assert load_config(None, ["eval.benchmarks=m=x.jsonl"]).eval.benchmarks == ["m=x.jsonl"]  # a lone entry


@pytest.mark.parametrize("override, message", [
    ("eval.benchmarks=['a=x?columns=q']", "'columns=q' is not field=value"),
    ("eval.benchmarks=['a=x', 'a=y']", "duplicate benchmark names \\['a'\\]"),
    ("eval.benchmarks=['a@b=x']", "benchmark name 'a@b'"),
    ("eval.benchmarks=['a=']", "empty path"),
    ("eval.benchmarks=['avg=x.jsonl']", "'avg' is reserved"),
    ("eval.benchmarks={a: x}", "eval.benchmarks: expected a list"),
    ("eval.benchmarks=[[a]]", "eval.benchmarks\\[0\\]: expected a string"),
    ("eval.num_samples=2", "eval.num_samples \\(2\\) must be 0 or >= eval.k \\(4\\)"),
    ("task.prompt_template=plain", "task.prompt_template: 'plain' is neither"),
    ("task.chat_template=always", "task.chat_template: 'always' is not one of"),
    ("task.answer_format=latex", "task.answer_format: 'latex' is not one of"),
])
def test_bad_entries_fail_by_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])
