"""Rollout throughput: a GeneratorActor (vLLM, its engine in the actor's process and in two child processes)
against plain ``transformers`` ``model.generate``.

Same model, same prompts, same number of samples per prompt and token budget, sampling at temperature 1.
Throughput counts generated tokens up to and including each sample's eos (what a rollout yields); tokens
``generate`` spends on padding after a row finished are not counted. Median of interleaved repeats after
one warm-up call each.

A setting is ``MAX:MIN``: at most MAX new tokens, eos forbidden before MIN (both engines support that).
The tiny model answers in 2-3 tokens, so ``48:48`` is the way to measure long decodes with it.

    python benchmarks/generation_throughput.py [--prompts 64] [--group 8] [--settings 4:0 32:0 48:48] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time


# VLLMGenerator's in_process: vLLM's engine core and worker in the actor's process, or in two child processes
ENGINES = {"in-process": True, "3 processes": False}


def hf_generate(model, tokenizer, prompts: list[list[int]], n: int, max_new_tokens: int, min_new_tokens: int) -> int:
    import torch

    ids = torch.tensor(prompts)  # the arithmetic prompts share one length, so no padding is needed
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0,
                             top_p=1.0, top_k=0, num_return_sequences=n, max_new_tokens=max_new_tokens,
                             min_new_tokens=min_new_tokens,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    generated = 0
    for row in out[:, ids.shape[1]:].tolist():
        generated += row.index(tokenizer.eos_token_id) + 1 if tokenizer.eos_token_id in row else len(row)
    return generated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--settings", nargs="+", default=["4:0", "32:0", "48:48"], help="MAX:MIN new tokens")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--actor-cpus", type=int, default=os.cpu_count(),
                        help="Ray CPUs for the GeneratorActor; Ray sets its OMP_NUM_THREADS to this")
    args = parser.parse_args()

    import ray
    import torch
    from transformers import AutoModelForCausalLM

    from apmpo_ray.generators.actor import GeneratorActor
    from apmpo_ray.models.tiny import build_tokenizer, tiny_model_path
    from apmpo_ray.tasks import arithmetic

    path = str(tiny_model_path())
    tokenizer = build_tokenizer()
    prompts = [[tokenizer.bos_token_id] + tokenizer.encode(p["prompt"], add_special_tokens=False)
               for p in arithmetic.make_problems(args.prompts, seed=0)]
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()

    # room for both engines' actors; each runs alone while it is timed
    ray.init(num_cpus=2 * args.actor_cpus, include_dashboard=False, log_to_driver=False)
    try:
        actors = {}
        for name, in_process in ENGINES.items():
            start = time.perf_counter()
            actors[name] = GeneratorActor.options(num_cpus=args.actor_cpus, max_restarts=0).remote(
                path, seed=0, kv_cache_gib=0.5, in_process=in_process)
            ray.get(actors[name].ping.remote())
            print(f"GeneratorActor start, {name}: {time.perf_counter() - start:.1f}s")
        print(f"actor CPUs {args.actor_cpus}; transformers torch threads {torch.get_num_threads()}; "
              f"{os.cpu_count()} cores")

        def run(name: str, max_new_tokens: int, min_new_tokens: int, seed: int) -> int:
            if name == "hf":
                return hf_generate(model, tokenizer, prompts, args.group, max_new_tokens, min_new_tokens)
            groups = ray.get(actors[name].generate.remote(prompts, n=args.group, max_new_tokens=max_new_tokens,
                                                          seed=seed, min_new_tokens=min_new_tokens))
            return sum(len(s.response_ids) for g in groups for s in g)

        names = [*ENGINES, "hf"]
        print(f"{args.prompts} prompts x G={args.group}, sampling at temperature 1")
        print("| max:min new tokens | vLLM in-process tok/s | vLLM 3 processes tok/s | HF generate tok/s "
              "| in-process / 3 processes | in-process / HF | s/call (in-process, 3 processes, HF) |")
        print("|---|---|---|---|---|---|---|")
        for setting in args.settings:
            max_new_tokens, min_new_tokens = (int(x) for x in setting.split(":"))
            for name in names:  # warm-up
                run(name, max_new_tokens, min_new_tokens, seed=10_000)
            rates: dict[str, list[float]] = {name: [] for name in names}
            secs: dict[str, list[float]] = {name: [] for name in names}
            for r in range(args.repeats):
                for name in names:
                    t0 = time.perf_counter()
                    tokens = run(name, max_new_tokens, min_new_tokens, seed=r)
                    secs[name].append(time.perf_counter() - t0)
                    rates[name].append(tokens / secs[name][-1])
            inproc, separate, hf = (statistics.median(rates[name]) for name in names)
            calls = ", ".join(f"{statistics.median(secs[name]):.3f}" for name in names)
            print(f"| {setting} | {inproc:.0f} | {separate:.0f} | {hf:.0f} | {inproc / separate:.2f} | "
                  f"{inproc / hf:.2f} | {calls} |", flush=True)
        ray.get([actor.close.remote() for actor in actors.values()])
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
