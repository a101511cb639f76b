"""The Ray Train loop: each learner worker pulls step k's batch, updates the policy with its shard, and
rank 0 broadcasts the new weights, publishes the version and logs the step."""
from __future__ import annotations

import time
from pathlib import Path

import torch

from ..algorithms import prepare_step
from ..config import Config, config_from_dict
from .batch import build_batch
from .policy import Policy, _select_keywords


def _mean_across_workers(metrics: dict[str, float]) -> dict[str, float]:
    if not (torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1):
        return metrics
    keys = sorted(metrics)
    values = torch.tensor([metrics[k] for k in keys], dtype=torch.float64)
    torch.distributed.all_reduce(values)
    return dict(zip(keys, (values / torch.distributed.get_world_size()).tolist()))


def batch_metrics(batch, num_groups: int, group_size: int) -> dict[str, float]:
    rewards = batch.rewards.view(num_groups, group_size)
    lengths = batch.response_mask.sum(dim=1)
    solved = (rewards > 0).any(dim=1).float().mean()
    return {"reward/mean": float(rewards.mean()), "reward/std": float(rewards.std(unbiased=False)),
            "reward/groups_any_correct": float(solved),
            "reward/groups_all_equal": float((rewards.std(dim=1) == 0).float().mean()),
            "response/length_mean": float(lengths.mean()), "response/length_max": float(lengths.max())}


