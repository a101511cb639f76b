"""The countdown task: problems in the tiny model's alphabet, scored by safe evaluation."""
import pytest

from apmpo_ray.rewards import get_reward_fn
from apmpo_ray.tasks.arithmetic import ALPHABET
from apmpo_ray.tasks.countdown import evaluate, make_problems, parse_reference

score = get_reward_fn("countdown")
PROBLEM = {"numbers": [3, 5, 7], "target": 15}


@pytest.mark.parametrize("response, expected", [
    ("7+5+3", 1.0),
    ("3*5", 1.0),            # a subset of the numbers is allowed
    ("(7-5)*3+9", 0.0),      # 9 was not given
    ("3*5+7-7", 0.0),        # 7 used twice
    ("5*3=15", 1.0),         # the response ends at "="
    ("3 * 5", 1.0),          # spaces are ignored
    ("7+5+3\n and more", 1.0),
    ("7+5", 0.0),            # wrong value
    ("15", 0.0),             # the target itself is not a given number
    ("-3+7+5+3+3", 0.0),
    ("", 0.0),
    ("3**5", 0.0),
    ("3*(5", 0.0),
    ("__import__('os').system('true')", 0.0),
    ("(" * 40 + "3" + ")" * 40, 0.0),
])
def test_score(response, expected):
    assert score(response, PROBLEM) == expected


def test_reference_may_be_given_in_prompt_form():
    assert parse_reference("(3 5 7)15=") == ([3, 5, 7], 15)
    assert parse_reference("(3 5 7)15") == ([3, 5, 7], 15)
    assert score("3*5", "(3 5 7)15=") == 1.0


@pytest.mark.parametrize("bad", [None, "15", {"numbers": [3], "target": "15"}, {"numbers": [], "target": 1}])
def test_bad_reference_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="countdown reference"):
        score("3", bad)


def test_evaluate_refuses_anything_but_integer_arithmetic():
    assert evaluate("(7-5)*3") == (6, [7, 5, 3])
    for bad in ("2/1", "3.0+1", "a+1", "1 if 1 else 2", "1" * 100):
        with pytest.raises(ValueError):
            evaluate(bad)


def test_problems_are_reproducible_solvable_and_in_the_alphabet():
    problems = make_problems(200, seed=7)
    assert problems == make_problems(200, seed=7)
    assert problems != make_problems(200, seed=8)
    for p in problems:
        assert set(p["prompt"]) <= set(ALPHABET) and set(p["solution"]) <= set(ALPHABET)
        numbers, target = p["answer"]["numbers"], p["answer"]["target"]
        assert p["prompt"] == "(" + " ".join(map(str, numbers)) + f"){target}="
        assert target >= 0
        assert score(p["solution"], p["answer"]) == 1.0
        assert sorted(evaluate(p["solution"])[1]) == sorted(numbers)  # the solution uses every number


def test_bad_generator_settings_are_refused():
    with pytest.raises(ValueError):
        make_problems(3, seed=0, num_numbers=0)
    with pytest.raises(ValueError):
        make_problems(3, seed=0, min_number=5, max_number=2)
