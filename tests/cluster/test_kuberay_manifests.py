"""cluster/kuberay/*.yaml: the right custom resources, a runnable entrypoint, safe exposure, room for paper_math."""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from apmpo_ray.config import load_config

REPO = Path(__file__).resolve().parents[2]
KUBERAY = REPO / "cluster" / "kuberay"


def _docs(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((KUBERAY / name).read_text()) if d is not None]


def _cluster_spec(doc: dict) -> dict:
    return doc["spec"]["rayClusterSpec"] if doc["kind"] == "RayJob" else doc["spec"]


def _custom_resources(group: dict) -> dict:
    # KubeRay pastes rayStartParams.resources into the shell line `ray start --resources=<value>`: the shell
    # unquotes it, and Ray reads the result as JSON.
    raw = group["rayStartParams"].get("resources", "{}")
    [word] = shlex.split(raw)
    return json.loads(word)


@pytest.mark.parametrize("name, kind", [("raycluster.yaml", "RayCluster"), ("rayjob.yaml", "RayJob")])
def test_one_ray_io_v1_object_of_the_right_kind(name, kind):
    docs = _docs(name)
    assert [(d["apiVersion"], d["kind"]) for d in docs] == [("ray.io/v1", kind)]
    assert docs[0]["metadata"]["name"]


def test_rayjob_entrypoint_runs_train_with_a_config_the_project_accepts():
    job = _docs("rayjob.yaml")[0]
    words = shlex.split(job["spec"]["entrypoint"])
    assert words[:2] == ["python", "jobs/train.py"]
    presets = [w.split("=", 1)[1] for w in words[2:] if w.startswith("preset=")]
    overrides = [w for w in words[2:] if not w.startswith("preset=")]
    assert presets == ["paper_math"]
    # Unknown keys or bad values raise here, as they would when the job starts on the cluster.
    cfg = load_config(presets[0], overrides)
    assert cfg.trainer.use_gpu
    # The driver's working directory is the checkout baked into the image, where jobs/train.py lives.
    runtime_env = yaml.safe_load(job["spec"]["runtimeEnvYAML"])
    dockerfile = (REPO / "cluster" / "docker" / "Dockerfile").read_text()
    assert re.search(rf"^WORKDIR {re.escape(runtime_env['working_dir'])}$", dockerfile, re.M)


def test_rayjob_cluster_matches_the_standing_cluster():
    # The two manifests repeat one cluster spec; drift would make the documented paths behave differently.
    assert _cluster_spec(_docs("rayjob.yaml")[0]) == _cluster_spec(_docs("raycluster.yaml")[0])


@pytest.mark.parametrize("name", ["raycluster.yaml", "rayjob.yaml"])
def test_token_auth_on_and_head_not_exposed(name):
    spec = _cluster_spec(_docs(name)[0])
    assert spec["authOptions"]["mode"] == "token"
    head = spec["headGroupSpec"]
    assert head.get("serviceType", "ClusterIP") == "ClusterIP"
    assert not head.get("enableIngress", False)
    text = (KUBERAY / name).read_text()
    assert not re.search(r"RAY_AUTH_MODE[\s\S]{0,40}disabled", text)


@pytest.mark.parametrize("name", ["raycluster.yaml", "rayjob.yaml"])
def test_secrets_only_by_reference(name):
    docs = _docs(name)
    assert all(d["kind"] != "Secret" for d in docs)
    spec = _cluster_spec(docs[0])
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    for group in groups:
        for container in group["template"]["spec"]["containers"]:
            for env in container.get("env", []):
                if re.search(r"TOKEN|SECRET|PASSWORD|KEY", env["name"]):
                    assert "value" not in env and "valueFrom" in env, env
            for source in container.get("envFrom", []):
                assert set(source) <= {"secretRef", "configMapRef", "prefix"}


def test_worker_groups_carry_placement_resources_and_hold_paper_math(paper_math_demand):
    spec = _cluster_spec(_docs("raycluster.yaml")[0])
    assert spec["headGroupSpec"]["rayStartParams"].get("num-gpus") == "0"
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    assert set(groups) == {"generator", "learner"}
    for role, demand in paper_math_demand.items():
        group = groups[role]
        limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
        gpus, cpus = int(limits["nvidia.com/gpu"]), int(limits["cpu"])
        # One role unit per GPU, and only this group's role.
        assert _custom_resources(group) == {role: gpus}
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        assert gpus * group["maxReplicas"] >= demand["GPU"], (role, demand)
        assert cpus * group["maxReplicas"] >= demand["CPU"], (role, demand)