class LearnerLoop:
    """One worker's training; plain class (Ray Train calls :func:`train_loop_per_worker`)."""

    def __init__(self, cfg: Config, model_path: str, coordinator, generators: list, *, rank: int, world_size: int,
                 run_id: str | None = None, tracking_uri: str | None = None, final_model_dir: str | None = None):
        from transformers import AutoTokenizer

        self.cfg, self.rank, self.world_size = cfg, rank, world_size
        self.coordinator = coordinator
        self.generators = generators
        self.run_id = run_id
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        torch.manual_seed(cfg.trainer.seed)
        self.policy = Policy(model_path, cfg.trainer, cfg.algo, temperature=cfg.rollout.temperature,
                             world_size=world_size)
        self.final_model_dir = final_model_dir
        self.broadcaster = self.logger = None
        if rank == 0:
            from ..weight_sync import WeightBroadcaster

            t = cfg.trainer
            self.broadcaster = WeightBroadcaster(generators, backend=t.weight_sync_backend,
                                                 bucket_mb=t.weight_sync_bucket_mb, timeout_s=t.weight_sync_timeout_s)
            self.broadcaster.setup()
            if run_id:
                from ..tracking import RunLogger

                self.logger = RunLogger(tracking_uri, run_id)

    def run(self, start_step: int = 0) -> None:
        import ray

        for step in range(start_step, self.cfg.trainer.max_steps):
            waited = time.monotonic()
            groups, stream_stats = ray.get(self.coordinator.get_batch.remote(step))
            waited = time.monotonic() - waited
            started = time.monotonic()
            metrics = self.train_step(step, groups)
            train_s = time.monotonic() - started
            metrics.update(stream_stats)
            metrics["perf/learner_wait_s"] = waited
            metrics["perf/train_s"] = train_s
            metrics["perf/learner_idle_frac"] = waited / max(waited + train_s, 1e-9)
            self._publish(step, metrics)
        self.finish()

    def train_step(self, step: int, groups) -> dict[str, float]:
        cfg = self.cfg
        group_size = len(groups[0].samples)
        batch = build_batch(groups, self.tokenizer.pad_token_id)
        inputs = prepare_step(batch.rewards.view(len(groups), group_size), cfg.algo)
        batch = batch.with_(advantages=inputs.advantages)
        rows = torch.arange(self.rank, len(batch), self.world_size)  # groups stay spread over workers
        mine = batch.select(rows)
        started = time.monotonic()
        old = self.policy.score(mine) if cfg.trainer.recompute_old_logprobs else mine.behaviour_logprobs
        ref = self.policy.score(mine, reference=True) if cfg.algo.beta > 0 else None
        mine = mine.with_(old_logprobs=old, ref_logprobs=ref)
        metrics = self.policy.update(mine, _select_keywords(inputs.loss_keywords, rows, len(batch)),
                                     epochs=cfg.trainer.ppo_epochs, seed=cfg.trainer.seed * 100_003 + step)
        tokens = float(mine.response_mask.sum() + mine.attention_mask.sum()) * cfg.trainer.ppo_epochs
        metrics["perf/train_tokens_per_s"] = tokens / max(time.monotonic() - started, 1e-9)
        mismatch = ((old - mine.behaviour_logprobs).abs() * mine.response_mask).sum() / mine.response_mask.sum()
        metrics["rollout/behaviour_logprob_gap"] = float(mismatch)
        metrics["train/skipped_updates"] = float(self.policy.skipped_updates)
        metrics = _mean_across_workers(metrics)
        if self.world_size > 1:
            metrics["perf/train_tokens_per_s"] *= self.world_size
        metrics.update(inputs.controls.as_metrics())
        metrics.update(batch_metrics(batch, len(groups), group_size))
        return metrics

    def _publish(self, step: int, metrics: dict[str, float]) -> None:
        """New weights to the generators (every ``weight_sync_every`` steps), then the step's record."""
        import ray

        version = step + 1
        sync = version % self.cfg.trainer.weight_sync_every == 0
        if sync and self.cfg.trainer.zero_stage == 3 and self.rank != 0:
            for _ in self.policy.named_weights():  # ZeRO-3 gathers are collective: every rank takes part
                pass
        if self.rank != 0:
            return
        metrics["perf/weight_sync_s"] = 0.0
        if sync:
            metrics["perf/weight_sync_s"] = self.broadcaster.broadcast(self.policy.named_weights(), version)
            ray.get(self.coordinator.publish_version.remote(version))
        metrics["trainer/version"] = float(version)
        self._maybe_evaluate(version, metrics)
        if self.logger is not None:
            self.logger.log_metrics(metrics, step=step)
        ray.get(self.coordinator.record_step.remote({"step": step, **metrics}))

    def _maybe_evaluate(self, version: int, metrics: dict[str, float]) -> None:
        """Held-out evaluation with the weights just broadcast, through the first generator."""
        from ..evaluation import actor_generate_fn, run_periodic_eval, should_evaluate

        if not should_evaluate(self.cfg, version):
            return
        started = time.monotonic()
        results = run_periodic_eval(self.cfg, actor_generate_fn(self.generators[0]), self.tokenizer, version,
                                    run_id=self.run_id)
        metrics.update({k: v for k, v in results.items() if k.startswith("eval/avg/")})
        metrics["perf/eval_s"] = time.monotonic() - started

    def finish(self) -> None:
        if self.rank != 0:
            if self.cfg.trainer.zero_stage == 3:
                for _ in self.policy.named_weights():
                    pass
            return
        if self.final_model_dir:
            Path(self.final_model_dir).mkdir(parents=True, exist_ok=True)
            self.policy.save_pretrained(self.final_model_dir, self.tokenizer)
            if self.logger is not None:
                self.logger.log_artifacts(self.final_model_dir, "final_model")
        self.broadcaster.close()


def train_loop_per_worker(config: dict) -> None:
    """Entry point Ray Train runs on every learner worker."""
    import ray.train

    context = ray.train.get_context()
    cfg = config_from_dict(config["cfg"])
    loop = LearnerLoop(cfg, config["model_path"], config["coordinator"], config["generators"],
                       rank=context.get_world_rank(), world_size=context.get_world_size(),
                       run_id=config.get("run_id"), tracking_uri=config.get("tracking_uri"),
                       final_model_dir=config.get("final_model_dir"))
    loop.run(config.get("start_step", 0))
