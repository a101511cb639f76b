import time

from mlflow import MlflowClient

from apmpo_ray.tracking.system_metrics import start_system_metrics


def test_a_run_shorter_than_one_sampling_interval_still_records_system_metrics(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    run = client.create_run(client.create_experiment("short"))
    monitor = start_system_metrics(run.info.run_id, uri)
    time.sleep(0.2)  # well under the 5 s interval: MLflow's own monitor would publish nothing
    monitor.finish()
    metrics = client.get_run(run.info.run_id).data.metrics
    assert "system/cpu_utilization_percentage" in metrics and "system/system_memory_usage_megabytes" in metrics
    assert len(client.get_metric_history(run.info.run_id, "system/cpu_utilization_percentage")) == 1
