"""The rollout stream: admits prompts under the staleness bound, drives generators and verifiers,
and hands complete, ordered batches to the learner.

One asyncio task per generator claims the next admissible prompts, awaits a generate call, and hands
the responses to the verifier pool without waiting for the scores, so generation and scoring overlap.
Prompts of a failed call go back to the front of the queue: none is lost, none is counted twice.
"""
from __future__ import annotations

import asyncio
import hashlib
import heapq
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from .buffer import OrderedBuffer
from .prompts import PromptStream
from .staleness import StalenessGate
from .types import Prompt, RolloutGroup, Sample

log = logging.getLogger(__name__)


def _lost_actor_errors() -> tuple[type[BaseException], ...]:
    import ray.exceptions as rex

    return tuple(getattr(rex, name) for name in ("RayActorError", "ActorUnavailableError", "ActorDiedError")
                 if hasattr(rex, name))


@dataclass
class SamplingSettings:
    group_size: int
    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    prompts_per_call: int = 8
    seed: int = 0


@dataclass
class _Interval:
    """Generator activity since the last batch was handed out."""

    started: float = field(default_factory=time.monotonic)
    busy_seconds: float = 0.0
    tokens: int = 0


class RolloutCoordinator:
    """Plain async class; :func:`coordinator_actor` wraps it in a Ray actor.

    ``generators`` expose ``rollout.remote(prompts, **sampling) -> (version, samples)``; ``score`` is an
    async callable ``(responses, references) -> rewards``.
    """

    def __init__(self, problems: Sequence[dict], encode: Callable[[str], list[int]], generators: list,
                 score: Callable, sampling: SamplingSettings, *, prompts_per_step: int, max_staleness: int,
                 data_seed: int = 0, start_step: int = 0, start_version: int | None = None):
        self.stream = PromptStream(problems, encode, seed=data_seed)
        self.gate = StalenessGate(prompts_per_step, max_staleness)
        self.buffer = OrderedBuffer(prompts_per_step)
        self.generators = list(generators)
        self.score = score
        self.sampling = sampling
        # On resume the generators hold the initial weights until the learner sends the checkpoint's: admit
        # nothing (limit = start_step·B) until that version is published.
        self.published_version = start_version if start_version is not None else start_step - max_staleness - 1
        self.next_index = start_step * prompts_per_step
        self.retry: list[int] = []  # a heap: re-issued prompts go before new ones
        self.in_flight: set[int] = set()
        self.changed = asyncio.Condition()
        self.tasks: list[asyncio.Task] = []
        self.error: BaseException | None = None
        self.interval = _Interval()
        self.progress_log: list[dict] = []
        self.reissued = 0
        self.restart_notice = False  # a generator came back with its initial weights: it needs a resync
        self.publications = 0
        self.consumed: dict[int, str] = {}
        self.generating: dict[int, list[int]] = {}  # generator -> prompts of its call in flight
        self.served: tuple[int, list[RolloutGroup], dict] | None = None

    # --- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.tasks = [loop.create_task(self._generator_loop(g)) for g in range(len(self.generators))]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    # --- admission -------------------------------------------------------------------------------
    def _admissible(self, version: int) -> list[int]:
        limit = self.gate.limit(version)
        picked = []
        while self.retry and self.retry[0] < limit and len(picked) < self.sampling.prompts_per_call:
            picked.append(heapq.heappop(self.retry))
        while self.next_index < limit and len(picked) < self.sampling.prompts_per_call:
            picked.append(self.next_index)
            self.next_index += 1
        return picked

    async def _claim(self) -> tuple[list[int], int]:
        async with self.changed:
            while True:
                version = self.published_version
                picked = self._admissible(version)
                if picked:
                    self.in_flight.update(picked)
                    return picked, version
                await self.changed.wait()

    async def _requeue(self, indices: list[int]) -> None:
        async with self.changed:
            for index in indices:
                self.in_flight.discard(index)
                heapq.heappush(self.retry, index)
            self.reissued += len(indices)
            self.changed.notify_all()

    # --- generation and scoring ------------------------------------------------------------------
    async def _generator_loop(self, g: int) -> None:
        lost_actor = _lost_actor_errors()
        generator = self.generators[g]
        s = self.sampling
        while True:
            indices, admitted_version = await self._claim()
            prompts = [self.stream[i] for i in indices]
            started = time.monotonic()
            self.generating[g] = indices
            try:
                version, outputs = await generator.rollout.remote(
                    [p.prompt_ids for p in prompts], n=s.group_size, max_new_tokens=s.max_new_tokens,
                    temperature=s.temperature, top_p=s.top_p, seed=s.seed * 1_000_003 + indices[0])
            except asyncio.CancelledError:
                raise
            except lost_actor as err:
                log.warning("generator %d failed (%s); re-issuing prompts %s", g, type(err).__name__, indices)
                await self._requeue(indices)
                await self._await_resync()
                continue
            except Exception as err:  # a bug, not a lost actor: fail the run loudly
                self.error = err
                await self._notify()
                raise
            finally:
                self.generating.pop(g, None)
            elapsed = time.monotonic() - started
            if version < admitted_version:
                # A restarted generator reloaded its initial weights: its output is too stale to use.
                log.warning("generator %d returned version %d < %d; re-issuing", g, version, admitted_version)
                await self._requeue(indices)
                await self._await_resync()
                continue
            self.interval.busy_seconds += elapsed
            self.interval.tokens += sum(len(x.response_ids) for samples in outputs for x in samples)
            asyncio.get_running_loop().create_task(self._score_and_store(prompts, outputs, version, elapsed))

    async def _await_resync(self) -> None:
        """Ask the learner for a weight resync and pause this generator until the next publication."""
        async with self.changed:
            self.restart_notice = True
            seen = self.publications
            self.changed.notify_all()
            while self.publications == seen:
                await self.changed.wait()

    def take_restart_notice(self) -> bool:
        notice, self.restart_notice = self.restart_notice, False
        return notice

    async def _score_and_store(self, prompts: list[Prompt], outputs: list[list[Sample]], version: int,
                               gen_seconds: float) -> None:
        try:
            texts = [x.text for samples in outputs for x in samples]
            references = [p.reference for p, samples in zip(prompts, outputs) for _ in samples]
            rewards = await self.score(texts, references)
            flat = iter(rewards)
            for samples in outputs:
                for x in samples:
                    x.reward = float(next(flat))
            async with self.changed:
                for prompt, samples in zip(prompts, outputs):
                    self.in_flight.discard(prompt.index)
                    self.buffer.put(RolloutGroup(prompt, samples, version, gen_seconds))
                self.changed.notify_all()
        except Exception as err:
            self.error = err
            await self._notify()

    # --- the learner's side ----------------------------------------------------------------------
    async def get_batch(self, step: int) -> tuple[list[RolloutGroup], dict[str, float]]:
        """The groups of prompts [step·B, (step+1)·B) in index order, once all are scored.

        Every learner worker asks for the same step; the batch is kept until the next step is asked for.
        """
        if self.served is not None and self.served[0] == step:
            return self.served[1], self.served[2]
        async with self.changed:
            while not self.buffer.ready(step):
                if self.error is not None:
                    raise RuntimeError(f"the rollout stream failed: {self.error!r}") from self.error
                await self.changed.wait()
            groups = self.buffer.pop_batch(step)
            self.changed.notify_all()
        self.served = (step, groups, self._interval_stats(groups, step))
        # What each step trained on, compactly: resume and fault-tolerance checks compare these.
        self.consumed[step] = hashlib.sha1("\n".join(f"{g.prompt.index}:{g.prompt.text}" for g in groups)
                                           .encode()).hexdigest()[:16]
        return self.served[1], self.served[2]

    def _interval_stats(self, groups: list[RolloutGroup], step: int) -> dict[str, float]:
        now = time.monotonic()
        wall = max(now - self.interval.started, 1e-9)
        stats = {
            "rollout/staleness_mean": sum(step - g.version for g in groups) / len(groups),
            "rollout/staleness_max": float(max(step - g.version for g in groups)),
            "perf/gen_tokens_per_s": self.interval.tokens / wall,
            "perf/generator_idle_frac": max(0.0, 1.0 - self.interval.busy_seconds / (wall * len(self.generators))),
            "rollout/buffered_groups": float(len(self.buffer)),
            "rollout/reissued_prompts": float(self.reissued),
        }
        self.interval = _Interval(started=now)
        return stats

    async def publish_version(self, version: int) -> None:
        """Every generator now holds the weights of ``version``: admit the prompts they may start."""
        async with self.changed:
            self.published_version = max(self.published_version, version)
            self.publications += 1
            self.changed.notify_all()

    def record_step(self, metrics: dict[str, float]) -> None:
        self.progress_log.append({**metrics, "wall_time": time.time()})

    def progress(self, since: int = 0) -> list[dict]:
        """Learner metrics recorded from step ``since`` on (for the driver's progress bar)."""
        return self.progress_log[since:]

    def position(self) -> dict[str, Any]:
        return {"next_index": self.next_index, "retry": sorted(self.retry), "in_flight": sorted(self.in_flight),
                "published_version": self.published_version, "buffered": len(self.buffer),
                "reissued": self.reissued, "consumed": dict(self.consumed),
                "generating": {g: list(v) for g, v in self.generating.items()}}


def coordinator_actor():
    """The Ray actor class: async, so the generator loops and the learner's calls interleave."""
    import ray

    return ray.remote(num_cpus=0, max_restarts=0)(RolloutCoordinator)
