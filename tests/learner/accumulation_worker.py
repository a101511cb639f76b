"""One learner worker of the gradient-accumulation test: DeepSpeed (ZeRO-2, gloo) on the tiny model.

For each micro-batch size it builds the real :class:`Policy`, accumulates one mini-batch's gradient for
every loss through :meth:`Policy.accumulate` (the code ``update`` runs), reads the full gradient before the
optimizer step, and rank 0 saves them.
"""
from __future__ import annotations

import os

import torch

MINI_BATCH = 16  # sequences: 2 prompts x G 8


def fixture_batch(tokenizer):
    """A batch with ragged responses, a masked (tool-output) span, a teacher row and stale behaviour
    log-probs, identical in every process."""
    from apmpo_ray.learner.batch import build_batch
    from apmpo_ray.rollout.types import Prompt, RolloutGroup, Sample

    g = torch.Generator().manual_seed(1234)
    groups = []
    for p in range(2):
        prompt = [tokenizer.bos_token_id] + tokenizer.encode(f"{p + 3}+{p + 4}=", add_special_tokens=False)
        samples = []
        for j in range(8):
            n = int(torch.randint(1, 6, (1,), generator=g))
            ids = torch.randint(4, 14, (n,), generator=g).tolist() + [tokenizer.eos_token_id]
            mask = [1] * len(ids)
            if j == 2 and len(ids) > 3:
                mask[1:3] = [0, 0]  # inserted tool output: not the policy's tokens
            samples.append(Sample(ids, (-torch.rand(len(ids), generator=g) * 2).tolist(), "",
                                  reward=float(torch.rand(1, generator=g) < 0.5), loss_mask=mask,
                                  off_policy=(p == 1 and j == 5)))
        groups.append(RolloutGroup(Prompt(p, prompt, ""), samples, version=0))
    return build_batch(groups, tokenizer.pad_token_id)


def cases():
    from apmpo_ray.algorithms import LOSSES

    for name, spec in LOSSES.items():
        yield name, "decoupled"
        if not spec.sequence_level:
            yield name, "tis"
        if name in ("grpo", "apmpo"):
            yield name, "none"


def run(rank: int, world: int, port: int, out_path: str, model_path: str, micro_sizes: list[int]) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
    import deepspeed
    from deepspeed.utils import safe_get_full_grad
    from transformers import AutoTokenizer

    from apmpo_ray.algorithms import AlgorithmConfig, prepare_step
    from apmpo_ray.config import load_config
    from apmpo_ray.learner.metrics import reduce_across_workers
    from apmpo_ray.learner.policy import Policy

    torch.manual_seed(0)
    deepspeed.init_distributed(dist_backend="gloo", auto_mpi_discovery=False)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    batch = fixture_batch(tokenizer)
    rows = torch.arange(rank, len(batch), world)
    results = {}
    for micro in micro_sizes:
        cfg = load_config(None, [f"trainer.mini_batch_size={MINI_BATCH}", "rollout.prompts_per_step=2",
                                 f"trainer.micro_batch_size={micro}", f"trainer.num_workers={world}"])
        policy = Policy(model_path, cfg.trainer, cfg.algo, world_size=world)
        shard = batch.select(rows)
        # π_prox from the learner's weights; the sampler's log-probs are stale (a fixed perturbation)
        proximal = policy.score(shard)
        shard = shard.with_(proximal_logprobs=proximal, ref_logprobs=policy.score(shard, reference=True),
                            behaviour_logprobs=(proximal + 0.3 * torch.sin(7.0 * proximal)) * shard.loss_mask)
        everything = torch.arange(len(shard))
        (tokens,) = policy._global_token_counts(shard, [everything])
        for name, correction in cases():
            algo = AlgorithmConfig(name=name, off_policy_correction=correction)
            step = prepare_step(batch.rewards.view(2, 8), batch.loss_mask, algo)
            part = shard.with_(advantages=step.advantages[rows])
            metrics, finite = policy.accumulate(part, everything, step.loss, step.controls.select(rows, len(batch)),
                                                global_tokens=tokens, global_sequences=float(MINI_BATCH))
            assert finite, (name, correction)
            grad = torch.cat([safe_get_full_grad(p).detach().double().flatten()
                              for _, p in policy.module.named_parameters()])
            policy._optimizer_step(skip=True)  # a zero-lr step: clears the gradient, weights untouched
            loss = reduce_across_workers({"loss/policy": metrics["loss/policy"]}, policy.engine.device)
            results[(name, correction, micro)] = (grad, loss["loss/policy"])
    if rank == 0:
        torch.save(results, out_path)
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
