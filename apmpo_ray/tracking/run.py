"""MLflow: one run per training job, its params (the resolved config), tags, metrics and artifacts."""
from __future__ import annotations

import math
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from ..config import Config, config_hash, flatten

# A param whose name looks like a credential is never logged, whatever the config says.
_SECRET = re.compile(r"(token|secret|password|passwd|api[_-]?key|credential|access[_-]?key)", re.I)


def tracking_uri(configured: str = "") -> str:
    """The configured URI, else ``$MLFLOW_TRACKING_URI``, else a SQLite store in ``./mlruns``.

    MLflow 3 refuses plain file stores by default; a SQLite file is its supported local store. The path is
    made absolute so learner workers, whose working directory differs, log to the same place.
    """
    return configured or os.environ.get("MLFLOW_TRACKING_URI", "") or default_store_uri()


def default_store_uri(create: bool = True) -> str:
    """``sqlite:///<cwd>/mlruns/mlflow.db``: where training writes and readers look when told nothing."""
    root = Path("mlruns").resolve()
    if create:
        root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}"


def artifact_root(uri: str) -> str | None:
    """Artifacts of a local SQLite store live beside it; remote servers choose their own."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).parent / "artifacts").as_uri()
    return None


def redact(value: str) -> str:
    """``scheme://user:password@host`` -> ``scheme://***@host``: credentials never reach a param."""
    return re.sub(r"(?<=://)[^/@\s]+@", "***@", value)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).resolve().parent).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run_tags(cfg: Config, model_path: str) -> dict[str, str]:
    return {"apmpo.algorithm": cfg.algo.name, "apmpo.model": cfg.model.path or f"tiny:{Path(model_path).name}",
            "apmpo.task": cfg.task.reward, "apmpo.dataset": cfg.task.dataset, "apmpo.git_commit": git_commit(),
            "apmpo.config_hash": config_hash(cfg)}


def loggable_params(cfg: Config) -> dict[str, str]:
    return {k: redact(str(v))[:6000] for k, v in flatten(cfg).items() if not _SECRET.search(k)}


def start_run(cfg: Config, model_path: str, *, command: list[str] | None = None) -> str:
    """Create the run and return its id; the learner logs to it by id.

    The run gets a readable name (``<algorithm>-<preset>-s<seed>-<id>`` unless ``tracking.run_name``), the
    project's tags and MLflow's standard context tags (user, source, git commit), a description with the
    command line, the params and the resolved config as ``config/resolved.yaml``; its experiment is marked as
    a model-training one, so the UI opens on the runs.
    """
    from mlflow import MlflowClient

    from .context import context_tags, default_run_name, ensure_experiment, log_resolved_config

    uri = tracking_uri(cfg.tracking.tracking_uri)
    client = MlflowClient(uri)
    experiment_id = ensure_experiment(client, cfg.tracking.experiment, artifact_root(uri))
    commit = git_commit()
    tags = {**run_tags(cfg, model_path), **context_tags(cfg, command, commit)}
    run = client.create_run(experiment_id, run_name=cfg.tracking.run_name or default_run_name(cfg), tags=tags)
    RunLogger(uri, run.info.run_id).log_params(loggable_params(cfg))
    log_resolved_config(client, run.info.run_id, cfg)
    return run.info.run_id


class RunLogger:
    """Logs to an existing run by id, from any process (the learner's rank 0, the driver).

    ``background``: metrics go through MLflow's asynchronous logging queue, so a training step does not wait
    for the store (~10 ms a step on SQLite); :meth:`flush` waits for them and raises what failed.
    """

    def __init__(self, uri: str, run_id: str, *, background: bool = False):
        from mlflow import MlflowClient

        self.uri, self.run_id = uri, run_id
        self.client = MlflowClient(uri)
        self.background = background
        self._pending: list = []  # MLflow RunOperations of metrics still being written

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)) for k, v in params.items()]
        for start in range(0, len(items), 100):  # MLflow caps a batch at 100 params
            self.client.log_batch(self.run_id, params=items[start:start + 100])

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None and math.isfinite(v)]
        for start in range(0, len(items), 1000):
            written = self.client.log_batch(self.run_id, metrics=items[start:start + 1000],
                                            synchronous=not self.background)
            if self.background:
                self._pending.append(written)

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        for operations in pending:
            operations.wait()

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        self.client.log_artifacts(self.run_id, local_dir, artifact_path)

    def set_tag(self, key: str, value: str) -> None:
        self.client.set_tag(self.run_id, key, value)

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status)

    def metric_history(self, key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in self.client.get_metric_history(self.run_id, key)]
