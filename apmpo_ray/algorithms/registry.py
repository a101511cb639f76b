"""Losses by name, and how each one's keywords follow from a batch of rewards."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal, Optional

import torch

from .controls import BatchControls, FssVariant, PSchedule, batch_controls, group_advantages, group_controls
from .losses import apmpo_loss, dapo_loss, gmpo_loss, grpo_loss

ClipMode = Literal["fixed", "adaptive", "symmetric_adaptive"]


@dataclass
class AlgorithmConfig:
    """Hyperparameters of the learner's objective (paper defaults, NOTES §7)."""

    name: str = "apmpo"
    gamma: float = 0.8
    eps_min: float = 0.2
    eps_max: float = 0.4
    eps_low: float = 0.2
    # Upper clip bound of the fixed-clip losses; None takes the loss's own default (GRPO 0.2, DAPO 0.28).
    eps_high: Optional[float] = None
    gmpo_log_clip: float = 0.4
    delta: float = 1e-6
    beta: float = 0.001
    controls_scope: Literal["batch", "group"] = "batch"
    scale_advantages_by_std: bool = True
    p_floor: float = 0.01

    def __post_init__(self):
        try:
            get_loss(self.name)
        except ValueError as err:
            raise ValueError(f"algo.name: {err}") from None
        if self.controls_scope not in ("batch", "group"):
            raise ValueError(f"algo.controls_scope must be 'batch' or 'group', got {self.controls_scope!r}")
        if not 0 <= self.eps_min <= self.eps_max:
            raise ValueError(f"need 0 <= algo.eps_min <= algo.eps_max, got {self.eps_min}, {self.eps_max}")
        if not 0 <= self.eps_low < 1:
            raise ValueError(f"algo.eps_low must be in [0, 1), got {self.eps_low}")
        if self.beta < 0 or self.delta <= 0 or self.gamma < 0:
            raise ValueError("algo.beta and algo.gamma must be >= 0 and algo.delta > 0")


@dataclass(frozen=True)
class LossSpec:
    """A named loss: the function, plus how its p and clip bounds come from the batch controls."""

    name: str
    fn: Callable[..., tuple[torch.Tensor, dict]]
    summary: str
    adaptive: bool = False  # whether it consumes the APMPO batch controls
    p_schedule: PSchedule = "exp"
    fss_variant: FssVariant = "full"
    clip: ClipMode = "fixed"
    use_tanh: bool = True
    default_eps_high: float = 0.2
    extra: dict = field(default_factory=dict)

    def __call__(self, logprobs, old_logprobs, advantages, mask, **keywords):
        return self.fn(logprobs, old_logprobs, advantages, mask, **keywords)

    def controls(self, rewards: torch.Tensor, cfg: AlgorithmConfig) -> BatchControls:
        """The batch (or per-group) controls of ``rewards`` [num_groups, G] under this loss's variant."""
        compute = batch_controls if cfg.controls_scope == "batch" else group_controls
        return compute(rewards, gamma=cfg.gamma, eps_min=cfg.eps_min, eps_max=cfg.eps_max, delta=cfg.delta,
                       p_schedule=self.p_schedule, fss_variant=self.fss_variant, p_floor=cfg.p_floor,
                       use_tanh=self.use_tanh)

    def keywords(self, controls: BatchControls, cfg: AlgorithmConfig) -> dict:
        """Keyword arguments of ``fn`` for one step. Group-scope controls are ``[num_groups]``:
        the caller expands them to sequences with :func:`expand_to_sequences`."""
        fixed_high = cfg.eps_high if cfg.eps_high is not None else self.default_eps_high
        kw: dict = {"log_clip": cfg.gmpo_log_clip, **self.extra}
        if not self.adaptive:
            return {**kw, "eps_low": cfg.eps_low, "eps_high": fixed_high}
        kw["p"] = controls.p
        if self.clip == "fixed":
            kw.update(eps_low=cfg.eps_low, eps_high=cfg.eps_low)
        elif self.clip == "adaptive":
            kw.update(eps_low=cfg.eps_low, eps_high=controls.eps_ada)
        else:
            kw.update(eps_low=controls.eps_ada, eps_high=controls.eps_ada)
        return kw


def expand_to_sequences(keywords: dict, group_size: int) -> dict:
    """Repeat per-group tensor keywords once per sequence of the group."""
    return {k: v.repeat_interleave(group_size) if isinstance(v, torch.Tensor) else v
            for k, v in keywords.items()}


_APMPO_DOC = "Eq. 7-10: power mean (p = exp(-γμ_R)) of clipped ratios, clip [1-ε_low, 1+ε_ada]"
LOSSES: dict[str, LossSpec] = {spec.name: spec for spec in [
    LossSpec("grpo", grpo_loss, "Eq. 12: sequence-mean of token-mean PPO-clip, ε = 0.2"),
    LossSpec("dapo", dapo_loss, "Eq. 13: clip-higher 0.2/0.28, token mean over the batch", default_eps_high=0.28),
    LossSpec("gmpo", gmpo_loss, "Eq. 14: geometric mean of ratios, log-space clip ±0.4"),
    LossSpec("apmpo", apmpo_loss, _APMPO_DOC, adaptive=True, clip="adaptive"),
    LossSpec("pmpo_only", apmpo_loss, "Ablation: adaptive p, fixed symmetric clip ε_low", adaptive=True),
    LossSpec("fac_only", apmpo_loss, "Ablation: p = 1 (arithmetic mean), adaptive clip", adaptive=True,
             p_schedule="one", clip="adaptive"),
    LossSpec("apmpo_linear_p", apmpo_loss, "Ablation (Eq. 11): p = max(1 - γμ_R, floor)", adaptive=True,
             p_schedule="linear", clip="adaptive"),
    LossSpec("apmpo_fss_mu", apmpo_loss, "Ablation (§5.2.3): FSS = μ_R", adaptive=True, fss_variant="mu",
             clip="adaptive"),
    LossSpec("apmpo_fss_inv_sigma", apmpo_loss, "Ablation (§5.2.3): FSS = 1/(σ_R+δ)", adaptive=True,
             fss_variant="inv_sigma", clip="adaptive"),
    LossSpec("apmpo_symmetric_clip", apmpo_loss, "Ablation (Eq. 81): clip [1-ε_ada, 1+ε_ada]", adaptive=True,
             clip="symmetric_adaptive"),
    LossSpec("apmpo_no_tanh", apmpo_loss, "Ablation: Alg. 1 line 18 as printed, ε_ada unbounded (no tanh)",
             adaptive=True, clip="adaptive", use_tanh=False),
]}


def get_loss(name: str) -> LossSpec:
    """The loss registered under ``name``; calling it is calling its function."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}") from None


@dataclass
class StepInputs:
    advantages: torch.Tensor  # [num_groups * G], group-major
    controls: BatchControls
    loss_keywords: dict


def prepare_step(rewards: torch.Tensor, cfg: AlgorithmConfig) -> StepInputs:
    """Everything the loss needs from the rewards of one learner batch, ``[num_groups, G]``."""
    spec = get_loss(cfg.name)
    advantages = group_advantages(rewards, delta=cfg.delta, scale_by_std=cfg.scale_advantages_by_std)
    controls = spec.controls(rewards, cfg)
    keywords = expand_to_sequences(spec.keywords(controls, cfg), rewards.shape[1])
    return StepInputs(advantages.flatten(), controls, keywords)
