"""The learner-side GPU paths that fit the lent GPU machine (one H200; torch and transformers, no Ray, vLLM or
network; DeepSpeed travels as a wheel built here). Not in CI. One prepared command:

    python benchmarks/gpu_check.py                 # on the GPU: all three checks, figures printed as a table
    python benchmarks/gpu_check.py --smoke --device cpu    # the same code on tiny shapes, on this CPU

1. The DeepSpeed policy update (ZeRO-2, bf16 on GPU) of randomly initialised models with the shapes of
   Qwen2.5-0.5B and -1.5B, built from config with nothing downloaded: tokens/s and MFU (6·N·tokens/s over the
   chip's bf16 peak, --peak-tflops).
2. The losses on the device: APMPO and GRPO forward+backward time, and APMPO against a float64 CPU evaluation.
3. Packing the weights into broadcast buckets on the device: GB/s, and the implied seconds per sync of 1.5B
   parameters in bf16 (the NCCL transport packs on the GPU; NCCL refuses CPU tensors).
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHAPES = {  # Qwen2.5's published configurations (config.json of the hub models)
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "qwen2.5-1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                         num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "smoke": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=512, tie_word_embeddings=True),
}


def sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def build_model(shape: dict, directory: Path) -> int:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(**shape, max_position_embeddings=4096, torch_dtype="bfloat16")
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(directory)
    return sum(p.numel() for p in model.parameters())


def policy_update(name: str, shape: dict, device: str, batch: int, length: int, steps: int, peak: float) -> dict:
    from apmpo_ray.algorithms import AlgorithmConfig, prepare_step
    from apmpo_ray.config import load_config
    from apmpo_ray.learner.batch import TrainBatch
    from apmpo_ray.learner.policy import Policy

    with tempfile.TemporaryDirectory() as tmp:
        params = build_model(shape, Path(tmp))
        cfg = load_config(None, [f"trainer.mini_batch_size={batch}", f"rollout.prompts_per_step={batch // 8}",
                                 f"trainer.use_gpu={'true' if device != 'cpu' else 'false'}", "trainer.bf16=true",
                                 "algo.beta=0.0", f"trainer.micro_batch_size={min(batch, 8)}"])
        policy = Policy(tmp, cfg.trainer, cfg.algo, sequences_per_step=batch)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, shape["vocab_size"], (batch, length), generator=g)
    mask = torch.zeros(batch, length - 1)
    mask[:, length // 4:] = 1  # a quarter prompt, the rest response
    rewards = (torch.rand(batch // 8, 8, generator=g) < 0.5).double()
    step = prepare_step(rewards, mask, AlgorithmConfig(name="apmpo"))
    tb = TrainBatch(ids, torch.ones_like(ids), mask, torch.zeros_like(mask), rewards.flatten().float(),
                    torch.zeros(batch, dtype=torch.bool), torch.full((batch,), length // 4 - 1))
    tb = tb.with_(advantages=step.advantages, proximal_logprobs=policy.score(tb))
    times = []
    for i in range(steps + 1):
        sync(device)
        started = time.perf_counter()
        policy.update(tb, step.loss, step.controls, epochs=1, seed=i)
        sync(device)
        times.append(time.perf_counter() - started)
    seconds = statistics.median(times[1:])  # the first step includes warm-up
    tokens_per_s = batch * length / seconds
    return {"model": name, "params_M": params / 1e6, "tokens_per_s": tokens_per_s,
            "mfu": 6 * params * tokens_per_s / (peak * 1e12), "step_s": seconds}


def losses_on(device: str, batch: int, length: int, repeats: int) -> dict:
    from apmpo_ray.algorithms import AlgorithmConfig, LossInputs, prepare_step

    g = torch.Generator().manual_seed(0)
    old = -torch.rand(batch, length, generator=g) * 4
    logprobs = old + 0.2 * torch.randn(batch, length, generator=g)
    mask = torch.ones(batch, length)
    rewards = (torch.rand(batch // 8, 8, generator=g) < 0.4).float()
    out = {}
    for name in ("grpo", "apmpo"):
        step = prepare_step(rewards, mask, AlgorithmConfig(name=name))
        times = []
        for dtype in (torch.float32,):
            for _ in range(repeats + 1):
                leaf = logprobs.to(device, dtype).requires_grad_(True)
                inputs = LossInputs(leaf, old.to(device, dtype), step.advantages.to(device, dtype), mask.to(device),
                                    global_tokens=float(mask.sum()), global_sequences=float(batch))
                sync(device)
                started = time.perf_counter()
                step.loss(inputs, step.controls.to(device)).loss.backward()
                sync(device)
                times.append(time.perf_counter() - started)
        out[f"{name}_ms"] = 1e3 * statistics.median(times[1:])
    step = prepare_step(rewards, mask, AlgorithmConfig(name="apmpo"))
    values = {}
    for where, dtype in ((device, torch.float32), ("cpu", torch.float64)):
        leaf = logprobs.to(where, dtype).requires_grad_(True)
        inputs = LossInputs(leaf, old.to(where, dtype), step.advantages.to(where, dtype), mask.to(where),
                            global_tokens=float(mask.sum()), global_sequences=float(batch))
        loss = step.loss(inputs, step.controls.to(where)).loss
        (grad,) = torch.autograd.grad(loss, leaf)
        values[where if dtype == torch.float32 else "cpu64"] = (loss.double().cpu(), grad.double().cpu())
    (l32, g32), (l64, g64) = values[device], values["cpu64"]
    out["apmpo_grad_rel_err_fp32"] = float(torch.linalg.norm(g32 - g64) / torch.linalg.norm(g64))
    out["apmpo_over_grpo"] = out["apmpo_ms"] / out["grpo_ms"]
    return out


def bucket_packing(device: str, params: int, bucket_mb: int, repeats: int) -> dict:
    from apmpo_ray.weight_sync.buckets import TensorMeta, pack, plan_buckets

    # a 1.5B-parameter model as 28 layers of bf16 matrices
    per_layer = params // 28
    tensors = [torch.randn(per_layer // 4096, 4096, dtype=torch.bfloat16, device=device) for _ in range(28)]
    metas = [TensorMeta.of(f"layer{i}", t) for i, t in enumerate(tensors)]
    sizes = plan_buckets(metas, bucket_mb * 2**20)
    total = sum(m.nbytes for m in metas)
    times = []
    for _ in range(repeats + 1):
        sync(device)
        started = time.perf_counter()
        start = 0
        for count in sizes:
            pack(tensors[start:start + count], device=device)
            start += count
        sync(device)
        times.append(time.perf_counter() - started)
    seconds = statistics.median(times[1:])
    return {"bytes_GB": total / 1e9, "buckets": len(sizes), "pack_GB_per_s": total / seconds / 1e9,
            "pack_s_per_sync": seconds}


def init_single_process(backend: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1", LOCAL_RANK="0",
                      LOCAL_WORLD_SIZE="1")
    import deepspeed

    deepspeed.init_distributed(dist_backend=backend, auto_mpi_discovery=False)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes (a CPU run of the same code)")
    parser.add_argument("--peak-tflops", type=float, default=790.0, help="bf16 dense peak (H200: about 790)")
    args = parser.parse_args(argv)
    device = args.device
    print(f"torch {torch.__version__}, device {torch.cuda.get_device_name() if device == 'cuda' else device}")
    init_single_process("nccl" if device == "cuda" else "gloo")
    models = ["smoke"] if args.smoke else ["qwen2.5-0.5b", "qwen2.5-1.5b"]
    batch, length, steps = (16, 64, 2) if args.smoke else (32, 1024, 5)
    print(f"\n1. DeepSpeed policy update (ZeRO-2, {'bf16' if device == 'cuda' else 'fp32'}), batch {batch} x {length} tokens")
    print(f"{'model':>14} {'params M':>9} {'tokens/s':>10} {'MFU':>6} {'s/update':>9}")
    for name in models:
        r = policy_update(name, SHAPES[name], device, batch, length, steps, args.peak_tflops)
        print(f"{r['model']:>14} {r['params_M']:9.0f} {r['tokens_per_s']:10.0f} {r['mfu']:6.1%} {r['step_s']:9.3f}")
    shape = (32, 512) if args.smoke else (64, 4096)
    r = losses_on(device, *shape, repeats=5 if args.smoke else 50)
    print(f"\n2. Losses on {device}, B x T = {shape[0]} x {shape[1]}: GRPO {r['grpo_ms']:.2f} ms, APMPO "
          f"{r['apmpo_ms']:.2f} ms ({r['apmpo_over_grpo']:.2f}x); APMPO gradient vs float64 CPU: "
          f"relative error {r['apmpo_grad_rel_err_fp32']:.1e} in float32")
    params = 10_000_000 if args.smoke else 1_500_000_000
    r = bucket_packing(device, params, 64 if args.smoke else 512, repeats=3 if args.smoke else 10)
    print(f"\n3. Packing {r['bytes_GB']:.2f} GB of bf16 weights into {r['buckets']} buckets on {device}: "
          f"{r['pack_GB_per_s']:.1f} GB/s, {r['pack_s_per_sync']:.3f} s per sync of {params / 1e9:.1f}B parameters")


if __name__ == "__main__":
    main()
