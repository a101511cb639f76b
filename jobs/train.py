"""Train a policy with APMPO (or a baseline) on the Ray actor-learner system.

    python jobs/train.py                                  # the embedded tiny default, CPU, no network
    python jobs/train.py preset=paper_math                # a preset from jobs/configs/
    python jobs/train.py algo.name=grpo trainer.max_steps=20 rollout.max_staleness=1 rollout.num_generators=2
    ray job submit --working-dir . -- python jobs/train.py ...
    python jobs/train.py --verbose ...                    # every library's log lines, and each weight broadcast
"""
from __future__ import annotations

import time

STARTED_AT = time.time()  # before the imports: the start-up a user waits through begins at the command

import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

# Runnable from a plain checkout (ray job submit). jobs/ itself leaves sys.path: Ray hands the driver's path to
# every worker, where jobs/evaluate.py would shadow the `evaluate` library.
_JOBS = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _JOBS]
sys.path.insert(0, str(_JOBS.parent))

from apmpo_ray.config import ConfigError, load_config  # noqa: E402


def split_args(argv: list[str]) -> tuple[str | None, list[str]]:
    preset, overrides = None, []
    for arg in argv:
        if arg in ("-h", "--help"):
            print(__doc__)
            raise SystemExit(0)
        if arg == "--verbose":
            os.environ["APMPO_RAY_VERBOSE"] = "1"  # read by the launcher and inherited by Ray's workers
        elif arg.startswith("preset="):
            preset = arg.partition("=")[2]
        else:
            overrides.append(arg)
    return preset, overrides


