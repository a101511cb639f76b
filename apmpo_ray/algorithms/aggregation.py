"""How per-token objectives become one number, normalised so that splitting a mini-batch changes nothing.

Each mode is a sum over the micro-batch divided by a count of the *whole* mini-batch (all micro-batches,
all learner workers). The micro-batch losses then add up to the mini-batch loss exactly, and the
accumulated gradient is independent of the micro-batch size and of the number of workers. A per-micro-batch
mean (what each worker would compute on its own) is not: DAPO's token mean would weight a token by
1/(tokens in its micro-batch) instead of 1/(tokens in the batch).

- ``seq_mean_token_mean``: (1/N_seq) Σ_i (1/|o_i|) Σ_t x_{i,t} (GRPO Eq. 12; APMPO's Eq. 10 outer mean)
- ``token_mean``: (1/N_tok) Σ_i Σ_t x_{i,t} (DAPO Eq. 13)
- ``seq_mean_token_sum``: (1/N_seq) Σ_i Σ_t x_{i,t} (Dr. GRPO)
"""
from __future__ import annotations

import torch

from .contract import AGGREGATIONS


def aggregate(values: torch.Tensor, mask: torch.Tensor, mode: str, *, global_tokens: float,
              global_sequences: float) -> torch.Tensor:
    """``values`` and ``mask`` are ``[B, T]``; rows whose mask is all zero contribute nothing."""
    masked = values * mask
    if mode == "token_mean":
        return masked.sum() / global_tokens
    if mode == "seq_mean_token_sum":
        return masked.sum() / global_sequences
    if mode == "seq_mean_token_mean":
        lengths = mask.sum(dim=1)
        per_sequence = masked.sum(dim=1) / lengths.clamp_min(1)
        return per_sequence.sum() / global_sequences
    raise ValueError(f"unknown aggregation {mode!r}; choose one of {list(AGGREGATIONS)}")


def sequence_mean(per_sequence: torch.Tensor, *, global_sequences: float) -> torch.Tensor:
    """(1/N_seq) Σ_i J_i for losses that form one objective per sequence (APMPO, GMPO)."""
    return per_sequence.sum() / global_sequences
