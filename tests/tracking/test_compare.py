"""jobs/compare.py against real MLflow runs in a temporary sqlite store."""
from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from apmpo_ray.tracking.compare import (COMPARISON_TAG, NoRunsError, find_runs, load_curves,
                                        resolve_tracking_uri)

REPO = Path(__file__).resolve().parents[2]
EXPERIMENT = "compare-test"


def _load_cli():
    spec = importlib.util.spec_from_file_location("compare_cli", REPO / "jobs" / "compare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cli = _load_cli()


def _log_run(client, exp_id, name, algorithm, reward_end, with_apmpo):
    run = client.create_run(exp_id, run_name=name, tags={
        "apmpo.algorithm": algorithm, "apmpo.model": "tiny", "apmpo.task": "arithmetic",
        "apmpo.git_commit": "0" * 40, "apmpo.config_hash": "abc123"})
    rid = run.info.run_id
    steps, batch = 20, []
    for step in range(steps):
        frac = step / (steps - 1)
        # Curves differ per run (through reward_end) so every run's line is visible in every subplot.
        values = {"reward/mean": 0.1 + (reward_end - 0.1) * frac, "reward/std": 0.3,
                  "policy/entropy": 2.0 - reward_end * frac, "clip/frac_low": 0.01 * reward_end * frac,
                  "clip/frac_high": 0.02 * reward_end * frac, "response/length_mean": 4.0 + reward_end * math.sin(step),
                  "loss/policy": -0.1 * frac}
        if with_apmpo:
            values.update({"apmpo/p": 1.0 - 0.4 * reward_end * frac, "apmpo/eps_ada": 0.2 + 0.1 * reward_end * frac,
                           "apmpo/fss": frac})
        batch += [Metric(key, value, timestamp=step, step=step) for key, value in values.items()]
    client.log_batch(rid, metrics=batch)
    client.set_terminated(rid)
    return rid


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp_id = client.create_experiment(EXPERIMENT, artifact_location=(root / "artifacts").as_uri())
    ids = {
        "apmpo-a": _log_run(client, exp_id, "apmpo-a", "apmpo", 0.9, True),
        "apmpo-b": _log_run(client, exp_id, "apmpo-b", "apmpo", 0.7, True),
        "grpo-a": _log_run(client, exp_id, "grpo-a", "grpo", 0.6, False),
    }
    # A resumed run re-logs a step: the later value must win.
    client.log_metric(ids["grpo-a"], "reward/mean", 0.65, step=19, timestamp=10_000)
    client.create_experiment("other-experiment", artifact_location=(root / "other").as_uri())
    return {"uri": uri, "root": root, "client": client, "exp_id": exp_id, "ids": ids}


def _colour_pixels(png: Path, hex_colour: str) -> int:
    image = imread(png)[..., :3]
    target = np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    return int((np.abs(image - target).max(axis=-1) < 0.08).sum())


def test_cli_plots_every_run_prints_summary_and_logs_a_comparison_run(store, tmp_path, capsys):
    out = tmp_path / "plots" / "compare.png"
    rc = cli.main(["--tracking-uri", store["uri"], "--experiment", EXPERIMENT, "--out", str(out),
                   "--log-artifacts"])
    printed = capsys.readouterr().out
    assert rc == 0

    image = imread(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert image.shape[0] > 400 and image.shape[1] > 1000  # 7 subplots in a 2 x 4 grid
    # One line per run in matplotlib's first three cycle colours: every run was actually drawn.
    for colour in ("#1f77b4", "#ff7f0e", "#2ca02c"):
        assert _colour_pixels(out, colour) > 200, colour

    lines = {line.split()[0]: line for line in printed.splitlines() if line.split()}
    assert {"apmpo-a", "apmpo-b", "grpo-a"} <= set(lines)
    assert "0.9000" in lines["apmpo-a"] and "grpo" in lines["grpo-a"]
    assert "0.6500" in lines["grpo-a"]  # the re-logged final value, not the first one
    assert " 20 " in lines["apmpo-b"]  # steps logged

    client = store["client"]
    # the comparison lives in an experiment of its own, not among the training runs
    assert not any(COMPARISON_TAG in r.data.tags for r in client.search_runs([store["exp_id"]]))
    own = client.get_experiment_by_name(f"{EXPERIMENT}-comparisons")
    comparisons = [r for r in client.search_runs([own.experiment_id]) if COMPARISON_TAG in r.data.tags]
    assert len(comparisons) == 1
    comparison = comparisons[0]
    assert set(comparison.data.tags["apmpo.compared_runs"].split(",")) == set(store["ids"].values())
    logged = {a.path for a in client.list_artifacts(comparison.info.run_id, "comparison")}
    assert logged == {"comparison/compare.png", "comparison/summary.txt"}
    copy = client.download_artifacts(comparison.info.run_id, "comparison/compare.png", str(tmp_path))
    assert Path(copy).read_bytes() == out.read_bytes()

    # The comparison run is not itself a candidate for the next comparison.
    names = [r.info.run_name for r in find_runs(client, EXPERIMENT)]
    assert sorted(names) == ["apmpo-a", "apmpo-b", "grpo-a"]


def test_filter_by_algorithm_tag_selects_only_matching_runs(store, tmp_path, capsys):
    client = store["client"]
    apmpo = find_runs(client, EXPERIMENT, "tags.apmpo.algorithm = 'apmpo'")
    assert sorted(r.info.run_name for r in apmpo) == ["apmpo-a", "apmpo-b"]

    out = tmp_path / "grpo.png"
    rc = cli.main(["--tracking-uri", store["uri"], "--experiment", EXPERIMENT,
                   "--filter", "tags.apmpo.algorithm = 'grpo'", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0 and out.exists()
    assert "grpo-a" in printed and "apmpo-a" not in printed and "apmpo-b" not in printed


def test_log_to_run_puts_the_plot_on_that_run(store, tmp_path):
    client = store["client"]
    target = store["ids"]["apmpo-b"]
    out = tmp_path / "two.png"
    rc = cli.main(["--tracking-uri", store["uri"], "--runs", store["ids"]["apmpo-b"], store["ids"]["grpo-a"],
                   "--metrics", "reward/mean", "apmpo/p", "--out", str(out), "--log-to-run", target])
    assert rc == 0
    assert {a.path for a in client.list_artifacts(target, "comparison")} >= {"comparison/two.png"}
    summary = client.download_artifacts(target, "comparison/summary.txt", str(tmp_path))
    assert "apmpo-b" in Path(summary).read_text() and "apmpo-a" not in Path(summary).read_text()


def test_runs_keep_their_order_and_missing_metrics_are_absent(store):
    client = store["client"]
    ids = store["ids"]
    runs = find_runs(client, EXPERIMENT, run_ids=[ids["grpo-a"], ids["apmpo-a"]])
    assert [r.info.run_name for r in runs] == ["grpo-a", "apmpo-a"]
    grpo = load_curves(client, runs[0], ["reward/mean", "apmpo/p"])
    assert "apmpo/p" not in grpo.curves
    steps, values = grpo.curves["reward/mean"]
    assert steps == list(range(20)) and values[-1] == pytest.approx(0.65)
    assert grpo.label == "grpo-a (grpo)"


def test_no_match_exits_2_naming_experiment_and_filter(store, tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": store["uri"],
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    bad_filter = "tags.apmpo.algorithm = 'dapo'"
    result = subprocess.run([sys.executable, str(REPO / "jobs" / "compare.py"), "--experiment", EXPERIMENT,
                             "--filter", bad_filter, "--out", str(tmp_path / "none.png")],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert EXPERIMENT in result.stderr and bad_filter in result.stderr
    assert not (tmp_path / "none.png").exists()


def test_unknown_experiment_lists_the_ones_there(store):
    with pytest.raises(NoRunsError, match="other-experiment"):
        find_runs(store["client"], "no-such-experiment")


def test_run_id_outside_the_filter_is_an_error_not_a_shorter_plot(store):
    with pytest.raises(NoRunsError, match=store["ids"]["grpo-a"]):
        find_runs(store["client"], EXPERIMENT, "tags.apmpo.algorithm = 'apmpo'",
                  run_ids=[store["ids"]["apmpo-a"], store["ids"]["grpo-a"]])


def test_missing_store_is_reported_and_not_created(tmp_path, capsys):
    missing = tmp_path / "nowhere.db"
    rc = cli.main(["--tracking-uri", f"sqlite:///{missing}", "--experiment", EXPERIMENT,
                   "--out", str(tmp_path / "x.png")])
    assert rc == 2
    assert str(missing) in capsys.readouterr().err
    assert not missing.exists()


def test_tracking_uri_resolution(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_tracking_uri("sqlite:///runs.db") == f"sqlite:///{tmp_path / 'runs.db'}"
    assert resolve_tracking_uri("mlruns") == (tmp_path / "mlruns").as_uri()
    assert resolve_tracking_uri("http://mlflow.internal:5000") == "http://mlflow.internal:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///from-env.db")
    assert resolve_tracking_uri() == f"sqlite:///{tmp_path / 'from-env.db'}"


def test_default_store_is_the_one_training_writes(tmp_path, monkeypatch):
    from apmpo_ray.tracking.compare import resolve_tracking_uri
    from apmpo_ray.tracking.run import tracking_uri

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri() == tracking_uri("")


def test_benchmark_patterns_pick_the_average_or_the_one_benchmark():
    from apmpo_ray.tracking.compare import resolve_metric

    assert resolve_metric("eval/*/pass_at_1", {"eval/math500/pass_at_1", "eval/avg/pass_at_1"}) == "eval/avg/pass_at_1"
    assert resolve_metric("eval/*/pass_at_1", {"eval/chain/pass_at_1", "reward/mean"}) == "eval/chain/pass_at_1"
    assert resolve_metric("eval/*/pass_at_1", {"reward/mean"}) is None
    assert resolve_metric("reward/mean", {"reward/mean"}) == "reward/mean"
