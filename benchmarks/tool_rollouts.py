"""Tool-use rollouts: ARPO vs GRPO with the same tools and budget on ``preset=tiny_tools``, and the python
tool pool's throughput when a share of the calls is hostile.

    python benchmarks/tool_rollouts.py [--steps 40] [--seeds 1] [--calls 200] [--skip-training]

Training: each algorithm runs ``--steps`` learner steps per seed from the same warmed-up model; the table
gives the training reward over the first and last quarter, tool calls per final trajectory, tool calls
actually executed per prompt (branches share their prefix's calls), and rollout wall time per step.
Pool: ``--calls`` python calls through a ToolPool (1 actor, 4 threads), clean and with 10 % endless loops
(each costs one timeout, ``--hostile-timeout`` seconds).
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time


def train_once(algo: str, seed: int, steps: int, root: str, tracking_uri: str) -> dict:
    from apmpo_ray.config import load_config
    from apmpo_ray.launch import train

    cfg = load_config("tiny_tools", [f"algo.name={algo}", f"trainer.max_steps={steps}", f"trainer.seed={seed}",
                                     f"task.seed={seed}", f"tracking.tracking_uri={tracking_uri}",
                                     "tracking.experiment=tool-rollouts-tiny_tools",
                                     f"trainer.output_dir={root}/runs", f"tracking.run_name={algo}-seed{seed}"])
    result = train(cfg)
    rows = result.history
    quarter = max(1, len(rows) // 4)

    def mean(key, part=rows):
        values = [r[key] for r in part if key in r]
        return statistics.mean(values) if values else float("nan")

    out = {"reward_first": mean("reward/mean", rows[:quarter]), "reward_last": mean("reward/mean", rows[-quarter:]),
            "calls_per_trajectory": mean("tools/calls_per_trajectory"),
            "executed_per_prompt": mean("tools/executed_per_prompt"),
            "step_s": statistics.median(r["perf/learner_wait_s"] + r["perf/train_s"] for r in rows[2:]),
            "branches": mean("arpo/branches_per_prompt"), "wall_s": result.wall_seconds}
    first_steps = ", ".join(f"{r['reward/mean']:.2f}" for r in rows[:quarter])
    print(f"{algo} seed {seed}: reward {out['reward_first']:.3f} -> {out['reward_last']:.3f} "
          f"(first quarter by step: {first_steps}), run {result.run_id}", flush=True)
    return out


def pool_throughput(calls: int, hostile_fraction: float, timeout_s: float) -> tuple[float, int]:
    from apmpo_ray.tools import ToolPool

    pool = ToolPool("python", {"timeout_s": timeout_s}, num_actors=1, concurrency=4, deadline_s=timeout_s + 5)
    every = round(1 / hostile_fraction) if hostile_fraction else 0
    codes = ["while True:\n    pass" if every and i % every == 0 else f"print({i} * {i + 1})" for i in range(calls)]

    async def run():
        return await asyncio.gather(*(pool.call(code) for code in codes))

    started = time.monotonic()
    replies = asyncio.run(run())
    seconds = time.monotonic() - started
    pool.shutdown()
    wrong = sum(1 for i, (code, r) in enumerate(zip(codes, replies))
                if not code.startswith("while") and r.output.strip() != str(i * (i + 1)))
    return calls / seconds, wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--hostile-timeout", type=float, default=2.0)
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--tracking-uri", default="", help="where the training runs go (default: a temporary store)")
    args = parser.parse_args()
    import ray

    ray.init(include_dashboard=False, log_to_driver=False)
    clean, wrong_clean = pool_throughput(args.calls, 0.0, args.hostile_timeout)
    hostile, wrong_hostile = pool_throughput(args.calls, 0.1, args.hostile_timeout)
    print(f"python tool pool, {args.calls} calls, 1 actor x 4 threads: clean {clean:.1f} calls/s, "
          f"10% hostile {hostile:.1f} calls/s ({hostile / clean:.2f}x); wrong answers {wrong_clean} / {wrong_hostile}; "
          f"bound with hostile calls: 4 / (0.1 x {args.hostile_timeout:g} s) = {4 / (0.1 * args.hostile_timeout):.0f}")
    if args.skip_training:
        return
    results = {}
    with tempfile.TemporaryDirectory() as root:
        for algo in ("grpo", "arpo"):
            uri = args.tracking_uri or f"sqlite:///{root}/mlflow.db"
            results[algo] = [train_once(algo, seed, args.steps, root, uri) for seed in range(1, args.seeds + 1)]
    print(f"\ntiny_tools, {args.steps} steps x {args.seeds} seed(s), M = 8 trajectories per prompt (ARPO: N = 4)")
    print(f"{'':6} {'reward first->last quarter':>28} {'calls/trajectory':>17} {'executed/prompt':>16} "
          f"{'branches/prompt':>16} {'s/step':>7}")
    for algo, runs in results.items():
        def m(key):
            return statistics.mean(r[key] for r in runs)
        print(f"{algo:6} {m('reward_first'):13.3f} -> {m('reward_last'):.3f}      {m('calls_per_trajectory'):17.2f} "
              f"{m('executed_per_prompt'):16.2f} {m('branches'):16.2f} {m('step_s'):7.2f}")
    g, a = results["grpo"], results["arpo"]
    ratio = statistics.mean(r["executed_per_prompt"] for r in a) / statistics.mean(r["executed_per_prompt"] for r in g)
    print(f"ARPO/GRPO executed tool calls per prompt: {ratio:.2f} (the paper: about 0.5)")


if __name__ == "__main__":
    main()
