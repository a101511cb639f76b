"""AMPO's rules (``shared/SEED-SYSTEMS.md``): when a group gets guidance, how many of its samples are
replaced, and how the student rates a teacher's solution (comprehension). Pure functions."""
from __future__ import annotations

import math
from typing import Sequence


def correct_count(rewards: Sequence[float], correct_reward: float = 1.0) -> int:
    return sum(1 for r in rewards if r >= correct_reward)


def needs_guidance(rewards: Sequence[float], *, trigger: str = "all_wrong", threshold: float = 0.5,
                   correct_reward: float = 1.0) -> bool:
    """``all_wrong``: no sample is correct (Eq. 3). ``adaptive``: the success rate is below ``threshold``."""
    correct = correct_count(rewards, correct_reward)
    if trigger == "all_wrong":
        return correct == 0
    if trigger == "adaptive":
        return correct < threshold * len(rewards)
    raise ValueError(f"unknown AMPO trigger {trigger!r}; choose 'all_wrong' or 'adaptive'")


def replacement_count(rewards: Sequence[float], correct_teacher_solutions: int, *, trigger: str = "all_wrong",
                      k0: int = 2, threshold: float = 0.5, correct_reward: float = 1.0) -> int:
    """How many wrong student samples a guided group gives up (Eq. 4): k = min(k0, correct teacher solutions);
    adaptive: k = min(correct teacher solutions, G·threshold - correct samples). Never more than are wrong."""
    if not needs_guidance(rewards, trigger=trigger, threshold=threshold, correct_reward=correct_reward):
        return 0
    correct = correct_count(rewards, correct_reward)
    if trigger == "all_wrong":
        k = min(k0, correct_teacher_solutions)
    else:
        k = min(correct_teacher_solutions, math.floor(len(rewards) * threshold) - correct)
    return max(0, min(k, len(rewards) - correct))


def comprehension(gold_logprobs: Sequence[float], *, mode: str = "geometric") -> float:
    """How well the student follows a path to the gold answer: its probabilities of the gold answer tokens
    after the teacher's reasoning. ``geometric`` (paper, Eq. 5): clip(exp(mean log p), 0, 1);
    ``arithmetic`` (released code): mean of p."""
    if not gold_logprobs:
        return 0.0
    if mode == "geometric":
        return min(max(math.exp(sum(gold_logprobs) / len(gold_logprobs)), 0.0), 1.0)
    if mode == "arithmetic":
        return sum(math.exp(lp) for lp in gold_logprobs) / len(gold_logprobs)
    raise ValueError(f"unknown comprehension mode {mode!r}; choose 'geometric' or 'arithmetic'")


def select_paths(scores: Sequence[float], lengths: Sequence[int], k: int) -> list[int]:
    """The ``k`` paths the student rates highest; ties go to the shorter path (then to the earlier one)."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], lengths[i], i))
    return order[:k]
