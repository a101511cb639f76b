"""Compare logged training runs: select them in MLflow, plot their curves side by side, summarise, log the plot.

The CLI around these helpers is ``jobs/compare.py``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence
from urllib.parse import urlparse

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

# "*" stands for a benchmark: eval/*/pass_at_1 is the run's held-out Pass@1 (eval/avg/... when it has several).
DEFAULT_METRICS = ("reward/mean", "eval/*/pass_at_1", "policy/entropy", "apmpo/p", "apmpo/eps_ada",
                   "clip/frac_low", "clip/frac_high", "response/length_mean")
REWARD_METRIC = "reward/mean"
ALGORITHM_TAG = "apmpo.algorithm"
# Marks the runs this module creates, so a later comparison does not select them as training runs.
COMPARISON_TAG = "apmpo.comparison"
ARTIFACT_DIR = "comparison"


class NoRunsError(LookupError):
    """Nothing to compare: the store, experiment, filter or run ids matched no training run."""


def resolve_tracking_uri(explicit: str | None = None) -> str:
    """``explicit``, else ``$MLFLOW_TRACKING_URI``, else the store training writes by default
    (``sqlite:///<cwd>/mlruns/mlflow.db``), with local paths made absolute.

    Absolute paths make messages say which store was read, whatever directory the command ran from.
    """
    import os

    from .run import default_store_uri

    # a reader creates nothing
    uri = explicit or os.environ.get("MLFLOW_TRACKING_URI") or default_store_uri(create=False)
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite" and uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(uri[len("sqlite:///"):]).resolve())
    if parsed.scheme in ("", "file") and not uri.startswith("file:///"):
        return Path(parsed.path if parsed.scheme else uri).resolve().as_uri()
    return uri


def open_store(uri: str) -> MlflowClient:
    """A client for an existing store: refuses a sqlite or file store that is not there."""
    # Constructing a client on a missing sqlite or file store creates an empty one; a read-only command must not.
    parsed = urlparse(uri)
    path = None
    if parsed.scheme == "sqlite" and uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///"):])
    elif parsed.scheme == "file":
        path = Path(parsed.path)
    if path is not None and not path.exists():
        raise NoRunsError(f"no MLflow tracking store at {uri} (set MLFLOW_TRACKING_URI or --tracking-uri)")
    return MlflowClient(tracking_uri=uri)


def _search_all(client: MlflowClient, experiment_ids: list[str], filter_string: str) -> list[Run]:
    runs: list[Run] = []
    token = None
    while True:
        page = client.search_runs(experiment_ids, filter_string=filter_string, max_results=1000,
                                  order_by=["attributes.start_time ASC"], page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def find_runs(client: MlflowClient, experiment: str | None = None, filter_string: str = "",
              run_ids: Sequence[str] = ()) -> list[Run]:
    """Training runs of ``experiment`` (or of the experiments holding ``run_ids``) matching ``filter_string``.

    With ``run_ids``, only those runs, in the order given; an id that the experiment or filter excludes is an error
    rather than a silently shorter plot.
    """
    uri = client.tracking_uri
    if experiment:
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            known = sorted(e.name for e in client.search_experiments())
            raise NoRunsError(f"no experiment {experiment!r} at {uri}; experiments there: {known}")
        experiment_ids = [exp.experiment_id]
    elif run_ids:
        experiment_ids = sorted({get_run(client, rid).info.experiment_id for rid in run_ids})
    else:
        raise NoRunsError("name an experiment (--experiment) or runs (--runs) to compare")

    runs = [r for r in _search_all(client, experiment_ids, filter_string) if COMPARISON_TAG not in r.data.tags]
    where = f"experiment {experiment!r}" if experiment else f"experiments {experiment_ids}"
    where += f" at {uri}" + (f" with filter {filter_string!r}" if filter_string else "")
    if run_ids:
        by_id = {r.info.run_id: r for r in runs}
        missing = [rid for rid in run_ids if rid not in by_id]
        if missing:
            raise NoRunsError(f"runs {missing} are not training runs in {where}")
        runs = [by_id[rid] for rid in run_ids]
    if not runs:
        raise NoRunsError(f"no runs match in {where}")
    return runs


def get_run(client: MlflowClient, run_id: str) -> Run:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as err:
        raise NoRunsError(f"no run {run_id!r} at {client.tracking_uri}") from err


@dataclass
class RunCurves:
    """One run's metric curves: ``curves[metric] = (steps, values)``, one value per step, steps ascending."""

    run_id: str
    experiment_id: str
    name: str
    algorithm: str
    curves: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.algorithm})"


def resolve_metric(name: str, logged: Iterable[str]) -> str | None:
    """``name``, or for a pattern with ``*`` the run's matching metric (``eval/avg/...`` first)."""
    logged = set(logged)
    if "*" not in name:
        return name if name in logged else None
    import fnmatch

    matches = sorted(m for m in logged if fnmatch.fnmatchcase(m, name))
    average = [m for m in matches if "/avg/" in m]
    return (average or matches or [None])[0]


