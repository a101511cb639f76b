"""The losses against literal, per-token transcriptions of the paper's equations (float64, fresh inputs)."""
import math

import pytest
import torch

from apmpo_ray.algorithms import Controls, LossInputs, get_loss, log_power_mean

F64 = torch.float64


def loss_of(name, logprobs, old, adv, mask, *, behaviour=None, off_policy=None, **controls):
    """The registered loss on a whole batch (global counts = this batch), ``adv`` per sequence or per token."""
    spec = get_loss(name)
    defaults = {"seq_mean_token_mean": {}, "token_mean": {"aggregation": "token_mean"},
                "seq_mean_token_sum": {"aggregation": "seq_mean_token_sum"}}[spec.default_aggregation]
    if spec.uses == {"log_clip"}:
        defaults["log_clip"] = 0.4
    elif "p" not in spec.uses:
        defaults.update(eps_low=0.2, eps_high=spec.default_eps_high)
    token_adv = adv.unsqueeze(1) * mask if adv.dim() == 1 else adv
    inputs = LossInputs(logprobs, old, token_adv, mask, global_tokens=float(mask.sum()),
                        global_sequences=float(mask.shape[0]), behaviour_logprobs=behaviour, off_policy=off_policy)
    return spec(inputs, Controls(**{**defaults, **controls}))


def random_batch(seed, B=6, T=11, spread=0.35):
    """Log-probs with a ragged mask, ratios spread enough that both clip bounds are hit."""
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(B, T, generator=g, dtype=F64) * 3 - 0.05
    logprobs = (old + spread * torch.randn(B, T, generator=g, dtype=F64)).requires_grad_(True)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    mask = (torch.arange(T)[None, :] < lengths[:, None]).double()
    adv = torch.randn(B, generator=g, dtype=F64)
    adv = torch.where(adv.abs() < 0.05, torch.full_like(adv, 0.3), adv)  # sgn(Â) ≠ 0 for the literal forms
    return logprobs, old, adv, mask


def literal_apmpo_objective(logprobs, old, adv, mask, p, eps_low, eps_ada):
    """Eq. 3, 7, 8, 9 and the 1/G Σ of Eq. 10, token by token, powers and roots as printed."""
    B, T = logprobs.shape
    total = 0.0
    for i in range(B):
        p_i = p[i] if isinstance(p, (list, tuple)) else p
        S, n = 0.0, 0
        for t in range(T):
            if mask[i, t] == 0:
                continue
            r = torch.exp(logprobs[i, t]) / torch.exp(old[i, t])  # Eq. 3
            rho = torch.clamp(r, 1 - eps_low, 1 + eps_ada)  # Eq. 7
            phi = torch.abs(torch.minimum(r * adv[i], rho * adv[i]))  # Eq. 8
            S = S + phi ** p_i
            n += 1
        total = total + (S / n) ** (1 / p_i) * torch.sign(adv[i])  # Eq. 9
    return total / B  # Eq. 10 without the KL term


def literal_grpo_objective(logprobs, old, adv, mask, eps_low, eps_high, token_mean_over_batch=False):
    """Eq. 12 (and Eq. 13 when ``token_mean_over_batch``)."""
    B, T = logprobs.shape
    total, all_tokens = 0.0, 0
    for i in range(B):
        seq, n = 0.0, 0
        for t in range(T):
            if mask[i, t] == 0:
                continue
            r = torch.exp(logprobs[i, t] - old[i, t])
            seq = seq + torch.minimum(r * adv[i], torch.clamp(r, 1 - eps_low, 1 + eps_high) * adv[i])
            n += 1
        total = total + (seq if token_mean_over_batch else seq / n)
        all_tokens += n
    return total / all_tokens if token_mean_over_batch else total / B


def literal_gmpo_objective(logprobs, old, adv, mask, e1=math.exp(-0.4), e2=math.exp(0.4)):
    """Eq. 14 with GMPO's exponent sgn(Â_i)/|o_i| (see gmpo_loss)."""
    B, T = logprobs.shape
    total = 0.0
    for i in range(B):
        s = torch.sign(adv[i])
        prod, n = 1.0, 0
        for t in range(T):
            if mask[i, t] == 0:
                continue
            r_s = torch.exp(logprobs[i, t] - old[i, t]) ** s
            prod = prod * torch.minimum(r_s, torch.clamp(r_s, e1, e2))
            n += 1
        total = total + prod ** (s / n) * adv[i]
    return total / B


def assert_value_and_grad_match(loss, objective, logprobs, rel=1e-8):
    (g_loss,) = torch.autograd.grad(loss, logprobs)
    (g_obj,) = torch.autograd.grad(-objective, logprobs)
    assert abs(loss.item() + objective.item()) <= rel * abs(objective.item()) + 1e-15
    assert torch.linalg.norm(g_loss - g_obj) <= rel * torch.linalg.norm(g_obj) + 1e-15


