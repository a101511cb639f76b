"""APMPO's batch-level controls from reward statistics: μ_R, σ_R, p, FSS and ε_ada.

Equation numbers refer to the APMPO paper (shared/seeds/001_*.txt).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Union

import torch

Scalar = Union[float, torch.Tensor]
PSchedule = Literal["exp", "linear", "one"]
FssVariant = Literal["full", "mu", "inv_sigma"]


@dataclass(frozen=True)
class BatchControls:
    """The adaptive quantities of one learner step (floats, or ``[num_groups]`` tensors for group scope)."""

    mu: Scalar
    sigma: Scalar
    p: Scalar
    fss: Scalar
    eps_ada: Scalar

    def as_metrics(self, acting: tuple[str, ...] = ("mu", "sigma", "p", "fss", "eps_ada")) -> dict[str, float]:
        """``apmpo/<field>`` for the fields in ``acting`` (group-scope tensors as their mean)."""
        def mean(x: Scalar) -> float:
            return float(x.float().mean()) if isinstance(x, torch.Tensor) else float(x)

        return {f"apmpo/{name}": mean(getattr(self, name)) for name in acting}


def power_exponent(mu: Scalar, *, gamma: float, schedule: PSchedule = "exp", floor: float = 0.01) -> Scalar:
    """p = exp(-γ·μ_R) (Eq. 4); ``linear``: 1 - γ·μ_R floored at ``floor`` (Eq. 11); ``one``: p = 1."""
    if schedule == "exp":
        return torch.exp(-gamma * mu) if isinstance(mu, torch.Tensor) else math.exp(-gamma * mu)
    if schedule == "linear":
        return (1.0 - gamma * mu).clamp_min(floor) if isinstance(mu, torch.Tensor) else max(1.0 - gamma * mu, floor)
    if schedule == "one":
        return torch.ones_like(mu) if isinstance(mu, torch.Tensor) else 1.0
    raise ValueError(f"unknown p schedule {schedule!r}; expected 'exp', 'linear' or 'one'")


def feedback_stability(mu: Scalar, sigma: Scalar, *, delta: float, variant: FssVariant = "full") -> Scalar:
    """FSS = μ_R/(σ_R+δ) (Eq. 5); the §5.2.3 ablations use μ_R alone or 1/(σ_R+δ) alone."""
    if variant == "full":
        return mu / (sigma + delta)
    if variant == "mu":
        return mu
    if variant == "inv_sigma":
        return 1.0 / (sigma + delta)
    raise ValueError(f"unknown FSS variant {variant!r}; expected 'full', 'mu' or 'inv_sigma'")


def adaptive_clip(fss: Scalar, *, eps_min: float, eps_max: float, use_tanh: bool = True) -> Scalar:
    """ε_ada = ε_min + (ε_max - ε_min)·tanh(FSS) (Eq. 6).

    ``use_tanh=False`` is Algorithm 1 line 18 as printed (no tanh, unbounded): an ablation only.
    """
    if use_tanh:
        squashed = torch.tanh(fss) if isinstance(fss, torch.Tensor) else math.tanh(fss)
    else:
        squashed = fss
    return eps_min + (eps_max - eps_min) * squashed


def _controls(mu: Scalar, sigma: Scalar, *, gamma, eps_min, eps_max, delta, p_schedule, fss_variant,
              p_floor, use_tanh) -> BatchControls:
    fss = feedback_stability(mu, sigma, delta=delta, variant=fss_variant)
    return BatchControls(
        mu=mu,
        sigma=sigma,
        p=power_exponent(mu, gamma=gamma, schedule=p_schedule, floor=p_floor),
        fss=fss,
        eps_ada=adaptive_clip(fss, eps_min=eps_min, eps_max=eps_max, use_tanh=use_tanh),
    )


def batch_controls(
    rewards,
    *,
    gamma: float = 0.8,
    eps_min: float = 0.2,
    eps_max: float = 0.4,
    delta: float = 1e-6,
    p_schedule: PSchedule = "exp",
    fss_variant: FssVariant = "full",
    p_floor: float = 0.01,
    use_tanh: bool = True,
) -> BatchControls:
    """μ_R, σ_R (population std, Alg. 1 line 8), p, FSS and ε_ada over *all* rewards given."""
    r = torch.as_tensor(rewards, dtype=torch.float64).flatten()
    if r.numel() == 0:
        raise ValueError("batch_controls needs at least one reward")
    mu = float(r.mean())
    sigma = float(r.std(unbiased=False))
    return _controls(mu, sigma, gamma=gamma, eps_min=eps_min, eps_max=eps_max, delta=delta,
                     p_schedule=p_schedule, fss_variant=fss_variant, p_floor=p_floor, use_tanh=use_tanh)


def group_controls(
    rewards: torch.Tensor,
    *,
    gamma: float = 0.8,
    eps_min: float = 0.2,
    eps_max: float = 0.4,
    delta: float = 1e-6,
    p_schedule: PSchedule = "exp",
    fss_variant: FssVariant = "full",
    p_floor: float = 0.01,
    use_tanh: bool = True,
) -> BatchControls:
    """The same controls per group (``rewards`` is ``[num_groups, G]``): fields are ``[num_groups]`` tensors.

    Note: an all-correct group has σ = 0, so FSS ≈ μ/δ and ε_ada ≈ ε_max.
    """
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be [num_groups, G], got shape {tuple(rewards.shape)}")
    r = rewards.to(torch.float64)
    return _controls(r.mean(dim=1), r.std(dim=1, unbiased=False), gamma=gamma, eps_min=eps_min,
                     eps_max=eps_max, delta=delta, p_schedule=p_schedule, fss_variant=fss_variant,
                     p_floor=p_floor, use_tanh=use_tanh)
