"""One completion per sample, scored once: the shape of most RLVR (and of the embedded default)."""
from __future__ import annotations

import time

from ..types import GenerationRequest, Prompt, RolloutGroup
from .base import GeneratorLease, RolloutWorkflow, SamplingSettings, TimedScore, score_groups


class SingleTurnWorkflow(RolloutWorkflow):
    def __init__(self, sampling: SamplingSettings, score):
        self.sampling, self.score = sampling, TimedScore.of(score)

    async def arun(self, prompts: list[Prompt], generator: GeneratorLease) -> list[RolloutGroup]:
        s = self.sampling
        seed = s.call_seed(prompts[0].index)
        requests = [GenerationRequest(list(p.prompt_ids), n=s.group_size, max_tokens=s.max_new_tokens, seed=seed + i)
                    for i, p in enumerate(prompts)]
        started = time.monotonic()
        version, outputs = await generator.generate(requests, temperature=s.temperature, top_p=s.top_p)
        elapsed = time.monotonic() - started
        groups = [RolloutGroup(p, samples, version, elapsed) for p, samples in zip(prompts, outputs)]
        await score_groups(self.score, groups)
        return groups
