"""Off-policy correction for samples drawn by older weights (``max_staleness >= 1``) or another engine.

Three policies meet in an asynchronous learner: π_behav, the generator's weights when it sampled; π_prox,
the learner's weights before this update (recomputed by the learner); and π_θ, the weights being trained.

- ``none``: the clipped ratio is π_θ/π_old and nothing else (correct only on-policy).
- ``decoupled`` (AReaL's decoupled PPO): the clipped ratio is π_θ/π_prox, so the trust region is around
  the current policy, and every token is weighted by the behaviour importance ratio π_prox/π_behav,
  truncated at ``is_cap`` and not differentiated.
- ``tis``: the truncated importance weight alone, with no proximal policy and no clip: the token's
  policy gradient is min(π_θ/π_behav, cap)·Â·∇log π_θ (the weight not differentiated), as in IMPALA's
  truncated ρ and verl's bypass-mode REINFORCE. It needs no recomputation pass.
"""
from __future__ import annotations

from typing import Optional

import torch

from .contract import LossInputs

LOG_RATIO_CLAMP = 20.0


def log_ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """log(π_a/π_b) from log-probs, clamped so exp() stays finite for any input."""
    return (numerator - denominator).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)


def truncated_weights(log_weights: torch.Tensor, cap: float) -> torch.Tensor:
    """min(exp(log w), cap), detached: an importance weight is a constant of the gradient."""
    return log_weights.detach().exp().clamp_max(cap)


def behaviour_weights(inputs: LossInputs, correction: str, cap: float) -> torch.Tensor:
    """The per-token weight the surrogate is multiplied by: π_prox/π_behav truncated (``decoupled``), else 1.

    ``tis`` weights depend on π_θ and are formed inside the loss (:func:`tis_weights`).
    """
    if correction != "decoupled":
        return torch.ones_like(inputs.logprobs).detach()
    return truncated_weights(log_ratio(inputs.proximal_logprobs, _behaviour(inputs, correction)), cap)


def tis_weights(inputs: LossInputs, cap: float) -> torch.Tensor:
    return truncated_weights(log_ratio(inputs.logprobs, _behaviour(inputs, "tis")), cap)


def _behaviour(inputs: LossInputs, correction: str) -> torch.Tensor:
    if inputs.behaviour_logprobs is None:
        raise ValueError(f"off-policy correction {correction!r} needs the generators' behaviour log-probs")
    return inputs.behaviour_logprobs


def correction_metrics(inputs: LossInputs, correction: str, cap: float, mask: torch.Tensor) -> dict[str, float]:
    """The applied weights (exactly 1 under ``none``), the share of tokens the cap truncated, and the k3
    estimate of KL(π_behav ‖ π_anchor) over the sampled tokens."""
    with torch.no_grad():
        n = mask.sum().clamp_min(1)
        behaviour: Optional[torch.Tensor] = inputs.behaviour_logprobs
        if correction == "none":
            weights, truncated = torch.ones_like(mask), torch.zeros_like(mask)
        else:
            anchor = inputs.logprobs if correction == "tis" else inputs.proximal_logprobs
            raw = log_ratio(anchor, _behaviour(inputs, correction)).exp()
            weights, truncated = raw.clamp_max(cap), (raw > cap).to(mask)
        metrics = {"rollout/is_weight_mean": float((weights * mask).sum() / n),
                   "rollout/is_weight_max": float(torch.where(mask > 0, weights, torch.zeros_like(weights)).max()),
                   "rollout/is_clipped_frac": float((truncated * mask).sum() / n)}
        if behaviour is not None:
            d = log_ratio(inputs.proximal_logprobs if correction != "tis" else inputs.logprobs, behaviour)
            metrics["rollout/behaviour_kl"] = float(((torch.expm1(d) - d) * mask).sum() / n)
        return metrics
