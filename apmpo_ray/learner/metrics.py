"""Reducing step metrics over micro-batches and learner workers: names ending in ``_max`` take the maximum,
all others the mean."""
from __future__ import annotations

import torch


def is_max_metric(name: str) -> bool:
    return name.endswith("_max")


class MetricReducer:
    """Accumulates metric dicts (one per micro-batch or mini-batch) and reduces them."""

    def __init__(self):
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    def add(self, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            if is_max_metric(key):
                self._sums[key] = max(self._sums.get(key, float("-inf")), value)
            else:
                self._sums[key] = self._sums.get(key, 0.0) + value
            self._counts[key] = self._counts.get(key, 0) + 1

    def result(self) -> dict[str, float]:
        return {key: (value if is_max_metric(key) else value / self._counts[key]) for key, value in self._sums.items()}


def reduce_across_workers(metrics: dict[str, float], device) -> dict[str, float]:
    """Every worker calls this with the same keys; ``device`` is the process group backend's (NCCL rejects
    CPU tensors)."""
    if not (torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1):
        return dict(metrics)
    world = torch.distributed.get_world_size()
    out: dict[str, float] = {}
    for is_max in (False, True):
        keys = sorted(k for k in metrics if is_max_metric(k) == is_max)
        if not keys:
            continue
        values = torch.tensor([metrics[k] for k in keys], dtype=torch.float64, device=device)
        op = torch.distributed.ReduceOp.MAX if is_max else torch.distributed.ReduceOp.SUM
        torch.distributed.all_reduce(values, op=op)
        if not is_max:
            values = values / world
        out.update(zip(keys, values.cpu().tolist()))
    return out
