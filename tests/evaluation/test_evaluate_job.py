"""jobs/evaluate.py end to end: the tiny model from an MLflow run, sampled by vLLM, table printed and logged."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from apmpo_ray.tasks import arithmetic

REPO = Path(__file__).resolve().parents[2]
JOB = REPO / "jobs" / "evaluate.py"


def run_job(args, cwd, timeout=600):
    return subprocess.run([sys.executable, str(JOB), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def bench_file(tmp_path):
    path = tmp_path / "arith.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in arithmetic.make_problems(10, seed=5)))
    return path


def test_tiny_model_from_an_mlflow_run_is_evaluated_and_logged(tmp_path, bench_file, tiny_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    train_exp = client.create_experiment("train", artifact_location=(tmp_path / "train-artifacts").as_uri())
    train_run = client.create_run(train_exp).info.run_id
    client.log_artifacts(train_run, str(tiny_path), "final_model")  # what the learner uploads at the end

    out = tmp_path / "results.json"
    proc = run_job(["--model", train_run, "--bench", f"arith={bench_file}", "--k", "4", "--max-new-tokens", "4",
                    "--tracking-uri", uri, "--json", str(out), "--method", "tiny-sft"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    arith = results["benchmarks"]["arith"]
    assert (results["method"], arith["num_problems"], arith["samples_per_problem"]) == ("tiny-sft", 10, 4)
    assert 0 < arith["pass_at_1"] <= arith["pass_at_k"] <= 1  # the warmed-up model answers some sums

    table_lines = [line for line in proc.stdout.splitlines() if line.startswith("|")]
    assert [c.strip() for c in table_lines[0].strip("|").split("|")] == ["Method", "arith", "Avg."]
    row = [c.strip() for c in table_lines[2].strip("|").split("|")]
    expected = f"{100 * arith['pass_at_1']:.1f} / {100 * arith['pass_at_k']:.1f}"
    assert row == ["tiny-sft", expected, expected]

    (experiment,) = [e for e in client.search_experiments() if e.name == "apmpo-ray-tiny-eval"]
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.tags["apmpo.model"] == f"runs:/{train_run}/final_model"
    assert run.data.metrics["eval/arith/pass_at_1"] == pytest.approx(arith["pass_at_1"])
    assert run.data.metrics["eval/arith/pass_at_4"] == pytest.approx(arith["pass_at_k"])
    assert not any(key.startswith("eval/avg/") for key in run.data.metrics)
    assert run.data.metrics["eval/arith/self_bleu"] == pytest.approx(arith["self_bleu"])
    assert run.data.params["eval.k"] == "4" and run.data.params["eval.temperature"] == "0.6"
    table = Path(client.download_artifacts(run.info.run_id, "eval/table.md", str(tmp_path))).read_text()
    assert table.strip() in proc.stdout


def test_a_bad_benchmark_row_fails_before_the_engine_starts(tmp_path, bench_file):
    lines = bench_file.read_text().splitlines()
    lines[3] = json.dumps({"prompt": "", "answer": "1"})
    bench_file.write_text("\n".join(lines) + "\n")
    proc = run_job(["--bench", f"arith={bench_file}", "--no-mlflow"], cwd=tmp_path, timeout=300)
    assert proc.returncode == 2
    assert f"dataset error: {bench_file}, row 4: field 'prompt' (prompt) is empty" in proc.stderr
    assert "EngineCore" not in proc.stderr + proc.stdout


def test_a_bad_option_is_a_config_error(tmp_path):
    proc = run_job(["--k", "0", "--no-mlflow"], cwd=tmp_path, timeout=300)
    assert proc.returncode == 2 and "config error: eval.k must be >= 1" in proc.stderr
