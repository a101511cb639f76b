"""Policy losses over per-token log-probabilities (pure functions; torch only).

Shared calling convention::

    loss, metrics = fn(logprobs, old_logprobs, advantages, mask, **keywords)

``logprobs``/``old_logprobs`` are ``[B, T]`` log π(o_t) of the sampled tokens, ``mask`` is
``[B, T]`` with 1 on response tokens, ``advantages`` is ``[B]`` (one Â_i per sequence).
``loss`` is a scalar to *minimise* (the negated objective); ``metrics`` is a dict of floats.
Clip bounds and the power exponent may be floats or ``[B]`` tensors (per-group controls).
Unknown keywords are accepted and ignored so one call site can drive every loss.
"""
from __future__ import annotations

import math
from typing import Union

import torch

Bound = Union[float, torch.Tensor]

LOG_RATIO_CLAMP = 20.0
# Below this exponent the power mean is evaluated as its p → 0 limit, the geometric mean.
_GEOMETRIC_P = 1e-6


def validate_inputs(logprobs, old_logprobs, advantages, mask) -> tuple[torch.Tensor, torch.Tensor]:
    """Check shapes and that every row has a response token; returns (float mask, lengths)."""
    if logprobs.dim() != 2:
        raise ValueError(f"logprobs must be [B, T], got shape {tuple(logprobs.shape)}")
    if old_logprobs.shape != logprobs.shape or mask.shape != logprobs.shape:
        raise ValueError(
            f"logprobs {tuple(logprobs.shape)}, old_logprobs {tuple(old_logprobs.shape)} and "
            f"mask {tuple(mask.shape)} must have the same [B, T] shape")
    if advantages.shape != logprobs.shape[:1]:
        raise ValueError(f"advantages must be [B]={logprobs.shape[0]}, got shape {tuple(advantages.shape)}")
    mask = mask.to(logprobs.dtype)
    lengths = mask.sum(dim=1)
    empty = (lengths == 0).nonzero().flatten()
    if empty.numel():
        raise ValueError(f"mask rows {empty.tolist()} have no response token; drop empty responses before the loss")
    return mask, lengths


def _column(x: Bound, like: torch.Tensor) -> Bound:
    """A per-sequence ``[B]`` tensor becomes ``[B, 1]`` so it broadcasts over tokens."""
    if isinstance(x, torch.Tensor) and x.dim() == 1:
        return x.to(like).unsqueeze(1)
    return x


def _log(x: Bound) -> Bound:
    return torch.log(x) if isinstance(x, torch.Tensor) else math.log(x)


def log_ratio(logprobs: torch.Tensor, old_logprobs: torch.Tensor) -> torch.Tensor:
    """log r = log π_θ - log π_old, clamped so exp() stays finite for any input."""
    return (logprobs - old_logprobs).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)


def selected_log_ratio(lr: torch.Tensor, advantages: torch.Tensor, log_lo: Bound, log_hi: Bound) -> torch.Tensor:
    """log ρ̃: the ratio PPO's min selects, min(r, clip r) for Â > 0 and max(r, clip r) for Â < 0.

    Because |Â_i| is constant within a sequence, |min(r·Â, clip(r)·Â)| = |Â|·ρ̃ (NOTES §5).
    A clipped token gets a constant, hence zero gradient.
    """
    positive = (advantages > 0).unsqueeze(1)
    hi = torch.as_tensor(log_hi, dtype=lr.dtype, device=lr.device)
    lo = torch.as_tensor(log_lo, dtype=lr.dtype, device=lr.device)
    return torch.where(positive, torch.minimum(lr, hi), torch.maximum(lr, lo))


def clip_metrics(lr, advantages, mask, n_tokens, log_lo: Bound, log_hi: Bound) -> dict[str, float]:
    """Fractions of response tokens whose clipped branch is active (zero gradient), and the mean ratio."""
    with torch.no_grad():
        adv = advantages.unsqueeze(1)
        high = ((lr > log_hi) & (adv > 0)).to(mask.dtype)
        low = ((lr < log_lo) & (adv < 0)).to(mask.dtype)
        return {
            "clip/frac_high": float((high * mask).sum() / n_tokens),
            "clip/frac_low": float((low * mask).sum() / n_tokens),
            "ratio/mean": float((lr.exp() * mask).sum() / n_tokens),
        }


def log_power_mean(x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor, p: Bound) -> torch.Tensor:
    """log M_p of exp(x) over each row's masked tokens: log[(1/n Σ_t e^{p·x_t})^{1/p}], per row.

    Evaluated around the row's mean m of x as m + log1p(mean(expm1(p·(x - m))))/p, which has no
    overflow for |x| ≤ 20 and no cancellation as p → 0 (where it tends to m, the geometric mean).
    """
    mean = (x * mask).sum(dim=1) / lengths
    p_col = _column(p, x)
    spread = torch.expm1(p_col * (x - mean.unsqueeze(1))) * mask
    excess = torch.log1p(spread.sum(dim=1) / lengths)
    if isinstance(p, torch.Tensor):
        p_safe = p.to(x).clamp_min(_GEOMETRIC_P)
        return mean + torch.where(p.to(x) > _GEOMETRIC_P, excess / p_safe, torch.zeros_like(excess))
    if p <= 0:
        raise ValueError(f"power-mean exponent p must be > 0, got {p}")
    return mean if p < _GEOMETRIC_P else mean + excess / p


