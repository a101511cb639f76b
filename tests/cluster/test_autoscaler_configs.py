"""cluster/{aws,gcp,local}.yaml go through the same config preparation and validation that `ray up` runs."""
from __future__ import annotations

import copy
import re
import shlex
from pathlib import Path

import click
import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"
CLOUD = ["aws.yaml", "gcp.yaml"]
ALL = CLOUD + ["local.yaml"]


def _load(name: str) -> dict:
    return yaml.safe_load((CLUSTER / name).read_text())


def _prepared(config: dict) -> dict:
    """What `ray up` checks before it talks to any cloud: defaults merged, then Ray's schema and rules."""
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def _ray_starts(commands: list[str]) -> list[str]:
    return [c for c in commands if re.search(r"\bray start\b", c)]


@pytest.mark.parametrize("name", ALL)
def test_passes_ray_autoscaler_validation(name):
    prepared = _prepared(_load(name))
    assert prepared["head_node_type"] in prepared["available_node_types"]


@pytest.mark.parametrize("name", CLOUD)
@pytest.mark.parametrize("breakage, error, message", [
    (lambda c: c.update(max_worker=4), jsonschema.ValidationError, "'max_worker' was unexpected"),
    (lambda c: c["available_node_types"]["generator_gpu"]["resources"].update(generator=0.5),
     jsonschema.ValidationError, "not of type 'integer'"),  # Ray resources in node types are integers
    (lambda c: c["available_node_types"]["learner_gpu"].update(min_worker=1), jsonschema.ValidationError,
     "'min_worker' was unexpected"),
    (lambda c: c.update(head_node_type="no_such_type"), ValueError, "head_node_type"),
    (lambda c: c["available_node_types"]["generator_gpu"].update(min_workers=c["max_workers"] + 1), ValueError,
     "sum of `min_workers`"),
    (lambda c: c["available_node_types"]["head"].pop("node_config"), jsonschema.ValidationError,
     "'node_config' is a required property"),
], ids=["typo-key", "fractional-resource", "typo-node-key", "bad-head-type", "min-over-max", "no-node-config"])
def test_a_broken_copy_is_rejected(name, breakage, error, message):
    config = _load(name)
    breakage(config)
    with pytest.raises(error, match=message):
        _prepared(config)


def test_local_without_head_ip_is_rejected():
    config = _load("local.yaml")
    del config["provider"]["head_ip"]
    with pytest.raises(click.ClickException):
        _prepared(config)


@pytest.mark.parametrize("name", ALL)
def test_dashboard_binds_to_localhost_in_every_head_start(name):
    # Checked after defaults are merged: Ray's own default head command binds the dashboard to 0.0.0.0.
    starts = _ray_starts(_prepared(_load(name))["head_start_ray_commands"])
    assert starts
    for command in starts:
        hosts = re.findall(r"--dashboard-host[= ](\S+)", command)
        assert hosts == ["127.0.0.1"], command


@pytest.mark.parametrize("name", ALL)
def test_every_ray_start_runs_with_token_auth(name):
    prepared = _prepared(_load(name))
    starts = _ray_starts(prepared["head_start_ray_commands"] + prepared["worker_start_ray_commands"])
    assert len(starts) >= 2
    for command in starts:
        before_start = command[:command.index("ray start")]
        assert "export RAY_AUTH_MODE=token" in before_start, command
    assert not re.search(r"RAY_AUTH_MODE\s*=\s*['\"]?disabled", (CLUSTER / name).read_text(), re.I)


@pytest.mark.parametrize("name", CLOUD)
def test_cloud_nodes_receive_the_token_file_not_the_token(name):
    config = _load(name)
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"


@pytest.mark.parametrize("name", CLOUD)
def test_gpu_groups_carry_placement_resources_and_hold_paper_math(name, paper_math_demand):
    types = _prepared(_load(name))["available_node_types"]
    head = types[_load(name)["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0
    assert not {"generator", "learner"} & set(head["resources"])
    for role, demand in paper_math_demand.items():
        groups = [t for t in types.values() if role in t["resources"]]
        assert len(groups) == 1, f"one node type should advertise {role!r}"
        group = groups[0]
        res = group["resources"]
        # One role unit per GPU, so an actor asking for {role: n} also fits n GPUs on that node.
        assert res[role] == res["GPU"] > 0
        assert 0 <= group["min_workers"] <= group["max_workers"]
        assert res["GPU"] * group["max_workers"] >= demand["GPU"], (role, demand)
        assert res["CPU"] * group["max_workers"] >= demand["CPU"], (role, demand)
        other = "learner" if role == "generator" else "generator"
        assert other not in res


@pytest.mark.parametrize("name", ALL)
def test_setup_installs_the_synced_checkout_with_the_right_build(name):
    config = _load(name)
    synced = [remote for remote, local in config["file_mounts"].items() if local == "."]
    assert len(synced) == 1
    install_dirs = set()
    for key in ("setup_commands", "head_setup_commands", "worker_setup_commands"):
        for command in config.get(key, []):
            match = re.search(r"cd (\S+) && make install\b(.*)", command)
            if match:
                install_dirs.add(match.group(1))
                if name in CLOUD:
                    expected = "cpu" if key == "head_setup_commands" else "gpu"
                    assert f"VLLM_BUILD={expected}" in match.group(2), (key, command)
    assert install_dirs == set(synced)
    # The setup relies on the Makefile letting the caller name the build.
    assert re.search(r"^VLLM_BUILD \?=", (REPO / "Makefile").read_text(), re.M)


def test_ray_versions_agree_across_launch_files():
    versions = set()
    for name in ALL:
        for command in _load(name)["setup_commands"]:
            versions.update(re.findall(r"ray\[[^\]]*\]==([\d.]+)", command))
    dockerfile = (CLUSTER / "docker" / "Dockerfile").read_text()
    versions.update(re.findall(r"^FROM rayproject/ray:([\d.]+)-", dockerfile, re.M))
    for manifest in ("raycluster.yaml", "rayjob.yaml"):
        doc = yaml.safe_load((CLUSTER / "kuberay" / manifest).read_text())
        spec = doc["spec"].get("rayClusterSpec", doc["spec"])
        versions.add(spec["rayVersion"])
    assert len(versions) == 1, versions


def test_no_credentials_in_cluster_files():
    patterns = [r"AKIA[0-9A-Z]{16}", r"-----BEGIN [A-Z ]*PRIVATE KEY-----", r"aws_secret_access_key",
                r"\bghp_[0-9A-Za-z]{20,}", r"\bhf_[0-9A-Za-z]{20,}", r"password\s*[:=]\s*\S"]
    files = [p for p in CLUSTER.rglob("*") if p.is_file()]
    assert len(files) >= 5
    for path in files:
        text = path.read_text()
        for pattern in patterns:
            assert not re.search(pattern, text, re.I), (path, pattern)


def test_head_start_command_is_a_single_shell_line_ray_can_run():
    # `>-` folding must leave one command whose flags parse; a stray newline would split `ray start`.
    for name in ALL:
        for command in _ray_starts(_load(name)["head_start_ray_commands"]):
            words = shlex.split(command.split("ray start", 1)[1])
            assert "--head" in words and all("\n" not in w for w in words)
