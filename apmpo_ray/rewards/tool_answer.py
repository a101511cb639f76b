"""ARPO's reward for tool-use trajectories (``shared/SEED-SYSTEMS.md`` §ARPO 6).

Well formatted and correct: 1, plus ``MULTI_TOOL_BONUS`` when more than one kind of tool was called;
well formatted but wrong: 0; badly formatted: -1. Well formatted means every tool and result tag is
closed, and the response ends with exactly one ``<answer>…</answer>``.

``tool_answer`` compares the answer with the reference exactly (numbers as numbers); ``tool_math`` with
math-verify, for the paper preset's math problems.
"""
from __future__ import annotations

import re

MULTI_TOOL_BONUS = 0.1
TOOL_TAGS = ("python", "search")
_ANSWER = re.compile(r"<answer>(.*?)</answer>\s*$", re.S)


def well_formatted(response: str) -> bool:
    if response.count("<answer>") != 1 or not _ANSWER.search(response):
        return False
    body = response[: response.rfind("<answer>")]
    for tag in (*TOOL_TAGS, "result"):
        opened, closed = body.count(f"<{tag}>"), body.count(f"</{tag}>")
        if opened != closed:
            return False
    return True


def final_answer(response: str) -> str | None:
    match = _ANSWER.search(response)
    return match.group(1).strip() if match else None


def _same(answer: str, reference) -> bool:
    reference = str(reference).strip()
    if answer == reference:
        return True
    try:
        return float(answer.replace(",", "")) == float(reference.replace(",", ""))
    except ValueError:
        return False


def _score(response: str, correct: bool) -> float:
    if not well_formatted(response):
        return -1.0
    if not correct:
        return 0.0
    used = sum(1 for tag in TOOL_TAGS if f"</{tag}>" in response)
    return 1.0 + (MULTI_TOOL_BONUS if used > 1 else 0.0)


def score(response: str, reference) -> float:
    answer = final_answer(response)
    return _score(response, answer is not None and _same(answer, reference))


def score_math(response: str, reference) -> float:
    from .math_answer import score as math_score

    answer = final_answer(response)
    return _score(response, answer is not None and math_score(f"\\boxed{{{answer}}}", reference) == 1.0)
