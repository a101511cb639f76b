"""What flows from generators through verifiers to the learner."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Sample:
    """One sampled response."""

    response_ids: list[int]
    logprobs: list[float]  # behaviour log-prob of each response token
    text: str
    finish_reason: str = "stop"
    reward: float = 0.0


@dataclass
class Prompt:
    """One unit of work: the ``index``-th prompt admitted in this run."""

    index: int
    prompt_ids: list[int]
    text: str
    reference: Any = None


@dataclass
class RolloutGroup:
    """One prompt, its G samples, and the policy version whose weights produced them."""

    prompt: Prompt
    samples: list[Sample]
    version: int
    gen_seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def rewards(self) -> list[float]:
        return [s.reward for s in self.samples]
