"""The rollout-workflow seam: what happens inside one episode (a prompt in, its scored group out).

A workflow's :meth:`RolloutWorkflow.arun` runs the episodes of a few prompts together, so that their
generation shares engine calls. It samples only through a :class:`GeneratorLease` and scores through the
verifier pool; the coordinator keeps admission, dispatch and the ordered buffer.
"""
from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

from ..types import Prompt, RolloutGroup


class TimedScore:
    """The verifier pool's ``score`` with the seconds spent waiting for it, over every call of every workflow
    that shares it (the coordinator's ``perf/scoring_s``)."""

    def __init__(self, score):
        self._score, self.seconds = score, 0.0

    async def __call__(self, texts: list[str], references: list) -> list[float]:
        started = time.monotonic()
        try:
            return await self._score(texts, references)
        finally:
            self.seconds += time.monotonic() - started

    @classmethod
    def of(cls, score) -> "TimedScore":
        return score if isinstance(score, cls) else cls(score)


@dataclass
class SamplingSettings:
    group_size: int
    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    prompts_per_call: int = 8
    seed: int = 0

    def call_seed(self, first_index: int) -> int:
        """The seed of the engine call that starts at prompt ``first_index``: reproducible per prompt."""
        return self.seed * 1_000_003 + first_index


class GeneratorLease:
    """One generator actor as workflows use it: one engine call at a time, busy time and tokens counted.

    The coordinator acquires the lease before it claims prompts and hands it to the new episode, whose
    first engine call uses it; every later call takes it again. A workflow that waits on something else
    (a tool) holds no lease, so the generator serves another episode meanwhile.
    """

    def __init__(self, actor):
        self.actor = actor
        self.lock = asyncio.Lock()
        self._handed_over = False
        self.busy_seconds = 0.0
        self.tokens = 0

    async def reserve(self) -> None:
        await self.lock.acquire()
        self._handed_over = True

    def release_reservation(self) -> None:
        """An episode that ends before its first engine call gives the reservation back."""
        if self._handed_over:
            self._handed_over = False
            self.lock.release()

    async def _acquire(self) -> None:
        if self._handed_over:
            self._handed_over = False
        else:
            await self.lock.acquire()

    async def generate(self, requests: list, **sampling) -> tuple[int, list]:
        """``(version, samples per request)`` from the actor's ``rollout_requests``."""
        await self._acquire()
        started = time.monotonic()
        try:
            version, outputs = await self.actor.rollout_requests.remote(requests, **sampling)
        finally:
            self.busy_seconds += time.monotonic() - started
            self.lock.release()
        self.tokens += sum(len(s.response_ids) for samples in outputs for s in samples)
        return version, outputs

    async def score(self, pairs: list[tuple[list[int], list[int]]]) -> list[list[float]]:
        """The policy's log-probs of each continuation after its context (the actor's ``continuation_logprobs``)."""
        await self._acquire()
        started = time.monotonic()
        try:
            return await self.actor.continuation_logprobs.remote(pairs)
        finally:
            self.busy_seconds += time.monotonic() - started
            self.lock.release()


class RolloutWorkflow(ABC):
    """One axis of variation: the shape of a rollout (single-turn, tool use, guided). A workflow keeps the
    verifier pool's score as ``self.score``, a :class:`TimedScore`."""

    score: TimedScore

    @property
    def scoring_seconds(self) -> float:
        return self.score.seconds

    @abstractmethod
    async def arun(self, prompts: list[Prompt], generator: GeneratorLease) -> list[RolloutGroup]:
        """The scored group of every prompt, in prompt order. Each group's ``version`` is the oldest policy
        version among its tokens. Raises Ray's actor errors if the generator is lost."""

    async def close(self) -> None:
        """Release what the workflow holds (tool pools); the coordinator calls it when it stops."""


async def score_groups(score, groups: list[RolloutGroup]) -> None:
    """Fill in every sample's reward with one verifier-pool call."""
    texts = [s.text for g in groups for s in g.samples]
    references = [g.prompt.reference for g in groups for _ in g.samples]
    rewards = iter(await score(texts, references))
    for group in groups:
        for sample in group.samples:
            sample.reward = float(next(rewards))
