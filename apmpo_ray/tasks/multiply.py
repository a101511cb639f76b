"""The built-in tool-use task: multi-digit multiplication (``37*48=`` -> ``1776``), which the tiny model
cannot do in its head but can through ``<python>print(37*48)</python>``.

A tool-using answer reads ``<python>print(37*48)</python><result>1776</result><answer>1776</answer>``:
the policy writes the call and the answer, the environment inserts the result.
"""
from __future__ import annotations

import random

ALPHABET = "0123456789+-*=() <>/\nabcdefghilnoprstuwy_.:"


def make_problems(count: int, *, seed: int, max_operand: int = 99) -> list[dict]:
    """``count`` products of two numbers in [10, max_operand] (at least two digits each)."""
    if max_operand < 10:
        raise ValueError(f"the multiplication task needs max_operand >= 10, got {max_operand}")
    rng = random.Random(seed)
    problems = []
    for _ in range(count):
        a, b = rng.randint(10, max_operand), rng.randint(10, max_operand)
        problems.append({"prompt": f"{a}*{b}=", "answer": str(a * b)})
    return problems


def tool_solution(prompt: str, answer: str) -> tuple[str, str, str]:
    """(the policy's call, the tool's result as inserted, the policy's answer) of a tool-using solution."""
    return f"<python>print({prompt.rstrip('=')})</python>", f"<result>{answer}</result>", f"<answer>{answer}</answer>"


def warmup_examples(count: int, *, seed: int, max_operand: int = 99, tool_fraction: float = 0.5):
    """Supervised warm-up pairs ``(prompt, [(text, trains)])``: a share ``tool_fraction`` of the solutions use
    the tool (its result segment does not train, as in RL); the rest answer directly, so RL has a direct,
    mostly wrong habit to move away from."""
    rng = random.Random(seed)
    for problem in make_problems(count, seed=seed, max_operand=max_operand):
        prompt, answer = problem["prompt"], problem["answer"]
        if rng.random() < tool_fraction:
            call, result, final = tool_solution(prompt, answer)
            yield prompt, [(call, True), (result, False), (final, True)]
        else:
            yield prompt, [(f"<answer>{answer}</answer>", True)]
