"""Hostile model-written code in the python tool: each probe is stopped and leaves no trace on the machine."""
import os
import socket
import time
from pathlib import Path

import pytest

from apmpo_ray.tools import PythonSandbox, SandboxLimits, get_tool


@pytest.fixture(scope="module")
def sandbox():
    return PythonSandbox(SandboxLimits(timeout_s=3, memory_mb=256, output_bytes=512))


def test_ordinary_code_runs_and_prints(sandbox):
    assert sandbox("print(37 * 48)") == "1776\n"
    assert get_tool("python")("import math\nprint(math.factorial(10))") == "3628800\n"


def test_infinite_loop_is_stopped_at_the_timeout(sandbox):
    started = time.monotonic()
    out = sandbox("while True:\n    pass")
    assert time.monotonic() - started < 6
    assert "Error:" in out and ("timed out" in out or "CPU limit" in out)


def test_memory_bomb_fails_inside_the_limit(sandbox):
    out = sandbox("x = bytearray(2 * 1024**3)\nprint('allocated')")
    assert "allocated" not in out and "MemoryError" in out


def test_no_file_is_written_outside_the_scratch_directory(sandbox, tmp_path):
    target = tmp_path / "escaped.txt"
    os.chmod(tmp_path, 0o777)
    for path in (target, Path("/usr/escaped.txt"), Path("/tmp/escaped-apmpo.txt")):
        sandbox(f"open({str(path)!r}, 'w').write('x')")
        assert not path.exists(), path
    # the scratch directory itself is writable, and private to the call
    assert sandbox("open('notes.txt', 'w').write('hi'); print(open('notes.txt').read())") == "hi\n"
    assert "No such file" in sandbox("print(open('notes.txt').read())")


def test_no_network_not_even_loopback(sandbox):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()  # the host can connect
        out = sandbox(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\nprint('connected')")
        assert "connected" not in out and "Error" in out
        server.settimeout(0.5)
        server.accept()  # the host's own connection
        with pytest.raises(socket.timeout):
            server.accept()  # and nothing from the sandbox
    finally:
        server.close()


def test_environment_secrets_are_not_inherited(sandbox, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value_123")
    monkeypatch.setenv("LD_PRELOAD", "/root/not-there.so")  # vLLM sets one in-process: it must not reach the sandbox
    out = sandbox("import os\nprint(sorted(os.environ))\nprint(os.environ.get('HF_TOKEN'))")
    assert "hf_secret_value_123" not in out and "HF_TOKEN" not in out and "LD_PRELOAD" not in out
    assert out.startswith("['HOME', 'LANG', 'PATH', 'PWD']")
    assert "hf_secret_value_123" not in sandbox("print(open('/proc/1/environ').read())")
    # and the machine's files outside /usr are not there to read
    assert "No such file" in sandbox("print(open('/root/.bashrc').read())")


def test_huge_output_is_cut(sandbox):
    out = sandbox("print('y' * 10_000_000)")
    assert out.startswith("yyyy") and out.endswith("[output truncated]") and len(out) < 600


def test_subprocesses_are_held_to_the_same_limits(sandbox, tmp_path):
    started = time.monotonic()
    out = sandbox("import subprocess\nsubprocess.run(['/usr/bin/python3', '-c', 'while True: pass'])\nprint('done')")
    assert "done" not in out and "Error" in out and time.monotonic() - started < 6
    escaped = tmp_path / "from-child.txt"
    os.chmod(tmp_path, 0o777)
    sandbox(f"import subprocess\nsubprocess.run(['/usr/bin/python3', '-c', \"open({str(escaped)!r}, 'w')\"])")
    assert not escaped.exists()
    out = sandbox("import os\nwhile True:\n    os.fork()")  # a fork bomb meets the process limit
    assert "BlockingIOError" in out or "Error" in out
    assert "ok" in sandbox("print('ok')")  # and the next call runs normally


def test_bad_limits_are_rejected():
    with pytest.raises(ValueError, match="sandbox limits"):
        SandboxLimits(timeout_s=0)


def test_concurrent_calls_do_not_share_a_process_budget(sandbox):
    from concurrent.futures import ThreadPoolExecutor

    codes = ["import os\nwhile True:\n    os.fork()" if i % 8 == 0 else f"print({i} * 3)" for i in range(48)]
    with ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(sandbox, codes))
    assert all(out == f"{i * 3}\n" for i, out in enumerate(outs) if i % 8)
