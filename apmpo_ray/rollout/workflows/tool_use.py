"""Multi-turn tool use, with ARPO's entropy-based branching as an option.

The policy generates until a tool tag closes (``</python>``, ``</search>``); the tool's output is inserted as
``<result>…</result>``, tokens that are not the policy's (loss mask 0, no behaviour log-prob); this repeats
up to ``max_tool_calls`` times, after which the model gets no tool stop and must answer. All open
trajectories of the episode advance together, one batched engine call per round (as ARPO's code does); the
generator is released while the round's tool calls run, so another episode samples meanwhile.

ARPO (``branching`` set): M = group size trajectories per prompt, N start from the prompt. When a path's
first segment after a tool result has been generated, its entropy rise ΔH over the path's first segment
decides whether to branch: the branch copies the path up to the end of that tool result (the branch point)
and samples its own continuation. Unspent budget is filled with trajectories from the start.
"""
from __future__ import annotations

import asyncio
import random
import re
import time
from dataclasses import dataclass, field
from typing import Optional

from ...algorithms.arpo import normalized_entropy, should_branch
from ...config.agents import ArpoConfig
from ..types import GenerationRequest, Prompt, RolloutGroup, Sample
from .base import GeneratorLease, RolloutWorkflow, SamplingSettings, TimedScore, score_groups

RESULT_OPEN, RESULT_CLOSE = "<result>", "</result>"


@dataclass
class _Path:
    prompt: int  # index of its prompt in the episode
    ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    mask: list[int] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    text: str = ""
    tool_calls: int = 0
    tool_errors: int = 0
    tool_seconds: float = 0.0
    after_tool: bool = False  # the next segment follows a tool result
    initial_entropy: Optional[float] = None
    delta_entropy: Optional[float] = None  # entropy rise of the latest segment after a tool result
    parent: Optional["_Path"] = None
    branch_point: Optional[int] = None
    finish_reason: str = "stop"
    done: bool = False
    # at each segment boundary (a response length): the text length and tool calls made up to there
    _text_at: dict = field(default_factory=lambda: {0: 0})
    _calls_at: dict = field(default_factory=lambda: {0: 0})

    def branch_at(self, length: int) -> "_Path":
        """A new path that shares this one's first ``length`` response tokens (which end with a tool
        result) and samples its own continuation from there."""
        copied_text = self.text[: self._text_at[length]]
        branch = _Path(self.prompt, self.ids[:length], self.logprobs[:length], self.mask[:length],
                       self.versions[:length], copied_text, self._calls_at[length], after_tool=True,
                       initial_entropy=self.initial_entropy, parent=self, branch_point=length)
        branch._text_at = {k: v for k, v in self._text_at.items() if k <= length}
        branch._calls_at = {k: v for k, v in self._calls_at.items() if k <= length}
        return branch

    def extend(self, ids, logprobs, text: str, *, policy: bool, version: int) -> None:
        self.ids += list(ids)
        self.logprobs += list(logprobs) if policy else [0.0] * len(ids)
        self.mask += [1 if policy else 0] * len(ids)
        self.versions += [version] * len(ids)
        self.text += text
        self._text_at[len(self.ids)] = len(self.text)
        self._calls_at[len(self.ids)] = self.tool_calls + (0 if policy else 1)


@dataclass
class ToolCallParser:
    tools: tuple[str, ...]

    @property
    def stops(self) -> tuple[str, ...]:
        return tuple(f"</{name}>" for name in self.tools)

    def parse(self, segment: str, stop: str) -> tuple[str, str]:
        """(tool name, its input) of the call that ``stop`` closed at the end of ``segment``."""
        name = stop[2:-1]
        opened = segment.rfind(f"<{name}>")
        if opened < 0:
            return name, ""
        return name, segment[opened + len(name) + 2: len(segment) - len(stop)]


