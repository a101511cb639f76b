"""Completed groups, held until the learner step that consumes them (bounded by admission)."""
from __future__ import annotations

from .types import RolloutGroup


class OrderedBuffer:
    """Groups keyed by prompt index; step k's batch is indices [k·B, (k+1)·B), complete or not ready.

    At most (max_staleness + 1)·B prompts are admitted beyond the consumed ones, so the buffer never
    holds more than that many groups.
    """

    def __init__(self, prompts_per_step: int):
        self.prompts_per_step = prompts_per_step
        self._groups: dict[int, RolloutGroup] = {}

    def __len__(self) -> int:
        return len(self._groups)

    def put(self, group: RolloutGroup) -> None:
        index = group.prompt.index
        if index in self._groups:
            raise RuntimeError(f"prompt {index} completed twice")
        self._groups[index] = group

    def _indices(self, step: int) -> range:
        return range(step * self.prompts_per_step, (step + 1) * self.prompts_per_step)

    def ready(self, step: int) -> bool:
        return all(i in self._groups for i in self._indices(step))

    def missing(self, step: int) -> list[int]:
        return [i for i in self._indices(step) if i not in self._groups]

    def pop_batch(self, step: int) -> list[RolloutGroup]:
        if not self.ready(step):
            raise RuntimeError(f"batch of step {step} is incomplete: missing prompts {self.missing(step)}")
        return [self._groups.pop(i) for i in self._indices(step)]
