"""The whole system on one machine: real vLLM generators, verifier actors, Ray Train + DeepSpeed, MLflow."""
import pytest
from mlflow import MlflowClient

from apmpo_ray.config import load_config
from apmpo_ray.launch import train

REQUIRED_METRICS = ["reward/mean", "reward/std", "apmpo/p", "apmpo/fss", "apmpo/eps_ada", "loss/policy", "loss/kl",
                    "clip/frac_low", "clip/frac_high", "policy/entropy", "response/length_mean",
                    "rollout/staleness_mean", "perf/gen_tokens_per_s", "perf/train_tokens_per_s",
                    "perf/weight_sync_s", "rollout/is_weight_mean", "rollout/is_weight_max",
                    "rollout/is_clipped_frac", "rollout/behaviour_kl"]


def _config(tmp_path, *overrides):
    return load_config(None, [f"tracking.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
                              f"trainer.output_dir={tmp_path / 'runs'}", "rollout.prompts_per_step=8",
                              "rollout.group_size=4", "trainer.mini_batch_size=16", *overrides])


@pytest.fixture(scope="module")
def ray_session():
    import ray

    yield
    ray.shutdown()


def test_training_runs_end_to_end_and_tracks_every_metric(tmp_path, ray_session):
    cfg = _config(tmp_path, "trainer.max_steps=3", "rollout.max_staleness=0", "tracking.run_name=e2e",
                  "eval.every_steps=2", "eval.k=2", "eval.synthetic_problems=16")
    result = train(cfg)

    assert [row["step"] for row in result.history] == [0, 1, 2]
    # max_staleness=0: every consumed group was produced by the weights of the step that consumed it
    assert all(row["rollout/staleness_max"] == 0 for row in result.history)
    assert [row["train/version"] for row in result.history] == [1, 2, 3]
    # the generator received every version, staged alongside sampling (an in-process engine on gloo)
    assert result.weight_sync["generator_updates"] == 3 and result.weight_sync["generator_staged"] == 1.0
    assert result.weight_sync["generator_pause_ms"] > 0
    client = MlflowClient(result.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["weight_sync/generator_updates"] == 3
    assert run.data.params["algo.name"] == "apmpo" and run.data.tags["apmpo.algorithm"] == "apmpo"
    for key in REQUIRED_METRICS:
        history = client.get_metric_history(result.run_id, key)
        assert sorted(m.step for m in history) == [0, 1, 2], key
    p = client.get_metric_history(result.run_id, "apmpo/p")
    assert all(0.44 < m.value <= 1.0 for m in p)
    # on-policy (staleness 0) the correction is off and every importance weight is exactly 1
    assert run.data.params["algo.off_policy_correction"] == "none"
    assert all(m.value == 1.0 for m in client.get_metric_history(result.run_id, "rollout/is_weight_max"))
    # periodic held-out evaluation through a generator, logged beside the step that produced the weights
    evaluation = client.get_metric_history(result.run_id, "eval/arithmetic/pass_at_1")
    assert [m.step for m in evaluation] == [1] and 0.0 <= evaluation[0].value <= 1.0
    artifacts = [a.path for a in client.list_artifacts(result.run_id, "final_model")]
    assert "final_model/config.json" in artifacts
    # what the MLflow UI shows: a named run, its datasets, its model, system metrics, no empty throughput
    assert run.info.run_name == "e2e" and run.data.tags["mlflow.source.name"]
    assert {d.tags[0].value for d in run.inputs.dataset_inputs} == {"training", "evaluation"}
    assert len(run.outputs.model_outputs) == 1
    assert any(key.startswith("system/") for key in run.data.metrics), sorted(run.data.metrics)
    assert all(m.value > 0 for m in client.get_metric_history(result.run_id, "perf/gen_tokens_per_s"))
    assert f"/runs/{result.run_id}?" in result.run_url
    # admission never ran past the bound: version 3 with no slack may start prompts below (3 + 0 + 1) * 8
    assert 3 * 8 <= result.position["next_index"] <= 4 * 8
    assert result.position["retry"] == []


def test_staleness_bound_holds_off_policy_and_agpo_trains_with_the_decoupled_correction(tmp_path, ray_session):
    cfg = _config(tmp_path, "trainer.max_steps=4", "rollout.max_staleness=2", "rollout.prompts_per_call=4",
                  "trainer.weight_sync_every=1", "algo.name=agpo")
    result = train(cfg)
    stale = [row["rollout/staleness_max"] for row in result.history]
    assert all(0 <= s <= 2 for s in stale)
    # with two versions of slack the generators ran ahead at least once
    assert max(stale) >= 1
    client = MlflowClient(result.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.data.params["algo.off_policy_correction"] == "decoupled"
    assert run.data.tags["apmpo.algorithm"] == "agpo"
    # stale samples carry importance weights that differ from 1; APMPO's controls do nothing here: not logged
    weights = [row["rollout/is_weight_mean"] for row, s in zip(result.history, stale) if s >= 1]
    assert weights and all(0 < w <= cfg.algo.is_cap for w in weights) and any(w != 1.0 for w in weights)
    assert not any(key.startswith("apmpo/") for key in run.data.metrics)


def test_colocated_engine_samples_with_the_learners_weights_after_every_update(tmp_path, ray_session):
    from safetensors.torch import load_file

    from apmpo_ray.launch import resolve_model_path

    cfg = _config(tmp_path, "rollout.placement=colocated", "trainer.max_steps=3", "rollout.max_staleness=0",
                  "eval.every_steps=2", "eval.k=2", "eval.synthetic_problems=16")
    result = train(cfg)
    assert [row["train/version"] for row in result.history] == [1, 2, 3]
    # On-policy at temperature 1, the engine's behaviour log-probs are the learner's own up to float error at
    # every step, updates included: the engine in the learner worker samples with the weights it was handed.
    # (Had it kept older weights, the gap would be the size of an update: 0.4-0.8 nats here.)
    gaps = [row["rollout/behaviour_logprob_gap"] for row in result.history]
    assert all(gap < 1e-5 for gap in gaps), gaps
    assert all(row["rollout/staleness_max"] == 0 for row in result.history)
    # ... and those weights moved: the final model is not the initial one
    initial = load_file(f"{resolve_model_path(cfg)}/model.safetensors")
    final = load_file(f"{result.final_model_dir}/model.safetensors")
    assert max(float((final[k] - initial[k]).abs().max()) for k in initial) > 1e-3
    client = MlflowClient(result.tracking_uri)
    assert [m.step for m in client.get_metric_history(result.run_id, "eval/arithmetic/pass_at_1")] == [1]
    assert client.get_run(result.run_id).data.params["rollout.placement"] == "colocated"
