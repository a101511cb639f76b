"""``TimeoutScorer``: reward functions run in worker processes, so a per-sample timeout can be enforced.

A thread cannot be stopped and ``signal.alarm`` works on the main thread only (and never interrupts C
code), so the only deadline that holds for any reward function is one enforced on a separate process.
Each worker scores one sample at a time. At a sample's deadline (``timeout_s``) the sample scores 0 and:

* the worker is interrupted (SIGUSR1, see ``worker``): Python-level work stops and the worker is kept,
  so a runaway sample costs ``timeout_s`` and nothing more;
* if it has not answered ``grace_s`` later (stuck in C, or deaf to the interrupt) it is killed and
  replaced by a warm spare, so scoring does not wait for a new interpreter (about 2 s for ``math``,
  which imports sympy), and a new spare starts in the background.
"""
from __future__ import annotations

import collections
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import weakref
from multiprocessing.connection import Connection, wait
from pathlib import Path

logger = logging.getLogger(__name__)

_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])
_BOOT = "from apmpo_ray.verifiers.worker import main; main()"


class _Worker:
    """One worker process and the parent's ends of its two pipes.

    A fresh interpreter started with ``subprocess`` rather than ``multiprocessing``'s spawn context:
    spawn re-imports the parent's ``__main__`` in the child (in a Ray actor: Ray's worker script; in a
    script without a main guard: the whole script again). The start-up of this one is just the reward's.
    """

    def __init__(self, reward: str, memory_limit_mb: int | None):
        child_read, parent_write = os.pipe()
        parent_read, child_write = os.pipe()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_PARENT, env.get("PYTHONPATH")]))
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, str(child_read), str(child_write)],
                pass_fds=(child_read, child_write), stdin=subprocess.DEVNULL, env=env)
        except BaseException:
            os.close(parent_read)
            os.close(parent_write)
            raise
        finally:
            os.close(child_read)
            os.close(child_write)
        self.reader = Connection(parent_read, writable=False)
        self.writer = Connection(parent_write, readable=False)
        self.writer.send((list(sys.path), reward, os.getpid(), memory_limit_mb))
        self.started_at = time.monotonic()
        self.ready = False
        self.task: list | None = None  # [sample index, seq, deadline, interrupted]

    def interrupt(self) -> None:
        try:
            self.process.send_signal(signal.SIGUSR1)
        except ProcessLookupError:
            pass  # already gone: the pipe reports it

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=5)
        self.reader.close()
        self.writer.close()


