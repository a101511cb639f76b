"""Checkpoint and resume: an interrupted run continues exactly where it stopped.

Synchronous (max_staleness 0) with seeded sampling, so an uninterrupted run and a run stopped at step 2 and
resumed see the same samples and must end with the same weights; with staleness, which version samples a
batch depends on timing, and the weights could not be compared.
"""
import pytest
import torch
from safetensors.torch import load_file
from mlflow import MlflowClient

from apmpo_ray.config import load_config
from apmpo_ray.launch import train
from apmpo_ray.learner import checkpoint


def _config(tmp_path, name, *overrides):
    return load_config(None, [f"tracking.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
                              f"trainer.output_dir={tmp_path / name}", "rollout.prompts_per_step=4",
                              "rollout.group_size=4", "trainer.mini_batch_size=16", "rollout.max_staleness=0",
                              "trainer.checkpoint_every=2", "trainer.keep_checkpoints=1", *overrides])


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    import ray

    yield
    ray.shutdown()


def test_resume_continues_the_same_run_without_repeating_or_skipping(tmp_path):
    full = train(_config(tmp_path, "full", "trainer.max_steps=4"))

    first = train(_config(tmp_path, "split", "trainer.max_steps=2"))
    first_weights = load_file(f"{first.final_model_dir}/model.safetensors")  # the resumed run writes here too
    saved = checkpoint.resolve_resume("latest", str(tmp_path / "split"))
    state = checkpoint.read_state(saved)
    assert state["step"] == 2 and state["run_id"] == first.run_id
    assert state["data"]["next_prompt_index"] == 8
    assert [c["apmpo/p"] for c in state["controls_history"]] == [r["apmpo/p"] for r in first.history[:2]]

    resumed = train(_config(tmp_path, "split", "trainer.max_steps=4", "trainer.resume=latest"))
    assert resumed.run_id == first.run_id
    assert [r["step"] for r in resumed.history] == [2, 3]
    # the same prompts, in the same order, as the uninterrupted run of the same seed
    for step in (2, 3):
        assert resumed.position["consumed"][step] == full.position["consumed"][step]
    assert first.position["consumed"][0] == full.position["consumed"][0]
    # the learner came back at the checkpoint's version and kept the staleness bound
    assert [r["train/version"] for r in resumed.history] == [3, 4]
    assert all(r["rollout/staleness_max"] == 0 for r in resumed.history)
    # the resumed model is the uninterrupted one: weights, optimizer state and data order all came back
    uninterrupted = load_file(f"{full.final_model_dir}/model.safetensors")
    continued = load_file(f"{resumed.final_model_dir}/model.safetensors")
    assert uninterrupted.keys() == continued.keys()
    assert any(not torch.equal(first_weights[k], continued[k]) for k in continued)  # steps 2-3 changed it
    for name in uninterrupted:
        torch.testing.assert_close(continued[name], uninterrupted[name], rtol=1e-5, atol=1e-6, msg=name)

    client = MlflowClient(resumed.tracking_uri)
    history = client.get_metric_history(first.run_id, "reward/mean")
    assert sorted(m.step for m in history) == [0, 1, 2, 3]  # one point per step: continuous, no repeats
    assert [m.value for m in sorted(history, key=lambda m: m.step)][:2] == [r["reward/mean"] for r in first.history]
    assert client.get_run(first.run_id).info.status == "FINISHED"
    # keep_checkpoints=1: only the newest checkpoint survives
    assert [p.name for p in (tmp_path / "split" / first.run_id / "checkpoints").glob("step_*")] == ["step_000004"]

    # a resume that would change the data stream is refused before anything starts
    with pytest.raises(ValueError, match="prompts_per_step"):
        train(_config(tmp_path, "split", "trainer.max_steps=6", "trainer.resume=latest", "rollout.prompts_per_step=8",
                      "trainer.mini_batch_size=32"))
