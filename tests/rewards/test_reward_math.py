"""The ``math`` reward: answer extraction, math-verify equivalence, and the off-main-thread pitfall."""
import threading
import time

import math_verify
import pytest

from apmpo_ray.rewards import get_reward_fn
from apmpo_ray.rewards.math_answer import MAX_ANSWER_CHARS, extract_final_answer, last_boxed, last_number

score = get_reward_fn("math")


@pytest.mark.parametrize("response, reference, expected", [
    ("so the answer is \\boxed{42}.", "42", 1.0),
    ("so the answer is \\boxed{41}.", "42", 0.0),
    ("\\boxed{\\frac{1}{2}}", "0.5", 1.0),
    ("\\boxed{0.5}", "\\frac{1}{2}", 1.0),
    ("\\boxed{x=3}", "3", 1.0),
    ("solving gives x = 3", "3", 1.0),
    ("\\boxed{\\frac{2}{4}}", 0.5, 1.0),
    ("The total is 1,000 apples", 1000, 1.0),
    ("\\boxed{\\sqrt{2}}", "2^{1/2}", 1.0),
    ("\\boxed{\\sqrt{2}}", "1.4142", 0.0),
    # math-verify's extraction keeps every box: a response that boxes two answers commits to both
    ("first \\boxed{7} then, correcting, \\boxed{8}", "8", 0.0),
    ("the roots are \\boxed{2} and \\boxed{3}", "2, 3", 1.0),
    ("so $x = \\frac{3}{4}$.", "0.75", 1.0),
    ("I do not know", "3", 0.0),
    ("", "3", 0.0),
])
def test_answers_are_compared_by_value(response, reference, expected):
    assert score(response, reference) == expected


def test_last_box_with_balanced_braces_wins():
    assert last_boxed("\\boxed{1} and \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    # A truncated final box does not count: the last complete one does.
    assert last_boxed("\\boxed{3} and then \\boxed{\\frac{1}{2") == "3"
    # Escaped braces are literals inside the box.
    assert last_boxed("\\boxed{\\{1, 2\\}}") == "\\{1, 2\\}"
    assert last_boxed("no box here {}") is None


def test_last_number_is_the_fallback():
    assert last_number("from 3 apples we get -12.5 pears") == "-12.5"
    assert last_number("1,234,567 total") == "1234567"
    assert extract_final_answer("3 then \\boxed{5} then 7") == "5"
    assert extract_final_answer("nothing") is None


def test_correct_answer_scores_one_off_the_main_thread():
    # The pitfall: math-verify's own alarm timeout cannot be set off the main thread ...
    raw_error = []
    probe = threading.Thread(target=lambda: raw_error.append(_raw_math_verify_error()))
    probe.start()
    probe.join()
    assert raw_error == [True]
    # ... yet our reward still scores there.
    results = []
    worker = threading.Thread(target=lambda: results.append(score("\\boxed{\\frac{1}{2}}", "0.5")))
    worker.start()
    worker.join()
    assert results == [1.0]


def _raw_math_verify_error() -> bool:
    try:
        math_verify.parse("$1$", parsing_timeout=5)
    except ValueError:
        return True
    return False


def test_runaway_answers_score_zero_without_parsing():
    started = time.monotonic()
    assert score("\\boxed{" + "1+" * 50_000 + "1}", "1") == 0.0
    assert score("\\boxed{" * 50_000, "1") == 0.0  # many unclosed boxes: linear, not quadratic
    assert time.monotonic() - started < 2.0
    assert score("\\boxed{" + "1" * (MAX_ANSWER_CHARS + 1) + "}", "1" * (MAX_ANSWER_CHARS + 1)) == 0.0


def test_a_hundred_kilobyte_response_is_scored_quickly():
    started = time.monotonic()
    assert score("blah " * 20_000 + "\\boxed{12}", "12") == 1.0
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("reference", [None, "", "  ", ["1"], True])
def test_unusable_reference_is_a_clear_error(reference):
    with pytest.raises(ValueError, match="math reward"):
        score("\\boxed{1}", reference)


def test_non_string_response_is_a_clear_error():
    with pytest.raises(TypeError, match="response must be a string"):
        score(b"\\boxed{1}", "1")
