"""Which prompts may start now: the prompt stream, the staleness gate, re-issued prompts and those in flight.

A plain class with no locking and no Ray; the coordinator calls it under its condition variable.
"""
from __future__ import annotations

import heapq
from typing import Callable, Sequence

from .prompts import PromptStream
from .staleness import StalenessGate
from .types import Prompt


class Admission:
    def __init__(self, problems: Sequence[dict], encode: Callable[[str], list[int]], *, prompts_per_step: int,
                 max_staleness: int, data_seed: int = 0, start_step: int = 0, start_version: int | None = None):
        self.stream = PromptStream(problems, encode, seed=data_seed)
        self.gate = StalenessGate(prompts_per_step, max_staleness)
        # On resume the generators hold the initial weights until the learner sends the checkpoint's: admit
        # nothing (limit = start_step·B) until that version is published.
        self.published_version = start_version if start_version is not None else start_step - max_staleness - 1
        self.next_index = start_step * prompts_per_step
        self.retry: list[int] = []  # a heap: re-issued prompts go before new ones
        self.in_flight: set[int] = set()
        self.reissued = 0

    def claim(self, max_count: int) -> tuple[list[int], int]:
        """Up to ``max_count`` admissible prompt indices (re-issued ones first) and the version they were
        admitted under; none if the gate is closed."""
        version = self.published_version
        limit = self.gate.limit(version)
        picked: list[int] = []
        while self.retry and self.retry[0] < limit and len(picked) < max_count:
            picked.append(heapq.heappop(self.retry))
        while self.next_index < limit and len(picked) < max_count:
            picked.append(self.next_index)
            self.next_index += 1
        self.in_flight.update(picked)
        return picked, version

    def prompts(self, indices: list[int]) -> list[Prompt]:
        return [self.stream[i] for i in indices]

    def requeue(self, indices: list[int]) -> None:
        """Prompts whose episode was lost go back to the front of the queue."""
        for index in indices:
            self.in_flight.discard(index)
            heapq.heappush(self.retry, index)
        self.reissued += len(indices)

    def complete(self, indices: list[int]) -> None:
        self.in_flight.difference_update(indices)

    def publish(self, version: int) -> None:
        self.published_version = max(self.published_version, version)
