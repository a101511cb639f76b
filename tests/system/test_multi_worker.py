"""Two learner workers (gloo) and two generators end to end under ZeRO-3: each worker trains on its own shard
of whole groups, every collective runs on the backend's device, and every rank enters the ZeRO-3 gathers
(weight sync, final export), so nothing deadlocks. (ZeRO-2 on 2 workers: tests/learner/test_gradient_accumulation.)"""
import pytest
import torch
from mlflow import MlflowClient

from apmpo_ray.config import load_config
from apmpo_ray.launch import train


@pytest.fixture(scope="module")
def ray_session():
    import ray

    yield
    ray.shutdown()


def test_two_learner_workers_and_two_generators_train_under_zero3(tmp_path, ray_session):
    cfg = load_config(None, [f"tracking.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
                             f"trainer.output_dir={tmp_path / 'runs'}", "rollout.prompts_per_step=8",
                             "rollout.group_size=4", "trainer.mini_batch_size=16", "trainer.max_steps=3",
                             "trainer.num_workers=2", "rollout.num_generators=2", "trainer.zero_stage=3",
                             "eval.every_steps=0", "rollout.prompts_per_call=4"])
    result = train(cfg)
    assert [row["step"] for row in result.history] == [0, 1, 2]
    assert all(row["train/version"] == row["step"] + 1 for row in result.history)
    client = MlflowClient(result.tracking_uri)
    assert client.get_run(result.run_id).info.status == "FINISHED"
    # the exported policy is the learner's full model (gathered from both ZeRO-3 partitions)
    from transformers import AutoModelForCausalLM

    from apmpo_ray.models.tiny import tiny_model_path

    final = AutoModelForCausalLM.from_pretrained(result.final_model_dir)
    start = AutoModelForCausalLM.from_pretrained(tiny_model_path())
    moved = [not torch.equal(a, b) for a, b in zip(final.parameters(), start.parameters())]
    assert all(p.numel() > 0 for p in final.parameters()) and any(moved)
