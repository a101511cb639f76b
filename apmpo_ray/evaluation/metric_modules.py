"""The shipped ``evaluate`` metric modules (``metrics/<name>/<name>.py``), loaded by local path.

``evaluate.load("name")`` would fetch the module from the hub; a directory path loads the copy in this
repository, on machines without network as well.
"""
from __future__ import annotations

import functools
from pathlib import Path

METRICS_DIR = Path(__file__).resolve().parent / "metrics"


def metric_names() -> list[str]:
    return sorted(p.name for p in METRICS_DIR.iterdir() if (p / f"{p.name}.py").is_file())


@functools.lru_cache(maxsize=None)
def load_metric(name: str):
    """The ``evaluate`` module ``name`` (one of ``metric_names()``), loaded once per process."""
    if name not in metric_names():
        raise ValueError(f"no shipped metric {name!r}; shipped: {metric_names()}")
    import evaluate

    if not hasattr(evaluate, "load"):  # e.g. a script named evaluate.py first on sys.path
        raise ImportError(f"'import evaluate' found {getattr(evaluate, '__file__', evaluate)}, not the evaluate library")
    return evaluate.load(str(METRICS_DIR / name))
