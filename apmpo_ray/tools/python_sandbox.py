"""Runs model-written Python in a sandbox: a fresh process per call, with no way out.

Mechanism (documented in docs/tools.md): bubblewrap (Debian's ``bwrap``) builds new user, mount, PID,
network, IPC and UTS namespaces, so the code sees a read-only ``/usr`` and nothing else of the machine
but a private scratch directory, has only a loopback device that is down (no network), and cannot outlive
the call. Before ``bwrap`` starts, the child process drops to an unprivileged user id of its own and sets
rlimits that every process it forks inherits: address space (memory), CPU seconds, file size (which also
bounds the output captured through a file) and process count. The environment is cleared (no tokens or credentials). A
wall-clock timeout kills the sandbox; ``--die-with-parent`` takes every process inside with it.

The interpreter is the system's ``/usr/bin/python3`` run with ``-I`` (isolated): the stdlib, and whatever
the image installed under ``/usr``; nothing of the project's own environment.
"""
from __future__ import annotations

import os
import queue
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# Each running sandbox gets a user id of its own from this range, so that the process-count limit applies to
# that sandbox alone. Not "nobody": inside containers, ids the container does not map show up as 65534, and
# their processes (other containers') count against nobody's limit.
SANDBOX_UID_BASE = 52000
SANDBOX_UIDS = 256
SANDBOX_PYTHON = "/usr/bin/python3"


class SandboxUnavailable(RuntimeError):
    """The machine cannot build the sandbox: the python tool refuses to run code rather than run it bare."""


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 10.0  # wall clock, and CPU seconds
    memory_mb: int = 1024
    output_bytes: int = 4096
    max_processes: int = 32
    max_file_mb: int = 16

    def __post_init__(self):
        if self.timeout_s <= 0 or self.memory_mb < 64 or self.output_bytes < 1 or self.max_processes < 1:
            raise ValueError(f"bad sandbox limits {self}: timeout_s > 0, memory_mb >= 64, output_bytes >= 1 and "
                             "max_processes >= 1 are needed")


def _drop_privileges_and_limit(limits: SandboxLimits, uid: int):
    def apply() -> None:  # runs in the child between fork and exec
        cpu = max(1, int(limits.timeout_s + 0.999))
        memory = limits.memory_mb * 2**20
        for what, value in ((resource.RLIMIT_AS, memory), (resource.RLIMIT_CPU, cpu),
                            (resource.RLIMIT_FSIZE, limits.max_file_mb * 2**20),
                            (resource.RLIMIT_NPROC, limits.max_processes), (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(what, (value, value))
        if os.getuid() == 0:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
    return apply


class PythonSandbox:
    """``PythonSandbox()(code) -> str``: stdout and stderr of ``code``, cut to ``output_bytes``; an error
    string (never an exception) when the code fails, runs too long or hits a limit."""

    name = "python"

    def __init__(self, limits: SandboxLimits | None = None, *, python: str = SANDBOX_PYTHON,
                 bwrap: str | None = None):
        self.limits = limits or SandboxLimits()
        self.python = python
        self.bwrap = bwrap or shutil.which("bwrap")
        if not self.bwrap:
            raise SandboxUnavailable("the python tool needs bubblewrap ('bwrap'; Debian/Ubuntu: apt-get install "
                                     "bubblewrap); it will not run model-written code without a sandbox")
        if not os.access(self.python, os.X_OK):
            raise SandboxUnavailable(f"sandbox interpreter {self.python} is not executable")
        self._uids: queue.Queue[int] = queue.Queue()
        for offset in range(SANDBOX_UIDS):
            self._uids.put(SANDBOX_UID_BASE + offset)

    def _command(self, scratch: str) -> list[str]:
        lib = [arg for d in ("lib", "lib64", "bin", "sbin") if os.path.islink(f"/{d}")
               for arg in ("--symlink", os.readlink(f"/{d}"), f"/{d}")]
        lib += [arg for d in ("lib", "lib64", "bin", "sbin") if os.path.isdir(f"/{d}") and not os.path.islink(f"/{d}")
                for arg in ("--ro-bind", f"/{d}", f"/{d}")]
        return [self.bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                "--ro-bind", "/usr", "/usr", *lib, "--bind", scratch, "/scratch", "--chdir", "/scratch",
                "--tmpfs", "/tmp", "--dev", "/dev", "--proc", "/proc", "--clearenv",
                "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/scratch", "--setenv", "LANG", "C.UTF-8",
                self.python, "-I", "-B", "main.py"]

    def __call__(self, code: str) -> str:
        if not isinstance(code, str):
            return f"Error: code must be text, got {type(code).__name__}"
        with tempfile.TemporaryDirectory(prefix="apmpo-sandbox-") as scratch:
            os.chmod(scratch, 0o777)
            Path(scratch, "main.py").write_text(code)
            output_path = Path(scratch).parent / f"{Path(scratch).name}.out"
            try:
                with open(output_path, "w+b") as output:
                    status = self._run(scratch, output)
                    output.seek(0)
                    text = output.read(self.limits.output_bytes + 1).decode("utf-8", "replace")
            finally:
                output_path.unlink(missing_ok=True)
        if len(text.encode()) > self.limits.output_bytes:
            text = text.encode()[: self.limits.output_bytes].decode("utf-8", "ignore") + "\n[output truncated]"
        return text + status if status else text

    def _run(self, scratch: str, output) -> str:
        """Runs the sandbox, writing its output to ``output``; returns '' or the reason it stopped."""
        uid = self._uids.get()
        try:
            return self._run_as(uid, scratch, output)
        finally:
            self._uids.put(uid)

    def _run_as(self, uid: int, scratch: str, output) -> str:
        started = time.monotonic()
        try:
            # bwrap itself starts with a clean environment too: an inherited LD_PRELOAD (vLLM sets one) or
            # LD_LIBRARY_PATH would reach into the sandbox before --clearenv takes effect
            process = subprocess.Popen(self._command(scratch), stdin=subprocess.DEVNULL, stdout=output,
                                       stderr=subprocess.STDOUT, env={"PATH": "/usr/bin:/bin"},
                                       preexec_fn=_drop_privileges_and_limit(self.limits, uid),
                                       start_new_session=True)
        except OSError as err:
            return f"\nError: the sandbox could not start ({err})"
        try:
            code = process.wait(timeout=self.limits.timeout_s)
        except subprocess.TimeoutExpired:
            _kill(process)
            return f"\nError: timed out after {self.limits.timeout_s:g} s"
        if code == 0:
            return ""
        if code in (-signal.SIGKILL, 128 + signal.SIGKILL, -signal.SIGXCPU, 128 + signal.SIGXCPU):
            return (f"\nError: stopped after {time.monotonic() - started:.1f} s (CPU limit "
                    f"{self.limits.timeout_s:g} s or memory limit {self.limits.memory_mb} MB)")
        if code in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ):
            return f"\nError: output or file larger than {self.limits.max_file_mb} MB"
        return f"\nError: exit status {code}"


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
