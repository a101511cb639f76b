from apmpo_ray.config import load_config
from apmpo_ray.tracking import loggable_params, run_tags
from apmpo_ray.tracking.run import redact, tracking_uri


def test_credentials_in_uris_never_reach_params():
    assert redact("https://alice:s3cret@mlflow.example.com/") == "https://***@mlflow.example.com/"
    assert redact("https://token@host/x") == "https://***@host/x"
    assert redact("sqlite:////tmp/mlflow.db") == "sqlite:////tmp/mlflow.db"
    cfg = load_config(None, ["tracking.tracking_uri=https://bob:hunter2@mlflow.internal"])
    params = loggable_params(cfg)
    assert all("hunter2" not in value for value in params.values())
    assert params["tracking.tracking_uri"] == "https://***@mlflow.internal"
    assert params["algo.name"] == "apmpo" and params["rollout.max_staleness"] == "1"


def test_tags_identify_the_run_for_comparison():
    cfg = load_config(None, ["algo.name=gmpo"])
    tags = run_tags(cfg, "/cache/tiny-qwen2-abc")
    assert tags["apmpo.algorithm"] == "gmpo" and tags["apmpo.task"] == "arithmetic"
    assert tags["apmpo.model"] == "tiny:tiny-qwen2-abc" and len(tags["apmpo.config_hash"]) == 12
    assert tags["apmpo.git_commit"] != ""
    other = run_tags(load_config(None, ["algo.name=gmpo", "trainer.lr=1e-6"]), "/cache/tiny-qwen2-abc")
    assert other["apmpo.config_hash"] != tags["apmpo.config_hash"]


def test_default_store_is_sqlite_under_mlruns(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri("") == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking_uri("") == "http://127.0.0.1:5000"
    assert tracking_uri("sqlite:////x.db") == "sqlite:////x.db"


def test_metrics_logged_in_the_background_are_all_in_the_store_after_flush(tmp_path):
    import mlflow

    from apmpo_ray.tracking.run import RunLogger

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("background")).info.run_id
    logger = RunLogger(uri, run_id, background=True)
    for step in range(40):
        logger.log_metrics({"reward/mean": step / 40, "perf/step_s": 0.2, "skipped": float("nan")}, step=step)
    logger.flush()
    history = logger.metric_history("reward/mean")
    assert sorted(history) == [(step, step / 40) for step in range(40)]
    assert len(logger.metric_history("perf/step_s")) == 40 and not logger.metric_history("skipped")
