"""Forward+backward time of the APMPO loss vs GRPO on this machine (median of repeated runs).

    python benchmarks/loss_overhead.py [--repeats 30] [--threads N] [--device cuda]

The paper reports negligible overhead for APMPO; our goal is APMPO/GRPO <= 1.10.
Each shape times both losses interleaved so drift in machine load affects them alike.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from apmpo_ray.algorithms import AlgorithmConfig, LossInputs, prepare_step

SHAPES = [(64, 2048), (256, 512)]


def make_inputs(B: int, T: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(B, T, generator=g) * 4
    logprobs = old + 0.2 * torch.randn(B, T, generator=g)
    lengths = torch.randint(T // 4, T + 1, (B,), generator=g)
    mask = (torch.arange(T)[None, :] < lengths[:, None]).float()
    rewards = (torch.rand(B // 8, 8, generator=g) < 0.4).float()
    return logprobs, old, mask, rewards


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_once(name: str, logprobs, old, mask, rewards) -> float:
    leaf = logprobs.clone().requires_grad_(True)
    _sync(leaf.device)
    start = time.perf_counter()
    step = prepare_step(rewards, mask, AlgorithmConfig(name=name))
    inputs = LossInputs(leaf, old, step.advantages.to(leaf), mask, global_tokens=float(mask.sum()),
                        global_sequences=float(mask.shape[0]))
    step.loss(inputs, step.controls.to(leaf.device)).loss.backward()
    _sync(leaf.device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{args.threads} CPU threads"
    print(f"torch {torch.__version__}, {where}, float32, median of {args.repeats} runs")
    print(f"{'shape (B, T)':>14} {'grpo ms':>9} {'apmpo ms':>9} {'apmpo/grpo':>11}")
    for B, T in SHAPES:
        inputs = [x.to(device) for x in make_inputs(B, T)]
        for name in ("grpo", "apmpo"):  # warm-up
            time_once(name, *inputs)
        times: dict[str, list[float]] = {"grpo": [], "apmpo": []}
        for _ in range(args.repeats):
            for name in times:
                times[name].append(time_once(name, *inputs))
        grpo, apmpo = (statistics.median(times[n]) * 1e3 for n in ("grpo", "apmpo"))
        print(f"{str((B, T)):>14} {grpo:9.2f} {apmpo:9.2f} {apmpo / grpo:11.3f}")


if __name__ == "__main__":
    main()
