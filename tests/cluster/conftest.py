"""What the GPU preset asks of a cluster, for checking the launch files can hold it."""
from __future__ import annotations

import pytest

from apmpo_ray.config import load_config


@pytest.fixture(scope="session")
def paper_math_demand() -> dict[str, dict[str, float]]:
    """GPUs and CPUs per role for jobs/configs/paper_math.yaml.

    A generator holds max(generator_num_gpus, tensor_parallel_size) GPUs: with tensor parallelism vLLM
    spreads one engine over tensor_parallel_size GPUs whatever the actor itself reserves.
    """
    cfg = load_config("paper_math")
    r, t = cfg.rollout, cfg.trainer
    assert t.use_gpu, "paper_math is the GPU preset the cluster files are sized for"
    return {
        "generator": {"GPU": r.num_generators * max(r.generator_num_gpus, r.tensor_parallel_size),
                      "CPU": r.num_generators * r.generator_num_cpus},
        "learner": {"GPU": t.num_workers, "CPU": t.num_workers * t.cpus_per_worker},
    }
