"""AMPO's guidance on demand: when a group needs teachers (``ampo``) and which teachers there are (``teachers``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class AmpoConfig:
    """The ``guided`` workflow (``rollout.workflow=guided``), after AMPO (``shared/SEED-SYSTEMS.md``)."""

    # all_wrong: guide a group when none of its G samples is correct (paper Eq. 3, v1 code); adaptive: when
    # its success rate is below replace_threshold, with k = min(correct teacher solutions, G·threshold - correct)
    trigger: Literal["all_wrong", "adaptive"] = "all_wrong"
    replace_threshold: float = 0.5
    k0: int = 2  # at most this many wrong student samples are replaced (released run: 2)
    # comprehension score of a teacher path: the student's geometric mean probability of the gold answer
    # tokens (the paper), or their arithmetic mean (the released code)
    selection: Literal["geometric", "arithmetic"] = "geometric"
    # where a solution's final answer is, to replace it with the gold answer: after the last answer_marker,
    # or the last \boxed{} (math)
    answer_format: Literal["marker", "boxed"] = "marker"
    answer_marker: str = "#"
    correct_reward: float = 1.0  # a sample is correct when its reward reaches this

    def __post_init__(self):
        if not 0 < self.replace_threshold <= 1 or self.k0 < 1:
            raise ValueError("ampo.replace_threshold must be in (0, 1] and ampo.k0 >= 1")
        if self.answer_format == "marker" and not self.answer_marker:
            raise ValueError("ampo.answer_marker must be set for answer_format=marker")


@dataclass
class TeacherConfig:
    """An online teacher: a vLLM actor serving a teacher model, asked only for the groups that need guidance."""

    name: str = ""
    model_path: str = ""  # a Hugging Face directory, or "" with tiny_recipe for a project-built teacher
    tiny_recipe: str = ""  # an embedded recipe name (apmpo_ray.models.tiny.RECIPES / TEACHER_RECIPES)
    samples: int = 1  # solutions per guided prompt
    temperature: float = 1.0
    max_new_tokens: int = 0  # 0: rollout.max_new_tokens
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    dtype: str = "float32"

    def __post_init__(self):
        if not self.name:
            raise ValueError("a teacher needs a name (it tags its solutions)")
        if bool(self.model_path) == bool(self.tiny_recipe):
            raise ValueError(f"teacher {self.name!r}: give exactly one of model_path and tiny_recipe")
        if self.samples < 1 or self.temperature <= 0:
            raise ValueError(f"teacher {self.name!r}: samples must be >= 1 and temperature > 0")
