"""Samples/s of a VerifierPool for the ``math`` and ``sql`` rewards, clean and with adversarial samples.

Adversarial samples: a pathological power tower for math (sympy works on it until killed) and an endless
recursive CTE for SQL (stopped by the SQL time limit or the scorer's timeout, whichever comes first).
Batches are groups of G responses awaited concurrently through ``score_async``, as the rollout
coordinator does. Prints one row per (reward, adversarial fraction) and the throughput ratio to clean.

    python benchmarks/verifier_throughput.py --samples 400 --num-actors 2 --timeout 1.0
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import tempfile
import time

import ray

from apmpo_ray.verifiers import VerifierPool

MATH_ADVERSARIAL = "Let me compute. \\boxed{9^{9^{9^{9}}}}"
SQL_ADVERSARIAL = "```sql\nWITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c\n```"


def math_samples(n: int, rng: random.Random) -> tuple[list[str], list]:
    responses, references = [], []
    for _ in range(n):
        a, b = rng.randint(1, 9), rng.randint(2, 9)
        form = rng.choice(["\\boxed{\\frac{%d}{%d}}" % (a, b), "\\boxed{%d/%d}" % (a, b),
                           "so the answer is %s" % round(a / b, 6), "\\boxed{%d}" % (a + b)])
        responses.append(f"Step 1: think about {a} and {b}.\nStep 2: done. {form}")
        references.append("\\frac{%d}{%d}" % (a, b))
    return responses, references


def make_db(path: str, rows: int = 5000) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE sales (id INTEGER PRIMARY KEY, region TEXT, amount INTEGER)")
        rng = random.Random(0)
        conn.executemany("INSERT INTO sales (region, amount) VALUES (?, ?)",
                         [(rng.choice("NESW"), rng.randint(1, 1000)) for _ in range(rows)])
    conn.close()


def sql_samples(n: int, rng: random.Random, db_path: str) -> tuple[list[str], list]:
    responses, references = [], []
    for _ in range(n):
        threshold = rng.randint(100, 900)
        gold = f"SELECT region, count(*) FROM sales WHERE amount > {threshold} GROUP BY region"
        predicted = rng.choice([gold, gold.replace(">", ">="),
                                f"SELECT region, sum(amount > {threshold}) FROM sales GROUP BY region"])
        responses.append(f"```sql\n{predicted}\n```")
        references.append({"sql": gold, "db_path": db_path})
    return responses, references


def with_adversarial(responses: list[str], fraction: float, bad: str, rng: random.Random) -> list[str]:
    responses = list(responses)
    for i in rng.sample(range(len(responses)), round(fraction * len(responses))):
        responses[i] = bad
    return responses


async def score_groups(pool: VerifierPool, responses: list[str], references: list, group: int) -> list[float]:
    calls = [pool.score_async(responses[i:i + group], references[i:i + group])
             for i in range(0, len(responses), group)]
    return [r for part in await asyncio.gather(*calls) for r in part]


def run(pool: VerifierPool, responses: list[str], references: list, group: int) -> tuple[float, dict]:
    before = pool.stats()
    started = time.perf_counter()
    asyncio.run(score_groups(pool, responses, references, group))
    elapsed = time.perf_counter() - started
    after = pool.stats()
    return elapsed, {k: after[k] - before[k] for k in ("timeouts", "errors", "restarts")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--group", type=int, default=8, help="responses per score_async call (G)")
    parser.add_argument("--num-actors", type=int, default=2)
    parser.add_argument("--processes-per-actor", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1.0, help="per-sample timeout of the scorer (s)")
    parser.add_argument("--grace", type=float, default=0.5,
                        help="seconds an interrupted worker has to answer before it is killed (0: kill at once)")
    parser.add_argument("--no-spare", action="store_true", help="no warm standby worker per actor")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.0, 0.1])
    parser.add_argument("--rewards", nargs="+", default=["math", "sql"])
    parser.add_argument("--num-cpus", type=int, default=os.cpu_count())
    args = parser.parse_args()

    ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
    tmp = tempfile.TemporaryDirectory()
    db_path = os.path.join(tmp.name, "sales.sqlite")
    make_db(db_path)
    print(f"samples={args.samples} G={args.group} actors={args.num_actors} "
          f"processes/actor={args.processes_per_actor} timeout={args.timeout}s "
          f"grace={args.grace}s spare={not args.no_spare}")
    print("| reward | adversarial | seconds | samples/s | vs clean | timeouts | errors | restarts |")
    print("|---|---|---|---|---|---|---|---|")
    try:
        for reward in args.rewards:
            rng = random.Random(0)
            if reward == "math":
                responses, references = math_samples(args.samples, rng)
                bad = MATH_ADVERSARIAL
            else:
                responses, references = sql_samples(args.samples, rng, db_path)
                bad = SQL_ADVERSARIAL
            pool = VerifierPool(reward, num_actors=args.num_actors,
                                processes_per_actor=args.processes_per_actor, timeout_s=args.timeout,
                                grace_s=args.grace, spare=not args.no_spare)
            try:
                run(pool, responses[:4 * args.group], references[:4 * args.group], args.group)  # warm-up
                clean_rate = None
                for fraction in args.fractions:
                    mixed = with_adversarial(responses, fraction, bad, random.Random(1))
                    elapsed, counts = run(pool, mixed, references, args.group)
                    rate = args.samples / elapsed
                    clean_rate = clean_rate or rate
                    print(f"| {reward} | {fraction:.0%} | {elapsed:.2f} | {rate:.1f} | {rate / clean_rate:.3f} | "
                          f"{counts['timeouts']} | {counts['errors']} | {counts['restarts']} |", flush=True)
            finally:
                pool.shutdown()
    finally:
        ray.shutdown()
        tmp.cleanup()


if __name__ == "__main__":
    main()
