"""``ToolPool``: one tool served by several Ray actors, each running calls on its own threads.

At most ``concurrency`` calls are in an actor at a time; the rest wait in the pool, so the deadline measures
a call's own run and not its place in a queue. A call that runs past the deadline, or whose actor dies
(hostile code cannot kill the actor, but the machine can), comes back as an error string: the pool keeps
serving. A dead actor is restarted by Ray; the call that was in it is not retried.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import ray

from .registry import get_tool


class _ToolActor:
    def __init__(self, name: str, options: dict):
        self._tool = get_tool(name, **options)

    def call(self, text: str) -> str:
        return self._tool(text)

    def ping(self) -> bool:
        return True


@dataclass
class ToolReply:
    output: str
    seconds: float
    error: bool


class ToolPool:
    def __init__(self, name: str, options: dict | None = None, *, num_actors: int = 1, concurrency: int = 4,
                 deadline_s: float = 15.0):
        if num_actors < 1 or concurrency < 1:
            raise ValueError(f"a tool pool needs num_actors >= 1 and concurrency >= 1, got {num_actors}, {concurrency}")
        self.name, self.deadline_s, self.concurrency = name, deadline_s, concurrency
        actor = ray.remote(_ToolActor).options(num_cpus=0, max_concurrency=concurrency, max_restarts=-1,
                                               max_task_retries=0)
        self._actors = [actor.remote(name, dict(options or {})) for _ in range(num_actors)]
        self._next = 0
        self._slots: list[asyncio.Semaphore] | None = None  # made in the event loop that first calls
        try:
            ray.get([a.ping.remote() for a in self._actors])
        except ray.exceptions.RayActorError as err:
            self.shutdown()
            raise ValueError(f"tool {name!r} failed to start: {err}") from err

    def __getstate__(self):  # semaphores belong to one event loop; a copy in another process makes its own
        return {**self.__dict__, "_slots": None}

    async def call(self, text: str) -> ToolReply:
        if self._slots is None:
            self._slots = [asyncio.Semaphore(self.concurrency) for _ in self._actors]
        k = self._next
        self._next = (self._next + 1) % len(self._actors)
        async with self._slots[k]:
            return await self._call(self._actors[k], text)

    async def _call(self, actor, text: str) -> ToolReply:
        started = time.monotonic()
        ref = actor.call.remote(text)
        try:
            output = await asyncio.wait_for(asyncio.wrap_future(ref.future()), timeout=self.deadline_s)
        except asyncio.TimeoutError:
            ray.cancel(ref, force=False)
            return ToolReply(f"Error: the {self.name} tool gave no answer within {self.deadline_s:g} s",
                             time.monotonic() - started, True)
        except ray.exceptions.RayError as err:
            return ToolReply(f"Error: the {self.name} tool failed ({type(err).__name__})", time.monotonic() - started,
                             True)
        last_line = output.rstrip().rsplit("\n", 1)[-1]
        return ToolReply(output, time.monotonic() - started, last_line.startswith("Error:"))

    def call_blocking(self, text: str) -> ToolReply:
        return asyncio.run(self.call(text))

    def shutdown(self) -> None:
        actors, self._actors = self._actors, []
        for actor in actors:
            ray.kill(actor, no_restart=True)
