"""The Ray Train loop: each learner worker pulls step k's batch, updates the policy with its shard, and
rank 0 broadcasts the new weights, publishes the version and logs the step."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from ..algorithms import prepare_step, token_advantages
from ..config import Config, config_from_dict, config_hash
from .batch import build_batch, place_response_values
from .metrics import reduce_across_workers
from .policy import Policy
from .publisher import WeightPublisher

log = logging.getLogger(__name__)


def shard_rows(num_groups: int, group_size: int, rank: int, world_size: int) -> torch.Tensor:
    """The global batch rows (group-major) of the groups a worker trains on: groups rank, rank + world, ..."""
    groups = torch.arange(rank, num_groups, world_size)
    return (groups.unsqueeze(1) * group_size + torch.arange(group_size)).flatten()


def needs_proximal(cfg: Config) -> bool:
    """Whether the learner recomputes log-probs before the update: π_prox for ``decoupled``, π_old for
    ``none`` unless the generators' behaviour log-probs are to stand in (``tis`` needs neither)."""
    correction = cfg.algo.off_policy_correction
    return correction == "decoupled" or (correction == "none" and cfg.trainer.recompute_old_logprobs)


def hard_token_advantages(groups, sequence_advantages: torch.Tensor, batch) -> torch.Tensor:
    """ARPO's hard attribution: a token shared by several branched trajectories gets their mean advantage."""
    from ..algorithms.arpo import hard_attribution

    rows, start = [], 0
    for group in groups:
        samples = group.samples
        adv = sequence_advantages[start: start + len(samples)].tolist()
        rows += hard_attribution(adv, [s.parent for s in samples], [s.branch_point for s in samples],
                                 [len(s.response_ids) for s in samples])
        start += len(samples)
    return place_response_values(batch, rows)


def batch_metrics(batch, num_groups: int, group_size: int) -> dict[str, float]:
    """Reward and length statistics of the policy's own samples (teacher solutions left out: they would
    flatter the reward and the length)."""
    own = ~batch.off_policy.view(num_groups, group_size)
    rewards = batch.rewards.view(num_groups, group_size)
    lengths = batch.loss_mask.sum(dim=1)[~batch.off_policy]
    mine = rewards[own]
    solved = ((rewards > 0) & own).any(dim=1).float().mean()
    return {"reward/mean": float(mine.mean()), "reward/std": float(mine.std(unbiased=False)),
            "reward/groups_any_correct": float(solved),
            "reward/groups_all_equal": float((rewards.std(dim=1) == 0).float().mean()),
            "response/length_mean": float(lengths.mean()), "response/length_max": float(lengths.max())}


