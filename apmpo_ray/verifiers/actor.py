"""``VerifierActor``: a Ray actor that owns one ``TimeoutScorer``."""
from __future__ import annotations

import os

import ray

from .scorer import TimeoutScorer


class _VerifierActor:
    def __init__(self, reward: str, *, processes: int = 1, timeout_s: float = 5.0, **scorer_options):
        """``scorer_options``: TimeoutScorer's other keywords (grace_s, memory_limit_mb, spare)."""
        self._scorer = TimeoutScorer(reward, processes=processes, timeout_s=timeout_s, **scorer_options)

    def score(self, responses: list[str], references: list) -> list[float]:
        return self._scorer.score(responses, references)

    def stats(self) -> dict[str, int]:
        """This incarnation's counts: a restarted actor starts again from zero."""
        return self._scorer.stats()

    def ping(self) -> int:
        """The actor's process id: alive, and a changed id tells that it was restarted."""
        return os.getpid()

    def close(self) -> None:
        self._scorer.close()


VerifierActor = ray.remote(_VerifierActor)