class ToolUseWorkflow(RolloutWorkflow):
    def __init__(self, sampling: SamplingSettings, score, tools: dict, encode_text, *, max_tool_calls: int = 3,
                 vocab_size: int = 0, branching: Optional[ArpoConfig] = None, max_context: int = 0):
        self.sampling, self.score = sampling, TimedScore.of(score)
        self.tools, self.encode_text = tools, encode_text
        self.parser = ToolCallParser(tuple(tools))
        self.max_tool_calls = max_tool_calls
        self.vocab_size = vocab_size
        self.branching = branching
        self.max_context = max_context

    async def close(self) -> None:
        for pool in self.tools.values():
            pool.shutdown()

    async def arun(self, prompts: list[Prompt], generator: GeneratorLease) -> list[RolloutGroup]:
        s, arpo = self.sampling, self.branching
        rng = random.Random(s.call_seed(prompts[0].index))
        budget = s.group_size
        initial = arpo.initial_samples if arpo else budget
        paths: list[list[_Path]] = [[_Path(i) for _ in range(initial)] for i in range(len(prompts))]
        spare = [budget - initial] * len(prompts)
        stats = [{"branches": 0, "executed": 0} for _ in prompts]
        started = time.monotonic()
        round_index = 0
        while True:
            active = [p for group in paths for p in group if not p.done]
            if not active:
                refill = [i for i, left in enumerate(spare) if left > 0]
                if not refill:
                    break
                for i in refill:  # every path ended with budget left: the rest start from the prompt
                    paths[i] += [_Path(i) for _ in range(spare[i])]
                    spare[i] = 0
                continue
            branches, executed = await self._round(prompts, active, generator, rng, round_index)
            round_index += 1
            for i, count in executed.items():
                stats[i]["executed"] += count
            for branch in branches:
                i = branch.prompt
                if spare[i] > 0:
                    paths[i].append(branch)
                    spare[i] -= 1
                    stats[i]["branches"] += 1
        elapsed = time.monotonic() - started
        groups = [self._group(prompt, group, stats[i], elapsed) for i, (prompt, group) in enumerate(zip(prompts, paths))]
        await score_groups(self.score, groups)
        return groups

    async def _round(self, prompts: list[Prompt], active: list[_Path], generator: GeneratorLease, rng: random.Random,
                     round_index: int) -> tuple[list[_Path], dict[int, int]]:
        """One engine call for every active path, then the tool calls its segments end in. Returns the
        new branches (copies of paths as they were right after their tool result) and the tool calls
        executed per prompt."""
        s, arpo = self.sampling, self.branching
        requests, owners = [], []
        seed = s.call_seed(prompts[0].index) + 7919 * round_index
        for n, path in enumerate(active):
            left = s.max_new_tokens - len(path.ids)
            if self.max_context:
                left = min(left, self.max_context - len(prompts[path.prompt].prompt_ids) - len(path.ids) - 1)
            if left < 1:
                path.done, path.finish_reason = True, "length"
                continue
            stops = self.parser.stops if path.tool_calls < self.max_tool_calls else ()
            requests.append(GenerationRequest(list(prompts[path.prompt].prompt_ids) + path.ids, n=1, max_tokens=left,
                                              seed=seed + n, stop=stops, top_logprobs=arpo.entropy_top_k if arpo else 0,
                                              top_logprobs_positions=arpo.entropy_tokens if arpo else 20))
            owners.append(path)
        if not requests:
            return [], {}
        version, outputs = await generator.generate(requests, temperature=s.temperature, top_p=s.top_p)
        branches, calls = [], []
        for path, (segment,) in zip(owners, outputs):
            prefix_length = len(path.ids)
            path.extend(segment.response_ids, segment.logprobs, segment.text, policy=True, version=version)
            if arpo and segment.top_logprobs is not None:
                entropy = normalized_entropy(segment.top_logprobs, self.vocab_size, tokens=arpo.entropy_tokens)
                if path.initial_entropy is None:
                    path.initial_entropy = entropy
                elif path.after_tool:
                    delta = entropy - path.initial_entropy
                    path.delta_entropy = delta
                    if should_branch(delta, rule=arpo.branch_rule, rng=rng, entropy_weight=arpo.entropy_weight,
                                     threshold=arpo.branch_threshold, alpha=arpo.alpha, tau=arpo.tau):
                        branches += [path.branch_at(prefix_length) for _ in range(arpo.branches_per_path)]
            path.after_tool = False
            if segment.stop_reason in self.parser.stops:
                calls.append((path, *self.parser.parse(segment.text, segment.stop_reason)))
            else:
                path.done, path.finish_reason = True, segment.finish_reason
        replies = await asyncio.gather(*(self.tools[name].call(text) for _, name, text in calls))
        for (path, _, _), reply in zip(calls, replies):
            result = f"{RESULT_OPEN}{reply.output.strip()}{RESULT_CLOSE}"
            path.extend(self.encode_text(result), (), result, policy=False, version=version)
            path.tool_calls += 1
            path.tool_errors += int(reply.error)
            path.tool_seconds += reply.seconds
            path.after_tool = True
        executed: dict[int, int] = {}
        for path, _, _ in calls:
            executed[path.prompt] = executed.get(path.prompt, 0) + 1
        return branches, executed

    def _group(self, prompt: Prompt, paths: list[_Path], stats: dict, elapsed: float) -> RolloutGroup:
        index = {id(p): k for k, p in enumerate(paths)}
        samples = [Sample(p.ids, p.logprobs, p.text, finish_reason=p.finish_reason, loss_mask=p.mask,
                          parent=None if p.parent is None else index[id(p.parent)], branch_point=p.branch_point,
                          token_versions=p.versions)
                   for p in paths]
        calls = sum(p.tool_calls for p in paths)
        deltas = [p.delta_entropy for p in paths if getattr(p, "delta_entropy", None) is not None]
        group_stats = {"tools/calls_per_trajectory": calls / len(paths),
                       "tools/executed_per_prompt": float(stats["executed"]),
                       "tools/errors": sum(p.tool_errors for p in paths) / len(paths),
                       "tools/latency_s": sum(p.tool_seconds for p in paths) / max(calls, 1)}
        if self.branching:
            group_stats["arpo/branches_per_prompt"] = float(stats["branches"])
            group_stats["arpo/entropy_delta_mean"] = sum(deltas) / len(deltas) if deltas else 0.0
        return RolloutGroup(prompt, samples, min(min(p.versions) for p in paths), elapsed, group_stats)
