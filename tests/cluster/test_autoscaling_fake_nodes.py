"""Autoscaling for real on one machine: Ray's fake multi-node provider runs Ray's own autoscaler here, starting
and stopping local "nodes" of the node types cluster/aws.yaml declares (GPU counts scaled down to CPUs, the
custom `generator` / `learner` resources kept). A short jobs/train.py with the paper preset's placement
(generators on generator nodes, the learner on learner nodes) makes each group scale up, and they scale back
down after the idle timeout."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray
import yaml

ROOT = Path(__file__).resolve().parents[2]
IDLE_TIMEOUT_MIN = 0.25


def scaled_node_types() -> dict:
    """cluster/aws.yaml's worker types, each GPU becoming a quarter CPU and each custom unit a quarter unit."""
    config = yaml.safe_load((ROOT / "cluster" / "aws.yaml").read_text())
    out = {}
    for name, spec in config["available_node_types"].items():
        if name == config["head_node_type"]:
            continue
        resources = dict(spec["resources"])
        gpus = resources.pop("GPU", 0)
        resources.pop("CPU", None)
        scaled = {key: max(1, value // 4) for key, value in resources.items()}
        out[name] = {"resources": {"CPU": max(1, gpus // 4), **scaled}, "node_config": {},
                     "min_workers": 0, "max_workers": 1}
    return out


def alive_node_types() -> set[str]:
    kinds = set()
    for node in ray.nodes():
        if node["Alive"]:
            kinds.update(key for key in ("generator", "learner") if key in node["Resources"])
    return kinds


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import AutoscalingCluster

    types = scaled_node_types()
    assert {"generator_gpu", "learner_gpu"} <= set(types)
    fake = AutoscalingCluster(head_resources={"CPU": 1}, worker_node_types=types,
                              idle_timeout_minutes=IDLE_TIMEOUT_MIN)
    fake.start()
    ray.init("auto")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
    fake.shutdown()


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(1)
    return condition()


def test_generator_and_learner_groups_scale_up_for_the_job_and_down_after(cluster, tmp_path):
    assert alive_node_types() == set()  # min_workers 0: only the head at first
    env = {**os.environ, "RAY_ADDRESS": cluster}
    job = subprocess.Popen([sys.executable, "jobs/train.py", "trainer.max_steps=2", "rollout.prompts_per_step=4",
                            "rollout.group_size=4", "trainer.mini_batch_size=16", "eval.every_steps=0",
                            "rollout.generator_resource=generator", "trainer.learner_resource=learner",
                            f"tracking.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
                            f"trainer.output_dir={tmp_path / 'runs'}"],
                           cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen: set[str] = set()
    try:
        while job.poll() is None:
            seen |= alive_node_types()
            time.sleep(1)
        output = job.stdout.read()
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 0, output[-3000:]
    assert seen == {"generator", "learner"}, "the autoscaler did not launch a node of each type"
    # idle nodes go after the idle timeout (plus the autoscaler's update interval)
    assert wait_for(lambda: alive_node_types() == set(), IDLE_TIMEOUT_MIN * 60 + 60), alive_node_types()
