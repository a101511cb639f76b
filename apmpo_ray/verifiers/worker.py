"""The child-process side of ``TimeoutScorer``: score one sample at a time, received over a pipe.

Started as a fresh interpreter, ``python -c "...; main()" READ_FD WRITE_FD`` (see ``scorer._Worker``).
Protocol, parent -> child: first ``(sys_path, reward, parent_pid, memory_limit_mb)``, then
``(seq, response, reference)`` per sample, ``None`` to exit. Child -> parent: ``("ready", None)`` once the
reward function is loaded, or ``("load_error", message)``; then per sample ``(seq, "ok", value)``,
``(seq, "error", message)`` or ``(seq, "interrupted", message)``.

At a sample's deadline the parent sends SIGUSR1: the handler raises ``Interrupted`` into the reward on
this process's main thread (where Python runs signal handlers), which stops Python-level work (sympy on a
power tower, a sleep, a SQLite progress callback) and keeps the worker, so the sample costs no restart.
Only a reward stuck in one long C call, or one that swallows BaseException, needs the parent's SIGKILL.
SIGUSR1 leaves SIGALRM to math-verify's own timeouts.

Imports only the standard library and the reward: every replacement worker pays this start-up.
"""
from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection

_PARENT_CHECK_S = 0.5


class Interrupted(BaseException):
    """Raised into a reward at its deadline; a BaseException so its ``except Exception`` cannot swallow it."""


_scoring = False  # the handler only interrupts a reward, never the loop that talks to the parent


def _on_interrupt(signum, frame):
    if _scoring:
        raise Interrupted()


def _exit_when_orphaned(parent_pid: int) -> None:
    # A SIGKILLed parent (ray.kill) cannot reap us, and a hung reward never reads the closed pipe.
    while True:
        time.sleep(_PARENT_CHECK_S)
        if os.getppid() != parent_pid:
            os._exit(1)


def _limit_memory(memory_limit_mb: int | None) -> None:
    if memory_limit_mb is None:
        return
    import resource

    limit = memory_limit_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def serve(reader: Connection, writer: Connection) -> None:
    """Load the reward named in the first message, then score samples until told to stop."""
    sys_path, reward, parent_pid, memory_limit_mb = reader.recv()
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()
    # The parent's sys.path, so that plugins it can import (paths added at run time too) import here.
    sys.path[:] = sys_path + [p for p in sys.path if p not in sys_path]
    try:
        from ..rewards import get_reward_fn

        fn = get_reward_fn(reward)
        _limit_memory(memory_limit_mb)
    except Exception as err:  # noqa: BLE001 - reported to the parent, which raises it
        writer.send(("load_error", f"{type(err).__name__}: {err}"))
        return
    signal.signal(signal.SIGUSR1, _on_interrupt)
    writer.send(("ready", None))
    while True:
        try:
            message = reader.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        seq, response, reference = message
        writer.send((seq, *_score_one(fn, response, reference)))


def _score_one(fn, response, reference) -> tuple[str, object]:
    global _scoring
    try:
        _scoring = True
        try:
            value = float(fn(response, reference))
        finally:
            # If the signal lands here, before the flag drops, the outer handler still catches it.
            _scoring = False
    except Interrupted:
        return "interrupted", "stopped at the deadline"
    except Exception as err:  # noqa: BLE001 - a reward's failure is a 0 for that sample, not a crash
        return "error", f"{type(err).__name__}: {err}"[:2000]
    if not math.isfinite(value):
        return "error", f"reward is not finite: {value}"
    return "ok", value


def main() -> None:
    read_fd, write_fd = int(sys.argv[1]), int(sys.argv[2])
    serve(Connection(read_fd, writable=False), Connection(write_fd, readable=False))