class LearnerLoop:
    """One worker's training; plain class (Ray Train calls :func:`train_loop_per_worker`)."""

    def __init__(self, cfg: Config, model_path: str, coordinator, generators: list, *, rank: int, world_size: int,
                 run_id: str | None = None, tracking_uri: str | None = None, final_model_dir: str | None = None,
                 run_dir: str | None = None, progress=None, launched_at: float | None = None):
        self._launched_at = launched_at
        self.startup_marks: dict[str, float] = {}  # seconds since the launch at which each phase ended here
        self._mark("learner_entered")
        from transformers import AutoTokenizer

        self.cfg, self.rank, self.world_size = cfg, rank, world_size
        self.coordinator = coordinator
        self.generators = generators
        self.run_id = run_id
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        torch.manual_seed(cfg.trainer.seed)
        # colocated: this worker hosts a generator's engine (built before DeepSpeed: on CPU the engine binds
        # the process's compute threads to this worker's cores, which training then shares)
        self.colocated = self._host_engine(model_path) if cfg.rollout.placement == "colocated" else None
        if self.colocated is not None:
            self._mark("engine_ready")
        self.policy = Policy(model_path, cfg.trainer, cfg.algo, temperature=cfg.rollout.temperature,
                             world_size=world_size,
                             sequences_per_step=cfg.rollout.prompts_per_step * cfg.rollout.group_size)
        self._mark("deepspeed_ready")
        self.final_model_dir = final_model_dir
        self.run_dir = Path(run_dir) if run_dir else Path(cfg.trainer.output_dir).resolve() / (run_id or "run")
        self.controls_history: list[dict[str, float]] = []
        self.latest_eval: dict[str, float] = {}
        self.logger = None
        self.progress = progress  # a Ray queue the driver reads each step's record from (rank 0 writes)
        self._system_metrics = None
        self.publisher = WeightPublisher(cfg, self.policy, coordinator, generators, rank=rank,
                                         colocated=self.colocated)
        if self.publisher.broadcaster is not None:
            self._mark("weight_sync_group_formed")
        if rank == 0:
            if run_id:
                from ..tracking import RunLogger

                self.logger = RunLogger(tracking_uri, run_id, background=True)
                self._system_metrics = self._start_system_metrics(tracking_uri, run_id)

    def run(self, start_step: int = 0, resume_from: str | None = None) -> None:
        """Steps ``start_step`` .. max_steps-1. On resume the generators first get the checkpoint's weights
        as version ``start_step``; the coordinator admits nothing until that version is published."""
        if resume_from:
            self._restore(resume_from)
        self.publisher.take()  # what a generator restarted before the first publication gets
        if resume_from and self.publisher.hands_out:
            self.publisher.sync(start_step)
        self._step_started = time.monotonic()
        try:
            self._train(start_step)
        finally:  # the steps logged so far reach the store, a failed run's too
            if self.logger is not None:
                self.logger.flush()
        self.finish()

    def _train(self, start_step: int) -> None:
        generation_before = 0.0
        for step in range(start_step, self.cfg.trainer.max_steps):
            waited = time.monotonic()
            groups, all_rewards, stream_stats = self._next_batch(step)
            waited = time.monotonic() - waited
            if step == start_step:
                self._mark("first_batch")
            started = time.monotonic()
            metrics = self.train_step(step, groups, all_rewards)
            train_s = time.monotonic() - started
            metrics.update(stream_stats)
            if self.colocated is not None:  # the engine's own time, not the calls' wait for this worker's turn
                metrics["perf/generation_s"] = self.colocated.busy_seconds - generation_before
                metrics.pop("perf/generator_idle_frac", None)
                generation_before = self.colocated.busy_seconds
            metrics["perf/learner_wait_s"] = waited
            metrics["perf/train_s"] = train_s
            metrics["perf/learner_idle_frac"] = waited / max(waited + train_s, 1e-9)
            self.controls_history.append({k: v for k, v in metrics.items() if k.startswith("apmpo/")})
            self._publish(step, metrics)
            every = self.cfg.trainer.checkpoint_every
            if every and ((step + 1) % every == 0 or step + 1 == self.cfg.trainer.max_steps):
                self.save_checkpoint(step + 1)

    def _mark(self, phase: str) -> None:
        if self._launched_at is not None:
            self.startup_marks[phase] = time.time() - self._launched_at

    def _host_engine(self, model_path: str):
        from ..generators.colocated import ColocatedEngine
        from ..generators.engine import VLLMGenerator, engine_options

        engine = VLLMGenerator(model_path, **engine_options(self.cfg, self.rank), colocated=True)
        return ColocatedEngine(engine, self.generators[self.rank])

    def _next_batch(self, step: int):
        """Step ``step``'s batch; meanwhile a colocated worker serves its engine's calls, and rank 0 resyncs
        any generator Ray restarted, which could otherwise never produce the batch."""
        import ray

        ref = self.coordinator.get_batch.remote(step, self.rank, self.world_size)
        if self.colocated is not None:
            self.colocated.serve_until(ref)
            self.colocated.sleep()  # the learner's turn on the device
        elif self.rank == 0:
            self.publisher.resync_until(ref, step)
        return ray.get(ref)

    # --- checkpoints -----------------------------------------------------------------------------
    def save_checkpoint(self, next_step: int) -> str:
        import ray

        from . import checkpoint

        directory = checkpoint.checkpoint_dir(self.run_dir, next_step)
        directory.mkdir(parents=True, exist_ok=True)
        self.policy.save_checkpoint(str(directory))
        checkpoint.save_rng(directory, self.rank)
        if torch.distributed.is_initialized():
            torch.distributed.barrier()
        weights = self.policy.full_weights() if self.cfg.trainer.export_hf_checkpoints else None  # every rank
        if self.rank == 0:
            if weights is not None:
                self.policy.save_pretrained(str(directory / "hf_model"), self.tokenizer, weights)
            position = ray.get(self.coordinator.position.remote())
            checkpoint.commit(directory, {
                "step": next_step, "version": next_step, "run_id": self.run_id, "config_hash": config_hash(self.cfg),
                "data": {"next_prompt_index": next_step * self.cfg.rollout.prompts_per_step,
                         "prompts_per_step": self.cfg.rollout.prompts_per_step, "seed": self.cfg.task.seed,
                         "dataset": self.cfg.task.dataset, "admitted_beyond": position["next_index"]},
                "controls_history": self.controls_history, "world_size": self.world_size,
            }, self.run_dir.parent, self.cfg.trainer.keep_checkpoints)
        return str(directory)

    def _restore(self, directory: str) -> None:
        from . import checkpoint

        self.policy.load_checkpoint(directory)
        checkpoint.load_rng(directory, self.rank)
        self.controls_history = list(checkpoint.read_state(directory).get("controls_history", []))

    def train_step(self, step: int, groups, all_rewards) -> dict[str, float]:
        """One update from this worker's groups (its shard, groups rank, rank + world, ...). The batch
        controls and advantages come from ``all_rewards`` [num_groups, G], every worker's groups."""
        cfg = self.cfg
        group_size = len(groups[0].samples)
        rewards = torch.as_tensor(all_rewards, dtype=torch.float64)
        inputs = prepare_step(rewards, None, cfg.algo)
        rows = shard_rows(rewards.shape[0], group_size, self.rank, self.world_size)
        mine = build_batch(groups, self.tokenizer.pad_token_id)
        sequence_advantages = inputs.sequence_advantages[rows]
        if cfg.algo.name == "arpo" and cfg.arpo.attribution == "hard":
            advantages = hard_token_advantages(groups, sequence_advantages, mine)
        else:
            advantages = token_advantages(sequence_advantages, mine.loss_mask)
        started = time.monotonic()
        recompute = needs_proximal(cfg)
        ref = self.policy.score(mine, reference=True) if cfg.algo.beta > 0 else None
        recompute_s = time.monotonic() - started
        # recomputed π_prox/π_old: the update fills them in from the weights it starts from
        mine = mine.with_(advantages=advantages, proximal_logprobs=None if recompute else mine.behaviour_logprobs,
                          ref_logprobs=ref)
        metrics = self.policy.update(mine, inputs.loss, inputs.controls.select(rows, rewards.numel()),
                                     epochs=cfg.trainer.ppo_epochs, seed=cfg.trainer.seed * 100_003 + step)
        tokens = float(mine.loss_mask.sum() + mine.attention_mask.sum()) * cfg.trainer.ppo_epochs
        metrics["perf/train_tokens_per_s"] = tokens / max(time.monotonic() - started, 1e-9)
        metrics["perf/logprob_recompute_s"] = recompute_s + metrics.pop("perf/logprob_recompute_s", 0.0)
        if recompute:
            proximal = mine.proximal_logprobs
            gap = ((proximal - mine.behaviour_logprobs).abs() * mine.loss_mask).sum() / mine.loss_mask.sum()
            metrics["rollout/behaviour_logprob_gap"] = float(gap)
        metrics["train/skipped_updates"] = float(self.policy.skipped_updates)
        metrics["train/lr"] = self.policy.lr
        metrics.update(batch_metrics(mine, len(groups), group_size))
        metrics = reduce_across_workers(metrics, self.policy.engine.device)
        if self.world_size > 1:
            metrics["perf/train_tokens_per_s"] *= self.world_size
        metrics.update(inputs.metrics)
        return metrics

    def _publish(self, step: int, metrics: dict[str, float]) -> None:
        """New weights to the generators (every ``weight_sync_every`` steps), then the step's record."""
        import ray

        version = step + 1
        sync = version % self.cfg.trainer.weight_sync_every == 0
        sync_s = 0.0
        if sync:
            self.publisher.take()  # collective under ZeRO-3: every rank
            if self.publisher.hands_out:
                sync_s = self.publisher.publish(version)
        if self.rank != 0:
            return
        metrics["perf/weight_sync_s"] = sync_s  # what the learner waited for; the transfer may run on
        if self.publisher.last_transfer_s is not None:
            metrics["perf/weight_sync_transfer_s"] = self.publisher.last_transfer_s
        metrics["train/version"] = float(version)
        self._maybe_evaluate(step, version, metrics)
        now = time.monotonic()
        metrics["perf/step_s"] = now - self._step_started
        accounted = sum(metrics.get(k, 0.0) for k in ("perf/learner_wait_s", "perf/train_s", "perf/weight_sync_s",
                                                      "perf/eval_s"))
        metrics["perf/controller_s"] = max(0.0, metrics["perf/step_s"] - accounted)  # bookkeeping, RPCs, logging
        self._step_started = now
        if self.startup_marks:  # once, with the first step's record
            metrics.update({f"startup/learner/{phase}_at_s": at for phase, at in self.startup_marks.items()})
            self.startup_marks = {}
        if self.logger is not None:
            self.logger.log_metrics(metrics, step=step)
        if self.progress is not None:
            self.progress.put({"step": step, **metrics, **self.latest_eval, "wall_time": time.time()})
        self.latest_eval = {}

    def _maybe_evaluate(self, step: int, version: int, metrics: dict[str, float]) -> None:
        """Held-out evaluation of the weights just broadcast (after ``version`` updates), through the first
        generator; logged at the step that produced them, beside that step's training metrics."""
        from ..evaluation import actor_generate_fn, run_periodic_eval, should_evaluate

        if not should_evaluate(self.cfg, version) or version % self.cfg.trainer.weight_sync_every:
            return
        started = time.monotonic()
        self.publisher.wait()  # the generator evaluates the weights of ``version``
        generate = self.colocated.generator.generate if self.colocated else actor_generate_fn(self.generators[0])
        results = run_periodic_eval(self.cfg, generate, self.tokenizer, step, run_id=self.run_id)
        # already logged to MLflow by run_periodic_eval; the driver's summary reads the mean over benchmarks here
        self.latest_eval = {f"heldout/{k}": v for k, v in results.headline().items()}
        metrics["perf/eval_s"] = time.monotonic() - started

    def finish(self) -> None:
        weights = self.policy.full_weights() if self.final_model_dir else None  # every rank (ZeRO-3)
        self.publisher.close()
        if self.colocated is not None:
            self.colocated.close()
        if self.rank != 0:
            return
        if self.final_model_dir:
            Path(self.final_model_dir).mkdir(parents=True, exist_ok=True)
            self.policy.save_pretrained(self.final_model_dir, self.tokenizer, weights)
            if self.logger is not None:
                from ..tracking.context import log_policy_model

                self.logger.log_artifacts(self.final_model_dir, "final_model")  # runs:/<id>/final_model
                log_policy_model(self.logger.uri, self.run_id, self.final_model_dir,
                                 step=self.cfg.trainer.max_steps - 1, register_as=self.cfg.tracking.register_model)
        if self._system_metrics is not None:
            self._system_metrics.finish()

    def _start_system_metrics(self, uri: str, run_id: str):
        if not self.cfg.tracking.system_metrics:
            return None
        from ..tracking.system_metrics import start_system_metrics

        return start_system_metrics(run_id, uri, resume=bool(self.cfg.trainer.resume))


