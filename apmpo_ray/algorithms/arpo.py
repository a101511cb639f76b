"""ARPO's mathematics (``shared/SEED-SYSTEMS.md``): the entropy after a tool result, the branch rule, and
hard advantage attribution over a tree of trajectories that share prefixes. Pure functions."""
from __future__ import annotations

import math
import random
from typing import Optional, Sequence


def normalized_entropy(top_logprobs: Sequence[Sequence[float]], vocab_size: int, *, tokens: int = 20) -> float:
    """Mean over the first ``tokens`` positions of H_t = -Σ_k p_k log p_k over the top-k log-probs vLLM
    returned (not renormalised), divided by log|V|, so H lies in [0, 1]."""
    if vocab_size < 2:
        raise ValueError(f"vocab_size must be >= 2, got {vocab_size}")
    positions = list(top_logprobs)[:tokens]
    if not positions:
        return 0.0
    total = 0.0
    for step in positions:
        total += -sum(math.exp(lp) * lp for lp in step if lp > -math.inf)
    return total / len(positions) / math.log(vocab_size)


def should_branch(delta_entropy: float, *, rule: str, rng: random.Random, entropy_weight: float = 0.2,
                  threshold: float = 0.5, alpha: float = 0.5, tau: float = 0.5) -> bool:
    """Branch after a tool result?

    ``code`` (the released code): clip(u - β·ΔH, 0, 1) <= threshold with u ~ U(0, 1), so P(branch) =
    threshold + β·ΔH (clipped to [0, 1]) grows with the entropy rise. ``paper``: α + β·ΔH > τ.
    """
    if rule == "code":
        return min(max(rng.random() - entropy_weight * delta_entropy, 0.0), 1.0) <= threshold
    if rule == "paper":
        return alpha + entropy_weight * delta_entropy > tau
    raise ValueError(f"unknown branch rule {rule!r}; choose 'code' or 'paper'")


def _origin(i: int, j: int, parents: Sequence[Optional[int]], branch_points: Sequence[Optional[int]]) -> int:
    """The trajectory that generated token ``j`` of trajectory ``i`` (walking up while j lies in a copied prefix)."""
    while parents[i] is not None and j < branch_points[i]:
        i = parents[i]
    return i


def hard_attribution(advantages: Sequence[float], parents: Sequence[Optional[int]],
                     branch_points: Sequence[Optional[int]], lengths: Sequence[int]) -> list[list[float]]:
    """Per-token advantages of one group: a token shared by d trajectories gets the mean of their
    advantages; a token of one trajectory alone gets its own.

    ``parents[i]`` is the trajectory that ``i`` was branched from (None for a root), ``branch_points[i]``
    the number of response tokens it copied, ``lengths[i]`` its response length.
    """
    n = len(advantages)
    if not (len(parents) == len(branch_points) == len(lengths) == n):
        raise ValueError("advantages, parents, branch_points and lengths must have one entry per trajectory")
    for i, parent in enumerate(parents):
        if parent is not None and not (0 <= parent < n and parent != i and 0 <= branch_points[i] <= lengths[i]):
            raise ValueError(f"trajectory {i}: bad parent {parent} or branch point {branch_points[i]}")
    out = []
    for i in range(n):
        row = []
        for j in range(lengths[i]):
            origin = _origin(i, j, parents, branch_points)
            sharing = [advantages[k] for k in range(n) if j < lengths[k] and _origin(k, j, parents, branch_points)
                       == origin]
            row.append(sum(sharing) / len(sharing))
        out.append(row)
    return out
