"""What flows from generators through verifiers to the learner."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class Sample:
    """One response: its tokens, and for each token whether the policy produced it (the loss mask).

    ``loss_mask`` None means every response token is the policy's action; a tool-use trajectory marks the
    inserted tool output 0. ``logprobs`` are the behaviour log-probs of the policy's tokens (0 elsewhere).
    ``off_policy`` marks a response the policy's sampler did not draw (a teacher's solution).
    """

    response_ids: list[int]
    logprobs: list[float]
    text: str
    finish_reason: str = "stop"
    reward: float = 0.0
    loss_mask: Optional[list[int]] = None
    off_policy: bool = False


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
