"""Evaluation results into an MLflow run: metrics at a training step, the table and the numbers as artifacts."""
from __future__ import annotations

import json
import math

from .results import EvalResults


def log_eval_results(results: EvalResults, *, run_id: str | None = None, tracking_uri: str = "",
                     step: int | None = None, table: str | None = None) -> dict[str, float]:
    """Log ``results.metrics()`` to ``run_id`` (else the active run) at ``step`` (else 0); the table and a JSON
    dump go under ``eval/`` (suffixed with the step when given). Returns the finite metrics logged."""
    import mlflow
    from mlflow.entities import Metric

    from ..tracking.run import tracking_uri as resolve_uri

    if run_id is None:
        active = mlflow.active_run()
        if active is None:
            raise RuntimeError("log_eval_results needs run_id or an active MLflow run")
        run_id, client = active.info.run_id, mlflow.MlflowClient()
    else:
        client = mlflow.MlflowClient(resolve_uri(tracking_uri))
    metrics = {k: float(v) for k, v in results.metrics().items() if math.isfinite(v)}
    now = mlflow.utils.time.get_current_time_millis()
    items = [Metric(key, value, now, step or 0) for key, value in metrics.items()]
    for start in range(0, len(items), 1000):  # MLflow caps a batch at 1000 metrics
        client.log_batch(run_id, metrics=items[start:start + 1000])
    suffix = "" if step is None else f"_step{step:06d}"
    if table is not None:
        client.log_text(run_id, table, f"eval/table{suffix}.md")
    client.log_text(run_id, json.dumps(results.to_dict(), indent=1, default=float), f"eval/results{suffix}.json")
    # one row per benchmark and step in one MLflow table, which the UI's evaluation view filters
    rows = [{**row, "step": step or 0} for row in results.rows()]
    client.log_table(run_id, data={key: [row[key] for row in rows] for key in rows[0]}, artifact_file="eval/benchmarks.json")
    return metrics
