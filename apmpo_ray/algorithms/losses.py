"""Policy losses (pure functions; torch only): ``fn(inputs: LossInputs, controls: Controls) -> LossOutput``.

Three families cover every registered loss:

- :func:`clipped_surrogate_loss`: PPO's per-token min(r·Â, clip(r)·Â), aggregated by ``controls.aggregation``
  (GRPO, DAPO, Dr. GRPO, AGPO);
- :func:`power_mean_loss`: APMPO's power mean of the clipped ratios per sequence (Eq. 7-10);
- :func:`geometric_mean_loss`: GMPO's geometric mean per sequence (Eq. 14).

Each adds the shaped term of off-policy (teacher) sequences, which never enter a ratio. The loss is this
micro-batch's share of the negated mini-batch objective (see :mod:`.aggregation`).
"""
from __future__ import annotations

import math

import torch

from .advantages import sequence_advantages
from .aggregation import aggregate, sequence_mean
from .contract import Bound, Controls, LossInputs, LossOutput
from .correction import behaviour_weights, correction_metrics, log_ratio, tis_weights

# Below this exponent the power mean is evaluated as its p → 0 limit, the geometric mean.
_GEOMETRIC_P = 1e-6


def _column(x: Bound, like: torch.Tensor) -> Bound:
    """A per-sequence ``[B]`` tensor becomes ``[B, 1]`` so it broadcasts over tokens."""
    if isinstance(x, torch.Tensor) and x.dim() == 1:
        return x.to(like).unsqueeze(1)
    return x


def _log(x: Bound) -> Bound:
    return torch.log(x) if isinstance(x, torch.Tensor) else math.log(x)


def selected_log_ratio(lr: torch.Tensor, advantages: torch.Tensor, log_lo: Bound, log_hi: Bound) -> torch.Tensor:
    """log ρ̃: the ratio PPO's min selects, min(r, clip r) where Â > 0 and max(r, clip r) where Â < 0.

    ``advantages`` is ``[B]`` or ``[B, T]``. Because |min(r·Â, clip(r)·Â)| = |Â|·ρ̃, a sequence-level
    objective can be written over ρ̃ alone (NOTES §5). A clipped token gets a constant, hence zero gradient.
    """
    positive = advantages > 0
    if positive.dim() == 1:
        positive = positive.unsqueeze(1)
    hi = torch.as_tensor(log_hi, dtype=lr.dtype, device=lr.device)
    lo = torch.as_tensor(log_lo, dtype=lr.dtype, device=lr.device)
    return torch.where(positive, torch.minimum(lr, hi), torch.maximum(lr, lo))


def clip_metrics(lr: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, log_lo: Bound,
                 log_hi: Bound) -> dict[str, float]:
    """Shares of on-policy tokens whose clipped branch is active (zero gradient), and the mean ratio."""
    with torch.no_grad():
        adv = advantages if advantages.dim() == 2 else advantages.unsqueeze(1)
        n = mask.sum().clamp_min(1)
        high = ((lr > log_hi) & (adv > 0)).to(mask.dtype)
        low = ((lr < log_lo) & (adv < 0)).to(mask.dtype)
        return {"clip/frac_high": float((high * mask).sum() / n), "clip/frac_low": float((low * mask).sum() / n),
                "ratio/mean": float((lr.exp() * mask).sum() / n)}


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


def off_policy_objective(inputs: LossInputs, controls: Controls) -> torch.Tensor:
    """Teacher sequences (LUFFY's policy shaping, used by AMPO): (1/N_seq) Σ_i (1/|o_i|) Σ_t Â_{i,t}·f(π_θ),
    f(π) = π/(π + λ). No ratio and no clip: these tokens were not drawn from the policy's sampler."""
    mask = inputs.off_policy_mask()
    if mask is None:
        return inputs.logprobs.new_zeros(())
    prob = inputs.logprobs.exp()
    shaped = prob / (prob + controls.shaping_lambda)
    return aggregate(shaped * inputs.advantages.to(prob), mask, "seq_mean_token_mean",
                     global_tokens=inputs.global_tokens, global_sequences=inputs.global_sequences)


def _finish(objective: torch.Tensor, inputs: LossInputs, controls: Controls, metrics: dict) -> LossOutput:
    objective = objective + off_policy_objective(inputs, controls)
    metrics.update(correction_metrics(inputs, controls.correction, controls.is_cap, inputs.on_policy_mask()))
    return LossOutput(-objective, metrics)


def clipped_surrogate_loss(inputs: LossInputs, controls: Controls) -> LossOutput:
    """Token-level PPO clip, weighted by the off-policy correction:

    J = agg_{i,t} w_{i,t}·min(r·Â_{i,t}, clip(r, 1-ε_low, 1+ε_high)·Â_{i,t}),  r = π_θ/π_old (π_prox),
    w = 1 (``none``) or min(π_prox/π_behav, cap) (``decoupled``). Under ``tis`` the token objective is
    min(π_θ/π_behav, cap)·Â·π_θ/sg(π_θ): no clip, gradient w·Â·∇log π_θ.
    """
    mask = inputs.on_policy_mask()
    adv = inputs.advantages.to(inputs.logprobs)
    lr = log_ratio(inputs.logprobs, inputs.proximal_logprobs)
    lo, hi = 1.0 - _column(controls.eps_low, lr), 1.0 + _column(controls.eps_high, lr)
    if controls.correction == "tis":
        token_obj = tis_weights(inputs, controls.is_cap) * adv * torch.exp(inputs.logprobs - inputs.logprobs.detach())
    else:
        ratio = lr.exp()
        token_obj = torch.minimum(ratio * adv, torch.clamp(ratio, lo, hi) * adv)
        token_obj = behaviour_weights(inputs, controls.correction, controls.is_cap) * token_obj
    objective = aggregate(token_obj, mask, controls.aggregation, global_tokens=inputs.global_tokens,
                          global_sequences=inputs.global_sequences)
    return _finish(objective, inputs, controls, clip_metrics(lr, adv, mask, _log(lo), _log(hi)))


