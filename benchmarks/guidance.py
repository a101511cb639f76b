"""AMPO vs GRPO on ``preset=tiny_ampo``: does guidance on demand raise held-out Pass@k and entropy?

    python benchmarks/guidance.py [--seeds 3] [--steps 100] [--k 16] [--out benchmarks/results/guidance]

Both arms train the same weak student on the same chain problems; AMPO's failing groups get verified teacher
solutions (offline and from an online teacher actor), GRPO gets none. The table is compare_algorithms.py's
(held-out Pass@1 ... Pass@k, reward, entropy, response length, wall time, AMPO minus GRPO), plus the
teacher calls per step and the share of guided groups.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_algorithms import Arm, compare  # noqa: E402

ARMS = [Arm("ampo", [], "tiny_ampo"),
        Arm("grpo", ["algo.name=grpo", "rollout.workflow=single_turn", "algo.scale_advantages_by_std=true"],
            "tiny_ampo")]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=0)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--experiment", default="guidance-tiny_ampo")
    parser.add_argument("--tracking-uri", default="")
    parser.add_argument("--out", default="benchmarks/results/guidance")
    parser.add_argument("--resume", action="store_true", help="reuse finished runs from the experiment")
    args = parser.parse_args(argv)
    outcomes = compare(ARMS, args, reference="ampo")
    runs = outcomes["ampo"]
    for key in ("ampo/teacher_calls", "ampo/guided_groups_frac", "ampo/teacher_samples", "ampo/teacher_token_frac",
                "ampo/comprehension_mean"):
        values = [statistics.mean(r[key] for r in run.history if key in r) for run in runs
                  if any(key in r for r in run.history)]
        if values:
            print(f"{key:28} {statistics.mean(values):.3f} (mean over steps, then over {len(values)} seeds)")


if __name__ == "__main__":
    main()
