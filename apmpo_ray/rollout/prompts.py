"""A deterministic, resumable stream of prompts: prompt ``n`` of a run is always the same problem."""
from __future__ import annotations

import random
from typing import Callable, Sequence

from .types import Prompt, TeacherSolution


class PromptStream:
    """Walks ``problems`` in a fresh seeded permutation per epoch.

    ``encode`` turns a problem's prompt text into token ids. Positions are plain integers, so resuming
    is restarting at the next unconsumed index, and a re-issued prompt is fetched again by its index.
    """

    def __init__(self, problems: Sequence[dict], encode: Callable[[str], list[int]], *, seed: int):
        if not problems:
            raise ValueError("the training set is empty")
        self._problems = problems
        self._encode = encode
        self._seed = seed
        self._orders: dict[int, list[int]] = {}

    def __len__(self) -> int:
        return len(self._problems)

    def _order(self, epoch: int) -> list[int]:
        if epoch not in self._orders:
            order = list(range(len(self._problems)))
            random.Random(self._seed * 1_000_003 + epoch).shuffle(order)
            self._orders = {epoch: order}  # keep one epoch: memory stays bounded
        return self._orders[epoch]

    def __getitem__(self, index: int) -> Prompt:
        epoch, offset = divmod(index, len(self._problems))
        problem = self._problems[self._order(epoch)[offset]]
        guidance = tuple(TeacherSolution(t["teacher"], t["solution"]) for t in problem.get("teachers", ()))
        return Prompt(index=index, prompt_ids=self._encode(problem["prompt"]), text=problem["prompt"],
                      reference=problem.get("answer"), guidance=guidance)