def grpo_loss(logprobs, old_logprobs, advantages, mask, *, eps_low: Bound = 0.2, eps_high: Bound = 0.2,
              **_unused):
    """Eq. 12: -(1/B) Σ_i (1/|o_i|) Σ_t min(r·Â_i, clip(r, 1-ε_low, 1+ε_high)·Â_i)."""
    mask, lengths = validate_inputs(logprobs, old_logprobs, advantages, mask)
    lr = log_ratio(logprobs, old_logprobs)
    ratio = lr.exp()
    lo, hi = 1.0 - _column(eps_low, lr), 1.0 + _column(eps_high, lr)
    adv = advantages.to(lr).unsqueeze(1)
    token_obj = torch.minimum(ratio * adv, torch.clamp(ratio, lo, hi) * adv)
    seq_obj = (token_obj * mask).sum(dim=1) / lengths
    metrics = clip_metrics(lr, advantages, mask, lengths.sum(), _log(lo), _log(hi))
    return -seq_obj.mean(), metrics


def dapo_loss(logprobs, old_logprobs, advantages, mask, *, eps_low: Bound = 0.2, eps_high: Bound = 0.28,
              **_unused):
    """Eq. 13: clip-higher (ε_low 0.2, ε_high 0.28) and a token mean over the whole batch."""
    mask, lengths = validate_inputs(logprobs, old_logprobs, advantages, mask)
    lr = log_ratio(logprobs, old_logprobs)
    ratio = lr.exp()
    lo, hi = 1.0 - _column(eps_low, lr), 1.0 + _column(eps_high, lr)
    adv = advantages.to(lr).unsqueeze(1)
    token_obj = torch.minimum(ratio * adv, torch.clamp(ratio, lo, hi) * adv)
    n_tokens = lengths.sum()
    metrics = clip_metrics(lr, advantages, mask, n_tokens, _log(lo), _log(hi))
    return -(token_obj * mask).sum() / n_tokens, metrics


def gmpo_loss(logprobs, old_logprobs, advantages, mask, *, log_clip: float = 0.4, **_unused):
    """Eq. 14 as in GMPO: -(1/B) Σ_i Â_i·exp((1/|o_i|) Σ_t log ρ̃_t), log-ratio clipped to ±0.4.

    The APMPO paper prints the exponent as 1/|o_i|; GMPO's exponent is sgn(Â_i)/|o_i|, which
    undoes the r^sgn(Â) inside. Without it a negative advantage would raise its tokens'
    probabilities, so we follow GMPO.
    """
    mask, lengths = validate_inputs(logprobs, old_logprobs, advantages, mask)
    lr = log_ratio(logprobs, old_logprobs)
    selected = selected_log_ratio(lr, advantages, -log_clip, log_clip)
    geometric = torch.exp((selected * mask).sum(dim=1) / lengths)
    metrics = clip_metrics(lr, advantages, mask, lengths.sum(), -log_clip, log_clip)
    return -(advantages.to(lr) * geometric).mean(), metrics


def apmpo_loss(logprobs, old_logprobs, advantages, mask, *, p: Bound, eps_low: Bound, eps_high: Bound,
               **_unused):
    """Eq. 7-10 without the KL term: -(1/B) Σ_i sgn(Â_i)·[(1/|o_i|) Σ_t φ_{i,t}^p]^{1/p}.

    With φ = |Â_i|·ρ̃ (NOTES §5) this is -(1/B) Σ_i Â_i·M_p(ρ̃_i), computed in log space.
    ``eps_high`` is ε_ada for APMPO; ``p`` may be a float or a ``[B]`` tensor.
    """
    mask, lengths = validate_inputs(logprobs, old_logprobs, advantages, mask)
    lr = log_ratio(logprobs, old_logprobs)
    log_lo = _log(1.0 - _column(eps_low, lr))
    log_hi = _log(1.0 + _column(eps_high, lr))
    selected = selected_log_ratio(lr, advantages, log_lo, log_hi)
    power_mean = torch.exp(log_power_mean(selected, mask, lengths, p))
    metrics = clip_metrics(lr, advantages, mask, lengths.sum(), log_lo, log_hi)
    metrics["apmpo/power_mean"] = float(power_mean.detach().mean())
    return -(advantages.to(lr) * power_mean).mean(), metrics


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(π_θ‖π_ref): e^d - d - 1 with d = log π_ref - log π_θ (≥ 0)."""
    d = (ref_logprobs - logprobs).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    return (torch.expm1(d) - d).clamp_min(0.0)


def kl_penalty(logprobs, ref_logprobs, mask, *, beta: float) -> tuple[torch.Tensor, dict[str, float]]:
    """β·KL, a sequence mean of per-sequence token means (the aggregation of Eq. 10).

    β = 0 returns a zero that needs no reference log-probs (``ref_logprobs`` may be None).
    """
    if beta == 0:
        return logprobs.new_zeros(()), {"loss/kl": 0.0}
    if ref_logprobs is None:
        raise ValueError("kl_penalty with beta > 0 needs reference log-probs")
    mask = mask.to(logprobs.dtype)
    kl = ((kl_k3(logprobs, ref_logprobs) * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1)).mean()
    return beta * kl, {"loss/kl": float(kl.detach())}
