"""The shipped pass_at_k module against the closed form 1 - C(n-c, k) / C(n, k)."""
import random
from fractions import Fraction
from math import comb

import pytest

from apmpo_ray.evaluation import load_metric


@pytest.fixture(scope="module")
def metric():
    return load_metric("pass_at_k")  # evaluate.load by local path: no hub


def closed_form(n, c, k):
    return float(1 - Fraction(comb(n - c, k), comb(n, k)))  # comb(m, k) = 0 for m < k


def estimator(metric, n, c, k):
    return metric.compute(num_samples=[n], num_correct=[c], k=k)[f"pass@{k}"]


def test_matches_the_closed_form_on_random_cases(metric):
    rng = random.Random(0)
    for _ in range(300):
        n = rng.randint(1, 64)
        c, k = rng.randint(0, n), rng.randint(1, n)
        assert estimator(metric, n, c, k) == pytest.approx(closed_form(n, c, k), rel=1e-12, abs=1e-12), (n, c, k)


@pytest.mark.parametrize("n, c, k, expected", [
    (16, 0, 1, 0.0), (16, 0, 16, 0.0),  # nothing correct
    (16, 16, 1, 1.0), (16, 16, 16, 1.0),  # everything correct
    (16, 9, 8, 1.0), (8, 1, 8, 1.0),  # n - c < k: every draw of k holds a correct one
    (16, 4, 1, 0.25),  # pass@1 is the fraction correct
    (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
])
def test_edge_cases(metric, n, c, k, expected):
    assert estimator(metric, n, c, k) == pytest.approx(expected, abs=1e-15)
    assert closed_form(n, c, k) == pytest.approx(expected, abs=1e-15)


def test_stable_where_the_binomials_overflow_floats(metric):
    n, c, k = 2000, 3, 500  # C(2000, 500) is about 1e485
    with pytest.raises(OverflowError):
        float(comb(n, k))
    assert estimator(metric, n, c, k) == pytest.approx(closed_form(n, c, k), rel=1e-10)


def test_averages_over_problems_for_several_k(metric):
    out = metric.compute(num_samples=[4, 4, 4], num_correct=[0, 1, 4], k=[1, 2])
    assert out["pass@1"] == pytest.approx((0 + 0.25 + 1) / 3)
    assert out["pass@2"] == pytest.approx((0 + 0.5 + 1) / 3)


@pytest.mark.parametrize("n, c, k", [(4, 5, 1), (4, -1, 1), (4, 2, 5), (4, 2, 0)])
def test_rejects_impossible_counts(metric, n, c, k):
    with pytest.raises(ValueError):
        estimator(metric, n, c, k)
