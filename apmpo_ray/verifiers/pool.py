"""``VerifierPool``: scoring spread over several ``VerifierActor``s, awaitable from async actors."""
from __future__ import annotations

import asyncio

import ray

from .actor import VerifierActor


class VerifierPool:
    """``num_actors`` verifier actors with ``processes_per_actor`` worker processes each.

    Scoring is idempotent, so the actors restart without limit (``max_restarts=-1``) and an interrupted
    call is retried on the restarted actor (``max_task_retries=-1``): a killed actor delays a batch
    but loses no score. A batch is cut into up to ``num_actors`` contiguous chunks, handed to the actors
    round-robin (the next call starts at the next actor), and reassembled in order.
    ``scorer_options`` go to each actor's ``TimeoutScorer`` (grace_s, memory_limit_mb, spare).
    """

    def __init__(self, reward: str, *, num_actors: int = 1, processes_per_actor: int = 1,
                 timeout_s: float = 5.0, num_cpus_per_actor: float = 0, **scorer_options):
        if not isinstance(num_actors, int) or num_actors < 1:
            raise ValueError(f"num_actors must be a positive integer, got {num_actors!r}")
        if num_cpus_per_actor < 0:
            raise ValueError(f"num_cpus_per_actor must be >= 0, got {num_cpus_per_actor!r}")
        options = dict(max_restarts=-1, max_task_retries=-1, num_cpus=num_cpus_per_actor)
        self._actors = [VerifierActor.options(**options).remote(
            reward, processes=processes_per_actor, timeout_s=timeout_s, **scorer_options)
            for _ in range(num_actors)]
        self._next = 0
        try:
            ray.get([a.ping.remote() for a in self._actors])
        except ray.exceptions.RayActorError as err:
            self.shutdown()
            raise ValueError(f"verifier actors for reward {reward!r} failed to start: {err}") from err

    @property
    def actors(self) -> list:
        return list(self._actors)

    def _submit(self, responses: list[str], references: list) -> list:
        if len(responses) != len(references):
            raise ValueError(f"{len(responses)} responses but {len(references)} references")
        if not self._actors:
            raise RuntimeError("VerifierPool is shut down")
        responses, references = list(responses), list(references)
        if not responses:
            return []
        chunks = min(len(self._actors), len(responses))
        bounds = [len(responses) * k // chunks for k in range(chunks + 1)]
        refs = []
        for k in range(chunks):
            actor = self._actors[(self._next + k) % len(self._actors)]
            lo, hi = bounds[k], bounds[k + 1]
            refs.append(actor.score.remote(responses[lo:hi], references[lo:hi]))
        self._next = (self._next + chunks) % len(self._actors)
        return refs

    async def score_async(self, responses: list[str], references: list) -> list[float]:
        """Rewards in order; await it from an async actor without blocking its event loop."""
        parts = await asyncio.gather(*self._submit(responses, references))
        return [value for part in parts for value in part]

    def score(self, responses: list[str], references: list) -> list[float]:
        """Rewards in order (blocking)."""
        return [value for part in ray.get(self._submit(responses, references)) for value in part]

    def stats(self) -> dict[str, int]:
        """Counts summed over actors (since each actor's last (re)start)."""
        total: dict[str, int] = {}
        for counts in ray.get([a.stats.remote() for a in self._actors]):
            for key, value in counts.items():
                total[key] = total.get(key, 0) + value
        total["actors"] = len(self._actors)
        return total

    def shutdown(self) -> None:
        """Stop the worker processes and the actors for good. Idempotent."""
        actors, self._actors = self._actors, []
        try:
            ray.get([a.close.remote() for a in actors], timeout=30)
        except (ray.exceptions.RayError, ray.exceptions.GetTimeoutError):
            pass  # an actor that cannot close is killed below; its workers exit once orphaned
        for actor in actors:
            ray.kill(actor, no_restart=True)
