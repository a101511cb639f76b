"""Scoring rewards with enforced timeouts: ``TimeoutScorer`` (processes), ``VerifierActor``, ``VerifierPool``.

The Ray-based classes load on first use, so worker processes and Ray-free callers do not import Ray.
"""
from __future__ import annotations

from .scorer import TimeoutScorer

__all__ = ["TimeoutScorer", "VerifierActor", "VerifierPool"]


def __getattr__(name: str):
    if name == "VerifierActor":
        from .actor import VerifierActor

        return VerifierActor
    if name == "VerifierPool":
        from .pool import VerifierPool

        return VerifierPool
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
