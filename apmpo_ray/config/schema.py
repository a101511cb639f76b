"""The typed run configuration. Every field is settable from a YAML preset or ``section.field=value``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..algorithms import AlgorithmConfig
from .agents import ArpoConfig, ToolsConfig
from .guidance import AmpoConfig, TeacherConfig
from .errors import ConfigError
from .task import EvalConfig, TaskConfig


@dataclass
class ModelConfig:
    path: str = ""  # a Hugging Face directory; "" builds and uses the embedded tiny model
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    # which embedded model "" builds: "tiny" (arithmetic warm-up), "tiny_tools" (tool-use warm-up), or the
    # reasoning task's "tiny_reasoning" (0.8 M parameters) and "small_reasoning" (5 M)
    tiny_recipe: Literal["tiny", "tiny_tools", "tiny_reasoning", "small_reasoning"] = "tiny"


@dataclass
class RolloutConfig:
    group_size: int = 8  # G responses per prompt
    prompts_per_step: int = 16  # groups in one learner batch
    max_new_tokens: int = 4
    temperature: float = 1.0
    top_p: float = 1.0
    # Policy versions a consumed group may lag behind the learner: 0 is synchronous on-policy.
    max_staleness: int = 0
    prompts_per_call: int = 8  # prompts per generate call; a weight swap waits at most one call
    # separate: generators are actors of their own, sent new weights over a process group (NCCL/gloo);
    # colocated: each learner worker hosts one engine on its own device or cores, and the two take turns
    placement: Literal["separate", "colocated"] = "separate"
    num_generators: int = 1
    generator_num_cpus: float = 1.0
    generator_num_gpus: float = 0.0
    generator_resource: str = ""  # a custom Ray resource each generator needs (cluster YAMLs define 'generator')
    tensor_parallel_size: int = 1
    kv_cache_gib: float = 1.0
    # vLLM's engine core and worker in the generator actor's process, or in two child processes; auto: in the
    # actor on CPU without tensor parallelism (it starts 12 s sooner here), separate processes on GPU
    engine_layout: Literal["auto", "in_actor", "separate_processes"] = "auto"
    gpu_memory_utilization: float = 0.1  # on CPU vLLM reads this as a share of host RAM
    num_verifiers: int = 1
    verifier_processes: int = 1
    verifier_timeout_s: float = 5.0
    # The shape of a rollout: single_turn (one completion per sample), tool_use (multi-turn, with tools) or
    # guided (AMPO: teacher solutions replace wrong samples of groups that fail).
    workflow: Literal["single_turn", "tool_use", "guided"] = "single_turn"
    max_tool_calls: int = 3  # tool_use: calls per trajectory before the model must answer


@dataclass
class TrainerConfig:
    max_steps: int = 40
    lr: float = 2e-4
    lr_schedule: Literal["constant", "cosine"] = "constant"  # after the warmup; cosine decays to lr_min_ratio·lr
    warmup_steps: int = 0  # optimizer steps of linear warmup from 0
    lr_min_ratio: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ppo_epochs: int = 1
    mini_batch_size: int = 128  # sequences per optimizer step, over all learner workers
    micro_batch_size: int = 0  # sequences per forward/backward on one worker; 0 = the whole per-worker mini-batch
    bf16: bool = True  # on GPUs; CPU training is float32
    num_workers: int = 1
    use_gpu: bool = False
    cpus_per_worker: float = 1.0
    learner_resource: str = ""  # a custom Ray resource each learner worker needs (cluster YAMLs: 'learner')
    zero_stage: int = 2
    recompute_old_logprobs: bool = True  # False: with correction 'none', the generators' log-probs are π_old
    weight_sync_every: int = 1
    # separate placement: broadcast new weights while the next step trains (publishing the version when done)
    weight_sync_in_background: bool = True
    weight_sync_backend: Literal["auto", "gloo", "nccl"] = "auto"  # auto: NCCL on GPUs, gloo on CPU
    weight_sync_timeout_s: float = 300.0
    weight_sync_bucket_mb: int = 64
    seed: int = 0
    output_dir: str = "runs"
    checkpoint_every: int = 0  # steps between checkpoints; 0 = only the final model
    keep_checkpoints: int = 2  # the newest k complete checkpoints are kept
    export_hf_checkpoints: bool = False  # also save each checkpoint as a Hugging Face model directory
    resume: str = ""  # "latest", a checkpoint directory, or a run directory


@dataclass
class TrackingConfig:
    experiment: str = "apmpo-ray"
    tracking_uri: str = ""  # "" = $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlruns/mlflow.db
    run_name: str = ""  # "" = <algorithm>-<preset>-s<seed>-<short id>
    preset: str = ""  # the preset this config came from (set by load_config; part of the default run name)
    register_model: str = ""  # register the final policy under this name in the MLflow model registry
    system_metrics: bool = True  # CPU, memory (and GPU) of learner rank 0, by MLflow's system-metrics monitor


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    algo: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    tools: ToolsConfig = field(default_factory=ToolsConfig)
    arpo: ArpoConfig = field(default_factory=ArpoConfig)
    ampo: AmpoConfig = field(default_factory=AmpoConfig)
    teachers: list[TeacherConfig] = field(default_factory=list)

    def validate(self) -> "Config":
        r, t = self.rollout, self.trainer
        positive = {"rollout.group_size": r.group_size, "rollout.prompts_per_step": r.prompts_per_step,
                    "rollout.max_new_tokens": r.max_new_tokens, "rollout.prompts_per_call": r.prompts_per_call,
                    "rollout.num_generators": r.num_generators, "rollout.num_verifiers": r.num_verifiers,
                    "rollout.verifier_processes": r.verifier_processes, "trainer.max_steps": t.max_steps,
                    "trainer.ppo_epochs": t.ppo_epochs, "trainer.mini_batch_size": t.mini_batch_size,
                    "trainer.num_workers": t.num_workers, "trainer.weight_sync_every": t.weight_sync_every}
        for key, value in positive.items():
            if value < 1:
                raise ConfigError(f"{key} must be >= 1, got {value}")
        if t.warmup_steps < 0 or not 0 <= t.lr_min_ratio <= 1:
            raise ConfigError("trainer.warmup_steps must be >= 0 and trainer.lr_min_ratio in [0, 1]")
        if t.checkpoint_every < 0 or t.keep_checkpoints < 0:
            raise ConfigError("trainer.checkpoint_every and trainer.keep_checkpoints must be >= 0")
        if r.max_staleness < 0:
            raise ConfigError(f"rollout.max_staleness must be >= 0, got {r.max_staleness}")
        if r.group_size < 2:
            raise ConfigError("rollout.group_size must be >= 2: group-relative advantages need two responses")
        if t.zero_stage not in (0, 1, 2, 3):
            raise ConfigError(f"trainer.zero_stage must be 0, 1, 2 or 3, got {t.zero_stage}")
        batch = r.group_size * r.prompts_per_step
        if t.mini_batch_size > batch or batch % t.mini_batch_size:
            raise ConfigError(f"trainer.mini_batch_size ({t.mini_batch_size}) must divide the batch of "
                              f"rollout.group_size x rollout.prompts_per_step = {batch} sequences")
        if r.prompts_per_step % t.num_workers:
            raise ConfigError(f"rollout.prompts_per_step ({r.prompts_per_step}) must be a multiple of "
                              f"trainer.num_workers ({t.num_workers}): each learner worker trains on whole groups")
        if t.mini_batch_size % t.num_workers:
            raise ConfigError(f"trainer.mini_batch_size ({t.mini_batch_size}) must be a multiple of "
                              f"trainer.num_workers ({t.num_workers})")
        if t.weight_sync_every > r.max_staleness + 1:
            raise ConfigError(
                f"trainer.weight_sync_every={t.weight_sync_every} exceeds rollout.max_staleness+1="
                f"{r.max_staleness + 1}: generators would never be allowed to produce the next batch")
        if self.algo.name == "arpo" and r.workflow != "tool_use":
            raise ConfigError("algo.name=arpo branches tool-use rollouts: set rollout.workflow=tool_use "
                              "(preset=tiny_tools does)")
        if r.workflow == "tool_use" and self.algo.name == "arpo" and not 1 <= self.arpo.initial_samples <= r.group_size:
            raise ConfigError(f"arpo.initial_samples ({self.arpo.initial_samples}) must be between 1 and "
                              f"rollout.group_size ({r.group_size})")
        if self.algo.name == "ampo" and r.workflow != "guided":
            raise ConfigError("algo.name=ampo learns from guided groups: set rollout.workflow=guided "
                              "(preset=tiny_ampo does)")
        if r.workflow == "guided" and not (self.teachers or self.task.teacher_column):
            raise ConfigError("rollout.workflow=guided needs teacher solutions: task.teacher_column (offline) "
                              "and/or a teachers: list (online)")
        names = [t.name for t in self.teachers]
        if len(set(names)) != len(names):
            raise ConfigError(f"teachers: names must be unique, got {names}")
        if r.placement == "colocated" and r.num_generators != t.num_workers:
            raise ConfigError(f"rollout.placement=colocated runs one engine in each learner worker: "
                              f"rollout.num_generators ({r.num_generators}) must equal trainer.num_workers "
                              f"({t.num_workers})")
        if r.placement == "colocated" and r.tensor_parallel_size != 1:
            raise ConfigError("rollout.placement=colocated runs an engine on its learner worker's one device: "
                              f"rollout.tensor_parallel_size must be 1, got {r.tensor_parallel_size}")
        if r.max_tool_calls < 0:
            raise ConfigError(f"rollout.max_tool_calls must be >= 0, got {r.max_tool_calls}")
        self.algo.resolve_correction(r.max_staleness)
        if self.algo.off_policy_correction == "decoupled" and not t.recompute_old_logprobs:
            raise ConfigError("algo.off_policy_correction=decoupled needs the proximal log-probs that the learner "
                              "recomputes: set trainer.recompute_old_logprobs=true, or use 'tis' or 'none'")
        if not 0 < r.temperature:
            raise ConfigError(f"rollout.temperature must be > 0, got {r.temperature}")
        return self