def _stop_all(*groups: list[_Worker]) -> None:
    workers = [w for group in groups for w in group]
    for w in workers:
        try:
            if w.task is None:
                w.writer.send(None)  # let an idle worker exit on its own
        except OSError:
            pass
    deadline = time.monotonic() + 1.0
    for w in workers:
        try:
            w.process.wait(timeout=max(0.01, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        w.kill()
    for group in groups:
        group.clear()


class TimeoutScorer:
    """Scores ``(response, reference)`` pairs with reward ``reward`` in ``processes`` worker processes.

    ``timeout_s`` bounds each sample's scoring time (a worker's start-up is not counted): a batch never
    waits longer for one sample. A sample that times out, or whose reward raises, returns a non-finite
    value or kills its worker, scores 0.0 and is counted in ``stats()``; the other samples of the batch
    are unaffected. ``grace_s``: how long an interrupted worker may take to answer before it is killed.
    ``memory_limit_mb`` optionally caps each worker's address space, so a runaway allocation fails with
    MemoryError instead of exhausting the machine. ``spare=False`` saves the standby process (there are
    ``processes + 1`` by default). Thread-safe; calls are serialised.
    """

    def __init__(self, reward: str, *, processes: int = 1, timeout_s: float = 5.0, grace_s: float = 0.5,
                 memory_limit_mb: int | None = None, spare: bool = True, start_timeout_s: float = 60.0):
        if not isinstance(processes, int) or processes < 1:
            raise ValueError(f"processes must be a positive integer, got {processes!r}")
        if not timeout_s > 0 or not grace_s >= 0:
            raise ValueError(f"timeout_s must be positive and grace_s >= 0, got {timeout_s!r}, {grace_s!r}")
        if memory_limit_mb is not None and memory_limit_mb < 64:
            raise ValueError(f"memory_limit_mb must be at least 64 (or None), got {memory_limit_mb!r}")
        self.reward = reward
        self.timeout_s = float(timeout_s)
        self.grace_s = float(grace_s)
        self._worker_args = (reward, memory_limit_mb)
        self._start_timeout_s = start_timeout_s
        self._lock = threading.Lock()
        self._seq = 0
        self._counts = {"scored": 0, "timeouts": 0, "errors": 0, "restarts": 0}
        self._workers: list[_Worker] = []
        self._spares: list[_Worker] = []  # at most one; a list so the finalizer sees replacements
        self._finalizer = weakref.finalize(self, _stop_all, self._workers, self._spares)
        self._closed = False
        try:
            self._workers.extend(_Worker(*self._worker_args) for _ in range(processes))
            if spare:
                self._spares.append(_Worker(*self._worker_args))
            self._wait_ready(self._workers + self._spares)
        except BaseException:
            self.close()
            raise

    # -- worker lifecycle -------------------------------------------------------------------------

    def _on_start_message(self, w: _Worker) -> None:
        try:
            kind, payload = w.reader.recv()
        except (EOFError, OSError) as err:
            raise RuntimeError(f"reward worker for {self.reward!r} died while starting "
                               f"(exit code {w.process.poll()})") from err
        if kind == "load_error":
            raise ValueError(f"cannot load reward {self.reward!r} in a worker process: {payload}")
        w.ready = True

    def _wait_ready(self, workers: list[_Worker]) -> None:
        pending = [w for w in workers if not w.ready]
        while pending:
            remaining = self._start_timeout_s - (time.monotonic() - min(w.started_at for w in pending))
            if remaining <= 0:
                raise RuntimeError(f"reward workers for {self.reward!r} did not start within "
                                   f"{self._start_timeout_s} s")
            for conn in wait([w.reader for w in pending], timeout=remaining):
                self._on_start_message(next(w for w in pending if w.reader is conn))
            pending = [w for w in pending if not w.ready]

    def _replace(self, w: _Worker) -> None:
        """Kill ``w``; the spare (started earlier, probably ready) takes its slot, and a new spare starts."""
        w.kill()
        if self._spares:
            successor = self._spares.pop()
            self._spares.append(_Worker(*self._worker_args))
        else:
            successor = _Worker(*self._worker_args)
        self._workers[self._workers.index(w)] = successor
        self._counts["restarts"] += 1

    # -- scoring ----------------------------------------------------------------------------------

    def score(self, responses: list[str], references: list) -> list[float]:
        """One reward per response, in order; never raises because of what a sample does."""
        if len(responses) != len(references):
            raise ValueError(f"{len(responses)} responses but {len(references)} references")
        with self._lock:
            if self._closed:
                raise RuntimeError("TimeoutScorer is closed")
            return self._score_locked(list(responses), list(references))

    def _score_locked(self, responses: list, references: list) -> list[float]:
        results: list[float | None] = [None] * len(responses)
        pending = collections.deque(range(len(responses)))
        try:
            # Interrupted workers are not waited for: their samples already scored 0. They rejoin when
            # they answer, or are killed grace_s after the deadline (during this or a later call).
            while pending or any(w.task and not w.task[3] for w in self._workers):
                self._dispatch(pending, responses, references)
                self._collect(results)
        except BaseException:
            # A worker still busy with this batch would answer into the next one.
            for w in list(self._workers):
                if w.task:
                    self._replace(w)
            raise
        self._counts["scored"] += len(results)
        return [float(r) for r in results]

    def _dispatch(self, pending: collections.deque, responses: list, references: list) -> None:
        for w in self._workers:
            if not pending:
                return
            if w.ready and w.task is None:
                index = pending.popleft()
                self._seq += 1
                try:
                    w.writer.send((self._seq, responses[index], references[index]))
                except OSError:  # died while idle: try the sample elsewhere
                    pending.appendleft(index)
                    self._replace(w)
                    continue
                except Exception as err:  # pickling: nothing was written, the worker is still idle
                    pending.appendleft(index)
                    raise TypeError(f"sample {index} cannot be sent to a reward worker: {err}") from err
                w.task = [index, self._seq, time.monotonic() + self.timeout_s, False]

    def _collect(self, results: list) -> None:
        busy = [w for w in self._workers if w.task]
        starting = [w for w in self._workers if not w.ready]
        if not busy and not starting:
            return
        deadlines = [w.task[2] for w in busy]
        if starting:
            deadlines.append(min(w.started_at for w in starting) + self._start_timeout_s)
        ready = wait([w.reader for w in busy + starting], timeout=max(0.0, min(deadlines) - time.monotonic()))
        for w in starting:
            if w.reader in ready:
                self._on_start_message(w)
            elif time.monotonic() > w.started_at + self._start_timeout_s:
                raise RuntimeError(f"a replacement reward worker did not start within {self._start_timeout_s} s")
        for w in busy:
            if w.reader in ready:
                self._receive(w, results)
            elif time.monotonic() >= w.task[2]:
                self._expire(w, results)

    def _expire(self, w: _Worker, results: list) -> None:
        index, _, _, interrupted = w.task
        if not interrupted:
            self._counts["timeouts"] += 1
            results[index] = 0.0
            logger.info("reward %r: sample %d timed out after %.2f s", self.reward, index, self.timeout_s)
            w.task[2:] = [time.monotonic() + self.grace_s, True]
            w.interrupt()
        else:
            logger.warning("reward %r: worker ignored the interrupt on sample %d; killed", self.reward, index)
            self._replace(w)

    def _receive(self, w: _Worker, results: list) -> None:
        index, seq, _, interrupted = w.task
        try:
            got_seq, status, value = w.reader.recv()
        except (EOFError, OSError):
            if not interrupted:  # an interrupted task may belong to an earlier batch: leave results alone
                results[index] = 0.0
                self._counts["errors"] += 1
                logger.warning("reward %r: worker died on sample %d (exit code %s)",
                               self.reward, index, w.process.poll())
            self._replace(w)
            return
        if got_seq != seq:
            raise RuntimeError(f"reward worker answered sample {got_seq}, expected {seq}")
        w.task = None
        if interrupted:
            return  # already scored 0 at the deadline, whatever came back since
        if status == "ok":
            results[index] = value
        else:
            results[index] = 0.0
            self._counts["errors"] += 1
            logger.warning("reward %r raised on sample %d: %s", self.reward, index, value)

    # -- introspection and shutdown ---------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Samples scored in total; how many timed out or failed; worker processes replaced."""
        return dict(self._counts)

    def close(self) -> None:
        """Stop the worker processes (after a batch in progress in another thread). Idempotent."""
        with self._lock:
            self._closed = True
            self._finalizer()

    def __enter__(self) -> "TimeoutScorer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
