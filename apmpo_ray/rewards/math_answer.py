"""The ``math`` reward: the response's final answer checked against the reference with math-verify.

Final answer: found by math-verify's own extraction (``LatexExtractionConfig`` with boxed answers first, every
box kept, ``$…$`` answers, then ``ExprExtractionConfig`` for plain numbers and formulas) over the response's
tail, and compared with the reference through ``math_verify.verify``, so equivalent forms match
(``\\frac{1}{2}`` and ``0.5``; ``x=3`` and ``3``). Binary: 1.0 or 0.0.

Timeouts: math-verify bounds each parse and comparison with ``signal.alarm``, which only exists on the
main thread; elsewhere (Ray async/threaded actors, thread pools) it raises and every score would silently
become 0. Off the main thread these alarm timeouts are therefore switched off, and the caller must bound
the time from outside: ``apmpo_ray.verifiers.TimeoutScorer`` runs this function on the main thread of a
worker process, interrupts it at its deadline and kills the process if that does not stop it. On a main
thread math-verify's alarm stays on (5 s) as an in-process line of defence for direct callers.
"""
from __future__ import annotations

import functools
import re
import threading

from math_verify import parse, verify

# Above this, an "answer" is not an answer but runaway text: parsing it costs time and memory for nothing.
MAX_ANSWER_CHARS = 1000
# math-verify takes whole seconds (it calls signal.alarm).
ALARM_TIMEOUT_S = 5

_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?")
_BOXED = "\\boxed{"


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` with balanced braces, or None.

    One linear pass with a stack of open braces: a response of many unclosed ``\\boxed{`` must not cost
    quadratic time. Escaped braces (``\\{``, ``\\}``) are LaTeX literals and do not count.
    """
    stack: list[int | None] = []  # per open brace: start of its box content, or None for a plain brace
    best: tuple[int, int] | None = None  # (content start, content end) of the box that closes last
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            if text.startswith(_BOXED, i):
                stack.append(i + len(_BOXED))
                i += len(_BOXED)
                continue
            i += 2  # skip the escaped character, braces included
            continue
        if ch == "{":
            stack.append(None)
        elif ch == "}" and stack:
            start = stack.pop()
            if start is not None:
                best = (start, i)
        i += 1
    return None if best is None else text[best[0]:best[1]]


def last_number(text: str) -> str | None:
    """The last number in ``text`` (``-12``, ``3.5``, ``1,000``, ``1/2``), thousands separators removed."""
    found = None
    for found in _NUMBER.finditer(text):
        pass
    return None if found is None else found.group(0).replace(",", "")


def extract_final_answer(response: str) -> str | None:
    """The answer the response commits to: last balanced ``\\boxed{}``, else its last number."""
    boxed = last_boxed(response)
    answer = boxed if boxed is not None else last_number(response)
    if answer is None:
        return None
    answer = answer.strip()
    return answer or None


def _reference_text(reference) -> str:
    if reference is None or isinstance(reference, bool) or not isinstance(reference, (str, int, float)):
        raise ValueError(f"math reward: the reference must be an answer string or number, got {reference!r}")
    text = str(reference).strip()
    boxed = last_boxed(text)
    text = (boxed if boxed is not None else text).strip().strip("$").strip()
    if not text:
        raise ValueError("math reward: the reference answer is empty")
    return text


def _alarm_timeout() -> int | None:
    # signal.alarm only works on the main thread; None tells math-verify not to install it.
    return ALARM_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None


@functools.lru_cache(maxsize=1)
def _prediction_config():
    """math-verify's own extraction: LaTeX first (a ``\\boxed{}`` before anything else, every box of the answer
    kept, ``$…$`` and display math too), then plain expressions (a bare number or formula)."""
    from latex2sympy2_extended import NormalizationConfig
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    normalization = NormalizationConfig(basic_latex=True, units=True, malformed_operators=True, nits=True,
                                        boxed="all", equations=False)
    return [LatexExtractionConfig(boxed_match_priority=0, normalization_config=normalization), ExprExtractionConfig()]


# The final answer is at the end: math-verify reads this much of a response's tail.
RESPONSE_TAIL_CHARS = 4000


def score(response: str, reference) -> float:
    """1.0 if the response's final answer is mathematically equal to ``reference``, else 0.0."""
    if not isinstance(response, str):
        raise TypeError(f"math reward: the response must be a string, got {type(response).__name__}")
    gold_text = _reference_text(reference)
    boxed = last_boxed(response)
    if boxed is not None and len(boxed) > MAX_ANSWER_CHARS:
        return 0.0  # runaway text, not an answer: not worth parsing
    timeout = _alarm_timeout()
    # Wrapping in \boxed{} makes math-verify take the whole reference as one expression.
    gold = parse(f"\\boxed{{{gold_text}}}", parsing_timeout=timeout)
    if not gold:
        raise ValueError(f"math reward: math-verify cannot parse the reference {gold_text!r}")
    pred = parse(response[-RESPONSE_TAIL_CHARS:], extraction_config=_prediction_config(), parsing_timeout=timeout)
    if not pred:
        return 0.0
    return 1.0 if verify(gold, pred, timeout_seconds=timeout) else 0.0
