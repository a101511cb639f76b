"""Experiment tracking with MLflow."""
from .run import RunLogger, loggable_params, run_tags, start_run, tracking_uri

__all__ = ["RunLogger", "loggable_params", "run_tags", "start_run", "tracking_uri"]
