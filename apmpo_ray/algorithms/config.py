"""The ``algo`` section of the run config: the objective's hyperparameters (paper defaults, NOTES §7)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional



@dataclass
class AlgorithmConfig:
    name: str = "apmpo"
    # "" takes the loss's own default: its advantage estimator and its aggregation.
    advantage: str = ""
    aggregation: Literal["", "seq_mean_token_mean", "token_mean", "seq_mean_token_sum"] = ""
    # auto: decoupled when rollout.max_staleness >= 1, none at 0 (resolved by Config.validate).
    off_policy_correction: Literal["auto", "none", "tis", "decoupled"] = "auto"
    # Truncation of the behaviour importance weight. 2 is the cap of the TIS paper, verl and ms-swift: at
    # the staleness we run (1-2 versions) weights sit within a few % of 1, so the cap trims only outliers
    # while keeping any token's gradient at most doubled.
    is_cap: float = 2.0
    gamma: float = 0.8
    eps_min: float = 0.2
    eps_max: float = 0.4
    eps_low: float = 0.2
    # Upper clip bound of the fixed-clip losses; None takes the loss's own default (GRPO 0.2, DAPO 0.28).
    eps_high: Optional[float] = None
    gmpo_log_clip: float = 0.4
    delta: float = 1e-6
    beta: float = 0.001
    controls_scope: Literal["batch", "group"] = "batch"
    scale_advantages_by_std: bool = True
    p_floor: float = 0.01
    # AGPO advantages (our interpretation, docs/algorithms.md): penalty R on wrong answers, δ_a, positive weight.
    agpo_neg_penalty: float = 0.5
    agpo_delta: float = 0.1
    agpo_pos_weight: float = 1.0
    agpo_correct_reward: float = 1.0  # a response is wrong when its reward is below this
    # λ of the shaped term f(π) = π/(π + λ) that trains off-policy (teacher) tokens.
    off_policy_shaping_lambda: float = 0.1

    def __post_init__(self):
        from .advantages import get_advantage_fn
        from .registry import get_loss

        try:
            spec = get_loss(self.name)
        except ValueError as err:
            raise ValueError(f"algo.name: {err}") from None
        try:
            if self.advantage:
                get_advantage_fn(self.advantage)
        except ValueError as err:
            raise ValueError(f"algo.advantage: {err}") from None
        if self.aggregation and spec.sequence_level and self.aggregation != "seq_mean_token_mean":
            raise ValueError(f"algo.aggregation: loss {self.name!r} averages one objective per sequence; "
                             f"{self.aggregation!r} does not apply (leave it empty)")
        if self.off_policy_correction == "tis" and spec.sequence_level:
            raise ValueError(f"algo.off_policy_correction: 'tis' is a token-level policy gradient and loss "
                             f"{self.name!r} forms one objective per sequence; use 'decoupled'")
        if self.controls_scope not in ("batch", "group"):
            raise ValueError(f"algo.controls_scope must be 'batch' or 'group', got {self.controls_scope!r}")
        if not 0 <= self.eps_min <= self.eps_max:
            raise ValueError(f"need 0 <= algo.eps_min <= algo.eps_max, got {self.eps_min}, {self.eps_max}")
        if not 0 <= self.eps_low < 1:
            raise ValueError(f"algo.eps_low must be in [0, 1), got {self.eps_low}")
        if self.beta < 0 or self.delta <= 0 or self.gamma < 0:
            raise ValueError("algo.beta and algo.gamma must be >= 0 and algo.delta > 0")
        if self.is_cap < 1:
            raise ValueError(f"algo.is_cap must be >= 1, got {self.is_cap}")
        if min(self.agpo_neg_penalty, self.agpo_delta, self.agpo_pos_weight) < 0:
            raise ValueError("algo.agpo_neg_penalty, algo.agpo_delta and algo.agpo_pos_weight must be >= 0")
        if self.off_policy_shaping_lambda <= 0:
            raise ValueError(f"algo.off_policy_shaping_lambda must be > 0, got {self.off_policy_shaping_lambda}")

    @property
    def advantage_name(self) -> str:
        from .registry import get_loss

        return self.advantage or get_loss(self.name).default_advantage

    @property
    def aggregation_mode(self) -> str:
        from .registry import get_loss

        return self.aggregation or get_loss(self.name).default_aggregation

    @property
    def correction_mode(self) -> str:
        """The correction in force; ``auto`` outside a run config (no staleness known) is ``none``."""
        return "none" if self.off_policy_correction == "auto" else self.off_policy_correction

    def resolve_correction(self, max_staleness: int) -> None:
        """``auto`` becomes ``decoupled`` for stale rollouts (max_staleness >= 1) and ``none`` on-policy."""
        if self.off_policy_correction == "auto":
            self.off_policy_correction = "decoupled" if max_staleness >= 1 else "none"

    def advantage_params(self) -> dict:
        """The keyword arguments of the selected estimator, from this section's fields."""
        return {
            "grpo": {"delta": self.delta, "scale_by_std": self.scale_advantages_by_std},
            "dr_grpo": {},
            "agpo": {"neg_penalty": self.agpo_neg_penalty, "delta": self.agpo_delta,
                     "pos_weight": self.agpo_pos_weight, "correct_reward": self.agpo_correct_reward},
        }[self.advantage_name]
