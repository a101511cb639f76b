"""Rollout generation with vLLM: a plain engine wrapper and its Ray actor shell.

``GeneratorActor`` is imported from ``apmpo_ray.generators.actor`` so that using the plain engine does not
import Ray.
"""
from .engine import VLLMGenerator

__all__ = ["VLLMGenerator"]
