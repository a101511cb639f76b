"""Rollout groups -> padded tensors the learner trains on.

Sequences are ``prompt + response``, right-padded. Token log-probs live on the shifted grid
``[N, L-1]``: position j holds log π(x_{j+1} | x_{≤j}), so a response occupying positions
P..P+R-1 of the sequence is scored at positions P-1..P+R-2.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Optional, Sequence

import torch

from ..rollout.types import RolloutGroup


@dataclass
class TrainBatch:
    input_ids: torch.Tensor  # [N, L] long
    attention_mask: torch.Tensor  # [N, L] long
    loss_mask: torch.Tensor  # [N, L-1] float, 1 on the policy's own response tokens
    behaviour_logprobs: torch.Tensor  # [N, L-1] from the generators, 0 off the loss mask
    rewards: torch.Tensor  # [N]
    off_policy: torch.Tensor  # [N] bool: sequences not drawn by the policy's sampler
    response_start: torch.Tensor  # [N] long: where each response begins on the shifted grid
    advantages: Optional[torch.Tensor] = None  # [N, L-1]
    proximal_logprobs: Optional[torch.Tensor] = None  # [N, L-1] π_old / π_prox
    ref_logprobs: Optional[torch.Tensor] = None  # [N, L-1]

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def select(self, rows: torch.Tensor | Sequence[int]) -> "TrainBatch":
        """The rows ``rows``, trimmed to the longest remaining sequence so short batches run fast."""
        rows = torch.as_tensor(rows, dtype=torch.long)
        picked = {f.name: (None if getattr(self, f.name) is None else getattr(self, f.name)[rows])
                  for f in fields(self)}
        width = int(picked["attention_mask"].sum(dim=1).max())
        for name, value in picked.items():
            if value is not None and value.dim() == 2:
                picked[name] = value[:, : width - (0 if value.shape[1] == self.input_ids.shape[1] else 1)]
        return TrainBatch(**picked)

    def with_(self, **changes) -> "TrainBatch":
        return replace(self, **changes)


def build_batch(groups: Sequence[RolloutGroup], pad_id: int) -> TrainBatch:
    """Flatten groups in order (group g's samples are rows g·G .. g·G+G-1)."""
    rows = [(g.prompt.prompt_ids, s) for g in groups for s in g.samples]
    if not rows:
        raise ValueError("cannot build a training batch from no samples")
    width = max(len(p) + len(s.response_ids) for p, s in rows)
    n = len(rows)
    input_ids = torch.full((n, width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((n, width), dtype=torch.long)
    loss_mask = torch.zeros((n, width - 1))
    behaviour = torch.zeros((n, width - 1))
    rewards = torch.empty(n)
    off_policy = torch.zeros(n, dtype=torch.bool)
    response_start = torch.zeros(n, dtype=torch.long)
    for row, (prompt_ids, sample) in enumerate(rows):
        p, r = len(prompt_ids), len(sample.response_ids)
        if r == 0:
            raise ValueError(f"sample {row} of the batch has an empty response")
        if len(sample.logprobs) != r:
            raise ValueError(f"sample {row}: {len(sample.logprobs)} log-probs for {r} response tokens")
        mask = [1] * r if sample.loss_mask is None else list(sample.loss_mask)
        if len(mask) != r:
            raise ValueError(f"sample {row}: a loss mask of {len(mask)} for {r} response tokens")
        if not any(mask):
            raise ValueError(f"sample {row} has no token of the policy's own (its loss mask is all 0)")
        input_ids[row, : p + r] = torch.tensor(list(prompt_ids) + list(sample.response_ids))
        attention_mask[row, : p + r] = 1
        loss_mask[row, p - 1: p + r - 1] = torch.tensor(mask, dtype=loss_mask.dtype)
        behaviour[row, p - 1: p + r - 1] = torch.tensor(sample.logprobs, dtype=behaviour.dtype) * loss_mask[
            row, p - 1: p + r - 1]
        rewards[row] = sample.reward
        off_policy[row] = sample.off_policy
        response_start[row] = p - 1
    return TrainBatch(input_ids, attention_mask, loss_mask, behaviour, rewards, off_policy, response_start)


def place_response_values(batch: TrainBatch, values: Sequence[Sequence[float]]) -> torch.Tensor:
    """Per-response-token values (one list per row) on the batch's shifted grid, 0 off the loss mask."""
    out = torch.zeros_like(batch.loss_mask)
    for row, row_values in enumerate(values):
        start = int(batch.response_start[row])
        out[row, start: start + len(row_values)] = torch.tensor(list(row_values), dtype=out.dtype)
    return out * batch.loss_mask


def token_logprobs(logits: torch.Tensor, input_ids: torch.Tensor, temperature: float = 1.0,
                   with_entropy: bool = False):
    """log π(x_{j+1} | x_{≤j}) on the shifted grid, and optionally the entropy of each prediction.

    Dividing by the sampling temperature scores tokens under the distribution they were drawn from.
    """
    logits = logits[:, :-1].float()
    if temperature != 1.0:
        logits = logits / temperature
    log_z = torch.logsumexp(logits, dim=-1)
    picked = torch.gather(logits, -1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1) - log_z
    if not with_entropy:
        return picked, None
    probs = torch.softmax(logits, dim=-1)
    entropy = log_z - (probs * logits).sum(dim=-1)
    return picked, entropy
