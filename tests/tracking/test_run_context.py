"""What a user sees in the MLflow UI, through MLflow's client: the experiment opens on model training, runs
are named after their algorithm and carry MLflow's standard tags, a description, the resolved config, their
datasets and the final policy as a logged (and registrable) model."""
import yaml
from mlflow import MlflowClient

from apmpo_ray.config import load_config
from apmpo_ray.data import load_problems
from apmpo_ray.launch import log_run_inputs, run_page
from apmpo_ray.models.tiny import build_tokenizer, tiny_model_path
from apmpo_ray.tracking import start_run
from apmpo_ray.tracking.context import EXPERIMENT_KIND_TAG, MODEL_TRAINING, log_policy_model


def test_run_is_named_tagged_described_and_linked(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = load_config("tiny_cpu", [f"tracking.tracking_uri={uri}", "algo.name=dapo", "trainer.seed=3",
                                   "eval.synthetic_problems=8"])
    command = ["jobs/train.py", "algo.name=dapo", "trainer.seed=3"]
    run_id = start_run(cfg, str(tiny_model_path()), command=command)
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING and experiment.tags["mlflow.note.content"]
    assert run.info.run_name.startswith("dapo-tiny_cpu-s3-")
    tags = run.data.tags
    assert tags["mlflow.source.name"] == "jobs/train.py" and tags["mlflow.user"]
    assert len(tags["mlflow.source.git.commit"]) == 40
    assert "`algo.name=dapo`" in tags["mlflow.note.content"] and "jobs/train.py" in tags["mlflow.note.content"]
    with open(client.download_artifacts(run_id, "config/resolved.yaml", str(tmp_path))) as f:
        resolved = yaml.safe_load(f)
    assert resolved["algo"]["name"] == "dapo" and resolved["trainer"]["seed"] == 3

    tokenizer = build_tokenizer()
    log_run_inputs(cfg, load_problems(cfg.task, tokenizer), tokenizer, uri, run_id)
    inputs = client.get_run(run_id).inputs.dataset_inputs
    contexts = {(d.dataset.name, d.tags[0].value) for d in inputs}
    assert contexts == {("arithmetic", "training"), ("eval/arithmetic", "evaluation")}
    assert all(d.dataset.digest and d.dataset.source for d in inputs)

    model_id = log_policy_model(uri, run_id, str(tiny_model_path()), step=5, register_as="tiny-policy")
    outputs = client.get_run(run_id).outputs.model_outputs
    assert [o.model_id for o in outputs] == [model_id]
    assert {a.path for a in client.list_logged_model_artifacts(model_id)} >= {"config.json", "model.safetensors"}
    (version,) = client.search_model_versions("name='tiny-policy'")
    assert version.run_id == run_id and version.source == client.get_logged_model(model_id).artifact_location
    assert run_page(uri, run_id).endswith(f"#/experiments/{run.info.experiment_id}/runs/{run_id}"
                                          "?workflowType=machine_learning")


def test_explicit_run_name_wins(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = start_run(load_config(None, [f"tracking.tracking_uri={uri}", "tracking.run_name=mine"]),
                       str(tiny_model_path()))
    assert MlflowClient(uri).get_run(run_id).info.run_name == "mine"
