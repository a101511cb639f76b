"""The same RL job through TRL's GRPOTrainer and through apmpo-ray, whole process, in turn.

    pip install "trl==1.16.*" accelerate          # an optional benchmark dependency, not a runtime one
    python benchmarks/peer_race.py [--runs 2] [--size default|long] [--trl-python PATH]

``--size default``: the embedded default job (the project's tiny model, single-digit addition, 16 prompts x
G 8 x up to 4 new tokens, 120 steps, lr 5e-4). ``--size long``: where generation dominates, the reasoning task
on the larger embedded model (``preset=tiny_reasoning`` with ``small_reasoning``, 5 M parameters: 32 prompts x
G 8 x up to 64 tokens, 60 steps; apmpo-ray takes one optimizer step per batch there, as TRL does, and its
learner both cores in separate placement; the default size also runs apmpo-ray with TRL's one optimizer step per
batch, ``one-step``). apmpo-ray runs in both placements (``rollout.placement``: separate actors, or
the engine colocated in the learner). Each runs ``--runs`` times in turn (TRL, apmpo-ray, apmpo-ray colocated,
TRL, ...), each a fresh process timed from start to exit; the table gives median wall time, steady-state
seconds per step, and the training reward over the first and last quarter, and the ratios to TRL.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

JOBS = {
    # As the quick start ships it (two optimizer steps per batch of 128), and with TRL's schedule (one).
    "default": {"preset": "tiny_cpu", "recipe": "tiny", "task": "arithmetic", "prompts": 16, "G": 8, "tokens": 4,
                "steps": 120, "lr": 5e-4, "max_operand": 9, "num_terms": 2,
                "variants": {"one-step": ["trainer.mini_batch_size=128"]}},
    # One optimizer step per batch, as TRL takes (the preset takes two), and the learner on both cores in
    # separate placement: the learner, not generation, bounds a step here (benchmarks/README.md).
    "long": {"preset": "tiny_reasoning", "recipe": "small_reasoning", "task": "chain", "prompts": 32, "G": 8,
             "tokens": 64, "steps": 60, "lr": 3e-4, "max_operand": 50, "num_terms": 3,
             "overrides": {"apmpo-ray": ["trainer.mini_batch_size=256", "trainer.cpus_per_worker=2"],
                           "colocated": ["trainer.mini_batch_size=256"]}},
}

TRL_SCRIPT = r'''
import json, sys, time
job = json.loads(sys.argv[1])
started = time.monotonic()
from datasets import Dataset
from transformers import AutoTokenizer
from trl import GRPOConfig, GRPOTrainer
from apmpo_ray.models.tiny import RECIPES, tiny_model_path
from apmpo_ray.rewards import get_reward_fn
from apmpo_ray.tasks import arithmetic, chain

path = str(tiny_model_path(RECIPES[job["recipe"]]))
tokenizer = AutoTokenizer.from_pretrained(path)
module = arithmetic if job["task"] == "arithmetic" else chain
kwargs = {"max_operand": job["max_operand"]} | ({"num_terms": job["num_terms"]} if job["task"] == "chain" else {})
problems = module.make_problems(4096, seed=0, **kwargs)
# the same prompt the project's generators see: <bos> + the problem text
data = Dataset.from_list([{"prompt": tokenizer.bos_token + p["prompt"], "answer": p["answer"]} for p in problems])
score = get_reward_fn(job["task"])
rewards, lengths = [], []

def reward(completions, answer, **_):
    values = [score(c, a) for c, a in zip(completions, answer)]
    rewards.append(sum(values) / len(values))
    lengths.append(sum(len(tokenizer.encode(c, add_special_tokens=False)) for c in completions) / len(completions))
    return values

args = GRPOConfig(output_dir=sys.argv[2], per_device_train_batch_size=job["prompts"] * job["G"],
                  num_generations=job["G"], max_completion_length=job["tokens"], learning_rate=job["lr"],
                  max_steps=job["steps"], temperature=1.0, beta=0.001, logging_steps=1000, save_strategy="no",
                  report_to=[], use_vllm=False, bf16=False, use_cpu=True, seed=0, disable_tqdm=True,
                  dataloader_num_workers=0)
trainer = GRPOTrainer(model=path, reward_funcs=reward, args=args, train_dataset=data, processing_class=tokenizer)
steps = []
from transformers import TrainerCallback
class Clock(TrainerCallback):
    def on_step_end(self, *a, **k):
        steps.append(time.monotonic())
trainer.add_callback(Clock())
trainer.train()
print("RESULT " + json.dumps({"rewards": rewards, "lengths": lengths, "step_times": steps, "started": started}))
'''


def run_trl(python: str, job: dict) -> dict:
    with tempfile.TemporaryDirectory() as out:
        started = time.monotonic()
        proc = subprocess.run([python, "-c", TRL_SCRIPT, json.dumps(job), out], capture_output=True, text=True,
                              cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        wall = time.monotonic() - started
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"the TRL run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(lines[-1][len("RESULT "):])
    times = result["step_times"]
    return {"wall_s": wall, "step_s": statistics.median(b - a for a, b in zip(times[2:], times[3:])),
            "rewards": result["rewards"], "length": statistics.mean(result["lengths"])}


def run_apmpo(job: dict, placement_overrides: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as out:
        overrides = [f"trainer.max_steps={job['steps']}", f"model.tiny_recipe={job['recipe']}",
                     f"rollout.max_new_tokens={job['tokens']}", f"tracking.tracking_uri=sqlite:///{out}/mlflow.db",
                     f"trainer.output_dir={out}/runs", "eval.every_steps=0", *placement_overrides]
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "jobs/train.py", f"preset={job['preset']}", *overrides],
                              capture_output=True, text=True, cwd=ROOT)
        wall = time.monotonic() - started
        if proc.returncode:
            raise RuntimeError(f"the apmpo-ray run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        import sqlite3

        con = sqlite3.connect(f"{out}/mlflow.db")
        rows = dict(con.execute("select step, value from metrics where key='reward/mean'").fetchall())
        steps = dict(con.execute("select step, value from metrics where key='perf/step_s'").fetchall())
        lengths = [v for (v,) in con.execute("select value from metrics where key='response/length_mean'")]
    return {"wall_s": wall, "step_s": statistics.median(v for k, v in steps.items() if k >= 2),
            "rewards": [rows[k] for k in sorted(rows)], "length": statistics.mean(lengths)}


def quarters(rewards: list[float]) -> tuple[float, float]:
    q = max(1, len(rewards) // 4)
    return statistics.mean(rewards[:q]), statistics.mean(rewards[-q:])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--size", choices=sorted(JOBS), default="default")
    parser.add_argument("--trl-python", default=sys.executable, help="an interpreter with trl installed")
    args = parser.parse_args(argv)
    job = JOBS[args.size]
    extra = job.get("overrides", {})
    engines = {"trl": lambda: run_trl(args.trl_python, job),
               "apmpo-ray": lambda: run_apmpo(job, extra.get("apmpo-ray", [])),
               "colocated": lambda: run_apmpo(job, ["rollout.placement=colocated", *extra.get("colocated", [])]),
               # separate placement with other settings, e.g. TRL's one optimizer step per batch
               **{name: (lambda o=overrides: run_apmpo(job, o)) for name, overrides in job.get("variants", {}).items()}}
    results: dict[str, list[dict]] = {name: [] for name in engines}
    for i in range(args.runs):
        for name, run in engines.items():
            results[name].append(run())
            r = results[name][-1]
            print(f"run {i + 1} {name:10}: {r['wall_s']:.1f} s wall, {r['step_s']:.3f} s/step, "
                  f"{r['length']:.1f} response tokens", flush=True)
    print(f"\n{args.size} job: {job['prompts']} prompts x G {job['G']} x {job['tokens']} tokens, {job['steps']} steps")
    # RL changes what it generates: the response length says how much work a step was for each engine
    print(f"{'engine':12} {'wall s (median)':>16} {'s/step':>8} {'response tokens':>16} "
          f"{'reward first -> last quarter':>30}")
    summary = {}
    for name, runs in results.items():
        wall = statistics.median(r["wall_s"] for r in runs)
        step = statistics.median(r["step_s"] for r in runs)
        first, last = (statistics.mean(x) for x in zip(*(quarters(r["rewards"]) for r in runs)))
        length = statistics.mean(r["length"] for r in runs)
        summary[name] = (wall, step)
        print(f"{name:12} {wall:16.1f} {step:8.3f} {length:16.1f} {first:18.3f} -> {last:.3f}")
    tw, ts = summary["trl"]
    print()
    for name in [name for name in engines if name != "trl"]:
        aw, as_ = summary[name]
        print(f"{name} / TRL: wall {aw / tw:.2f}x, steady-state s/step {as_ / ts:.2f}x")


if __name__ == "__main__":
    main()
