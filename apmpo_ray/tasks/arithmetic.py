"""The built-in synthetic arithmetic task of the embedded default: ``37+45=`` -> ``82``."""
from __future__ import annotations

import random

ALPHABET = "0123456789+-*=() "


def make_problems(count: int, *, seed: int, max_operand: int = 9) -> list[dict]:
    """``count`` addition problems ``{"prompt": "a+b=", "answer": "a+b"}``, reproducible from ``seed``."""
    rng = random.Random(seed)
    problems = []
    for _ in range(count):
        a, b = rng.randint(0, max_operand), rng.randint(0, max_operand)
        problems.append({"prompt": f"{a}+{b}=", "answer": str(a + b)})
    return problems


def score(response: str, answer) -> float:
    """1 if the response (up to the first space) is exactly the answer."""
    text = response.strip().split(" ")[0] if response.strip() else ""
    return 1.0 if text == str(answer).strip() else 0.0
