"""Off-policy correction (decoupled, tis) and the teacher-token term against literal float64 transcriptions."""
import math

import pytest
import torch

from apmpo_ray.algorithms import Controls, LossInputs, get_loss

F64 = torch.float64
CAP = 1.5


def stale_batch(seed, B=6, T=9):
    """π_θ, π_prox and π_behav spread apart so that clip bounds and the cap are all hit."""
    g = torch.Generator().manual_seed(seed)
    behaviour = -torch.rand(B, T, generator=g, dtype=F64) * 3 - 0.05
    proximal = behaviour + 0.6 * torch.randn(B, T, generator=g, dtype=F64)
    logprobs = (proximal + 0.3 * torch.randn(B, T, generator=g, dtype=F64)).requires_grad_(True)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    mask = (torch.arange(T)[None, :] < lengths[:, None]).double()
    adv = torch.randn(B, generator=g, dtype=F64)
    adv = torch.where(adv.abs() < 0.05, torch.full_like(adv, 0.3), adv)
    return logprobs, proximal, behaviour, adv, mask


def run(name, logprobs, proximal, behaviour, adv, mask, off_policy=None, **controls):
    inputs = LossInputs(logprobs, proximal, adv.unsqueeze(1) * mask, mask, global_tokens=float(mask.sum()),
                        global_sequences=float(mask.shape[0]), behaviour_logprobs=behaviour, off_policy=off_policy)
    return get_loss(name)(inputs, Controls(**controls))


def grad_of(value, leaf):
    (g,) = torch.autograd.grad(value, leaf, retain_graph=True)
    return g


def assert_close(loss, objective, leaf, rel=1e-9):
    assert loss.item() == pytest.approx(-objective.item(), rel=rel, abs=1e-14)
    g_loss, g_obj = grad_of(loss, leaf), grad_of(-objective, leaf)
    assert torch.linalg.norm(g_loss - g_obj) <= rel * torch.linalg.norm(g_obj) + 1e-14


def literal_weight(proximal, behaviour, i, t, cap=CAP):
    return min(math.exp(proximal[i, t].item() - behaviour[i, t].item()), cap)  # a constant, not differentiated


@pytest.mark.parametrize("seed", range(3))
def test_decoupled_grpo_matches_literal(seed):
    lp, prox, behav, adv, mask = stale_batch(seed)
    out = run("grpo", lp, prox, behav, adv, mask, eps_low=0.2, eps_high=0.28, correction="decoupled", is_cap=CAP)
    B, T = lp.shape
    total = 0.0
    for i in range(B):
        seq, n = 0.0, 0
        for t in range(T):
            if mask[i, t]:
                r = torch.exp(lp[i, t] - prox[i, t])  # ratio against π_prox
                clipped = torch.clamp(r, 0.8, 1.28)
                seq = seq + literal_weight(prox, behav, i, t) * torch.minimum(r * adv[i], clipped * adv[i])
                n += 1
        total = total + seq / n
    assert_close(out.loss, total / B, lp)
    assert out.metrics["rollout/is_clipped_frac"] > 0  # the cap was hit


@pytest.mark.parametrize("p", [1.0, 0.6, 0.1])
def test_decoupled_apmpo_matches_literal(p):
    lp, prox, behav, adv, mask = stale_batch(7 + int(p * 10))
    out = run("apmpo", lp, prox, behav, adv, mask, eps_low=0.2, eps_high=0.35, p=p, correction="decoupled",
              is_cap=CAP)
    B, T = lp.shape
    total = 0.0
    for i in range(B):
        S, n = 0.0, 0
        for t in range(T):
            if mask[i, t]:
                r = torch.exp(lp[i, t]) / torch.exp(prox[i, t])
                rho = torch.clamp(r, 1 - 0.2, 1 + 0.35)
                phi = torch.abs(torch.minimum(r * adv[i], rho * adv[i])) * literal_weight(prox, behav, i, t)
                S = S + phi ** p
                n += 1
        total = total + torch.sign(adv[i]) * (S / n) ** (1 / p)
    assert_close(out.loss, total / B, lp)


