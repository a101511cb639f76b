"""AMPO's trigger, replacement count and comprehension-based selection, by hand."""
import math

import pytest

from apmpo_ray.algorithms.ampo import comprehension, needs_guidance, replacement_count, select_paths


def test_default_trigger_is_all_wrong():
    assert needs_guidance([0, 0, 0, 0])
    assert not needs_guidance([0, 1, 0, 0])


def test_adaptive_trigger_uses_the_success_rate():
    assert needs_guidance([1, 0, 0, 0], trigger="adaptive", threshold=0.5)  # 25 % < 50 %
    assert not needs_guidance([1, 1, 0, 0], trigger="adaptive", threshold=0.5)
    with pytest.raises(ValueError, match="trigger"):
        needs_guidance([0], trigger="always")


@pytest.mark.parametrize("rewards,teachers,trigger,k0,expected", [
    ([0] * 8, 4, "all_wrong", 2, 2),  # k = min(k0, correct teacher solutions)
    ([0] * 8, 1, "all_wrong", 2, 1),
    ([0] * 8, 0, "all_wrong", 2, 0),
    ([1] + [0] * 7, 4, "all_wrong", 2, 0),  # not triggered
    ([1] + [0] * 7, 4, "adaptive", 2, 3),  # min(4, 8·0.5 - 1)
    ([1] + [0] * 7, 2, "adaptive", 2, 2),
    ([1, 1, 1, 0, 0, 0, 0, 0], 4, "adaptive", 2, 1),
    ([0, 0], 5, "all_wrong", 9, 2),  # never more than are wrong
])
def test_replacement_count(rewards, teachers, trigger, k0, expected):
    assert replacement_count(rewards, teachers, trigger=trigger, k0=k0, threshold=0.5) == expected


def test_comprehension_geometric_and_arithmetic_by_hand():
    logprobs = [math.log(0.5), math.log(0.125)]
    assert comprehension(logprobs) == pytest.approx(math.sqrt(0.5 * 0.125))  # exp(mean log p)
    assert comprehension(logprobs, mode="arithmetic") == pytest.approx((0.5 + 0.125) / 2)
    assert comprehension([]) == 0.0


def test_selection_takes_the_best_rated_and_breaks_ties_by_length():
    assert select_paths([0.2, 0.9, 0.5], [10, 30, 5], 2) == [1, 2]
    assert select_paths([0.7, 0.7, 0.1], [12, 8, 1], 1) == [1]  # a tie: the shorter path
    assert select_paths([0.3], [4], 2) == [0]
