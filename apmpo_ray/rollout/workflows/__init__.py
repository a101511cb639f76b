"""Rollout workflows by name (``rollout.workflow``): ``single_turn`` and ``tool_use``."""
from __future__ import annotations

import uuid

from .base import GeneratorLease, RolloutWorkflow, SamplingSettings, score_groups
from .guided import GuidedWorkflow, OnlineTeacher
from .single_turn import SingleTurnWorkflow
from .tool_use import ToolUseWorkflow

WORKFLOWS = ("single_turn", "tool_use", "guided")


def sampling_settings(cfg) -> SamplingSettings:
    r = cfg.rollout
    return SamplingSettings(group_size=r.group_size, max_new_tokens=r.max_new_tokens, temperature=r.temperature,
                            top_p=r.top_p, prompts_per_call=r.prompts_per_call, seed=cfg.trainer.seed)


def make_workflow(cfg, score, tokenizer, model_path: str) -> RolloutWorkflow:
    """The workflow ``cfg.rollout.workflow`` with its parts: the verifier pool's ``score`` and, for tool use,
    one Ray tool pool per tool (started here, shut down by the workflow's ``close``)."""
    sampling = sampling_settings(cfg)
    if cfg.rollout.workflow == "single_turn":
        return SingleTurnWorkflow(sampling, score)
    if cfg.rollout.workflow == "guided":
        return GuidedWorkflow(sampling, score, cfg.ampo, lambda text: tokenizer.encode(text, add_special_tokens=False),
                              tokenizer.eos_token_id, teachers=start_teachers(cfg))
    from transformers import AutoConfig

    from ...tools import ToolPool

    model = AutoConfig.from_pretrained(model_path)

    t = cfg.tools
    pools = {name: ToolPool(name, t.options(name), num_actors=t.num_actors, concurrency=t.concurrency,
                            deadline_s=t.timeout_s + 5.0) for name in t.names}
    return ToolUseWorkflow(sampling, score, pools, lambda text: tokenizer.encode(text, add_special_tokens=False),
                           max_tool_calls=cfg.rollout.max_tool_calls, vocab_size=model.vocab_size,
                           branching=cfg.arpo if cfg.algo.name == "arpo" else None,
                           max_context=getattr(model, "max_position_embeddings", 0) or 0)


def teacher_model_path(teacher) -> str:
    if teacher.model_path:
        return teacher.model_path
    from ...models.tiny import RECIPES, tiny_model_path

    if teacher.tiny_recipe not in RECIPES:
        raise ValueError(f"teacher {teacher.name!r}: unknown tiny_recipe {teacher.tiny_recipe!r}; choose one of "
                         f"{sorted(RECIPES)}")
    return str(tiny_model_path(RECIPES[teacher.tiny_recipe]))


def start_teachers(cfg) -> list[OnlineTeacher]:
    """One vLLM generator actor per configured online teacher."""
    from ...generators.actor import GeneratorActor

    teachers = []
    for t in cfg.teachers:
        actor = GeneratorActor.options(name=f"teacher-{t.name}-{uuid.uuid4().hex[:6]}", num_cpus=t.num_cpus,
                                       num_gpus=t.num_gpus, max_restarts=-1, max_task_retries=-1).remote(
            teacher_model_path(t), seed=cfg.trainer.seed, dtype=t.dtype, kv_cache_gib=cfg.rollout.kv_cache_gib,
            gpu_memory_utilization=cfg.rollout.gpu_memory_utilization)
        teachers.append(OnlineTeacher(t.name, actor, samples=t.samples, temperature=t.temperature,
                                      max_new_tokens=t.max_new_tokens or cfg.rollout.max_new_tokens))
    return teachers


__all__ = ["GuidedWorkflow", "OnlineTeacher", "start_teachers", "GeneratorLease", "RolloutWorkflow", "SamplingSettings", "SingleTurnWorkflow", "ToolUseWorkflow",
           "WORKFLOWS", "make_workflow", "sampling_settings", "score_groups"]
