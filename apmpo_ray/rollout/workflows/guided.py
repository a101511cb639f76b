"""AMPO's guided groups: the student samples and is scored as usual; only a group that fails asks its teachers.

For a guided group, every candidate solution (offline ones from the dataset, online ones from teacher actors
asked for that group alone) is scored by the verifier pool, and wrong ones are dropped. The student rates
each correct one (its probabilities of the gold answer tokens after the teacher's reasoning, the answer
replaced by the gold one); the best k replace k wrong student samples chosen at random. Teacher samples are
marked off-policy: the loss trains them through the shaped term, never through a ratio.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from ...algorithms.ampo import comprehension, needs_guidance, replacement_count, select_paths
from ...config.guidance import AmpoConfig
from ..types import GenerationRequest, Prompt, RolloutGroup, Sample, TeacherSolution
from .base import GeneratorLease, RolloutWorkflow, SamplingSettings, TimedScore
from .single_turn import SingleTurnWorkflow


@dataclass
class OnlineTeacher:
    """A teacher model behind a generator actor; ``solve`` is its only call."""

    name: str
    actor: object
    samples: int = 1
    temperature: float = 1.0
    max_new_tokens: int = 64

    async def solve(self, prompts: list[Prompt], seed: int) -> list[list[TeacherSolution]]:
        requests = [GenerationRequest(list(p.prompt_ids), n=self.samples, max_tokens=self.max_new_tokens,
                                      seed=seed + i) for i, p in enumerate(prompts)]
        _, outputs = await self.actor.rollout_requests.remote(requests, temperature=self.temperature)
        return [[TeacherSolution(self.name, s.text) for s in samples] for samples in outputs]


def reasoning_and_gold(text: str, gold: str, config: AmpoConfig) -> tuple[str, str]:
    """The teacher's reasoning up to its final answer, and the gold answer that replaces that answer."""
    if config.answer_format == "boxed":
        start = text.rfind("\\boxed{")
        return (text[: start + len("\\boxed{")] if start >= 0 else text + " \\boxed{"), gold
    cut = text.rfind(config.answer_marker)
    return (text[: cut + len(config.answer_marker)] if cut >= 0 else text + config.answer_marker), gold


class GuidedWorkflow(RolloutWorkflow):
    def __init__(self, sampling: SamplingSettings, score, config: AmpoConfig, encode_text, eos_id: int, *,
                 teachers: list[OnlineTeacher] = ()):
        self.sampling, self.score, self.config = sampling, TimedScore.of(score), config
        self.student = SingleTurnWorkflow(sampling, self.score)  # one score, so one scoring clock
        self.encode_text, self.eos_id = encode_text, eos_id
        self.teachers = list(teachers)

    async def close(self) -> None:
        import ray

        for teacher in self.teachers:
            ray.kill(teacher.actor, no_restart=True)

    async def arun(self, prompts: list[Prompt], generator: GeneratorLease) -> list[RolloutGroup]:
        groups = await self.student.arun(prompts, generator)
        c = self.config
        guided = [i for i, g in enumerate(groups)
                  if needs_guidance(g.rewards, trigger=c.trigger, threshold=c.replace_threshold,
                                    correct_reward=c.correct_reward)]
        for group in groups:
            group.stats.update({"ampo/guided_groups_frac": 0.0, "ampo/teacher_samples": 0.0,
                                "ampo/teacher_token_frac": 0.0, "ampo/teacher_calls": 0.0})
        if not guided:
            return groups
        candidates = {i: list(prompts[i].guidance) for i in guided}
        seed = self.sampling.call_seed(prompts[0].index) + 104_729
        for teacher in self.teachers:  # online teachers hear of guided groups only
            solved = await teacher.solve([prompts[i] for i in guided], seed)
            for i, solutions in zip(guided, solved):
                candidates[i] += solutions
                groups[i].stats["ampo/teacher_calls"] += len(solutions)
        correct = await self._verified(prompts, candidates)
        await self._replace(prompts, groups, guided, correct, generator, random.Random(seed))
        return groups

    async def _verified(self, prompts, candidates: dict[int, list[TeacherSolution]]) -> dict[int, list[tuple]]:
        """The candidates the verifier pool scores correct, with their rewards: a wrong one never enters."""
        flat = [(i, s) for i, solutions in candidates.items() for s in solutions]
        if not flat:
            return {i: [] for i in candidates}
        rewards = await self.score([s.text for _, s in flat], [prompts[i].reference for i, _ in flat])
        out: dict[int, list[tuple]] = {i: [] for i in candidates}
        for (i, solution), reward in zip(flat, rewards):
            if reward >= self.config.correct_reward:
                out[i].append((solution, float(reward)))
        return out

    async def _replace(self, prompts, groups, guided, correct, generator: GeneratorLease, rng: random.Random) -> None:
        c = self.config
        plans = {}
        for i in guided:
            k = replacement_count(groups[i].rewards, len(correct[i]), trigger=c.trigger, k0=c.k0,
                                  threshold=c.replace_threshold, correct_reward=c.correct_reward)
            groups[i].stats["ampo/guided_groups_frac"] = 1.0
            if k > 0:
                plans[i] = k
        pairs, owners = [], []
        for i in plans:
            for solution, _ in correct[i]:
                reasoning, gold = reasoning_and_gold(solution.text, str(prompts[i].reference), c)
                pairs.append((list(prompts[i].prompt_ids) + self.encode_text(reasoning), self.encode_text(gold)))
                owners.append(i)
        if not pairs:
            return
        gold_logprobs = await generator.score(pairs)  # the *student* rates each path
        ratings: dict[int, list[float]] = {i: [] for i in plans}
        for i, logprobs in zip(owners, gold_logprobs):
            ratings[i].append(comprehension(logprobs, mode=c.selection))
        for i, k in plans.items():
            group = groups[i]
            texts = [solution.text for solution, _ in correct[i]]
            chosen = select_paths(ratings[i], [len(self.encode_text(t)) for t in texts], k)
            wrong = [j for j, r in enumerate(group.rewards) if r < c.correct_reward]
            for slot, pick in zip(rng.sample(wrong, len(chosen)), chosen):
                solution, reward = correct[i][pick]
                ids = self.encode_text(solution.text) + [self.eos_id]
                group.samples[slot] = Sample(ids, [0.0] * len(ids), solution.text, reward=reward, off_policy=True)
            teacher_tokens = sum(len(s.response_ids) for s in group.samples if s.off_policy)
            group.stats.update({
                "ampo/teacher_samples": float(len(chosen)),
                "ampo/teacher_token_frac": teacher_tokens / sum(len(s.response_ids) for s in group.samples),
                "ampo/comprehension_mean": sum(ratings[i][p] for p in chosen) / len(chosen)})
