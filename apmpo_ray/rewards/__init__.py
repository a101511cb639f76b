"""Reward functions by task name: ``get_reward_fn(name)(response, reference) -> float``.

Names: the built-in tasks below, or a user's function as a dotted path ``my_pkg.rewards:score``.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

from ..tasks import arithmetic

RewardFn = Callable[[str, Any], float]

_BUILTIN: dict[str, str] = {
    "arithmetic": "apmpo_ray.tasks.arithmetic:score",
}


def get_reward_fn(name: str) -> RewardFn:
    """The reward function registered as ``name``, or imported from ``module.path:function``."""
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


__all__ = ["RewardFn", "get_reward_fn", "arithmetic"]
