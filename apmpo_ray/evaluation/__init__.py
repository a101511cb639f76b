"""Held-out evaluation as in the paper's §5 and Appendix K.6: Pass@1, Pass@k and Self-BLEU per benchmark.

``run_periodic_eval(cfg, generate_fn, tokenizer, step, run_id=...)`` is the training loop's entry point;
``evaluate_benchmarks`` the general runner; ``format_table`` prints a Table-1-shaped grid. Metric modules
(``metrics/pass_at_k``, ``metrics/self_bleu``) are ``evaluate`` modules loaded by local path.
"""
from __future__ import annotations

from .results import BenchmarkResult, EvalResults
from .table import format_table

_LAZY = {  # these import the data, reward and MLflow stacks: load them when used
    "evaluate_benchmarks": "runner", "evaluate_benchmark": "runner", "actor_generate_fn": "runner",
    "load_benchmarks": "benchmarks", "load_metric": "metric_modules", "log_eval_results": "tracking",
    "run_periodic_eval": "periodic", "should_evaluate": "periodic", "evaluate_config": "periodic",
}

__all__ = ["BenchmarkResult", "EvalResults", "format_table", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
