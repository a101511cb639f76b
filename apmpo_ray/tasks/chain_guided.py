"""The chain task with offline teacher solutions (AMPO's embedded preset, ``preset=tiny_ampo``): the same
problems as ``chain``, each with one solution from every project-built teacher, sampled once and cached
(``apmpo_ray.models.teachers``). Read them with ``task.teacher_column: teachers``."""
from __future__ import annotations

from . import chain

score = chain.score


def make_problems(count: int, *, seed: int, max_operand: int = 50, num_terms: int = 3) -> list[dict]:
    from ..models.teachers import with_teacher_solutions

    return with_teacher_solutions(chain.make_problems(count, seed=seed, max_operand=max_operand, num_terms=num_terms),
                                  seed=seed)
