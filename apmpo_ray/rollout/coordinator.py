"""The rollout stream: admits prompts under the staleness bound, hands them to the rollout workflow on a
free generator, and gives the learner complete, ordered batches.

Each generator has a loop: it waits until its generator is free and fewer than two episodes are in
flight on it, claims the next admissible prompts and starts their episode. The workflow releases the
generator whenever it is not sampling (scoring, tool calls), so the next episode generates meanwhile.
Prompts of a lost episode go back to the front of the queue: none is lost, none is counted twice.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any, Callable, Sequence

from .admission import Admission
from .buffer import OrderedBuffer
from .types import RolloutGroup
from .workflows.base import GeneratorLease, RolloutWorkflow

log = logging.getLogger(__name__)
EPISODES_PER_GENERATOR = 2


def _lost_actor_errors() -> tuple[type[BaseException], ...]:
    import ray.exceptions as rex

    return tuple(getattr(rex, name) for name in ("RayActorError", "ActorUnavailableError", "ActorDiedError")
                 if hasattr(rex, name))


class RolloutCoordinator:
    """Plain async class; :func:`coordinator_actor` wraps it in a Ray actor.

    ``generators`` expose ``rollout_requests.remote(requests, **sampling) -> (version, samples)``.
    """

    def __init__(self, problems: Sequence[dict], encode: Callable[[str], list[int]], generators: list,
                 workflow: RolloutWorkflow, *, prompts_per_step: int, prompts_per_call: int, max_staleness: int,
                 data_seed: int = 0, start_step: int = 0, start_version: int | None = None):
        self.admission = Admission(problems, encode, prompts_per_step=prompts_per_step, max_staleness=max_staleness,
                                   data_seed=data_seed, start_step=start_step, start_version=start_version)
        self.buffer = OrderedBuffer(prompts_per_step)
        self.workflow = workflow
        self.prompts_per_call = prompts_per_call
        self.leases = [GeneratorLease(g) for g in generators]
        self.changed = asyncio.Condition()
        self.tasks: list[asyncio.Task] = []
        self.episodes: set[asyncio.Task] = set()
        self.error: BaseException | None = None
        self.publications = 0
        # created here, not in start(): a learner worker may ask before the driver's start() has run
        self.resync_needed = asyncio.Event()
        self.context_set = asyncio.Event()
        self.context: dict[str, Any] = {}
        self.consumed: dict[int, str] = {}
        self.generating: dict[int, list[int]] = {}  # episode id -> its prompts, while it runs
        self.served: tuple[int, list[RolloutGroup], dict] | None = None
        self._interval = (time.monotonic(), 0.0, 0, 0.0)  # start, generator busy s, tokens, scoring s at the last batch
        self._episode_ids = 0

    # --- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.tasks = [loop.create_task(self._generator_loop(lease)) for lease in self.leases]

    async def stop(self) -> None:
        for task in [*self.tasks, *self.episodes]:
            task.cancel()
        await asyncio.gather(*self.tasks, *self.episodes, return_exceptions=True)
        await self.workflow.close()

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    # --- dispatch --------------------------------------------------------------------------------
    async def _claim(self) -> tuple[list[int], int]:
        async with self.changed:
            while True:
                picked, version = self.admission.claim(self.prompts_per_call)
                if picked:
                    return picked, version
                await self.changed.wait()

    async def _generator_loop(self, lease: GeneratorLease) -> None:
        slots = asyncio.Semaphore(EPISODES_PER_GENERATOR)
        while True:
            await slots.acquire()
            await lease.reserve()
            try:
                indices, version = await self._claim()
            except BaseException:
                lease.release_reservation()
                raise
            self._episode_ids += 1
            task = asyncio.get_running_loop().create_task(self._episode(self._episode_ids, lease, indices, version))
            self.episodes.add(task)
            task.add_done_callback(lambda t: (self.episodes.discard(t), slots.release()))

    async def _episode(self, episode: int, lease: GeneratorLease, indices: list[int], admitted_version: int) -> None:
        self.generating[episode] = indices
        lost = None
        try:
            groups = await self.workflow.arun(self.admission.prompts(indices), lease)
        except asyncio.CancelledError:
            raise
        except _lost_actor_errors() as err:
            lost = f"generator lost ({type(err).__name__})"
        except Exception as err:  # a bug, not a lost actor: fail the run loudly
            self.error = err
            await self._notify()
            raise
        finally:
            lease.release_reservation()
            self.generating.pop(episode, None)
        if lost is None and min(g.version for g in groups) < admitted_version:
            # A restarted generator reloaded its initial weights: its output is too stale to use.
            lost = f"a generator returned weights older than version {admitted_version}"
        if lost is not None:
            log.warning("%s; re-issuing prompts %s", lost, indices)
            await self._requeue_and_wait_for_resync(lease, indices)
            return
        async with self.changed:
            self.admission.complete(indices)
            for group in groups:
                self.buffer.put(group)
            self.changed.notify_all()

    async def _requeue_and_wait_for_resync(self, lease: GeneratorLease, indices: list[int]) -> None:
        """Give the prompts back, ask the learner for a weight resync, and keep this generator from new
        episodes until the next publication."""
        seen = self.publications
        async with self.changed:
            self.admission.requeue(indices)
            self.changed.notify_all()
        self.resync_needed.set()
        async with lease.lock:
            async with self.changed:
                while self.publications == seen:
                    await self.changed.wait()

    # --- the launch's context ---------------------------------------------------------------------
    def set_launch_context(self, context: dict[str, Any]) -> None:
        """What the driver settles once the actors are starting (the MLflow run and its directories)."""
        self.context = dict(context)
        self.context_set.set()

    async def launch_context(self) -> dict[str, Any]:
        """Waits for :meth:`set_launch_context`; the learner workers ask before they set up."""
        await self.context_set.wait()
        return self.context

    # --- the learner's side ----------------------------------------------------------------------
    async def wait_for_resync_request(self) -> bool:
        """Returns once a generator needs the current weights again (it was restarted)."""
        await self.resync_needed.wait()
        self.resync_needed.clear()
        return True

    async def get_batch(self, step: int, rank: int = 0, world_size: int = 1):
        """Learner worker ``rank``'s share of step ``step``: its groups (rank, rank + world, ... of the prompts
        [step·B, (step+1)·B) in index order, once all are scored), the rewards of all B groups (for the
        batch controls) and the step's rollout statistics. The batch is kept until the next step is asked for.
        """
        if self.served is None or self.served[0] != step:
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
        _, groups, stats = self.served
        return groups[rank::world_size], [g.rewards for g in groups], stats

    def _interval_stats(self, groups: list[RolloutGroup], step: int) -> dict[str, float]:
        now = time.monotonic()
        started, busy_before, tokens_before, scoring_before = self._interval
        busy = sum(lease.busy_seconds for lease in self.leases)
        tokens = sum(lease.tokens for lease in self.leases)
        scoring = self.workflow.scoring_seconds
        wall = max(now - started, 1e-9)
        stats = {
            "rollout/staleness_mean": sum(step - g.version for g in groups) / len(groups),
            "rollout/staleness_max": float(max(step - g.version for g in groups)),
            "perf/generator_idle_frac": max(0.0, 1.0 - (busy - busy_before) / (wall * len(self.leases))),
            "perf/generation_s": busy - busy_before,  # engine time over all generators since the last batch
            "perf/scoring_s": scoring - scoring_before,  # waiting for the verifier pool (overlaps generation)
            "rollout/buffered_groups": float(len(self.buffer)),
            "rollout/reissued_prompts": float(self.admission.reissued),
        }
        if tokens > tokens_before:  # an interval in which nothing was generated has no throughput (not zero)
            stats["perf/gen_tokens_per_s"] = (tokens - tokens_before) / wall
        for key in sorted({k for g in groups for k in g.stats}):
            values = [g.stats[key] for g in groups if key in g.stats]
            stats[key] = max(values) if key.endswith("_max") else sum(values) / len(values)
        self._interval = (now, busy, tokens, scoring)
        return stats

    async def publish_version(self, version: int) -> None:
        """Every generator now holds the weights of ``version``: admit the prompts they may start."""
        async with self.changed:
            self.admission.publish(version)
            self.publications += 1
            self.changed.notify_all()

    def position(self) -> dict[str, Any]:
        a = self.admission
        return {"next_index": a.next_index, "retry": sorted(a.retry), "in_flight": sorted(a.in_flight),
                "published_version": a.published_version, "buffered": len(self.buffer), "reissued": a.reissued,
                "consumed": dict(self.consumed), "generating": {e: list(v) for e, v in self.generating.items()}}


def coordinator_actor():
    """The Ray actor class: async, so the generator loops and the learner's calls interleave."""
    import ray

    return ray.remote(num_cpus=0, max_restarts=0)(RolloutCoordinator)
