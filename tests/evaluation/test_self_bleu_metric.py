"""The shipped self_bleu module: BLEU-4 of each response against the others of its prompt (Appendix K.6)."""
import math
import random

import pytest

from apmpo_ray.evaluation import load_metric


@pytest.fixture(scope="module")
def metric():
    return load_metric("self_bleu")


@pytest.fixture(scope="module")
def bleu_module(metric):
    import sys

    return sys.modules[type(metric).__module__]  # the module evaluate loaded, with its BLEU functions


def test_identical_samples_score_one(metric):
    solution = "We have $2x + 3 = 7$, so $x = 2$. The answer is \\boxed{2}."
    assert metric.compute(predictions=[[solution] * 8])["self_bleu"] == pytest.approx(1.0)
    assert metric.compute(predictions=[["7"] * 8])["self_bleu"] == pytest.approx(1.0)  # one-token answers too


def test_disjoint_samples_score_zero(metric):
    group = ["alpha beta gamma delta", "one two three four", "red green blue", "x"]
    assert metric.compute(predictions=[group])["self_bleu"] == pytest.approx(0.0, abs=1e-12)


def test_more_repetition_scores_higher(metric):
    base = "first add the two numbers then divide by two to get the mean"
    varied = ["first add the numbers then halve the sum", "the mean is the average of both values",
              "compute a plus b and divide it by 2", base]
    repetitive = [base, base, base.replace("mean", "average"), base]
    low = metric.compute(predictions=[varied])["self_bleu"]
    high = metric.compute(predictions=[repetitive])["self_bleu"]
    assert 0 < low < high < 1


def test_sentence_bleu_by_hand(bleu_module):
    hyp = "the cat sat on the mat".split()
    ref = "the cat sat on a mat".split()
    # clipped n-gram matches / totals: 1-grams 5/6, 2-grams 3/5, 3-grams 2/4, 4-grams 1/3; equal lengths: BP = 1.
    plain = (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25
    smoothed = (5 / 6 * 4 / 6 * 3 / 5 * 2 / 4) ** 0.25  # add-one on orders >= 2
    assert bleu_module.sentence_bleu(hyp, [ref], smooth=False) == pytest.approx(plain)
    assert bleu_module.sentence_bleu(hyp, [ref]) == pytest.approx(smoothed)
    short = "the cat".split()  # brevity penalty exp(1 - 6/2); 1- and 2-grams all match
    assert bleu_module.sentence_bleu(short, [ref]) == pytest.approx(math.exp(1 - 3))


def test_group_shortcut_equals_pairwise_bleu(bleu_module):
    rng = random.Random(1)
    words = "a b c d e f".split()
    for _ in range(200):
        group = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 10))) for _ in range(rng.randint(2, 6))]
        tokens = [bleu_module.tokenize(t) for t in group]
        expected = [bleu_module.sentence_bleu(tokens[i], tokens[:i] + tokens[i + 1:]) for i in range(len(group))]
        assert bleu_module.group_self_bleu(group) == pytest.approx(expected, abs=1e-12)


def test_mean_over_prompts_and_singletons_ignored(metric):
    out = metric.compute(predictions=[["a b", "a b"], ["a b", "c d"], ["alone"]])
    assert out == {"self_bleu": pytest.approx(0.5), "groups": 2}
