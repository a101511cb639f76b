"""The typed contract between the learner and every loss: what goes in, which knobs, what comes out.

A loss is ``fn(inputs: LossInputs, controls: Controls) -> LossOutput``. All tensors of one call cover the
same micro-batch, ``[B, T]`` on the shifted token grid; the two global counts cover the whole mini-batch
over all learner workers, so that the sum of the micro-batch losses is the mini-batch loss whatever the
split (see :mod:`.aggregation`).
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal, Optional, Union

import torch

Bound = Union[float, torch.Tensor]  # a float, or one value per sequence ``[B]`` (group-scope controls)
Aggregation = Literal["seq_mean_token_mean", "token_mean", "seq_mean_token_sum"]
Correction = Literal["none", "tis", "decoupled"]
AGGREGATIONS: tuple[str, ...] = ("seq_mean_token_mean", "token_mean", "seq_mean_token_sum")
CORRECTIONS: tuple[str, ...] = ("none", "tis", "decoupled")


@dataclass(frozen=True)
class LossInputs:
    """One micro-batch as a loss sees it.

    ``proximal_logprobs`` anchor the clipped ratio (π_old; under ``decoupled`` the learner's recomputation
    before the update, π_prox). ``behaviour_logprobs`` are the sampler's. ``loss_mask`` is 1 on the tokens
    that train (the policy's own actions; prompt, padding and tool output are 0) and is separate from the
    attention mask. ``off_policy`` marks sequences the policy did not sample (teacher solutions): they
    never enter a ratio and train through the shaped term instead.
    """

    logprobs: torch.Tensor
    proximal_logprobs: torch.Tensor
    advantages: torch.Tensor
    loss_mask: torch.Tensor
    global_tokens: float
    global_sequences: float
    behaviour_logprobs: Optional[torch.Tensor] = None
    off_policy: Optional[torch.Tensor] = None

    def __post_init__(self):
        shape = tuple(self.logprobs.shape)
        if len(shape) != 2:
            raise ValueError(f"logprobs must be [B, T], got shape {shape}")
        for name in ("proximal_logprobs", "advantages", "loss_mask", "behaviour_logprobs"):
            value = getattr(self, name)
            if value is not None and tuple(value.shape) != shape:
                raise ValueError(f"{name} has shape {tuple(value.shape)}; logprobs are {shape}: every per-token "
                                 "tensor must be [B, T]")
        if self.off_policy is not None and tuple(self.off_policy.shape) != shape[:1]:
            raise ValueError(f"off_policy must be [B]={shape[0]}, got shape {tuple(self.off_policy.shape)}")
        empty = (self.loss_mask.sum(dim=1) == 0).nonzero().flatten()
        if empty.numel():
            raise ValueError(f"mask rows {empty.tolist()} have no loss token; drop empty responses before the loss")
        if not (self.global_tokens > 0 and self.global_sequences > 0):
            raise ValueError(f"global_tokens ({self.global_tokens}) and global_sequences ({self.global_sequences}) "
                             "must be > 0")

    @property
    def mask(self) -> torch.Tensor:
        return self.loss_mask.to(self.logprobs.dtype)

    def on_policy_mask(self) -> torch.Tensor:
        """The loss mask of the sequences the policy sampled."""
        if self.off_policy is None:
            return self.mask
        return self.mask * (~self.off_policy.bool()).to(self.mask).unsqueeze(1)

    def off_policy_mask(self) -> Optional[torch.Tensor]:
        if self.off_policy is None or not bool(self.off_policy.any()):
            return None
        return self.mask * self.off_policy.bool().to(self.mask).unsqueeze(1)


@dataclass(frozen=True)
class Controls:
    """The knobs of one learner step, validated once.

    The loss-specific fields (``eps_low``, ``eps_high``, ``p``, ``log_clip``) are None unless the loss reads
    them: :meth:`LossSpec.check <apmpo_ray.algorithms.registry.LossSpec.check>` rejects a missing one and
    one the loss would ignore, by name. The others apply to every loss.
    """

    eps_low: Optional[Bound] = None
    eps_high: Optional[Bound] = None
    p: Optional[Bound] = None
    log_clip: Optional[float] = None
    aggregation: Aggregation = "seq_mean_token_mean"
    correction: Correction = "none"
    is_cap: float = 2.0
    shaping_lambda: float = 0.1

    LOSS_SPECIFIC = ("eps_low", "eps_high", "p", "log_clip")

    def __post_init__(self):
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation {self.aggregation!r} is not one of {list(AGGREGATIONS)}")
        if self.correction not in CORRECTIONS:
            raise ValueError(f"correction {self.correction!r} is not one of {list(CORRECTIONS)}")
        checks = {"eps_low": (lambda v: 0 <= v < 1, "in [0, 1)"), "eps_high": (lambda v: v >= 0, ">= 0"),
                  "p": (lambda v: v > 0, "> 0"), "log_clip": (lambda v: v > 0, "> 0")}
        for name, (ok, wanted) in checks.items():
            value = getattr(self, name)
            if value is not None and not bool(torch.all(torch.as_tensor(ok(torch.as_tensor(value))))):
                raise ValueError(f"control {name} must be {wanted}, got {value}")
        if not self.is_cap >= 1:
            raise ValueError(f"control is_cap must be >= 1 (a cap below 1 down-weights on-policy tokens), "
                             f"got {self.is_cap}")
        if not self.shaping_lambda > 0:
            raise ValueError(f"control shaping_lambda must be > 0, got {self.shaping_lambda}")

    def given(self) -> set[str]:
        """The loss-specific controls that are set."""
        return {name for name in self.LOSS_SPECIFIC if getattr(self, name) is not None}

    def select(self, rows: torch.Tensor, n: int) -> "Controls":
        """Per-sequence ``[n]`` controls follow ``rows``; floats pass through."""
        picked = {f.name: getattr(self, f.name)[rows] for f in fields(self)
                  if isinstance(getattr(self, f.name), torch.Tensor) and getattr(self, f.name).shape == (n,)}
        return replace(self, **picked) if picked else self

    def to(self, device) -> "Controls":
        moved = {f.name: getattr(self, f.name).to(device) for f in fields(self)
                 if isinstance(getattr(self, f.name), torch.Tensor)}
        return replace(self, **moved) if moved else self


@dataclass
class LossOutput:
    """``loss`` is this micro-batch's share of the mini-batch loss (to minimise); ``metrics`` are floats.

    Metric names ending in ``_max`` are reduced with max over micro-batches and workers, all others with
    the mean.
    """

    loss: torch.Tensor
    metrics: dict[str, float]