@pytest.mark.parametrize("p", [1.0, 0.83, 0.6, 0.449, 0.2, 0.05])
@pytest.mark.parametrize("eps_low,eps_ada", [(0.2, 0.2), (0.2, 0.4), (0.1, 0.3), (0.2, 0.2791)])
def test_apmpo_matches_literal_equations(p, eps_low, eps_ada):
    for seed in range(3):
        logprobs, old, adv, mask = random_batch(seed * 1000 + int(p * 100))
        loss = loss_of("apmpo", logprobs, old, adv, mask, p=p, eps_low=eps_low, eps_high=eps_ada).loss
        objective = literal_apmpo_objective(logprobs, old, adv, mask, p, eps_low, eps_ada)
        assert_value_and_grad_match(loss, objective, logprobs)


def test_apmpo_with_per_sequence_controls_matches_literal():
    logprobs, old, adv, mask = random_batch(7)
    p = torch.tensor([1.0, 0.9, 0.5, 0.3, 0.1, 0.05], dtype=F64)
    eps_ada = torch.tensor([0.2, 0.25, 0.3, 0.35, 0.39, 0.4], dtype=F64)
    loss = loss_of("apmpo", logprobs, old, adv, mask, p=p, eps_low=0.2, eps_high=eps_ada).loss
    total = sum(
        literal_apmpo_objective(logprobs[i:i + 1], old[i:i + 1], adv[i:i + 1], mask[i:i + 1], p[i].item(), 0.2,
                                eps_ada[i].item()) for i in range(6)) / 6
    assert_value_and_grad_match(loss, total, logprobs)


@pytest.mark.parametrize("eps_low,eps_high", [(0.2, 0.2), (0.1, 0.3)])
def test_grpo_matches_eq12(eps_low, eps_high):
    logprobs, old, adv, mask = random_batch(11)
    loss = loss_of("grpo", logprobs, old, adv, mask, eps_low=eps_low, eps_high=eps_high).loss
    assert_value_and_grad_match(loss, literal_grpo_objective(logprobs, old, adv, mask, eps_low, eps_high), logprobs)


def test_dapo_matches_eq13():
    logprobs, old, adv, mask = random_batch(12)
    loss = loss_of("dapo", logprobs, old, adv, mask).loss  # defaults 0.2 / 0.28, token mean
    objective = literal_grpo_objective(logprobs, old, adv, mask, 0.2, 0.28, token_mean_over_batch=True)
    assert_value_and_grad_match(loss, objective, logprobs)


def test_gmpo_matches_eq14_with_gmpo_exponent():
    logprobs, old, adv, mask = random_batch(13, spread=0.6)
    loss = loss_of("gmpo", logprobs, old, adv, mask).loss
    assert_value_and_grad_match(loss, literal_gmpo_objective(logprobs, old, adv, mask), logprobs)


@pytest.mark.parametrize("eps_low,eps_high", [(0.2, 0.2), (0.2, 0.37)])
def test_p_equal_one_is_grpo(eps_low, eps_high):
    logprobs, old, adv, mask = random_batch(21)
    a = loss_of("apmpo", logprobs, old, adv, mask, p=1.0, eps_low=eps_low, eps_high=eps_high).loss
    b = loss_of("grpo", logprobs, old, adv, mask, eps_low=eps_low, eps_high=eps_high).loss
    (ga,) = torch.autograd.grad(a, logprobs)
    (gb,) = torch.autograd.grad(b, logprobs)
    assert a.item() == pytest.approx(b.item(), rel=1e-12)
    assert torch.allclose(ga, gb, rtol=1e-10, atol=1e-14)


def test_power_mean_tends_to_geometric_mean_and_grows_with_p():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(5, 30, generator=g, dtype=F64)  # log ρ̃
    mask = (torch.rand(5, 30, generator=g, dtype=F64) < 0.7).double()
    mask[:, 0] = 1
    lengths = mask.sum(1)
    geometric = (x * mask).sum(1) / lengths
    errors = [(log_power_mean(x, mask, lengths, p) - geometric).abs().max().item() for p in (1e-1, 1e-2, 1e-3, 1e-4)]
    assert all(e2 < e1 for e1, e2 in zip(errors, errors[1:])), errors
    assert errors[-1] < 1e-3
    # power-mean inequality: M_p is non-decreasing in p
    ps = [1e-4, 0.05, 0.2, 0.5, 0.8, 1.0]
    values = torch.stack([log_power_mean(x, mask, lengths, p) for p in ps])
    assert (values[1:] - values[:-1] >= -1e-12).all()
    # p = 1 is the arithmetic mean of ρ̃
    arithmetic = torch.log((x.exp() * mask).sum(1) / lengths)
    assert torch.allclose(log_power_mean(x, mask, lengths, 1.0), arithmetic, rtol=1e-12)
