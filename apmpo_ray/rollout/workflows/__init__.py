"""Rollout workflows by name (``rollout.workflow``): ``single_turn`` and ``tool_use``."""
from __future__ import annotations

from .base import GeneratorLease, RolloutWorkflow, SamplingSettings, score_groups
from .single_turn import SingleTurnWorkflow
from .tool_use import ToolUseWorkflow

WORKFLOWS = ("single_turn", "tool_use")


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


__all__ = ["GeneratorLease", "RolloutWorkflow", "SamplingSettings", "SingleTurnWorkflow", "ToolUseWorkflow",
           "WORKFLOWS", "make_workflow", "sampling_settings", "score_groups"]
