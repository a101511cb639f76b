"""compare_algorithms --resume: a finished run is read back from MLflow as the run itself would report it;
an unfinished run, or one of another length, is trained again."""
import random

from mlflow import MlflowClient

from test_compare_smoke import load_script


def logged_run(client, experiment_id, name, steps, status, rng):
    run = client.create_run(experiment_id, run_name=name)
    client.log_param(run.info.run_id, "trainer.max_steps", str(steps))
    rewards = [rng.random() for _ in range(steps)]
    for step, reward in enumerate(rewards):
        client.log_metric(run.info.run_id, "reward/mean", reward, step=step)
    evals = {f"eval/{bench}/pass_at_{k}": rng.random() for bench in ("chain", "arith") for k in (1, 4)}
    for key, value in evals.items():
        client.log_metric(run.info.run_id, key, value, step=steps - 1)
        client.log_metric(run.info.run_id, key.replace("/chain/", "/avg/").replace("/arith/", "/avg/"), -1.0,
                          step=steps - 1)
    client.set_terminated(run.info.run_id, status)
    return run.info.run_id, rewards, evals


def test_finished_runs_are_read_back_and_others_are_not(tmp_path):
    compare = load_script()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("compare-x")
    rng = random.Random(7)
    run_id, rewards, evals = logged_run(client, experiment, "apmpo-seed1", 8, "FINISHED", rng)
    logged_run(client, experiment, "grpo-seed1", 8, "KILLED", rng)
    arm = compare.Arm("apmpo", [], "tiny_reasoning")

    outcome = compare.finished_run(arm, 1, 8, "compare-x", uri)
    assert outcome.run_id == run_id and [r["step"] for r in outcome.history] == list(range(8))
    assert [r["reward/mean"] for r in outcome.history] == rewards
    quarter = rewards[-2:]
    assert abs(outcome.last_quarter("reward/mean") - sum(quarter) / 2) < 1e-12
    for k in (1, 4):  # the mean over the benchmarks, never eval/avg
        expected = (evals[f"eval/chain/pass_at_{k}"] + evals[f"eval/arith/pass_at_{k}"]) / 2
        assert abs(outcome.final_eval[f"heldout/pass_at_{k}"] - expected) < 1e-12
    assert compare.finished_run(arm, 1, 9, "compare-x", uri) is None  # another length
    assert compare.finished_run(arm, 2, 8, "compare-x", uri) is None  # another seed
    assert compare.finished_run(compare.Arm("grpo", [], "tiny_reasoning"), 1, 8, "compare-x", uri) is None  # killed
