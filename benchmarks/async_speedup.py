"""Wall-clock of N training steps with max_staleness 0, 1 and 2 on the tiny task, side by side.

    python benchmarks/async_speedup.py [--steps 12] [--staleness 0 1 2] [extra overrides ...]

Steady-state seconds per step exclude start-up (engine start, DeepSpeed init, first step). The bound on
one machine is (T_gen + T_train) / max(T_gen, T_train), with T_gen and T_train measured in the
synchronous run (learner wait per step, and train + weight sync per step).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run(staleness: int, steps: int, extra: list[str], root: str) -> dict:
    from apmpo_ray.config import load_config
    from apmpo_ray.launch import train

    cfg = load_config(None, [f"rollout.max_staleness={staleness}", f"trainer.max_steps={steps}",
                             f"tracking.tracking_uri=sqlite:///{root}/mlflow.db", f"trainer.output_dir={root}/runs",
                             "tracking.experiment=async-speedup", *extra])
    result = train(cfg)
    h = result.history
    warm = h[2:]  # the first steps include engine warm-up and the initial fill of the pipeline
    per_step = (warm[-1]["wall_time"] - warm[0]["wall_time"]) / (len(warm) - 1)

    def mean(key):
        return statistics.fmean(row[key] for row in warm)

    return {"staleness": staleness, "s_per_step": per_step, "gen_idle": mean("perf/generator_idle_frac"),
            "learner_idle": mean("perf/learner_idle_frac"), "wait_s": mean("perf/learner_wait_s"),
            "train_s": mean("perf/train_s"), "sync_s": mean("perf/weight_sync_s"),
            "reward": statistics.fmean(row["reward/mean"] for row in h[-3:])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--staleness", type=int, nargs="+", default=[0, 1, 2])
    args, extra = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as root:
        rows = [run(s, args.steps, extra, root) for s in args.staleness]
    base = rows[0]
    t_gen, t_train = base["wait_s"], base["train_s"] + base["sync_s"]
    print(f"\nsteady-state over steps 3..{args.steps}; overrides: {' '.join(extra) or '(tiny_cpu defaults)'}")
    print(f"{'staleness':>9} {'s/step':>8} {'speedup':>8} {'gen idle':>9} {'learner idle':>13} "
          f"{'sync/step':>10} {'reward(last3)':>14}")
    for row in rows:
        print(f"{row['staleness']:>9} {row['s_per_step']:>8.2f} {base['s_per_step'] / row['s_per_step']:>7.2f}x "
              f"{row['gen_idle']:>9.2f} {row['learner_idle']:>13.2f} {row['sync_s'] / row['s_per_step']:>10.3f} "
              f"{row['reward']:>14.3f}")
    print(f"one-machine bound (T_gen + T_train)/max = ({t_gen:.2f} + {t_train:.2f})/{max(t_gen, t_train):.2f} "
          f"= {(t_gen + t_train) / max(t_gen, t_train, 1e-9):.2f}x")


if __name__ == "__main__":
    main()
