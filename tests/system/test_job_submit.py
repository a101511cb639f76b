"""`ray job submit` against a `ray start --head` cluster runs jobs/train.py to completion, token auth on.

This is the path docs/cluster.md documents: a head started by the Ray CLI, the Jobs API on the head's loopback,
the code shipped with `--working-dir`, the driver joining the cluster through the RAY_ADDRESS the job inherits.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import pytest
from mlflow import MlflowClient
from process_sessions import kill_session

REPO = Path(__file__).resolve().parents[2]
# The Ray CLI of the interpreter running the tests, not whatever `ray` the PATH finds first.
RAY = [sys.executable, "-m", "ray.scripts.scripts"]
STEPS = 2
# Generator start and DeepSpeed init alone take 60-90 s on 2 shared cores; other tests may share them too.
JOB_TIMEOUT_S = 420


def _free_ports(n: int) -> list[int]:
    # Held open together so the n ports are distinct; another process may still grab one before Ray binds it,
    # which would fail `ray start` loudly rather than silently join someone else's cluster.
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def _http(url: str, token: str | None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


class Head:
    def __init__(self, temp_dir: Path, dashboard_port: int, env: dict[str, str], token: str):
        self.temp_dir = temp_dir
        self.url = f"http://127.0.0.1:{dashboard_port}"
        self.env = env
        self.token = token


def _start_head(env: dict[str, str], temp_dir: Path) -> tuple[int, int, str, int]:
    """`ray start --head` in a session of its own; returns (session id, exit code, output, dashboard port)."""
    (gcs, dashboard, client_server, node_manager, object_manager, metrics, agent_http, agent_grpc,
     runtime_env_agent) = _free_ports(9)
    # Every port is explicit: Ray's defaults (6379, 8265, 10001, 52365, ...) may belong to another cluster.
    command = [*RAY, "start", "--head", f"--port={gcs}", f"--dashboard-port={dashboard}",
               "--dashboard-host=127.0.0.1", "--include-dashboard=true", f"--ray-client-server-port={client_server}",
               f"--node-manager-port={node_manager}", f"--object-manager-port={object_manager}",
               f"--metrics-export-port={metrics}", f"--dashboard-agent-listen-port={agent_http}",
               f"--dashboard-agent-grpc-port={agent_grpc}", f"--runtime-env-agent-port={runtime_env_agent}",
               "--num-cpus=3", f"--temp-dir={temp_dir}", "--disable-usage-stats"]
    starter = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        out, _ = starter.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        starter.kill()
        out, _ = starter.communicate()
    return starter.pid, starter.returncode, out, dashboard


@pytest.fixture
def ray_head():
    # A fresh token for this cluster only, passed by environment: ~/.ray/auth_token belongs to the user and to
    # the local clusters other tests start, and must be neither read nor rewritten here.
    token = secrets.token_hex(32)
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token, RAY_USAGE_STATS_ENABLED="0")
    env.pop("RAY_ADDRESS", None)  # `ray start --head` must start a cluster, not join one named by the caller
    # The entrypoint says `python`, as in docs/cluster.md; on a node that is the Python Ray is installed in.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    # Ray's unix sockets live under the temp dir and their paths are limited to ~107 bytes: pytest's
    # tmp_path is too deep, so the session goes under a short private directory in /tmp.
    temp_dir = Path(tempfile.mkdtemp(prefix="rjs-", dir="/tmp"))
    sessions = []
    try:
        # Ray gives the raylet a fixed 30 s to register with the GCS; on two shared cores under a full test run
        # that can run out. One more try, on fresh ports, tells that apart from a head that cannot start.
        for _ in range(2):
            sid, returncode, out, dashboard = _start_head(env, temp_dir)
            sessions.append(sid)
            if returncode == 0 or "timed out during startup" not in out:
                break
            kill_session(sid)
        assert returncode == 0, f"ray start failed:\n{out}"
        yield Head(temp_dir, dashboard, env, token)
    finally:
        for sid in sessions:
            kill_session(sid)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _gitignored_paths_present() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "--others", "--ignored", "--exclude-standard", "--directory"],
                            cwd=REPO, capture_output=True, text=True, check=True)
    return [line.rstrip("/") for line in listed.stdout.splitlines() if line.strip()]


@pytest.mark.timeout(JOB_TIMEOUT_S + 240)
def test_ray_job_submit_runs_train_to_completion(ray_head, tmp_path):
    head = ray_head

    # Authentication is on: the Jobs API turns away a request without the token, and one with a wrong token.
    status, _ = _http(f"{head.url}/api/jobs/", token=None)
    assert status == 401
    status, _ = _http(f"{head.url}/api/jobs/", token=secrets.token_hex(32))
    assert status == 403

    store = tmp_path / "mlflow.db"
    submission_id = f"rjs-{secrets.token_hex(4)}"
    started = time.monotonic()
    submit = subprocess.run(
        [*RAY, "job", "submit", "--address", head.url, "--submission-id", submission_id,
         "--working-dir", str(REPO), "--",
         "python", "jobs/train.py", f"trainer.max_steps={STEPS}", "rollout.prompts_per_step=4",
         "rollout.group_size=4", "trainer.mini_batch_size=16", f"tracking.tracking_uri=sqlite:///{store}",
         f"trainer.output_dir={tmp_path / 'runs'}", "eval.every_steps=2", "eval.k=2", "eval.synthetic_problems=8"],
        cwd=REPO, env=head.env, capture_output=True, text=True, timeout=JOB_TIMEOUT_S)
    elapsed = time.monotonic() - started
    output = submit.stdout + submit.stderr
    assert submit.returncode == 0, f"ray job submit exited {submit.returncode} after {elapsed:.0f} s:\n{output[-6000:]}"

    status, body = _http(f"{head.url}/api/jobs/{submission_id}", head.token)
    assert status == 200, body
    assert json.loads(body)["status"] == "SUCCEEDED", body
    status, body = _http(f"{head.url}/api/jobs/{submission_id}/logs", head.token)
    assert status == 200, body
    logs = json.loads(body)["logs"]
    assert f"apmpo finished {STEPS} steps" in logs, logs[-4000:]

    # The summary names the run; the store the job was told to use holds its reward curve.
    run_id = re.search(r"MLflow run\s+([0-9a-f]{32})", logs).group(1)
    client = MlflowClient(f"sqlite:///{store}")
    assert client.get_run(run_id).info.status == "FINISHED"
    rewards = client.get_metric_history(run_id, "reward/mean")
    assert sorted(m.step for m in rewards) == list(range(STEPS))
    # held-out evaluation ran inside the learner worker on the cluster (the job's own imports, e.g. `evaluate`)
    assert [m.step for m in client.get_metric_history(run_id, "eval/arithmetic/pass_at_1")] == [STEPS - 1]

    # What --working-dir shipped: the code, without .git or what .gitignore excludes (caches, local runs, stores).
    uploaded = re.search(r"Uploading package gcs://(_ray_pkg_[0-9a-f]+)\.zip", output)
    assert uploaded, output[-4000:]
    package = head.temp_dir / "session_latest" / "runtime_resources" / "working_dir_files" / uploaded.group(1)
    assert (package / "jobs" / "train.py").is_file()
    assert not (package / ".git").exists()
    shipped = sum(f.stat().st_size for f in package.rglob("*") if f.is_file())
    assert shipped < 10 * 2**20, f"--working-dir shipped {shipped / 2**20:.1f} MiB"
    if (REPO / ".git").exists():
        for path in _gitignored_paths_present():
            assert not (package / path).exists(), f"{path} is in .gitignore but was uploaded"
