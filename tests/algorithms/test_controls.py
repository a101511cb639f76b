"""Advantages and the adaptive controls against Eq. 2, 4, 5, 6, 11 and Algorithm 1 lines 7-8, 15-18."""
import math
import random

import pytest
import torch

from apmpo_ray.algorithms import (AlgorithmConfig, adaptive_clip, batch_controls, get_loss, group_advantages,
                                  group_controls, prepare_step)


def literal_mean_std(values):
    mu = sum(values) / len(values)  # Alg. 1 line 7
    return mu, math.sqrt(sum((v - mu) ** 2 for v in values) / len(values))  # line 8


@pytest.mark.parametrize("seed", range(5))
def test_batch_controls_match_paper(seed):
    rng = random.Random(seed)
    rewards = [float(rng.random() < rng.random()) for _ in range(64)] if seed % 2 else [rng.random() for _ in range(40)]
    gamma, eps_min, eps_max, delta = rng.uniform(0.1, 2), rng.uniform(0, 0.2), rng.uniform(0.25, 0.5), 1e-6
    c = batch_controls(rewards, gamma=gamma, eps_min=eps_min, eps_max=eps_max, delta=delta)
    mu, sigma = literal_mean_std(rewards)
    fss = mu / (sigma + delta)  # Eq. 5
    assert c.mu == pytest.approx(mu, rel=1e-12)
    assert c.sigma == pytest.approx(sigma, rel=1e-12)
    assert c.p == pytest.approx(math.exp(-gamma * mu), rel=1e-12)  # Eq. 4
    assert c.fss == pytest.approx(fss, rel=1e-12)
    assert c.eps_ada == pytest.approx(eps_min + (eps_max - eps_min) * math.tanh(fss), rel=1e-12)  # Eq. 6


def test_variants():
    rewards = [1.0, 0.0, 1.0, 1.0, 0.0]
    mu, sigma = literal_mean_std(rewards)
    assert batch_controls(rewards, p_schedule="linear").p == pytest.approx(1 - 0.8 * mu)  # Eq. 11
    assert batch_controls([1.0] * 4, gamma=1.5, p_schedule="linear", p_floor=0.02).p == 0.02
    assert batch_controls(rewards, p_schedule="one").p == 1.0
    assert batch_controls(rewards, fss_variant="mu").fss == pytest.approx(mu)
    assert batch_controls(rewards, fss_variant="inv_sigma").fss == pytest.approx(1 / (sigma + 1e-6))
    no_tanh = batch_controls(rewards, use_tanh=False)
    assert no_tanh.eps_ada == pytest.approx(0.2 + 0.2 * mu / (sigma + 1e-6))  # Alg. 1 line 18 as printed


def test_eps_ada_bounded_and_increasing_in_fss():
    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(2, 128)
        q = rng.random()
        rewards = [float(rng.random() < q) for _ in range(n)]
        if len(set(rewards)) == 1:
            rewards[0] = 1.0 - rewards[0]
        c = batch_controls(rewards)
        assert 0.2 <= c.eps_ada < 0.4
    fss = torch.linspace(0, 8, 500, dtype=torch.float64)
    eps = adaptive_clip(fss, eps_min=0.2, eps_max=0.4)
    assert (eps[1:] > eps[:-1]).all() and eps[0] == 0.2 and (eps < 0.4).all()
    assert batch_controls([0.0, 0.0, 0.0]).eps_ada == 0.2  # FSS → 0 gives ε_min (NOTES §4)
    assert batch_controls([1.0, 1.0]).eps_ada <= 0.4


def test_p_range():
    rng = random.Random(1)
    for gamma in (0.3, 0.8, 1.7):
        for _ in range(100):
            rewards = [rng.random() for _ in range(rng.randint(1, 50))]
            p = batch_controls(rewards, gamma=gamma).p
            assert math.exp(-gamma) <= p <= 1
        assert batch_controls([0.0], gamma=gamma).p == 1.0
        assert batch_controls([1.0], gamma=gamma).p == pytest.approx(math.exp(-gamma))


def test_group_advantages_eq2():
    g = torch.Generator().manual_seed(4)
    rewards = (torch.rand(5, 8, generator=g) < 0.5).double()
    rewards[0] = 1.0  # all equal
    rewards[1] = torch.tensor([0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3])
    rewards[2, 0], rewards[2, 1] = 1.0, 0.0
    adv = group_advantages(rewards, delta=1e-6)
    for i in range(5):
        mu, sigma = literal_mean_std(rewards[i].tolist())
        for j in range(8):
            expected = 0.0 if sigma == 0 else (rewards[i, j].item() - mu) / (sigma + 1e-6)
            assert adv[i, j].item() == pytest.approx(expected, rel=1e-12, abs=1e-300)
    assert torch.all(adv[:2] == 0)
    dr = group_advantages(rewards, scale_by_std=False)
    assert torch.allclose(dr[2], rewards[2] - rewards[2].mean())


def test_group_scope_gives_per_sequence_keywords():
    rewards = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    gc = group_controls(rewards)
    assert gc.p.shape == (3,) and gc.eps_ada[0].item() == pytest.approx(0.4)  # σ = 0: FSS ≈ μ/δ
    mask = torch.ones(12, 3)
    step = prepare_step(rewards, mask, AlgorithmConfig(name="apmpo", controls_scope="group"))
    assert step.controls.p.shape == (12,)
    assert torch.allclose(step.controls.p[4:8], torch.full((4,), math.exp(-0.8 * 0.25), dtype=torch.float64))
    batch = prepare_step(rewards, mask, AlgorithmConfig(name="apmpo"))
    assert batch.controls.p == pytest.approx(math.exp(-0.8 * 5 / 12))
    assert batch.controls.eps_high == batch.batch_controls.eps_ada
    assert batch.advantages.shape == (12, 3) and torch.all(batch.advantages[8:] == 0)


@pytest.mark.parametrize("name,expect", [
    ("grpo", dict(eps_low=0.2, eps_high=0.2)),
    ("dapo", dict(eps_low=0.2, eps_high=0.28)),
    ("pmpo_only", dict(eps_low=0.2, eps_high=0.2)),
    ("fac_only", dict(p=1.0, eps_low=0.2)),
])
def test_ablation_keywords(name, expect):
    step = prepare_step(torch.tensor([[1.0, 0.0, 1.0, 1.0]]), torch.ones(4, 2), AlgorithmConfig(name=name))
    for k, v in expect.items():
        assert getattr(step.controls, k) == pytest.approx(v)


def test_symmetric_and_fac_keywords_use_eps_ada():
    rewards = torch.tensor([[1.0, 0.0, 1.0, 1.0]])
    eps_ada = batch_controls(rewards).eps_ada
    mask = torch.ones(4, 2)
    sym = prepare_step(rewards, mask, AlgorithmConfig(name="apmpo_symmetric_clip")).controls
    assert sym.eps_low == sym.eps_high == eps_ada  # Eq. 81
    assert prepare_step(rewards, mask, AlgorithmConfig(name="fac_only")).controls.eps_high == eps_ada
    assert get_loss("apmpo_linear_p").batch_controls(rewards, AlgorithmConfig()).p == pytest.approx(1 - 0.8 * 0.75)


def test_bad_config_values_are_named():
    with pytest.raises(ValueError, match="controls_scope"):
        AlgorithmConfig(controls_scope="world")
    with pytest.raises(ValueError, match="eps_min"):
        AlgorithmConfig(eps_min=0.5, eps_max=0.4)
