"""Autoscaling for real on one machine: Ray's fake multi-node provider runs Ray's own autoscaler here, starting
and stopping local "nodes" of the worker types cluster/aws.yaml declares (each GPU count becomes one CPU, the
custom `generator` / `learner` resources are kept, scaled down). A short jobs/train.py with the paper preset's
placement (generators on generator nodes, the learner on learner nodes) makes each group scale up from zero,
and both scale back down after the idle timeout.

The cluster lives in its own Ray temp directory and its own process session, and is stopped by killing only that
session's processes (tests/process_sessions.py).
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from process_sessions import kill_session

ROOT = Path(__file__).resolve().parents[2]
IDLE_TIMEOUT_MIN = 0.2
HEAD_PORT = "6379"  # the fake provider's nodes join the head at this port


def fake_cluster_config() -> dict:
    """cluster/aws.yaml's node types for the fake provider: one CPU per four GPUs or CPUs, custom units / 4."""
    aws = yaml.safe_load((ROOT / "cluster" / "aws.yaml").read_text())
    types = {"ray.head.default": {"resources": {"CPU": 2}, "node_config": {}, "max_workers": 0}}
    for name, spec in aws["available_node_types"].items():
        if name == aws["head_node_type"]:
            continue
        resources = dict(spec["resources"])
        gpus, _ = resources.pop("GPU", 0), resources.pop("CPU", None)
        types[name] = {"resources": {"CPU": max(1, gpus // 4), **{k: max(1, v // 4) for k, v in resources.items()}},
                       "node_config": {}, "min_workers": 0, "max_workers": 1}
    return {"cluster_name": "apmpo-fake", "max_workers": 4, "upscaling_speed": 1.0,
            "idle_timeout_minutes": IDLE_TIMEOUT_MIN, "head_node_type": "ray.head.default",
            "available_node_types": types, "auth": {}, "docker": {},
            "provider": {"type": "fake_multinode", "use_node_id_as_ip": True, "disable_node_updaters": True,
                         "disable_launch_config_check": True},
            **{key: [] for key in ("initialization_commands", "setup_commands", "head_setup_commands",
                                   "worker_setup_commands", "head_start_ray_commands", "worker_start_ray_commands",
                                   "cluster_synced_files", "rsync_exclude", "rsync_filter")},
            "file_mounts": {}, "file_mounts_sync_continuously": False}


@pytest.fixture(scope="module")
def cluster():
    import ray

    assert "generator_gpu" in fake_cluster_config()["available_node_types"]
    temp = tempfile.mkdtemp(prefix="apmpo-fake-")  # short: Ray's socket paths live under it
    config = Path(temp) / "autoscaling.json"
    config.write_text(json.dumps(fake_cluster_config()))
    env = {**os.environ, "RAY_TMPDIR": temp, "RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1",
           # as this process runs (Ray reads the mode at import); a token left in ~/.ray must not switch it on
           "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    sid = None
    try:
        ray_cli = Path(sys.executable).with_name("ray")  # the CLI beside this interpreter, PATH or not
        started = subprocess.Popen([str(ray_cli) if ray_cli.exists() else "ray", "start", "--head",
                                    f"--port={HEAD_PORT}", "--num-cpus=2", "--disable-usage-stats",
                                    f"--autoscaling-config={config}"],
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   start_new_session=True)
        sid = started.pid
        out, _ = started.communicate(timeout=180)
        assert started.returncode == 0, out[-4000:]
        address = f"{ray.util.get_node_ip_address()}:{HEAD_PORT}"
        ray.init(address=address)
        yield address, env
    finally:
        ray.shutdown()
        if sid is not None:
            kill_session(sid)


def alive_roles() -> set[str]:
    import ray

    return {role for node in ray.nodes() if node["Alive"] for role in ("generator", "learner")
            if role in node["Resources"]}


def test_generator_and_learner_groups_scale_up_for_the_job_and_down_after(cluster, tmp_path):
    address, env = cluster
    assert alive_roles() == set()  # min_workers 0: only the head at first
    job = subprocess.Popen([sys.executable, "jobs/train.py", "trainer.max_steps=2", "rollout.prompts_per_step=4",
                            "rollout.group_size=4", "trainer.mini_batch_size=16", "eval.every_steps=0",
                            "rollout.generator_resource=generator", "trainer.learner_resource=learner",
                            f"tracking.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
                            f"trainer.output_dir={tmp_path / 'runs'}"],
                           cwd=ROOT, env={**env, "RAY_ADDRESS": address}, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    seen: set[str] = set()
    try:
        deadline = time.monotonic() + 600
        while job.poll() is None and time.monotonic() < deadline:
            seen |= alive_roles()
            time.sleep(1)
    finally:
        if job.poll() is None:
            job.kill()
    output = job.stdout.read()
    assert job.returncode == 0, output[-3000:]
    assert seen == {"generator", "learner"}, f"the autoscaler launched nodes for {seen or 'nothing'}"
    deadline = time.monotonic() + IDLE_TIMEOUT_MIN * 60 + 90  # the idle timeout plus the autoscaler's rounds
    while alive_roles() and time.monotonic() < deadline:
        time.sleep(2)
    assert alive_roles() == set(), "idle generator/learner nodes were not scaled down"
