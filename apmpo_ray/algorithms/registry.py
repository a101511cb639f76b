"""Losses by name, which controls each reads, and how one learner step's inputs follow from its rewards."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Optional

import torch

from .advantages import get_advantage_fn, token_advantages
from .config import AlgorithmConfig
from .contract import Controls, LossInputs, LossOutput
from .controls import BatchControls, FssVariant, PSchedule, batch_controls, group_controls
from .losses import clipped_surrogate_loss, geometric_mean_loss, power_mean_loss

ClipMode = Literal["fixed", "adaptive", "symmetric_adaptive"]
_CLIPPED = frozenset({"eps_low", "eps_high"})
_POWER = frozenset({"eps_low", "eps_high", "p"})


@dataclass(frozen=True)
class LossSpec:
    """A named loss: its function, the controls it reads, its defaults, and (for APMPO and its ablations)
    how p and the clip bounds follow from the batch controls."""

    name: str
    fn: Callable[[LossInputs, Controls], LossOutput]
    summary: str
    uses: frozenset
    sequence_level: bool = False
    default_aggregation: str = "seq_mean_token_mean"
    default_advantage: str = "grpo"
    adaptive: bool = False  # whether it consumes the APMPO batch controls
    p_schedule: PSchedule = "exp"
    fss_variant: FssVariant = "full"
    clip: ClipMode = "fixed"
    use_tanh: bool = True
    default_eps_high: float = 0.2

    def check(self, controls: Controls) -> None:
        """A control the loss needs and lacks, or one it would silently ignore, is an error naming it."""
        missing, extra = sorted(self.uses - controls.given()), sorted(controls.given() - self.uses)
        if missing:
            raise ValueError(f"loss {self.name!r} needs control(s) {missing}")
        if extra:
            raise ValueError(f"loss {self.name!r} does not read control(s) {extra}; it reads {sorted(self.uses)}")

    def __call__(self, inputs: LossInputs, controls: Controls) -> LossOutput:
        self.check(controls)
        return self.fn(inputs, controls)

    def acting_controls(self) -> tuple[str, ...]:
        """The batch controls that change this loss (and are therefore logged)."""
        if not self.adaptive:
            return ()
        acting = ["mu", "sigma"] + (["p"] if self.p_schedule != "one" else [])
        return tuple(acting + (["fss", "eps_ada"] if self.clip != "fixed" else []))

    def batch_controls(self, rewards: torch.Tensor, cfg: AlgorithmConfig) -> Optional[BatchControls]:
        """μ_R, σ_R, p, FSS, ε_ada of ``rewards`` [num_groups, G] under this loss's variant (adaptive losses)."""
        if not self.adaptive:
            return None
        compute = batch_controls if cfg.controls_scope == "batch" else group_controls
        return compute(rewards, gamma=cfg.gamma, eps_min=cfg.eps_min, eps_max=cfg.eps_max, delta=cfg.delta,
                       p_schedule=self.p_schedule, fss_variant=self.fss_variant, p_floor=cfg.p_floor,
                       use_tanh=self.use_tanh)

    def controls(self, batch: Optional[BatchControls], cfg: AlgorithmConfig, group_size: int) -> Controls:
        """This step's :class:`Controls`; group-scope values are repeated once per sequence of the group."""
        def per_sequence(x):
            return x.repeat_interleave(group_size) if isinstance(x, torch.Tensor) else x

        shared = dict(aggregation=cfg.aggregation_mode, correction=cfg.correction_mode, is_cap=cfg.is_cap,
                      shaping_lambda=cfg.off_policy_shaping_lambda)
        if self.uses == {"log_clip"}:
            return Controls(log_clip=cfg.gmpo_log_clip, **shared)
        if not self.adaptive:
            eps_high = cfg.eps_high if cfg.eps_high is not None else self.default_eps_high
            return Controls(eps_low=cfg.eps_low, eps_high=eps_high, **shared)
        p, eps_ada = per_sequence(batch.p), per_sequence(batch.eps_ada)
        low, high = {"fixed": (cfg.eps_low, cfg.eps_low), "adaptive": (cfg.eps_low, eps_ada),
                     "symmetric_adaptive": (eps_ada, eps_ada)}[self.clip]
        return Controls(eps_low=low, eps_high=high, p=p, **shared)


