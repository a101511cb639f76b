"""The built-in reasoning task with headroom: multi-step arithmetic with a scratchpad.

``12+35+7=`` -> ``12+35=47;47+7=54#54``: one step per operation, each written out, then the answer after
``#``. The difficulty knob is the number of terms (``task.num_terms``) and their size (``task.max_operand``);
responses run 16-64 tokens, so the per-token mean of APMPO's power mean has something to act on.
"""
from __future__ import annotations

import random

ALPHABET = "0123456789+-*=() ;#"


STYLES = ("steps", "parens")


def make_problems(count: int, *, seed: int, max_operand: int = 99, num_terms: int = 3,
                  style: str = "steps") -> list[dict]:
    """``count`` chains of ``num_terms`` terms in [1, max_operand] joined by + or - (running totals stay >= 0).

    Each problem carries its worked ``solution`` for supervised warm-up and teachers, in one of two styles:
    ``steps`` (``12+35=47;47+7=54#54``) or ``parens`` (``(12+35)=47;(47+7)=54#54``), a second way of
    writing the same reasoning for teachers whose style the student follows less easily.
    """
    if style not in STYLES:
        raise ValueError(f"unknown solution style {style!r}; choose one of {list(STYLES)}")
    if num_terms < 2 or max_operand < 1:
        raise ValueError(f"the chain task needs num_terms >= 2 and max_operand >= 1, got {num_terms}, {max_operand}")
    rng = random.Random(seed)
    problems = []
    for _ in range(count):
        total = rng.randint(1, max_operand)
        prompt, steps = str(total), []
        for _ in range(num_terms - 1):
            term = rng.randint(1, max_operand)
            op = "-" if term <= total and rng.random() < 0.5 else "+"
            new = total - term if op == "-" else total + term
            steps.append(f"({total}{op}{term})={new}" if style == "parens" else f"{total}{op}{term}={new}")
            prompt += f"{op}{term}"
            total = new
        problems.append({"prompt": prompt + "=", "answer": str(total), "solution": ";".join(steps) + f"#{total}"})
    return problems


def final_answer(response: str) -> str | None:
    if "#" not in response:
        return None
    tail = response.rsplit("#", 1)[1].strip()
    return tail.split()[0] if tail else None


def score(response: str, answer) -> float:
    """1 if the text after the last ``#`` (up to a space) is exactly the answer."""
    return 1.0 if final_answer(response) == str(answer).strip() else 0.0
