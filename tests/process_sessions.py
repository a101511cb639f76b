"""Stopping exactly the Ray processes a test started: `ray stop` would stop every Ray process on the machine.

A test runs `ray start` in a session of its own (``start_new_session=True``); every daemon it leaves behind
(GCS, raylet, dashboard and its agents, the Ray client server, the autoscaler and the nodes it launches) keeps
that session id, which is how teardown finds them after `ray start` itself has exited. Matching on the temp dir
in a command line instead misses the agents, whose process titles Ray rewrites.
"""
from __future__ import annotations

import os
import signal

import psutil


def processes_of_session(sid: int) -> list[psutil.Process]:
    """Every process in session ``sid`` plus all their descendants.

    The job supervisor starts the driver in a session of its own, so session membership alone misses it;
    descendants are collected before anything is signalled, while the parent links still exist.
    """
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == sid:
                members.append(proc)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    found = {p.pid: p for p in members}
    for proc in members:
        try:
            found.update({c.pid: c for c in proc.children(recursive=True)})
        except psutil.Error:
            continue
    return list(found.values())


def kill_session(sid: int, grace_s: float = 10.0) -> None:
    procs = processes_of_session(sid)
    for proc in procs:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    # Raylet may have forked a worker while we were signalling; sweep until the session is empty.
    for _ in range(5):
        alive = {p.pid: p for p in alive}
        alive.update({p.pid: p for p in processes_of_session(sid)})
        if not alive:
            return
        for proc in alive.values():
            try:
                proc.kill()
            except psutil.Error:
                pass
        _, alive = psutil.wait_procs(list(alive.values()), timeout=5)
