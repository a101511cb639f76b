"""Advantage estimators and aggregation modes against literal transcriptions, on fresh random inputs."""
import math

import pytest
import torch

from apmpo_ray.algorithms import (AGGREGATIONS, ADVANTAGES, AlgorithmConfig, aggregate, agpo_advantages,
                                  get_advantage_fn, group_advantages, prepare_step)

F64 = torch.float64


def random_rewards(seed, groups=7, G=8):
    g = torch.Generator().manual_seed(seed)
    rewards = (torch.rand(groups, G, generator=g) < 0.4).double()
    rewards[0] = 0.0  # all wrong
    rewards[1] = 1.0  # all right
    rewards[2] = 0.0
    rewards[2, 3] = 1.0  # a lone correct answer
    return rewards


def mean_std(row):
    mu = sum(row) / len(row)
    return mu, math.sqrt(sum((x - mu) ** 2 for x in row) / len(row))


def test_registry_and_unknown_name():
    assert set(ADVANTAGES) == {"grpo", "dr_grpo", "agpo"}
    with pytest.raises(ValueError, match="unknown advantage estimator 'gae'"):
        get_advantage_fn("gae")


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("R,delta,pos_weight", [(0.5, 0.1, 1.0), (0.3, 0.5, 2.0), (1.0, 0.01, 0.5)])
def test_agpo_matches_our_formula(seed, R, delta, pos_weight):
    rewards = random_rewards(seed)
    adv = agpo_advantages(rewards, neg_penalty=R, delta=delta, pos_weight=pos_weight)
    for i, row in enumerate(rewards.tolist()):
        mu, sigma = mean_std(row)
        for j, r in enumerate(row):
            z = (r - mu) / math.sqrt(sigma**2 + delta**2)
            expected = pos_weight * max(z, 0.0) + min(z, 0.0) - R * (r < 1.0)
            assert adv[i, j].item() == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_agpo_is_negative_dominant_where_grpo_is_silent():
    rewards = random_rewards(0)
    agpo, grpo = agpo_advantages(rewards), group_advantages(rewards)
    assert torch.all(grpo[0] == 0) and torch.all(agpo[0] == -0.5)  # all wrong: pushed down anyway
    assert torch.all(agpo[1] == 0)  # all right: nothing to correct
    # δ = 0.1 bounds the lone correct answer's advantage; GRPO gives it (1 - 1/8)/σ ≈ 2.65
    assert agpo[2, 3].item() == pytest.approx((1 - 1 / 8) / math.sqrt(mean_std(rewards[2].tolist())[1] ** 2 + 0.01))


def test_agpo_without_penalty_and_delta_is_grpo():
    rewards = random_rewards(5)
    reduced = agpo_advantages(rewards, neg_penalty=0.0, delta=1e-9, pos_weight=1.0)
    assert torch.allclose(reduced, group_advantages(rewards, delta=1e-9), rtol=1e-7, atol=1e-12)
    assert torch.all(reduced[:2] == 0)


def test_dr_grpo_is_reward_minus_group_mean():
    rewards = random_rewards(2)
    assert torch.allclose(get_advantage_fn("dr_grpo")(rewards), rewards - rewards.mean(1, keepdim=True))


def test_config_selects_the_estimator_independently_of_the_loss():
    rewards = random_rewards(1)
    mask = torch.ones(rewards.numel(), 5)
    default = prepare_step(rewards, mask, AlgorithmConfig(name="apmpo"))
    assert torch.allclose(default.advantages[:, 0], group_advantages(rewards).flatten().float())
    agpo_apmpo = prepare_step(rewards, mask, AlgorithmConfig(name="apmpo", advantage="agpo", agpo_neg_penalty=0.3))
    assert torch.allclose(agpo_apmpo.advantages[:, 0], agpo_advantages(rewards, neg_penalty=0.3).flatten().float())
    assert prepare_step(rewards, mask, AlgorithmConfig(name="agpo")).loss.name == "agpo"
    assert AlgorithmConfig(name="agpo").advantage_name == "agpo"
    assert AlgorithmConfig(name="dr_grpo").aggregation_mode == "seq_mean_token_sum"


def test_token_advantages_follow_the_loss_mask():
    rewards = torch.tensor([[1.0, 0.0]])
    mask = torch.tensor([[0, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.float32)
    step = prepare_step(rewards, mask, AlgorithmConfig(name="grpo"))
    assert torch.equal(step.advantages == 0, mask == 0)


def literal_aggregate(values, mask, mode, n_tokens, n_seqs):
    total = 0.0
    for i in range(values.shape[0]):
        n = sum(mask[i].tolist())
        row = sum(v * m for v, m in zip(values[i].tolist(), mask[i].tolist()))
        total += {"token_mean": row / n_tokens, "seq_mean_token_sum": row / n_seqs,
                  "seq_mean_token_mean": (row / n if n else 0.0) / n_seqs}[mode]
    return total


@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_aggregation_matches_literal_and_adds_up_over_any_split(mode):
    g = torch.Generator().manual_seed(9)
    values = torch.randn(12, 10, generator=g, dtype=F64)
    lengths = torch.randint(1, 11, (12,), generator=g)
    mask = (torch.arange(10)[None, :] < lengths[:, None]).double()
    n_tokens, n_seqs = float(mask.sum()), 12.0
    full = aggregate(values, mask, mode, global_tokens=n_tokens, global_sequences=n_seqs)
    assert full.item() == pytest.approx(literal_aggregate(values, mask, mode, n_tokens, n_seqs), rel=1e-12)
    for size in (1, 2, 5):
        parts = sum(aggregate(values[s:s + size], mask[s:s + size], mode, global_tokens=n_tokens,
                              global_sequences=n_seqs) for s in range(0, 12, size))
        assert parts.item() == pytest.approx(full.item(), rel=1e-12)


def test_a_per_micro_batch_token_mean_depends_on_the_split():
    """What the global counts fix: averaging each micro-batch's own token mean weights tokens unevenly."""
    values = torch.tensor([[1.0, 1.0, 1.0, 1.0], [3.0, 0.0, 0.0, 0.0]], dtype=F64)
    mask = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0]], dtype=F64)
    whole = aggregate(values, mask, "token_mean", global_tokens=5.0, global_sequences=2.0)
    local = sum(aggregate(values[i:i + 1], mask[i:i + 1], "token_mean", global_tokens=float(mask[i].sum()),
                          global_sequences=1.0) for i in range(2)) / 2
    assert whole.item() == pytest.approx(7 / 5) and local.item() == pytest.approx((1 + 3) / 2)
