"""benchmarks/compare_algorithms.py --smoke: two algorithms train the reasoning preset, are evaluated held out,
tabulated, plotted, and land in one MLflow experiment, with the comparison apart from the training runs."""
import importlib.util
import sys
from pathlib import Path

from mlflow import MlflowClient

ROOT = Path(__file__).resolve().parents[2]


def load_script():
    spec = importlib.util.spec_from_file_location("compare_algorithms", ROOT / "benchmarks" / "compare_algorithms.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_smoke_comparison_writes_table_plots_and_one_experiment(tmp_path):
    from dataclasses import replace

    from apmpo_ray.models.tiny import RECIPES, tiny_model_path

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    quick = tiny_model_path(replace(RECIPES["tiny_reasoning"], warmup_steps=300))  # the guided test's model too
    load_script().main(["--smoke", "--out", str(tmp_path / "out"), "--tracking-uri", uri, "--experiment", "smoke",
                        "--override", f"model.path={quick}"])
    table = (tmp_path / "out" / "table.md").read_text()
    assert "| apmpo | 1 |" in table and "| grpo | 1 |" in table and "Pass@4" in table
    assert "apmpo minus each baseline" in table
    for name in ("curves.png", "pass_at_k.png"):
        assert (tmp_path / "out" / name).stat().st_size > 10_000
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("smoke").experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["apmpo-seed1", "grpo-seed1"]
    assert all(r.data.metrics.get("eval/chain/pass_at_4") is not None for r in runs)
    comparisons = client.search_runs([client.get_experiment_by_name("smoke-comparisons").experiment_id])
    (comparison,) = comparisons
    assert {a.path for a in client.list_artifacts(comparison.info.run_id)} >= {"curves.png", "pass_at_k.png",
                                                                               "table.md"}
