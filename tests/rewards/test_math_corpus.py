"""A regression corpus for the math reward, written in the style of math-verify's own tests (gold answer,
model output, expected verdict): our reward must agree with the expected verdicts at least as often as
math-verify called directly on the same strings."""
import math_verify
import pytest

from apmpo_ray.rewards import get_reward_fn

score = get_reward_fn("math")

CORPUS = [
    # boxed answers, and boxed priority over other numbers
    ("42", "The answer is \\boxed{42}.", True),
    ("42", "We find 41 first, then the answer is \\boxed{42}", True),
    ("42", "\\boxed{41} is wrong", False),
    ("\\frac{1}{2}", "Therefore $\\boxed{\\frac{1}{2}}$", True),
    ("0.5", "Therefore $\\boxed{\\dfrac{1}{2}}$", True),
    ("\\frac{3}{4}", "the answer is \\boxed{\\tfrac34}", True),
    ("2\\sqrt{2}", "\\boxed{\\sqrt{8}}", True),
    ("\\pi", "\\boxed{\\pi}", True),
    ("3\\pi", "\\boxed{3 \\pi}", True),
    ("\\frac{\\pi}{2}", "\\boxed{\\frac{\\pi}{2}}", True),
    ("10", "\\boxed{10\\%}", True),
    ("5", "\\boxed{5 \\text{ cm}}", True),
    ("12", "\\boxed{12 \\text{ apples}}", True),
    ("x^2+2x+1", "\\boxed{(x+1)^2}", True),
    ("x^2+2x+1", "\\boxed{(x+1)^3}", False),
    ("(1,2)", "\\boxed{(1, 2)}", True),
    ("(1,2)", "\\boxed{(2, 1)}", False),
    ("[0,1]", "\\boxed{[0,1]}", True),
    ("\\{1,2,3\\}", "\\boxed{\\{3,2,1\\}}", True),
    ("3", "\\boxed{x = 3}", True),
    ("-7", "\\boxed{-7}", True),
    ("-7", "\\boxed{7}", False),
    ("1000", "\\boxed{1,000}", True),
    ("1000", "\\boxed{1000.0}", True),
    ("\\frac{1}{3}", "\\boxed{0.333}", False),
    ("e", "\\boxed{e}", True),
    ("2, 3", "the roots are \\boxed{2} and \\boxed{3}", True),
    ("2, 3", "the root is \\boxed{2}", False),
    # $...$ and plain answers without a box
    ("0.75", "so $x = \\frac{3}{4}$.", True),
    ("5", "The final answer is $5$.", True),
    ("5", "The final answer is $6$.", False),
    ("7", "After simplifying we get 7", True),
    ("3", "I think it is 4", False),
    ("\\sqrt{3}", "The length is $\\sqrt{3}$", True),
    ("2^{10}", "$1024$", True),
    ("\\frac{1}{2}", "1/2", True),
    ("\\infty", "\\boxed{\\infty}", True),
    ("8", "", False),
    ("8", "I cannot solve this.", False),
    ("12", "\\boxed{12}\\boxed{12}", True),
]


def direct(gold: str, prediction: str) -> bool:
    return bool(math_verify.verify(math_verify.parse(f"${gold}$"), math_verify.parse(prediction)))


def test_agreement_with_expectations_is_at_least_math_verify_direct():
    ours = [score(pred, gold) == float(expected) for gold, pred, expected in CORPUS]
    theirs = [direct(gold, pred) == expected for gold, pred, expected in CORPUS]
    mismatches = [(g, p, e) for (g, p, e), ok in zip(CORPUS, ours) if not ok]
    assert sum(ours) >= sum(theirs), mismatches
    assert sum(ours) / len(CORPUS) >= 0.9, mismatches


@pytest.mark.parametrize("gold,prediction,expected", CORPUS[:6])
def test_boxed_cases_inside_the_verifier_process_pool(gold, prediction, expected):
    from apmpo_ray.verifiers import TimeoutScorer

    scorer = TimeoutScorer("math", processes=1, timeout_s=10)
    try:
        assert scorer.score([prediction], [gold]) == [float(expected)]
    finally:
        scorer.close()