def _clipped(name: str, summary: str, **kw) -> LossSpec:
    return LossSpec(name, clipped_surrogate_loss, summary, _CLIPPED, **kw)


def _power(name: str, summary: str, **kw) -> LossSpec:
    return LossSpec(name, power_mean_loss, summary, _POWER, sequence_level=True, adaptive=True, **kw)


LOSSES: dict[str, LossSpec] = {spec.name: spec for spec in [
    _clipped("grpo", "Eq. 12: sequence-mean of token-mean PPO-clip, ε = 0.2"),
    _clipped("dapo", "Eq. 13: clip-higher 0.2/0.28, token mean over the batch", default_eps_high=0.28,
             default_aggregation="token_mean"),
    _clipped("dr_grpo", "Dr. GRPO: advantages R - mean, sequence-mean of token sums",
             default_aggregation="seq_mean_token_sum", default_advantage="dr_grpo"),
    _clipped("agpo", "AGPO (our interpretation): negative-dominant advantages, token-level PPO-clip",
             default_advantage="agpo"),
    _clipped("arpo", "ARPO: GRPO's clipped surrogate over entropy-branched tool-use groups (soft or hard attribution)"),
    _clipped("ampo", "AMPO: GRPO's clipped surrogate on the student's tokens, f(π) = π/(π+λ) on teacher tokens",
             default_advantage="grpo"),
    LossSpec("gmpo", geometric_mean_loss, "Eq. 14: geometric mean of ratios, log-space clip ±0.4",
             frozenset({"log_clip"}), sequence_level=True),
    _power("apmpo", "Eq. 7-10: power mean (p = exp(-γμ_R)) of clipped ratios, clip [1-ε_low, 1+ε_ada]",
           clip="adaptive"),
    _power("pmpo_only", "Ablation: adaptive p, fixed symmetric clip ε_low"),
    _power("fac_only", "Ablation: p = 1 (arithmetic mean), adaptive clip", p_schedule="one", clip="adaptive"),
    _power("apmpo_linear_p", "Ablation (Eq. 11): p = max(1 - γμ_R, floor)", p_schedule="linear", clip="adaptive"),
    _power("apmpo_fss_mu", "Ablation (§5.2.3): FSS = μ_R", fss_variant="mu", clip="adaptive"),
    _power("apmpo_fss_inv_sigma", "Ablation (§5.2.3): FSS = 1/(σ_R+δ)", fss_variant="inv_sigma", clip="adaptive"),
    _power("apmpo_symmetric_clip", "Ablation (Eq. 81): clip [1-ε_ada, 1+ε_ada]", clip="symmetric_adaptive"),
    _power("apmpo_no_tanh", "Ablation: Alg. 1 line 18 as printed, ε_ada unbounded (no tanh)", clip="adaptive",
           use_tanh=False),
]}


def get_loss(name: str) -> LossSpec:
    """The loss registered under ``name``; calling it checks the controls and calls its function."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}") from None


@dataclass
class StepInputs:
    """What one learner step's loss needs from the batch's rewards (rows group-major)."""

    loss: LossSpec
    sequence_advantages: torch.Tensor  # [N]
    advantages: Optional[torch.Tensor]  # [N, T] per token, 0 off the loss mask (None without a loss mask)
    controls: Controls
    batch_controls: Optional[BatchControls]
    metrics: dict[str, float]  # the batch controls that act on this loss


def prepare_step(rewards: torch.Tensor, loss_mask: Optional[torch.Tensor], cfg: AlgorithmConfig) -> StepInputs:
    """Advantages, controls and control metrics of one learner batch: ``rewards`` [num_groups, G],
    ``loss_mask`` [num_groups·G, T] (None: sequence advantages only, for a learner worker that spreads
    its own rows' advantages over their tokens)."""
    spec = get_loss(cfg.name)
    estimator = get_advantage_fn(cfg.advantage_name)
    advantages = estimator(rewards, **cfg.advantage_params()).flatten()
    batch = spec.batch_controls(rewards, cfg)
    controls = spec.controls(batch, cfg, rewards.shape[1])
    metrics = batch.as_metrics(spec.acting_controls()) if batch is not None else {}
    tokens = None if loss_mask is None else token_advantages(advantages, loss_mask)
    return StepInputs(spec, advantages, tokens, controls, batch, metrics)
