"""Do the algorithms do what their papers claim? Each algorithm trains the same preset over several seeds with
the same budget; held-out Pass@k is measured at the end; a table and plots compare them.

    python benchmarks/compare_algorithms.py [--preset tiny_reasoning] [--seeds 3] [--steps 150]
        [--algorithms apmpo,grpo,dapo,gmpo,agpo] [--ablations] [--k 16] [--out benchmarks/results/compare]
    python benchmarks/compare_algorithms.py --smoke          # 2 algorithms x 1 seed x 4 steps (about 2 min)

Every run goes into one MLflow experiment (``--experiment``, default ``compare-<preset>``), so the MLflow UI
compares them side by side; the plots are logged as artifacts of a comparison run in its own experiment.
The table: mean ± std over seeds of held-out Pass@1 and Pass@k (k = 1, 2, 4, ..., --k), the final training
reward (last quarter), entropy (last quarter), response length and wall time, and a 95 % bootstrap interval
of APMPO minus each baseline (over seeds, resampling each side's seeds).
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

ABLATIONS = ["pmpo_only", "fac_only", "apmpo_linear_p", "apmpo_fss_mu", "apmpo_fss_inv_sigma",
             "apmpo_symmetric_clip", "apmpo_no_tanh"]
# plotted where some run logged them
CURVES = ["reward/mean", "policy/entropy", "response/length_mean", "apmpo/p", "apmpo/eps_ada", "apmpo/fss",
          "ampo/guided_groups_frac", "ampo/teacher_token_frac"]


@dataclass
class Arm:
    """One configuration under comparison: a label and the overrides that make it."""

    label: str
    overrides: list[str]
    preset: str


@dataclass
class RunOutcome:
    label: str
    seed: int
    run_id: str
    history: list[dict]
    wall_s: float
    final_eval: dict = field(default_factory=dict)

    def last_quarter(self, key: str) -> float:
        rows = [r[key] for r in self.history if key in r]
        tail = rows[-max(1, len(rows) // 4):]
        return statistics.mean(tail) if tail else float("nan")


def run_arm(arm: Arm, seed: int, steps: int, k: int, experiment: str, tracking_uri: str, root: str) -> RunOutcome:
    from apmpo_ray.config import load_config
    from apmpo_ray.launch import train

    overrides = [*arm.overrides, f"trainer.seed={seed}", f"task.seed={seed}", f"trainer.max_steps={steps}",
                 f"tracking.experiment={experiment}", f"tracking.tracking_uri={tracking_uri}",
                 f"tracking.run_name={arm.label}-seed{seed}", f"trainer.output_dir={root}/runs",
                 f"eval.every_steps={steps}", f"eval.k={k}"]
    cfg = load_config(arm.preset, overrides)
    started = time.monotonic()
    result = train(cfg)
    final = {key: value for row in result.history for key, value in row.items() if key.startswith("heldout/")}
    return RunOutcome(arm.label, seed, result.run_id, result.history, time.monotonic() - started, final)


def finished_run(arm: Arm, seed: int, steps: int, experiment: str, tracking_uri: str) -> RunOutcome | None:
    """A finished run of this arm and seed at this step count, read back from MLflow (``--resume``)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    runs = client.search_runs([found.experiment_id], filter_string=(
        f"attributes.run_name = '{arm.label}-seed{seed}' and attributes.status = 'FINISHED' "
        f"and params.`trainer.max_steps` = '{steps}'"), order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        return None
    run = runs[0]
    rows: dict[int, dict] = {}
    for key in run.data.metrics:
        for m in client.get_metric_history(run.info.run_id, key):
            rows.setdefault(m.step, {"step": m.step})[key] = m.value
    history = [rows[step] for step in sorted(rows)]
    benchmarks = {key.split("/")[1] for key in run.data.metrics
                  if key.startswith("eval/") and key.endswith("/pass_at_1") and not key.startswith("eval/avg/")}
    last: dict[str, list[float]] = {}
    for key, value in run.data.metrics.items():  # each benchmark's last value, averaged over benchmarks
        parts = key.split("/")
        if len(parts) == 3 and parts[1] in benchmarks and (parts[2].startswith("pass_at_") or parts[2] == "self_bleu"):
            last.setdefault(f"heldout/{parts[2]}", []).append(value)
    final = {key: statistics.mean(values) for key, values in last.items()}
    wall_s = (run.info.end_time - run.info.start_time) / 1e3
    return RunOutcome(arm.label, seed, run.info.run_id, history, wall_s, final)


def bootstrap_difference(a: list[float], b: list[float], *, draws: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """95 % interval of mean(a) - mean(b), resampling each side's seeds with replacement."""
    rng = random.Random(seed)
    diffs = sorted(statistics.mean(rng.choices(a, k=len(a))) - statistics.mean(rng.choices(b, k=len(b)))
                   for _ in range(draws))
    return diffs[int(0.025 * draws)], diffs[int(0.975 * draws) - 1]


def mean_std(values: list[float]) -> str:
    values = [v for v in values if v == v]
    if not values:
        return "n/a"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def table(outcomes: dict[str, list[RunOutcome]], k: int, reference: str = "apmpo") -> str:
    from apmpo_ray.evaluation.results import curve_points

    points = curve_points(k)
    head = (["algorithm", "seeds"] + [f"Pass@{j}" for j in points]
            + ["reward (last ¼)", "entropy (last ¼)", "length", "wall s"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, runs in outcomes.items():
        cells = [label, str(len(runs))]
        cells += [mean_std([r.final_eval.get(f"heldout/pass_at_{j}", float("nan")) for r in runs]) for j in points]
        cells += [mean_std([r.last_quarter(key) for r in runs]) for key in ("reward/mean", "policy/entropy",
                                                                              "response/length_mean")]
        cells.append(f"{statistics.mean(r.wall_s for r in runs):.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    if reference in outcomes and len(outcomes) > 1:
        lines += ["", f"{reference} minus each baseline, 95 % bootstrap interval over seeds:", "",
                  "| baseline | Pass@1 | Pass@" + str(k) + " | reward (last ¼) |", "|---|---|---|---|"]
        mine = outcomes[reference]
        for label, runs in outcomes.items():
            if label == reference:
                continue
            cells = [label]
            for getter in (lambda r: r.final_eval.get("heldout/pass_at_1", float("nan")),
                           lambda r: r.final_eval.get(f"heldout/pass_at_{k}", float("nan")),
                           lambda r: r.last_quarter("reward/mean")):
                a, b = [getter(r) for r in mine], [getter(r) for r in runs]
                low, high = bootstrap_difference(a, b)
                cells.append(f"{statistics.mean(a) - statistics.mean(b):+.3f} [{low:+.3f}, {high:+.3f}]")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(outcomes: dict[str, list[RunOutcome]], k: int, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from apmpo_ray.evaluation.results import curve_points

    paths = []
    logged = [key for key in CURVES
              if any(key in row for runs in outcomes.values() for run in runs for row in run.history)]
    rows = (len(logged) + 2) // 3
    fig, axes = plt.subplots(rows, 3, figsize=(15, 4 * rows), squeeze=False)
    for ax in axes.flat[len(logged):]:
        ax.axis("off")  # no run logged a metric for this panel
    for ax, key in zip(axes.flat, logged):
        drawn = False
        for label, runs in outcomes.items():
            curves = [[r[key] for r in run.history if key in r] for run in runs]
            curves = [c for c in curves if c]
            if not curves:
                continue  # this algorithm does not log the metric: left out, not drawn as zero
            width = min(map(len, curves))
            mean = [statistics.mean(c[i] for c in curves) for i in range(width)]
            ax.plot(range(width), mean, label=label)
            drawn = True
        ax.set_title(key)
        ax.set_xlabel("step")
        if drawn:
            ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(out / "curves.png")
    fig.savefig(paths[-1], dpi=110)
    fig, ax = plt.subplots(figsize=(6, 4))
    points = curve_points(k)
    for label, runs in outcomes.items():
        values = [statistics.mean(r.final_eval.get(f"heldout/pass_at_{j}", float("nan")) for r in runs) for j in points]
        ax.plot(points, values, marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k")
    ax.set_ylabel("held-out Pass@k")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(out / "pass_at_k.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close("all")
    return paths


def log_comparison(paths: list[Path], table_text: str, experiment: str, tracking_uri: str) -> str:
    """The plots and the table as artifacts of a run in ``<experiment>-comparisons``, apart from training runs."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    name = f"{experiment}-comparisons"
    found = client.get_experiment_by_name(name)
    experiment_id = found.experiment_id if found else client.create_experiment(name)
    run = client.create_run(experiment_id, run_name=f"compare-{time.strftime('%Y%m%d-%H%M%S')}")
    for path in paths:
        client.log_artifact(run.info.run_id, str(path))
    client.log_text(run.info.run_id, table_text, "table.md")
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def arms_for(args) -> list[Arm]:
    names = args.algorithms.split(",") + (ABLATIONS if args.ablations else [])
    return [Arm(name, [f"algo.name={name}", *args.override], args.preset) for name in names]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="tiny_reasoning")
    parser.add_argument("--algorithms", default="apmpo,grpo,dapo,gmpo,agpo")
    parser.add_argument("--ablations", action="store_true", help="also the paper's APMPO ablations")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=0, help="learner steps per run (0: the preset's)")
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--experiment", default="")
    parser.add_argument("--tracking-uri", default="")
    parser.add_argument("--out", default="benchmarks/results/compare")
    parser.add_argument("--smoke", action="store_true", help="apmpo and grpo, 1 seed, 4 steps, k 4")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for every run (e.g. model.tiny_recipe=small_reasoning)")
    parser.add_argument("--resume", action="store_true",
                        help="reuse finished runs of the same name and step count from the experiment")
    args = parser.parse_args(argv)
    if args.smoke:
        args.algorithms, args.seeds, args.steps, args.k, args.ablations = "apmpo,grpo", 1, 4, 4, False
    compare(arms_for(args), args)


def compare(arms: list[Arm], args, reference: str = "apmpo") -> dict[str, list[RunOutcome]]:
    import ray

    from apmpo_ray.config import load_config
    from apmpo_ray.tracking import tracking_uri

    steps = args.steps or load_config(arms[0].preset).trainer.max_steps
    uri = tracking_uri(args.tracking_uri)
    experiment = args.experiment or f"compare-{arms[0].preset}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    outcomes: dict[str, list[RunOutcome]] = {}
    for seed in range(1, args.seeds + 1):
        for arm in arms:  # seeds outermost: an interrupted comparison still has every arm at the first seeds
            outcome = finished_run(arm, seed, steps, experiment, uri) if args.resume else None
            reused = outcome is not None
            outcome = outcome or run_arm(arm, seed, steps, args.k, experiment, uri, str(out))
            outcomes.setdefault(arm.label, []).append(outcome)
            print(f"{arm.label} seed {seed}{' (finished earlier)' if reused else ''}: "
                  f"reward (last quarter) {outcome.last_quarter('reward/mean'):.3f}, "
                  f"Pass@1 {outcome.final_eval.get('heldout/pass_at_1', float('nan')):.3f}, "
                  f"{outcome.wall_s:.0f} s", flush=True)
            if not reused:
                ray.shutdown()
    text = table(outcomes, args.k, reference)
    print("\n" + text)
    (out / "table.md").write_text(text + "\n")
    (out / "runs.json").write_text(json.dumps({label: [{"seed": r.seed, "run_id": r.run_id, "wall_s": r.wall_s,
                                                        "final_eval": r.final_eval} for r in runs]
                                               for label, runs in outcomes.items()}, indent=1))
    paths = plot(outcomes, args.k, out)
    run_id = log_comparison(paths, text, experiment, uri)
    print(f"\nplots: {', '.join(map(str, paths))}; MLflow experiment {experiment!r} ({uri}), comparison run {run_id}")
    return outcomes


if __name__ == "__main__":
    main()
