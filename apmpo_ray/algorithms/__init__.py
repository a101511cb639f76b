"""The learner's mathematics: advantages, APMPO's adaptive controls and the policy losses.

Pure functions over torch tensors; nothing here imports Ray, vLLM or DeepSpeed.
See docs/algorithms.md for each formula as implemented.
"""
from .controls import (BatchControls, adaptive_clip, batch_controls, feedback_stability, group_advantages,
                       group_controls, power_exponent)
from .losses import (apmpo_loss, dapo_loss, gmpo_loss, grpo_loss, kl_k3, kl_penalty, log_power_mean,
                     validate_inputs)
from .registry import LOSSES, AlgorithmConfig, LossSpec, StepInputs, get_loss, prepare_step

__all__ = [
    "AlgorithmConfig", "BatchControls", "LOSSES", "LossSpec", "StepInputs", "adaptive_clip", "apmpo_loss",
    "batch_controls", "dapo_loss", "feedback_stability", "get_loss", "gmpo_loss", "group_advantages",
    "group_controls", "grpo_loss", "kl_k3", "kl_penalty", "log_power_mean", "power_exponent", "prepare_step",
    "validate_inputs",
]