def _sequence_terms(inputs: LossInputs, controls: Controls, loss_name: str, log_lo: Bound, log_hi: Bound):
    """Shared by the per-sequence losses: on-policy mask, Â_i, log ratios, and log(w·ρ̃) per token."""
    if controls.correction == "tis":
        raise ValueError(f"off-policy correction 'tis' is a token-level policy gradient; loss {loss_name!r} forms "
                         "one objective per sequence: use 'decoupled'")
    if controls.aggregation != "seq_mean_token_mean":
        raise ValueError(f"loss {loss_name!r} averages one objective per sequence (seq_mean_token_mean); "
                         f"aggregation {controls.aggregation!r} does not apply")
    mask = inputs.on_policy_mask()
    adv = sequence_advantages(inputs.advantages.to(inputs.logprobs), mask, loss_name=loss_name)
    lr = log_ratio(inputs.logprobs, inputs.proximal_logprobs)
    selected = selected_log_ratio(lr, adv, log_lo, log_hi)
    if controls.correction == "decoupled":
        selected = selected + torch.log(behaviour_weights(inputs, controls.correction, controls.is_cap))
    return mask, adv, lr, selected


def power_mean_loss(inputs: LossInputs, controls: Controls) -> LossOutput:
    """APMPO, Eq. 7-10 without the KL term: J = (1/N_seq) Σ_i sgn(Â_i)·[(1/|o_i|) Σ_t φ_{i,t}^p]^{1/p}.

    With φ = |Â_i|·w·ρ̃ (NOTES §5) this is (1/N_seq) Σ_i Â_i·M_p(w·ρ̃_i), computed in log space; w is the
    decoupled correction's weight (1 otherwise). ``eps_high`` is ε_ada for APMPO; ``p`` may be per sequence.
    """
    log_lo = _log(1.0 - _column(controls.eps_low, inputs.logprobs))
    log_hi = _log(1.0 + _column(controls.eps_high, inputs.logprobs))
    mask, adv, lr, log_terms = _sequence_terms(inputs, controls, "apmpo", log_lo, log_hi)
    on_mask, on_adv, lengths, p = mask, adv, mask.sum(dim=1), controls.p
    if not bool((lengths > 0).all()):  # teacher rows have no on-policy token: leave them out of the mean
        rows = lengths > 0
        p = p[rows] if isinstance(p, torch.Tensor) and p.dim() == 1 else p
        log_terms, on_mask, lengths, on_adv = log_terms[rows], mask[rows], lengths[rows], adv[rows]
    power_mean = torch.exp(log_power_mean(log_terms, on_mask, lengths, p))
    objective = sequence_mean(on_adv * power_mean, global_sequences=inputs.global_sequences)
    metrics = clip_metrics(lr, adv, mask, log_lo, log_hi)
    metrics["apmpo/power_mean"] = float(power_mean.detach().mean()) if power_mean.numel() else 1.0
    return _finish(objective, inputs, controls, metrics)


def geometric_mean_loss(inputs: LossInputs, controls: Controls) -> LossOutput:
    """Eq. 14 as in GMPO: J = (1/N_seq) Σ_i Â_i·exp((1/|o_i|) Σ_t log(w·ρ̃_t)), log-ratio clipped to ±log_clip.

    The APMPO paper prints the exponent as 1/|o_i|; GMPO's exponent is sgn(Â_i)/|o_i|, which undoes the
    r^sgn(Â) inside. Without it a negative advantage would raise its tokens' probabilities, so we follow GMPO.
    """
    c = controls.log_clip
    mask, adv, lr, log_terms = _sequence_terms(inputs, controls, "gmpo", -c, c)
    lengths = mask.sum(dim=1).clamp_min(1)
    geometric = torch.exp((log_terms * mask).sum(dim=1) / lengths) * (mask.sum(dim=1) > 0)
    objective = sequence_mean(adv * geometric, global_sequences=inputs.global_sequences)
    return _finish(objective, inputs, controls, clip_metrics(lr, adv, mask, -c, c))


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(π_θ‖π_ref): e^d - d - 1 with d = log π_ref - log π_θ (≥ 0)."""
    d = log_ratio(ref_logprobs, logprobs)
    return (torch.expm1(d) - d).clamp_min(0.0)


def kl_penalty(logprobs: torch.Tensor, ref_logprobs, mask: torch.Tensor, *, beta: float,
               global_sequences: float) -> tuple[torch.Tensor, dict[str, float]]:
    """β·KL as a sequence mean of per-sequence token means (Eq. 10's aggregation), this micro-batch's share.

    β = 0 returns a zero that needs no reference log-probs (``ref_logprobs`` may be None). The metric is
    the micro-batch's own mean KL per sequence.
    """
    if beta == 0:
        return logprobs.new_zeros(()), {"loss/kl": 0.0}
    if ref_logprobs is None:
        raise ValueError("kl_penalty with beta > 0 needs reference log-probs")
    mask = mask.to(logprobs.dtype)
    share = aggregate(kl_k3(logprobs, ref_logprobs), mask, "seq_mean_token_mean", global_tokens=1.0,
                      global_sequences=global_sequences)
    rows = float((mask.sum(dim=1) > 0).sum().clamp_min(1))
    return beta * share, {"loss/kl": float(share.detach()) * global_sequences / rows}