LAUNCH_CONTEXT_TIMEOUT_S = 600


def train_loop_per_worker(config: dict) -> None:
    """Entry point Ray Train runs on every learner worker."""
    import os

    import ray.train

    if os.environ.get("APMPO_RAY_VERBOSE"):  # --verbose: the learner's own debug lines (each weight broadcast)
        logging.getLogger("apmpo_ray").setLevel(logging.DEBUG)
    context = ray.train.get_context()
    cfg = config_from_dict(config["cfg"])
    try:  # the MLflow run, set up by the driver meanwhile
        launch = ray.get(config["coordinator"].launch_context.remote(), timeout=LAUNCH_CONTEXT_TIMEOUT_S)
    except ray.exceptions.GetTimeoutError:
        raise RuntimeError(f"the driver did not set up the MLflow run within {LAUNCH_CONTEXT_TIMEOUT_S} s") from None
    loop = LearnerLoop(cfg, config["model_path"], config["coordinator"], config["generators"],
                       rank=context.get_world_rank(), world_size=context.get_world_size(),
                       run_id=launch.get("run_id"), tracking_uri=config.get("tracking_uri"),
                       final_model_dir=launch.get("final_model_dir"), run_dir=launch.get("run_dir"),
                       progress=config.get("progress"), launched_at=config.get("launched_at"))
    loop.run(config.get("start_step", 0), config.get("resume_from"))
