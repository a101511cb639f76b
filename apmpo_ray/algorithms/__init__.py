"""The learner's mathematics: advantages, APMPO's adaptive controls, off-policy correction and the losses.

Pure functions over torch tensors; nothing here imports Ray, vLLM or DeepSpeed.
See docs/algorithms.md for each formula as implemented.
"""
from .advantages import (ADVANTAGES, agpo_advantages, dr_grpo_advantages, get_advantage_fn, group_advantages,
                         sequence_advantages, token_advantages)
from .aggregation import aggregate, sequence_mean
from .config import AlgorithmConfig
from .contract import AGGREGATIONS, CORRECTIONS, Controls, LossInputs, LossOutput
from .controls import (BatchControls, adaptive_clip, batch_controls, feedback_stability, group_controls,
                       power_exponent)
from .correction import behaviour_weights, correction_metrics, log_ratio, tis_weights
from .losses import (clipped_surrogate_loss, geometric_mean_loss, kl_k3, kl_penalty, log_power_mean,
                     off_policy_objective, power_mean_loss)
from .registry import LOSSES, LossSpec, StepInputs, get_loss, prepare_step

__all__ = [
    "ADVANTAGES", "AGGREGATIONS", "AlgorithmConfig", "BatchControls", "CORRECTIONS", "Controls", "LOSSES",
    "LossInputs", "LossOutput", "LossSpec", "StepInputs", "adaptive_clip", "aggregate", "agpo_advantages",
    "batch_controls", "behaviour_weights", "clipped_surrogate_loss", "correction_metrics", "dr_grpo_advantages",
    "feedback_stability", "geometric_mean_loss", "get_advantage_fn", "get_loss", "group_advantages",
    "group_controls", "kl_k3", "kl_penalty", "log_power_mean", "log_ratio", "off_policy_objective",
    "power_exponent", "power_mean_loss", "prepare_step", "sequence_advantages", "sequence_mean", "tis_weights",
    "token_advantages",
]
