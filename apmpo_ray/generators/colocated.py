"""Colocated placement: the vLLM engine lives in a learner worker, on its device (GPU) or cores (CPU).

The coordinator and the rollout workflows still talk to "a generator actor": a :class:`GeneratorMailbox`
with the rollout methods of :class:`~apmpo_ray.generators.actor.GeneratorActor`. Each call waits in the
mailbox until the learner worker that hosts the engine takes it, runs it on its in-process engine
(:class:`ColocatedEngine`) and hands back the result. The worker serves its mailbox while it waits for the
next batch, and trains in between: generation and training take turns on the same device, and new weights
pass to the engine in memory, as tensors, without a weight-sync group.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Any

log = logging.getLogger(__name__)

# What the coordinator's workflows call on a generator; the mailbox forwards exactly these.
SERVED_METHODS = ("rollout_requests", "continuation_logprobs")


class GeneratorMailbox:
    """Plain async class (an async Ray actor, :func:`mailbox_actor`): calls in, results out, in order."""

    def __init__(self) -> None:
        self._requests: asyncio.Queue = asyncio.Queue()
        self._waiting: dict[int, asyncio.Future] = {}
        self._ids = itertools.count()
        self.version = 0

    async def _call(self, method: str, *args, **kwargs) -> Any:
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        await self._requests.put((request_id, method, args, kwargs))
        return await future

    async def rollout_requests(self, requests, **sampling):
        return await self._call("rollout_requests", requests, **sampling)

    async def continuation_logprobs(self, pairs):
        return await self._call("continuation_logprobs", pairs)

    async def ping(self) -> int:
        return self.version

    async def get_version(self) -> int:
        return self.version

    # --- the hosting learner worker's side ----------------------------------------------------------
    async def next_request(self) -> tuple[int, str, tuple, dict]:
        return await self._requests.get()

    def complete(self, request_id: int, result: Any = None, error: BaseException | None = None,
                 version: int | None = None) -> None:
        future = self._waiting.pop(request_id)
        if version is not None:
            self.version = version
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


def mailbox_actor():
    import ray

    # no CPUs of its own: the engine's cores belong to the learner worker that hosts it
    return ray.remote(num_cpus=0, max_restarts=0)(GeneratorMailbox)


class ColocatedEngine:
    """The learner worker's side: an in-process :class:`VLLMGenerator` serving one mailbox."""

    def __init__(self, generator, mailbox) -> None:
        self.generator = generator
        self.mailbox = mailbox
        self._next = None  # the outstanding next_request call, kept across waits
        self.busy_seconds = 0.0  # on the engine; the coordinator's view adds the wait for the learner's turn

    def rollout_requests(self, requests, **sampling):
        return self.generator.rollout_requests(requests, **sampling)

    def continuation_logprobs(self, pairs):
        return self.generator.continuation_logprobs(pairs)

    def serve_until(self, ref) -> None:
        """Run the mailbox's calls on the engine until ``ref`` (the learner's next batch) is ready."""
        import ray

        while True:
            if self._next is None:
                self._next = self.mailbox.next_request.remote()
            ready, _ = ray.wait([ref, self._next], num_returns=1)
            if ref in ready:
                return
            request_id, method, args, kwargs = ray.get(self._next)
            self._next = None
            started = time.monotonic()
            try:
                if method not in SERVED_METHODS:
                    raise AttributeError(f"a colocated generator serves {SERVED_METHODS}, not {method!r}")
                result, error = getattr(self, method)(*args, **kwargs), None
            except Exception as exc:  # goes back to the caller, whose episode fails loudly
                result, error = None, exc
            self.busy_seconds += time.monotonic() - started
            self.mailbox.complete.remote(request_id, result, error, self.generator.version)

    def load_weights(self, named_tensors, version: int) -> None:
        self.generator.load_weights(named_tensors, version)

    def sleep(self) -> None:
        self.generator.sleep()

    def close(self) -> None:
        self.generator.close()
