"""What the policy is trained and evaluated on: the task's data, reward and held-out sets."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TaskConfig:
    reward: str = "arithmetic"  # a built-in reward name or "package.module:function"
    dataset: str = "arithmetic"  # "arithmetic" (synthetic) or a data file / hub name
    num_problems: int = 4096  # size of the synthetic training set
    max_operand: int = 9
    seed: int = 0


@dataclass
class EvalConfig:
    every_steps: int = 0  # 0 = no periodic evaluation during training
    benchmarks: list[str] = field(default_factory=list)
