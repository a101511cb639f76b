"""What makes a run findable in the MLflow UI: the experiment's kind, a readable run name, MLflow's standard
context tags, a description, the resolved config, and the datasets and model linked to the run."""
from __future__ import annotations

import getpass
import hashlib
import sys
import uuid
import warnings
from pathlib import Path
from typing import Sequence

import yaml

from ..config import Config, config_to_dict

# The tag MLflow 3's UI reads to open an experiment on its model-training view (not the GenAI one).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
EXPERIMENT_DESCRIPTION = ("apmpo-ray training runs, named `algorithm-preset-sSEED-id`. Compare them by the "
                          "`apmpo.algorithm` and `apmpo.task` tags, the `reward/` and `eval/` metrics, and the "
                          "Datasets column.")
# The query parameter that opens MLflow 3's "Model training" view of an experiment (its runs, not traces).
MODEL_TRAINING_VIEW = "workflowType=machine_learning"


def default_run_name(cfg: Config) -> str:
    preset = cfg.tracking.preset or "custom"
    return f"{cfg.algo.name}-{preset}-s{cfg.trainer.seed}-{uuid.uuid4().hex[:6]}"


def context_tags(cfg: Config, command: Sequence[str] | None, git_commit: str) -> dict[str, str]:
    """The tags ``mlflow.start_run`` would set (user, source, git commit) and a description of the run."""
    argv = list(command) if command is not None else list(sys.argv)
    source = argv[0] if argv else "apmpo_ray"
    tags = {"mlflow.user": getpass.getuser(), "mlflow.source.name": source, "mlflow.source.type": "LOCAL",
            "mlflow.note.content": describe(cfg, argv)}
    if git_commit and git_commit != "unknown":
        tags["mlflow.source.git.commit"] = git_commit
    return tags


def describe(cfg: Config, argv: Sequence[str]) -> str:
    overrides = [a for a in argv[1:] if "=" in a and not a.startswith("preset=")]
    lines = [f"**{cfg.algo.name}** on `{cfg.task.dataset}` (reward `{cfg.task.reward}`), preset "
             f"`{cfg.tracking.preset or 'custom'}`, seed {cfg.trainer.seed}.", "",
             f"Command: `{' '.join(['python', *argv]) if argv else 'apmpo_ray.launch.train'}`"]
    if overrides:
        lines += ["", "Overrides: " + ", ".join(f"`{o}`" for o in overrides)]
    lines += ["", "The resolved configuration is the artifact `config/resolved.yaml`."]
    return "\n".join(lines)


def ensure_experiment(client, name: str, artifact_location: str | None) -> str:
    """The experiment's id, created if needed, marked as a model-training experiment with a description."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return client.create_experiment(name, artifact_location=artifact_location,
                                        tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING,
                                              "mlflow.note.content": EXPERIMENT_DESCRIPTION})
    if experiment.tags.get(EXPERIMENT_KIND_TAG) != MODEL_TRAINING:
        client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)
    if "mlflow.note.content" not in experiment.tags:
        client.set_experiment_tag(experiment.experiment_id, "mlflow.note.content", EXPERIMENT_DESCRIPTION)
    return experiment.experiment_id


def log_resolved_config(client, run_id: str, cfg: Config) -> None:
    client.log_text(run_id, yaml.safe_dump(config_to_dict(cfg), sort_keys=False), "config/resolved.yaml")


def problems_dataset(problems: Sequence[dict], *, name: str, source: str):
    """An ``mlflow.data`` dataset of problems (prompt, answer): name, digest and source in the UI."""
    import mlflow.data
    import pandas as pd
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.dataset_source_registry import resolve_dataset_source

    frame = pd.DataFrame({"prompt": [str(p.get("question", p["prompt"])) for p in problems],
                          "answer": [str(p.get("answer")) for p in problems]})
    digest = hashlib.sha256("\n".join(frame["prompt"] + "\t" + frame["answer"]).encode()).hexdigest()[:8]
    if Path(source).exists():
        with warnings.catch_warnings():  # a local path matches MLflow's "" and "file" sources, both the same class
            warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
            dataset_source = resolve_dataset_source(str(Path(source).resolve()))
    else:  # a synthetic task or a hub name: recorded as a code source
        dataset_source = CodeDatasetSource({"source": source})
    return mlflow.data.from_pandas(frame, source=dataset_source, name=name, targets="answer", digest=digest)


def log_datasets(client, run_id: str, datasets: Sequence[tuple[object, str]]) -> None:
    """``(dataset, context)`` pairs as the run's inputs (context: training or evaluation)."""
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    client.log_inputs(run_id, datasets=[DatasetInput(ds._to_mlflow_entity(), tags=[InputTag(MLFLOW_DATASET_CONTEXT,
                                                                                             context)])
                                        for ds, context in datasets])


def log_policy_model(uri: str, run_id: str, model_dir: str, *, step: int, register_as: str = "") -> str:
    """The final policy as an MLflow 3 logged model linked to the run: the Hugging Face directory itself (what
    vLLM and transformers load), registered under ``register_as`` when given. Returns the model id."""
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus

    client = MlflowClient(uri)
    run = client.get_run(run_id)
    model = client.create_logged_model(run.info.experiment_id, name="policy", source_run_id=run_id,
                                       model_type="transformers-directory",
                                       tags={"apmpo.algorithm": run.data.tags.get("apmpo.algorithm", "")})
    client.log_model_artifacts(model.model_id, model_dir)
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    client.log_outputs(run_id, models=[LoggedModelOutput(model.model_id, step)])
    if register_as:
        try:
            client.create_registered_model(register_as)
        except Exception:  # it exists: add a version
            pass
        client.create_model_version(register_as, source=model.artifact_location, run_id=run_id,
                                    model_id=model.model_id)
    return model.model_id


def runs_page_url(uri: str, experiment_id: str, run_id: str) -> str:
    """Where the run is in the MLflow UI (``mlflow ui`` on the default port for a local store)."""
    base = uri if uri.startswith(("http://", "https://")) else "http://127.0.0.1:5000"
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}?{MODEL_TRAINING_VIEW}"

