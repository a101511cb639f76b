"""MLflow's system-metrics monitor (CPU, memory, GPU where there is one), with a last sample at the end.

MLflow's monitor publishes only after a full sampling interval, so a run shorter than one interval
ends with no system metrics at all; this one always publishes what it saw before it stops.
"""
from __future__ import annotations

import logging

from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor


class RunSystemMetrics(SystemMetricsMonitor):
    def __init__(self, run_id: str, tracking_uri: str, *, sampling_interval_s: float = 5.0, resume: bool = False):
        super().__init__(run_id, sampling_interval=sampling_interval_s, samples_before_logging=1,
                         resume_logging=resume, tracking_uri=tracking_uri)
        self.published = False

    def publish_metrics(self, metrics):
        super().publish_metrics(metrics)
        self.published = True

    def finish(self) -> None:
        was_running = self._process is not None
        super().finish()
        if was_running and not self.published:
            self.collect_metrics()
            self.publish_metrics(self.aggregate_metrics())
            self.mlflow_logger.flush()


def start_system_metrics(run_id: str, tracking_uri: str, *, resume: bool = False) -> RunSystemMetrics:
    logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)  # its start/stop lines on every run
    monitor = RunSystemMetrics(run_id, tracking_uri, resume=resume)
    monitor.start()
    return monitor