def test_tis_is_the_truncated_importance_weighted_policy_gradient():
    lp, prox, behav, adv, mask = stale_batch(21)
    out = run("grpo", lp, prox, behav, adv, mask, eps_low=0.2, eps_high=0.2, correction="tis", is_cap=CAP)
    B, T = lp.shape
    value, surrogate = 0.0, 0.0
    for i in range(B):
        n = int(mask[i].sum())
        for t in range(n):
            w = min(math.exp(lp[i, t].item() - behav[i, t].item()), CAP)  # π_θ/π_behav, truncated
            value += w * adv[i].item() / n
            surrogate = surrogate + w * adv[i] * lp[i, t] / n  # gradient w·Â·∇log π_θ
    assert out.loss.item() == pytest.approx(-value / B, rel=1e-12)
    assert torch.allclose(grad_of(out.loss, lp), grad_of(-surrogate / B, lp), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", ["grpo", "dapo", "apmpo", "gmpo", "agpo"])
def test_weights_are_exactly_one_without_correction_and_when_behaviour_equals_proximal(name):
    lp, prox, behav, adv, mask = stale_batch(3)
    spec = get_loss(name)
    controls = {"log_clip": 0.4} if spec.uses == {"log_clip"} else {"eps_low": 0.2, "eps_high": 0.3}
    if "p" in spec.uses:
        controls["p"] = 0.7
    none = run(name, lp, prox, behav, adv, mask, **controls)
    assert none.metrics["rollout/is_weight_mean"] == 1.0 and none.metrics["rollout/is_weight_max"] == 1.0
    assert none.metrics["rollout/is_clipped_frac"] == 0.0
    same = run(name, lp, prox, prox.clone(), adv, mask, correction="decoupled", **controls)
    assert same.metrics["rollout/is_weight_mean"] == 1.0 and same.metrics["rollout/behaviour_kl"] == 0.0
    assert torch.equal(same.loss, none.loss)
    assert torch.equal(grad_of(same.loss, lp), grad_of(none.loss, lp))


def test_correction_metrics_match_their_definitions():
    lp, prox, behav, adv, mask = stale_batch(5)
    out = run("grpo", lp, prox, behav, adv, mask, eps_low=0.2, eps_high=0.2, correction="decoupled", is_cap=CAP)
    raw = torch.exp(prox - behav)[mask.bool()]
    d = (prox - behav)[mask.bool()]
    assert out.metrics["rollout/is_weight_mean"] == pytest.approx(raw.clamp_max(CAP).mean().item(), rel=1e-12)
    assert out.metrics["rollout/is_weight_max"] == pytest.approx(raw.clamp_max(CAP).max().item(), rel=1e-12)
    assert out.metrics["rollout/is_clipped_frac"] == pytest.approx((raw > CAP).double().mean().item())
    assert out.metrics["rollout/behaviour_kl"] == pytest.approx((torch.exp(d) - d - 1).mean().item(), rel=1e-10)


def test_teacher_tokens_train_through_the_shaped_term_and_never_enter_a_ratio():
    lp, prox, behav, adv, mask = stale_batch(11)
    off = torch.tensor([False, True, False, False, True, False])
    lam = 0.1
    out = run("grpo", lp, prox, behav, adv, mask, off_policy=off, eps_low=0.2, eps_high=0.2,
              correction="decoupled", is_cap=CAP, shaping_lambda=lam)
    B, T = lp.shape
    total = 0.0
    for i in range(B):
        n = int(mask[i].sum())
        seq = 0.0
        for t in range(n):
            if off[i]:
                pi = torch.exp(lp[i, t])
                seq = seq + adv[i] * pi / (pi + lam)  # f(π) = π/(π + λ), no ratio, no clip
            else:
                r = torch.exp(lp[i, t] - prox[i, t])
                seq = seq + literal_weight(prox, behav, i, t) * torch.minimum(r * adv[i],
                                                                               torch.clamp(r, 0.8, 1.2) * adv[i])
        total = total + seq / n
    assert_close(out.loss, total / B, lp)
    # what the sampler said about teacher tokens does not matter: they have no behaviour or proximal policy
    scrambled_prox, scrambled_behav = prox.clone(), behav.clone()
    scrambled_prox[off] += 5.0
    scrambled_behav[off] -= 7.0
    again = run("grpo", lp, scrambled_prox, scrambled_behav, adv, mask, off_policy=off, eps_low=0.2, eps_high=0.2,
                correction="decoupled", is_cap=CAP, shaping_lambda=lam)
    assert torch.equal(again.loss, out.loss) and again.metrics == out.metrics
    assert torch.equal(grad_of(again.loss, lp), grad_of(out.loss, lp))


def test_apmpo_with_teacher_rows_matches_its_parts():
    lp, prox, behav, adv, mask = stale_batch(12)
    off = torch.tensor([True, False, False, True, False, False])
    both = run("apmpo", lp, prox, behav, adv, mask, off_policy=off, eps_low=0.2, eps_high=0.3, p=0.6)
    on_only = run("apmpo", lp, prox, behav, adv * (~off), mask, eps_low=0.2, eps_high=0.3, p=0.6)
    prob = lp.exp()
    shaped = ((adv.unsqueeze(1) * prob / (prob + 0.1) * mask).sum(1) / mask.sum(1))[off].sum() / 6
    assert both.loss.item() == pytest.approx(on_only.loss.item() - shaped.item(), rel=1e-10)