def summarize(result, cfg) -> str:
    history = result.history
    head = history[: max(1, len(history) // 5)]
    tail = history[-max(1, len(history) // 5):]

    def mean(rows, key):
        values = [row[key] for row in rows if key in row]
        return sum(values) / max(len(values), 1)

    def last(key):
        values = [row[key] for row in history if key in row]
        return values[-1] if values else float("nan")

    evals = [row for row in history if "heldout/pass_at_1" in row]
    controls = "   ".join(f"{key} {mean(tail, key):.3f}" for key in ("apmpo/p", "apmpo/eps_ada")
                           if any(key in row for row in tail))
    correction = cfg.algo.off_policy_correction
    lines = [
        "",
        f"== apmpo-ray: {cfg.algo.name} finished {len(history)} steps in {result.wall_seconds:.0f} s ==",
        f"reward/mean     first {len(head)} steps {mean(head, 'reward/mean'):.3f} -> last {len(tail)} steps "
        f"{mean(tail, 'reward/mean'):.3f}",
        f"{'controls':<15} {controls + '   ' if controls else ''}staleness "
        f"{mean(history, 'rollout/staleness_mean'):.2f} (max {cfg.rollout.max_staleness}), correction {correction}"
        + (f" (IS weight mean {mean(history, 'rollout/is_weight_mean'):.3f}, truncated "
           f"{mean(history, 'rollout/is_clipped_frac'):.2%})" if correction != "none" else ""),
        # the values the MLflow runs table shows: each metric's last logged value
        f"throughput      gen {last('perf/gen_tokens_per_s'):.0f} tok/s, train {last('perf/train_tokens_per_s'):.0f} "
        "tok/s (last logged)",
        *time_lines(history),
        *weight_sync_lines(result.weight_sync, history),
        *([f"held-out eval   pass@1 " + " -> ".join(f"{row['heldout/pass_at_1']:.3f} (step {row['step']})"
                                                  for row in evals)] if evals else []),
        f"MLflow run      {result.run_id}  ({result.tracking_uri})",
        f"                {result.run_url}",
        *([f"                (start the UI: mlflow ui --backend-store-uri {result.tracking_uri})"]
          if not result.tracking_uri.startswith("http") else []),
        f"final model     {result.final_model_dir}",
    ]
    return "\n".join(lines)


STEP_PARTS = (("waiting for the batch", "perf/learner_wait_s"), ("log-prob recompute", "perf/logprob_recompute_s"),
              ("forward/backward", "perf/forward_backward_s"), ("optimizer", "perf/optimizer_s"),
              ("weight sync", "perf/weight_sync_s"), ("evaluation", "perf/eval_s"), ("controller", "perf/controller_s"))


def steady_mean(history: list[dict], key: str) -> float:
    """``key``'s mean per step in the steady state: after the first two steps."""
    values = [row.get(key, 0.0) for row in history[2:] or history]
    return sum(values) / max(len(values), 1)


def time_lines(history: list[dict]) -> list[str]:
    """Where a learner step's time goes (steady state), and the start-up."""

    def mean(key):
        return steady_mean(history, key)

    step = mean("perf/step_s")
    if not step:
        return []
    parts = ", ".join(f"{name} {mean(key) / step:.0%}" for name, key in STEP_PARTS if mean(key) / step >= 0.005)
    lines = [f"step time       {step:.2f} s: {parts}",
             f"                generators busy {mean('perf/generation_s'):.2f} s/step, verifiers "
             f"{mean('perf/scoring_s'):.2f} s/step (concurrent with the learner)"]
    first = history[0]
    if "wall_time" in first:
        lines.append(f"start-up        {first['wall_time'] - STARTED_AT:.1f} s from the command to the end of the "
                     f"first step")
    if "startup/total_s" in first:
        phases = ", ".join(f"{key[len('startup/'):-2].replace('_', ' ')} {value:.1f} s" for key, value in first.items()
                           if key.startswith("startup/") and key != "startup/total_s"
                           and not key.startswith("startup/learner/"))
        lines.append(f"                {first['startup/total_s']:.1f} s of it in train(): {phases}")
        learner = ", ".join(f"{key.split('/')[-1][:-len('_at_s')].replace('_', ' ')} {value:.1f} s"
                            for key, value in first.items() if key.startswith("startup/learner/"))
        if learner:
            lines.append(f"                learner (seconds since launch): {learner}")
    return lines


def weight_sync_lines(generators: dict, history: list[dict]) -> list[str]:
    """The learner's wait for weight sync and, in separate placement, the generators' side of it."""
    line = f"weight sync     learner waited {steady_mean(history, 'perf/weight_sync_s') * 1000:.1f} ms/step"
    if generators.get("generator_staged"):
        line += (f"; generators received each of {generators['generator_updates']:.0f} updates in "
                 f"{generators['generator_receive_ms']:.1f} ms while sampling (staged) and paused "
                 f"{generators['generator_pause_ms']:.1f} ms to load it")
    elif generators:
        line += (f"; generators paused {generators['generator_pause_ms']:.1f} ms between rollouts for each of "
                 f"{generators['generator_updates']:.0f} updates (received and loaded in place)")
    return [line]


def main(argv: list[str]) -> int:
    try:
        cfg = load_config(*split_args(argv))
        if os.environ.get("APMPO_RAY_VERBOSE"):
            logging.basicConfig(level=logging.INFO)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    from tqdm import tqdm

    from apmpo_ray.launch import train

    bar = tqdm(total=cfg.trainer.max_steps, desc=f"{cfg.algo.name}", unit="step", dynamic_ncols=True)

    def on_step(metrics: dict) -> None:
        bar.update(int(metrics["step"]) + 1 - bar.n)  # a resumed run starts past 0
        shown = {"reward": metrics.get("reward/mean", float("nan"))}
        shown.update({name: metrics[key] for name, key in (("p", "apmpo/p"), ("eps_ada", "apmpo/eps_ada"))
                      if key in metrics})
        bar.set_postfix({k: f"{v:.3f}" for k, v in shown.items()},
                        stale=f"{metrics.get('rollout/staleness_mean', 0):.1f}")

    try:
        result = train(cfg, on_step=on_step, command=["jobs/train.py", *argv])
    finally:
        bar.close()
    print(summarize(result, cfg))
    return 0


def exit_now(code: int) -> None:
    """Ends a finished job without the interpreter's teardown of torch, transformers and MLflow (~2 s after
    the summary, doing nothing a finished run needs): Ray is shut down and the output flushed first."""
    import ray

    ray.shutdown()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main(sys.argv[1:]))
