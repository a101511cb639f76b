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
    stop_reason: Optional[str] = None  # the stop string that ended generation, if one did
    top_logprobs: Optional[list[list[float]]] = None  # the top-k log-probs of the first positions, if asked
    token_versions: Optional[list[int]] = None  # the policy version that produced each token (None: the group's)
    parent: Optional[int] = None  # a branch: the sample (index in its group) it was copied from ...
    branch_point: Optional[int] = None  # ... and the response position where it diverged


@dataclass(frozen=True)
class TeacherSolution:
    teacher: str  # which teacher wrote it (a dataset tag or an online teacher's name)
    text: str


@dataclass
class Prompt:
    """One unit of work: the ``index``-th prompt admitted in this run, with any offline teacher solutions."""

    index: int
    prompt_ids: list[int]
    text: str
    reference: Any = None
    guidance: tuple[TeacherSolution, ...] = ()


@dataclass
class RolloutGroup:
    """One prompt, its G samples, and the policy version whose weights produced them."""

    prompt: Prompt
    samples: list[Sample]
    version: int
    gen_seconds: float = 0.0
    stats: dict[str, float] = field(default_factory=dict)  # the workflow's per-group metrics (tool calls, branches)

    @property
    def rewards(self) -> list[float]:
        return [s.reward for s in self.samples]


@dataclass
class GenerationRequest:
    """Continue ``prompt_ids`` ``n`` times. ``top_logprobs`` > 0 also returns the top-k log-probs of the first
    ``top_logprobs_positions`` generated tokens (ARPO's entropy)."""

    prompt_ids: list[int]
    n: int = 1
    max_tokens: int = 16
    seed: Optional[int] = None
    stop: tuple[str, ...] = ()
    top_logprobs: int = 0
    top_logprobs_positions: int = 20
    min_tokens: int = 0
