"""The trained policy: a Hugging Face causal LM inside a DeepSpeed engine, plus its frozen reference.

A plain class (no Ray) so the update is testable in one process; the Ray Train loop wraps it.
"""
from __future__ import annotations

import copy
import time
from typing import Optional

import torch

from ..algorithms import AlgorithmConfig, Controls, LossInputs, LossSpec, kl_penalty
from ..config import TrainerConfig
from .batch import TrainBatch, token_logprobs
from .metrics import MetricReducer


def optimizer_steps(trainer: TrainerConfig, sequences_per_step: int) -> int:
    """Optimizer steps over the whole run: mini-batches per learner step x epochs x steps."""
    return max(1, trainer.max_steps * trainer.ppo_epochs * (sequences_per_step // trainer.mini_batch_size))


def scheduler_config(trainer: TrainerConfig, total_steps: int) -> dict | None:
    """DeepSpeed's own schedulers: linear warmup, then constant (WarmupLR) or cosine (WarmupCosineLR)."""
    if trainer.lr_schedule == "constant":
        if trainer.warmup_steps == 0:
            return None
        return {"type": "WarmupLR", "params": {"warmup_min_lr": 0.0, "warmup_max_lr": trainer.lr,
                                               "warmup_num_steps": trainer.warmup_steps, "warmup_type": "linear"}}
    return {"type": "WarmupCosineLR", "params": {"total_num_steps": total_steps, "warmup_min_ratio": 0.0,
                                                 "warmup_num_steps": trainer.warmup_steps,
                                                 "cos_min_ratio": trainer.lr_min_ratio}}


def deepspeed_config(trainer: TrainerConfig, world_size: int, micro_batch: int, total_steps: int = 1) -> dict:
    schedule = scheduler_config(trainer, total_steps)
    return {
        **({"scheduler": schedule} if schedule else {}),
        "train_batch_size": trainer.mini_batch_size,
        "train_micro_batch_size_per_gpu": micro_batch,
        "gradient_accumulation_steps": trainer.mini_batch_size // (micro_batch * world_size),
        "gradient_clipping": trainer.grad_clip,
        "zero_optimization": {"stage": trainer.zero_stage},
        # The client optimizer is torch's AdamW: DeepSpeed's fused CPU Adam would need a compiler at start.
        "zero_allow_untested_optimizer": True,
        "bf16": {"enabled": trainer_dtype(trainer) == torch.bfloat16},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


def trainer_dtype(trainer: TrainerConfig) -> torch.dtype:
    return torch.bfloat16 if trainer.use_gpu and torch.cuda.is_available() and trainer.bf16 else torch.float32


class Policy:
    def __init__(self, model_path: str, trainer: TrainerConfig, algo: AlgorithmConfig, *, temperature: float = 1.0,
                 world_size: int = 1, sequences_per_step: int = 0):
        import deepspeed
        from transformers import AutoModelForCausalLM

        self.trainer, self.algo, self.temperature = trainer, algo, temperature
        self.world_size = world_size
        per_rank = trainer.mini_batch_size // world_size
        micro = min(trainer.micro_batch_size or per_rank, per_rank)
        if per_rank % micro:
            raise ValueError(f"trainer.micro_batch_size ({micro}) must divide the per-worker mini-batch ({per_rank})")
        self.micro_batch = micro
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
        model.config.use_cache = False
        self.reference = None
        if algo.beta > 0:
            self.reference = copy.deepcopy(model).eval().requires_grad_(False)
        optimizer = torch.optim.AdamW(model.parameters(), lr=trainer.lr, weight_decay=trainer.weight_decay)
        total = optimizer_steps(trainer, sequences_per_step or trainer.mini_batch_size)
        self.engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer,
                                               config=deepspeed_config(trainer, world_size, micro, total))
        if self.reference is not None:
            self.reference.to(self.engine.device)
        self.skipped_updates = 0

    @property
    def lr(self) -> float:
        return float(self.engine.optimizer.param_groups[0]["lr"])

    @property
    def module(self) -> torch.nn.Module:
        return self.engine.module

    def _forward(self, model, batch: TrainBatch, with_entropy: bool = False):
        device = self.engine.device
        logits = model(input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device)).logits
        return token_logprobs(logits, batch.input_ids.to(device), self.temperature, with_entropy)

    @torch.no_grad()
    def score(self, batch: TrainBatch, reference: bool = False) -> torch.Tensor:
        """Token log-probs of the batch under the current (or reference) weights, in micro-batches."""
        model = self.reference if reference else self.engine.module
        was_training = model.training
        model.eval()
        out = torch.zeros(batch.loss_mask.shape)
        for start in range(0, len(batch), self.micro_batch):
            rows = torch.arange(start, min(start + self.micro_batch, len(batch)))
            part = batch.select(rows)
            logprobs, _ = self._forward(model, part)
            out[rows, : logprobs.shape[1]] = logprobs.float().cpu()
        model.train(was_training)
        return out

    def update(self, batch: TrainBatch, loss: LossSpec, controls: Controls, *, epochs: int,
               seed: int) -> dict[str, float]:
        """``epochs`` passes over ``batch`` (this worker's rows) in shuffled mini-batches.

        Each mini-batch is this worker's part of a global one (the same position on every worker). Its
        loss is normalised by the global mini-batch's token and sequence counts, so the gradient DeepSpeed
        accumulates and averages over workers is that of the whole mini-batch, whatever the micro-batch
        size or the number of workers. ``controls`` hold per-sequence values aligned with ``batch``'s rows.

        Without ``batch.proximal_logprobs``, π_prox is the policy this update starts from, and the update fills
        them in: the first mini-batch's from its own forward (the weights have not moved yet), every other
        row's by a scoring pass before the first optimizer step. With one mini-batch and one epoch that saves
        the scoring pass altogether.
        """
        self.engine.train()
        per_rank_mini = self.micro_batch * self.engine.gradient_accumulation_steps()
        generator = torch.Generator().manual_seed(seed)
        reducer = MetricReducer()
        timing = {"perf/forward_backward_s": 0.0, "perf/optimizer_s": 0.0}  # summed over mini-batches
        fill_proximal = batch.proximal_logprobs is None
        for _ in range(epochs):
            order = torch.randperm(len(batch), generator=generator)
            minis = [order[start: start + per_rank_mini]
                     for start in range(0, len(batch) - per_rank_mini + 1, per_rank_mini)]
            if fill_proximal:
                started = time.monotonic()
                batch.proximal_logprobs = torch.zeros(batch.loss_mask.shape)
                rest = order[per_rank_mini:]
                if len(rest):
                    scored = self.score(batch.select(rest))
                    batch.proximal_logprobs[rest, : scored.shape[1]] = scored
                timing["perf/logprob_recompute_s"] = time.monotonic() - started
            tokens = self._global_token_counts(batch, minis)
            for i, (mini, global_tokens) in enumerate(zip(minis, tokens)):
                started = time.monotonic()
                metrics, finite = self.accumulate(batch, mini, loss, controls, global_tokens=global_tokens,
                                                  global_sequences=float(per_rank_mini * self.world_size),
                                                  proximal_from_forward=fill_proximal and i == 0)
                stepped = time.monotonic()
                self._optimizer_step(skip=not finite)
                timing["perf/forward_backward_s"] += stepped - started
                timing["perf/optimizer_s"] += time.monotonic() - stepped
                reducer.add(metrics)
            fill_proximal = False
        return {**reducer.result(), **timing}

    def _global_token_counts(self, batch: TrainBatch, minis: list[torch.Tensor]) -> list[float]:
        """Loss tokens of each global mini-batch: one all-reduce per epoch, on the backend's device."""
        counts = torch.tensor([float(batch.loss_mask[rows].sum()) for rows in minis], dtype=torch.float64,
                              device=self.engine.device)
        if self.world_size > 1:
            torch.distributed.all_reduce(counts)
        return counts.cpu().tolist()

    def accumulate(self, batch: TrainBatch, rows: torch.Tensor, loss: LossSpec, controls: Controls, *,
                   global_tokens: float, global_sequences: float,
                   proximal_from_forward: bool = False) -> tuple[dict[str, float], bool]:
        """Forward and backward of ``rows`` (one worker's part of a mini-batch) in micro-batches, leaving the
        mini-batch's gradient accumulated for :meth:`_optimizer_step`; False if any loss was not finite.
        ``proximal_from_forward``: π_prox of these rows is the forward's own (detached) log-probs, written
        into ``batch.proximal_logprobs``."""
        reducer = MetricReducer()
        all_finite = True
        total_loss = 0.0
        for start in range(0, len(rows), self.micro_batch):
            micro = rows[start: start + self.micro_batch]
            last = start + self.micro_batch >= len(rows)
            part = batch.select(micro)
            if proximal_from_forward:
                part = part.with_(proximal_logprobs=None)
            metrics, finite, logprobs = self._micro_step(part, loss, controls.select(micro, len(batch)),
                                                         global_tokens, global_sequences, skip_step=last)
            if proximal_from_forward:
                batch.proximal_logprobs[micro, : logprobs.shape[1]] = logprobs.float().cpu()
            all_finite &= finite
            total_loss += metrics.pop("loss/policy")
            reducer.add(metrics)
        # Summed over micro-batches this is the worker's share; times the world size its mean over workers
        # is the mini-batch loss.
        return {**reducer.result(), "loss/policy": total_loss * self.world_size}, all_finite

    def _micro_step(self, part: TrainBatch, loss: LossSpec, controls: Controls, global_tokens: float,
                    global_sequences: float, *, skip_step: bool) -> tuple[dict[str, float], bool, torch.Tensor]:
        device = self.engine.device
        logprobs, entropy = self._forward(self.engine, part, with_entropy=True)
        mask = part.loss_mask.to(device)
        proximal = logprobs.detach() if part.proximal_logprobs is None else part.proximal_logprobs.to(device)
        inputs = LossInputs(logprobs, proximal, part.advantages.to(device), mask,
                            global_tokens=global_tokens, global_sequences=global_sequences,
                            behaviour_logprobs=part.behaviour_logprobs.to(device),
                            off_policy=part.off_policy.to(device))
        out = loss(inputs, controls.to(device))
        ref = None if part.ref_logprobs is None else part.ref_logprobs.to(device)
        kl, kl_metrics = kl_penalty(logprobs, ref, mask, beta=self.algo.beta, global_sequences=global_sequences)
        total = out.loss + kl
        metrics = {**out.metrics, **kl_metrics, "loss/policy": float(out.loss.detach()),
                   "policy/entropy": float((entropy.detach() * mask).sum() / mask.sum())}
        finite = bool(torch.isfinite(total))
        if not finite:
            # Keep DeepSpeed's backward/step bookkeeping but contribute a zero gradient; the step is skipped below.
            total = torch.nan_to_num(logprobs, 0.0, 0.0, 0.0).sum() * 0.0
        # The loss is already this micro-batch's share of the mini-batch loss: no division by the number of
        # micro-batches, and DeepSpeed's mean over workers is undone by the world size.
        self.engine.backward(total * self.world_size, scale_wrt_gas=False)
        if not skip_step:
            self.engine.step()
        return metrics, finite, logprobs.detach()

    def _optimizer_step(self, *, skip: bool) -> None:
        """The mini-batch boundary step; with a non-finite loss on any rank, no rank moves its weights."""
        if torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
            flag = torch.tensor([float(skip)], device=self.engine.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            skip = bool(flag.item())
        if not skip:
            self.engine.step()
            return
        # A zero learning rate leaves AdamW's parameters (and decoupled weight decay) untouched. The schedule
        # still advances (a step's batch was consumed); without one, the learning rate comes back as it was.
        saved = [group["lr"] for group in self.engine.optimizer.param_groups]
        for group in self.engine.optimizer.param_groups:
            group["lr"] = 0.0
        self.engine.step()
        if self.engine.lr_scheduler is None:
            for group, lr in zip(self.engine.optimizer.param_groups, saved):
                group["lr"] = lr
        self.skipped_updates += 1

    def full_weights(self, every_rank: bool = False) -> Optional[list[tuple[str, torch.Tensor]]]:
        """Every parameter by Hugging Face name, on rank 0 (None on the others), or on ``every_rank``.

        Under ZeRO-3 the parameters are partitioned and gathering them is collective: *every* rank must call
        this at the same point, and the receiving ranks get copies. Under ZeRO-0/1/2 no rank needs to take
        part and they get the live tensors (valid until the next optimizer step).
        """
        wanted = every_rank or not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0
        if self.trainer.zero_stage != 3:
            return [(name, p.data.detach()) for name, p in self.engine.module.named_parameters()] if wanted else None
        import deepspeed

        out = []
        for name, param in self.engine.module.named_parameters():
            with deepspeed.zero.GatheredParameters([param]):
                if wanted:
                    out.append((name, param.data.detach().clone()))
        return out if wanted else None

    def save_checkpoint(self, directory: str) -> None:
        """Model, optimizer and scheduler state of this rank (collective: every rank calls it)."""
        self.engine.save_checkpoint(directory, tag="deepspeed", client_state={"skipped_updates": self.skipped_updates},
                                    save_latest=False)

    def load_checkpoint(self, directory: str) -> None:
        path, client_state = self.engine.load_checkpoint(directory, tag="deepspeed")
        if path is None:
            raise FileNotFoundError(f"no DeepSpeed checkpoint under {directory}")
        self.skipped_updates = int((client_state or {}).get("skipped_updates", 0))

    def save_pretrained(self, directory: str, tokenizer=None, weights=None) -> None:
        """Rank 0, with ``weights`` from :meth:`full_weights` (taken here when not given: not under ZeRO-3)."""
        model = self.engine.module
        weights = weights if weights is not None else self.full_weights()
        model.save_pretrained(directory, state_dict={k: v.cpu() for k, v in weights})
        if tokenizer is not None:
            tokenizer.save_pretrained(directory)

