"""Reward functions by task name: ``get_reward_fn(name)(response, reference) -> float``.

Built-in names and the reference each expects:

* ``arithmetic``: the answer string (``"82"``); exact match of the response's first word.
* ``chain``: the answer string; exact match of what follows the last ``#`` (see ``apmpo_ray.tasks.chain``).
* ``countdown``: ``{"numbers": [3, 5, 7], "target": 15}`` (see ``apmpo_ray.tasks.countdown``).
* ``math``: the answer as a string or number (``"\\frac{1}{2}"``, ``0.5``); math-verify equivalence of the
  response's last ``\\boxed{}`` (else last number). Off the main thread it has no internal timeout: run it
  under ``apmpo_ray.verifiers.TimeoutScorer`` (see ``math_answer``).
* ``tool_answer`` / ``tool_math``: ARPO's reward for tool-use trajectories (format, then the ``<answer>``
  compared exactly or with math-verify; see ``rewards.tool_answer``).
* ``sql``: ``{"sql": gold_sql, "db_path": "/path/to/database.sqlite"}``; execution match on the database
  opened read-only (see ``rewards.sql``).

Any other name is a user's function as a dotted path ``my_pkg.rewards:score``. Modules load on first use,
so asking for ``arithmetic`` does not import sympy.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

from ..tasks import arithmetic

RewardFn = Callable[[str, Any], float]

_BUILTIN: dict[str, str] = {
    "arithmetic": "apmpo_ray.tasks.arithmetic:score",
    "chain": "apmpo_ray.tasks.chain:score",
    "countdown": "apmpo_ray.tasks.countdown:score",
    "math": "apmpo_ray.rewards.math_answer:score",
    "sql": "apmpo_ray.rewards.sql:score",
    "tool_answer": "apmpo_ray.rewards.tool_answer:score",
    "tool_math": "apmpo_ray.rewards.tool_answer:score_math",
}


def builtin_rewards() -> list[str]:
    """Names ``get_reward_fn`` knows without a module path."""
    return sorted(_BUILTIN)


def get_reward_fn(name: str) -> RewardFn:
    """The reward function registered as ``name``, or imported from ``module.path:function``."""
    if not isinstance(name, str):
        raise ValueError(f"reward name must be a string, got {name!r}")
    target = _BUILTIN.get(name, name)
    if ":" not in target:
        raise ValueError(f"unknown reward {name!r}: use one of {sorted(_BUILTIN)} or 'package.module:function'")
    module_name, _, attr = target.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"cannot load reward function {name!r}: {err}") from err
    if not callable(fn):
        raise ValueError(f"reward {name!r} is not callable")
    return fn


__all__ = ["RewardFn", "builtin_rewards", "get_reward_fn", "arithmetic"]