def load_curves(client: MlflowClient, run: Run, metrics: Iterable[str]) -> RunCurves:
    """The history of each of ``metrics`` that the run logged (the reward metric always, for the summary),
    keyed by the name asked for (a pattern stays the key of what it matched)."""
    wanted = dict.fromkeys([*metrics, REWARD_METRIC])
    curves = {}
    for key in wanted:
        metric = resolve_metric(key, run.data.metrics)
        if metric is None:
            continue
        # A step logged twice (e.g. after a resume) keeps its latest value.
        latest: dict[int, tuple[int, float]] = {}
        for m in client.get_metric_history(run.info.run_id, metric):
            if m.step not in latest or m.timestamp >= latest[m.step][0]:
                latest[m.step] = (m.timestamp, m.value)
        steps = sorted(latest)
        curves[key] = (steps, [latest[s][1] for s in steps])
    return RunCurves(run_id=run.info.run_id, experiment_id=run.info.experiment_id, name=run.info.run_name or run.info.run_id[:8],
                     algorithm=run.data.tags.get(ALGORITHM_TAG, "?"), curves=curves)


def plot_comparison(runs: Sequence[RunCurves], metrics: Sequence[str], out: str | Path) -> Path:
    """One subplot per metric against step, one line per run (same colour in every subplot); writes a PNG."""
    out = Path(out)
    ncols = min(len(metrics), 4)
    nrows = math.ceil(len(metrics) / ncols)
    # Agg directly, not pyplot: no global backend state, no display needed on a cluster head or in CI.
    fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows + 0.4 + 0.25 * len(runs)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    colours = [f"C{i % 10}" for i in range(len(runs))]
    for ax, metric in zip(axes, metrics):
        drawn = False
        for run, colour in zip(runs, colours):
            if metric in run.curves:
                steps, values = run.curves[metric]
                ax.plot(steps, values, color=colour, linewidth=1.4, label=run.label)
                drawn = True
        ax.set_title(metric)
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
        if not drawn:
            ax.text(0.5, 0.5, "not logged by these runs", ha="center", va="center", transform=ax.transAxes,
                    color="grey")
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    handles = [axes[0].plot([], [], color=c, linewidth=1.4)[0] for c in colours]
    fig.legend(handles, [r.label for r in runs], loc="outside lower center", ncols=min(len(runs), 3))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out


def summarize(runs: Sequence[RunCurves]) -> list[dict]:
    """Per run: algorithm, steps logged, last step, final and best reward (and where the best was)."""
    rows = []
    for run in runs:
        steps, values = run.curves.get(REWARD_METRIC, ([], []))
        row = {"run": run.name, "run_id": run.run_id, "algorithm": run.algorithm, "steps": len(steps),
               "last_step": steps[-1] if steps else None, "final_reward": values[-1] if values else None,
               "best_reward": None, "best_step": None}
        if values:
            best = max(range(len(values)), key=values.__getitem__)
            row["best_reward"], row["best_step"] = values[best], steps[best]
        rows.append(row)
    return rows


def format_table(rows: Sequence[dict]) -> str:
    headers = ("run", "algorithm", "steps", "last step", f"final {REWARD_METRIC}", f"best {REWARD_METRIC} @ step")

    def cell(value, fmt="{}"):
        return "-" if value is None else fmt.format(value)

    body = [(r["run"], r["algorithm"], cell(r["steps"]), cell(r["last_step"]), cell(r["final_reward"], "{:.4f}"),
             "-" if r["best_reward"] is None else f"{r['best_reward']:.4f} @ {r['best_step']}") for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in body)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in body]
    return "\n".join(lines)


def log_comparison(client: MlflowClient, png: Path, table: str, runs: Sequence[RunCurves],
                   run_id: str | None = None, experiment_id: str | None = None) -> str:
    """Log the PNG and summary under ``comparison/`` of ``run_id``, or of a new comparison run in an experiment
    of its own, ``<name of experiment_id>-comparisons``: it never sits among the training runs it compares.

    Returns the id of the run that holds them.
    """
    if run_id is None:
        if experiment_id is None:
            raise ValueError("log_comparison needs a run_id or an experiment_id")
        from .context import ensure_experiment

        name = f"{client.get_experiment(experiment_id).name}-comparisons"
        own = ensure_experiment(client, name, None)
        run = client.create_run(own, run_name=f"compare-{len(runs)}-runs",
                                tags={COMPARISON_TAG: "true",
                                      "apmpo.compared_runs": ",".join(r.run_id for r in runs)})
        run_id = run.info.run_id
        created = True
    else:
        created = False
    client.log_artifact(run_id, str(png), artifact_path=ARTIFACT_DIR)
    client.log_text(run_id, table + "\n", f"{ARTIFACT_DIR}/summary.txt")
    if created:
        client.set_terminated(run_id)
    return run_id
