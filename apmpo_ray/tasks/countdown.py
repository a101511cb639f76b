"""A countdown-style synthetic task written in ``arithmetic.ALPHABET``: reach a target from given numbers.

Prompt ``"(3 5 7)15="``: the numbers in parentheses, then the target. A response is an expression of
``+``, ``-``, ``*``, parentheses and integer literals; it scores 1.0 iff

* every literal is one of the given numbers and each given number is used **at most once** (a sub-multiset:
  ``3*5`` answers ``(3 5 7)15=``), and
* the expression evaluates to the target.

The response is read up to its first ``=`` or newline (so ``3*5=15`` is accepted); spaces are ignored.
The expression is evaluated with ``ast`` over a whitelist of nodes, never ``eval``. Every problem is
solvable: the generator builds the target from an expression that uses all numbers, kept as
``"solution"`` for supervised warm-up.

Reference (``problem["answer"]``): ``{"numbers": [3, 5, 7], "target": 15}``, or the prompt form
``"(3 5 7)15"`` (trailing ``=`` optional) for data files that store strings.
"""
from __future__ import annotations

import ast
import operator
import random
import re
from collections import Counter

MAX_EXPRESSION_CHARS = 64  # far above any solution; bounds parse depth and work on runaway outputs
_EXPRESSION_CHARS = frozenset("0123456789+-*() ")  # ALPHABET without "=", which ends a response
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_PROMPT_FORM = re.compile(r"\s*\(\s*(\d+(?:\s+\d+)*)\s*\)\s*(-?\d+)\s*=?\s*")


class _Invalid(Exception):
    """The expression is not a legal countdown answer."""


def _evaluate(node: ast.AST, used: list[int]) -> int:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, used)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        used.append(node.value)
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_evaluate(node.left, used), _evaluate(node.right, used))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand, used))
    raise _Invalid(f"{type(node).__name__} is not allowed")


def evaluate(expression: str) -> tuple[int, list[int]]:
    """Value of an expression of ``+ - * ( )`` and integers, and the literals it uses; ValueError if not one."""
    if len(expression) > MAX_EXPRESSION_CHARS or not set(expression) <= _EXPRESSION_CHARS:
        raise ValueError(f"not a countdown expression: {expression[:80]!r}")
    try:
        tree = ast.parse(expression.replace(" ", ""), mode="eval")
    except SyntaxError as err:
        raise ValueError(f"not a countdown expression: {expression!r}") from err
    used: list[int] = []
    try:
        return _evaluate(tree, used), used
    except _Invalid as err:
        raise ValueError(f"not a countdown expression: {expression!r} ({err})") from err


def parse_reference(answer) -> tuple[list[int], int]:
    """``(numbers, target)`` from a dict reference or the prompt form ``"(3 5 7)15"``."""
    if isinstance(answer, dict):
        numbers, target = answer.get("numbers"), answer.get("target")
        if isinstance(numbers, (list, tuple)) and numbers and all(type(n) is int for n in numbers) \
                and type(target) is int:
            return list(numbers), target
    elif isinstance(answer, str):
        match = _PROMPT_FORM.fullmatch(answer)
        if match:
            return [int(n) for n in match.group(1).split()], int(match.group(2))
    raise ValueError("countdown reference must be {'numbers': [int, ...], 'target': int} or '(3 5 7)15', "
                     f"got {answer!r}")


def score(response: str, answer) -> float:
    """1.0 iff the response's expression uses given numbers at most once each and equals the target."""
    numbers, target = parse_reference(answer)
    if not isinstance(response, str):
        raise TypeError(f"countdown reward: the response must be a string, got {type(response).__name__}")
    expression = re.split(r"[=\n]", response, maxsplit=1)[0].strip()
    if not expression:
        return 0.0
    try:
        value, used = evaluate(expression)
    except ValueError:
        return 0.0
    if Counter(used) - Counter(numbers):  # a literal that was not given, or one used too often
        return 0.0
    return 1.0 if value == target else 0.0


def _random_expression(rng: random.Random, numbers: list[int]) -> str:
    """An expression using each of ``numbers`` once, in a shuffled order, with random operators."""
    order = numbers[:]
    rng.shuffle(order)
    expression, last_op = str(order[0]), None
    for number in order[1:]:
        op = rng.choice("+-*")
        if op == "*" and last_op in ("+", "-"):
            expression = f"({expression})"
        expression, last_op = f"{expression}{op}{number}", op
    return expression


def make_problems(count: int, *, seed: int, num_numbers: int = 3, max_number: int = 9,
                  min_number: int = 1) -> list[dict]:
    """``count`` problems ``{"prompt": "(3 5 7)15=", "answer": {...}, "solution": "7+5+3"}``.

    Reproducible from ``seed``; targets are non-negative so prompts read ``(...)N=``.
    """
    if count < 0 or num_numbers < 1 or not 0 <= min_number <= max_number:
        raise ValueError(f"bad countdown settings: count={count}, num_numbers={num_numbers}, "
                         f"numbers in [{min_number}, {max_number}]")
    rng = random.Random(seed)
    problems = []
    while len(problems) < count:
        numbers = [rng.randint(min_number, max_number) for _ in range(num_numbers)]
        solution = _random_expression(rng, numbers)
        target, _ = evaluate(solution)
        if target < 0:
            continue
        prompt = "(" + " ".join(map(str, numbers)) + f"){target}="
        problems.append({"prompt": prompt, "answer": {"numbers": numbers, "target": target},
                         "solution": solution})
    return problems
