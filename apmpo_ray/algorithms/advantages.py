"""Advantage estimators by name: ``fn(rewards [num_groups, G], **params) -> [num_groups, G]``.

The learner turns sequence advantages into per-token ones with :func:`token_advantages`; a workflow may
supply per-token advantages itself (ARPO's hard attribution).
"""
from __future__ import annotations

from typing import Callable

import torch

# Spread below which a group counts as "all rewards equal".
_EQUAL_REWARDS_TOL = 1e-12


def _check(rewards: torch.Tensor) -> torch.Tensor:
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be [num_groups, G], got shape {tuple(rewards.shape)}")
    return rewards.to(torch.float64) if not rewards.is_floating_point() else rewards


def group_advantages(rewards: torch.Tensor, *, delta: float = 1e-6, scale_by_std: bool = True) -> torch.Tensor:
    """GRPO, Eq. 2 per group: Â_i = (R_i - μ_group)/(σ_group + δ), σ the population std.

    A group whose rewards are all equal carries no learning signal and gets exactly 0.
    ``scale_by_std=False`` skips the division, leaving R_i - μ_group.
    """
    rewards = _check(rewards)
    std = rewards.std(dim=1, unbiased=False, keepdim=True)
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    adv = centred / (std + delta) if scale_by_std else centred
    return torch.where(std > _EQUAL_REWARDS_TOL, adv, torch.zeros_like(adv))


def dr_grpo_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """Dr. GRPO: R_i - μ_group, no division by the spread."""
    rewards = _check(rewards)
    return rewards - rewards.mean(dim=1, keepdim=True)


def agpo_advantages(rewards: torch.Tensor, *, neg_penalty: float = 0.5, delta: float = 0.1, pos_weight: float = 1.0,
                    correct_reward: float = 1.0) -> torch.Tensor:
    """AGPO, *our interpretation* (no formula is public; ``shared/SEED-SYSTEMS.md``):

        z_i = (R_i - μ_g)/√(σ_g² + δ²),   Â_i = pos_weight·max(z_i, 0) + min(z_i, 0) - R·[R_i < correct_reward]

    δ bounds the advantage of a lone correct answer in a hard group; every wrong response is pushed down by
    R, in all-wrong groups too, where GRPO gives no signal (negative-dominant). R = 0, pos_weight 1 and
    δ → 0 give GRPO's advantages.
    """
    if neg_penalty < 0 or delta < 0 or pos_weight < 0:
        raise ValueError(f"AGPO needs neg_penalty, delta and pos_weight >= 0, got {neg_penalty}, {delta}, {pos_weight}")
    rewards = _check(rewards)
    std = rewards.std(dim=1, unbiased=False, keepdim=True)
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    scale = torch.sqrt(std**2 + delta**2)
    z = centred / scale.clamp_min(torch.finfo(rewards.dtype).tiny)  # σ = δ = 0 only where centred = 0
    wrong = (rewards < correct_reward).to(rewards.dtype)
    return pos_weight * z.clamp_min(0) + z.clamp_max(0) - neg_penalty * wrong


ADVANTAGES: dict[str, Callable[..., torch.Tensor]] = {
    "grpo": group_advantages,
    "dr_grpo": dr_grpo_advantages,
    "agpo": agpo_advantages,
}


def get_advantage_fn(name: str) -> Callable[..., torch.Tensor]:
    try:
        return ADVANTAGES[name]
    except KeyError:
        raise ValueError(f"unknown advantage estimator {name!r}; choose one of {sorted(ADVANTAGES)}") from None


def token_advantages(sequence_advantages: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """``[N]`` -> ``[N, T]``: each sequence's advantage on its loss tokens, 0 elsewhere."""
    return sequence_advantages.to(loss_mask.dtype if loss_mask.is_floating_point() else torch.float32
                                  ).unsqueeze(1) * loss_mask


def sequence_advantages(advantages: torch.Tensor, mask: torch.Tensor, *, loss_name: str) -> torch.Tensor:
    """``[B, T]`` -> ``[B]`` for losses with one objective per sequence; the advantage must not vary over a
    row's loss tokens."""
    first = (mask > 0).to(torch.int8).argmax(dim=1, keepdim=True)  # a row's first loss token (0 if none)
    value = advantages.gather(1, first)
    tolerance = 16 * torch.finfo(advantages.dtype).eps * (1 + value.abs())
    varying = (((advantages - value) * mask).abs() > tolerance).any(dim=1).nonzero().flatten()
    if varying.numel():
        raise ValueError(f"loss {loss_name!r} forms one objective per sequence and needs one advantage per "
                         f"sequence; rows {varying.tolist()[:8]} vary across tokens (use a token-level loss such "
                         "as grpo or dapo with per-token advantages)")
    return value.squeeze(1) * (mask.sum(dim=1) > 0)
