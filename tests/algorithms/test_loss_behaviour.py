"""Gradient direction, clipping, zero advantages and numerical robustness of every registered loss."""
import pytest
import torch

from dataclasses import replace

from apmpo_ray.algorithms import (LOSSES, AlgorithmConfig, Controls, LossInputs, batch_controls, get_loss, kl_k3,
                                  kl_penalty, prepare_step)

ALL_LOSSES = sorted(LOSSES)


def controls_for(name, rewards=(0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0)):
    return prepare_step(torch.tensor([rewards]), torch.ones(len(rewards), 1), AlgorithmConfig(name=name)).controls


def run(name, logprobs, old, adv, mask, controls=None):
    inputs = LossInputs(logprobs, old, adv.unsqueeze(1) * mask if adv.dim() == 1 else adv, mask,
                        global_tokens=float(mask.sum()), global_sequences=float(mask.shape[0]))
    out = get_loss(name)(inputs, controls or controls_for(name))
    return out.loss, out.metrics


def test_registry_names_and_unknown_name():
    assert {"grpo", "dapo", "gmpo", "apmpo", "pmpo_only", "fac_only", "apmpo_linear_p", "apmpo_fss_mu",
            "apmpo_fss_inv_sigma", "apmpo_symmetric_clip"} <= set(LOSSES)
    with pytest.raises(ValueError, match="unknown loss 'ppo'.*apmpo"):
        get_loss("ppo")
    with pytest.raises(ValueError, match="unknown loss"):
        AlgorithmConfig(name="nope")


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_clipped_tokens_get_zero_gradient_and_others_move_with_advantage_sign(name):
    B, T = 4, 6
    old = torch.full((B, T), -1.0, dtype=torch.float64)
    shift = torch.zeros(B, T, dtype=torch.float64)
    shift[0, :3] = 0.9    # Â > 0 and r = e^0.9 ≫ 1 + ε: clipped
    shift[1, :3] = -0.9   # Â < 0 and r = e^-0.9 ≪ 1 - ε: clipped
    shift[2, :3] = -0.9   # Â > 0 and small r: not clipped
    shift[3, :3] = 0.9    # Â < 0 and large r: not clipped
    shift[:, 3:] = 0.01 * torch.arange(1, 4)  # near-on-policy tokens
    logprobs = (old + shift).requires_grad_(True)
    mask = torch.ones(B, T, dtype=torch.float64)
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
    loss, metrics = run(name, logprobs, old, adv, mask)
    (grad,) = torch.autograd.grad(loss, logprobs)
    assert torch.all(grad[0, :3] == 0) and torch.all(grad[1, :3] == 0)
    # minimising the loss follows -grad: up for Â > 0, down for Â < 0
    assert torch.all(-grad[0, 3:] > 0) and torch.all(-grad[2] > 0)
    assert torch.all(-grad[1, 3:] < 0) and torch.all(-grad[3] < 0)
    assert metrics["clip/frac_high"] == pytest.approx(3 / 24)
    assert metrics["clip/frac_low"] == pytest.approx(3 / 24)


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_zero_advantage_sequences_contribute_nothing(name):
    g = torch.Generator().manual_seed(3)
    old = -torch.rand(5, 9, generator=g, dtype=torch.float64)
    logprobs = (old + 0.2 * torch.randn(5, 9, generator=g, dtype=torch.float64)).requires_grad_(True)
    mask = torch.ones(5, 9, dtype=torch.float64)
    adv = torch.tensor([0.7, 0.0, -1.2, 0.0, 0.4], dtype=torch.float64)
    loss, _ = run(name, logprobs, old, adv, mask)
    (grad,) = torch.autograd.grad(loss, logprobs)
    assert torch.all(grad[1] == 0) and torch.all(grad[3] == 0)
    moved = logprobs.detach().clone()
    moved[[1, 3]] += 3.0  # changing what zero-advantage rows say changes nothing
    assert run(name, moved, old, adv, mask)[0].item() == pytest.approx(loss.item(), rel=1e-12)


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_no_nan_or_inf_on_extreme_inputs(name):
    B, T = 3, 16384
    g = torch.Generator().manual_seed(9)
    old = -torch.rand(B, T, generator=g) * 10
    logprobs = (old + torch.empty(B, T).uniform_(-25, 25, generator=g)).requires_grad_(True)  # ratios beyond e^±20
    mask = torch.ones(B, T)
    mask[1, 100:] = 0
    for adv in (torch.tensor([3.0, -2.0, 0.5]), torch.zeros(B)):
        controls = controls_for(name)
        controls = replace(controls, p=0.05) if controls.p is not None else controls
        loss, metrics = run(name, logprobs, old, adv, mask, controls)
        (grad,) = torch.autograd.grad(loss, logprobs)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()
        assert all(map(lambda v: v == v and abs(v) != float("inf"), metrics.values()))


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_row_without_response_token_is_rejected(name):
    logprobs = torch.zeros(3, 4, requires_grad=True)
    mask = torch.ones(3, 4)
    mask[1] = 0
    with pytest.raises(ValueError, match=r"mask rows \[1\] have no loss token"):
        run(name, logprobs, logprobs.detach(), torch.ones(3), mask)


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="advantages has shape"):
        LossInputs(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3), torch.ones(2, 3), global_tokens=6.0,
                   global_sequences=2.0)


def test_k3_is_nonnegative_zero_on_agreement_and_matches_definition():
    g = torch.Generator().manual_seed(1)
    lp = torch.randn(7, 13, generator=g, dtype=torch.float64) * 3
    ref = torch.randn(7, 13, generator=g, dtype=torch.float64) * 3
    k3 = kl_k3(lp, ref)
    assert (k3 >= 0).all()
    assert torch.all(kl_k3(lp, lp) == 0)
    d = ref - lp
    assert torch.allclose(k3, torch.exp(d) - d - 1, rtol=1e-10, atol=1e-12)
    tiny = kl_k3(torch.zeros(1), torch.tensor([1e-5]))  # no cancellation to zero for tiny gaps
    assert tiny.item() == pytest.approx(0.5e-10, rel=1e-4)
    assert kl_k3(torch.zeros(1), torch.tensor([1e4])).isfinite().all()


def test_kl_penalty_scaling_and_beta_zero_needs_no_reference():
    lp = torch.randn(2, 5, dtype=torch.float64)
    ref = lp + 0.3
    mask = torch.ones(2, 5)
    zero, metrics = kl_penalty(lp, None, mask, beta=0.0, global_sequences=2.0)
    assert zero.item() == 0.0 and metrics["loss/kl"] == 0.0
    value, metrics = kl_penalty(lp, ref, mask, beta=0.01, global_sequences=2.0)
    expected = torch.expm1(torch.tensor(0.3, dtype=torch.float64)) - 0.3
    assert metrics["loss/kl"] == pytest.approx(expected.item(), rel=1e-10)
    assert value.item() == pytest.approx(0.01 * expected.item(), rel=1e-10)
    with pytest.raises(ValueError, match="reference log-probs"):
        kl_penalty(lp, None, mask, beta=0.1, global_sequences=2.0)


def test_batch_controls_entry_point_fields():
    c = batch_controls([1.0, 0.0, 1.0, 1.0])
    assert {f: type(getattr(c, f)) for f in ("mu", "sigma", "p", "fss", "eps_ada")} == dict.fromkeys(
        ("mu", "sigma", "p", "fss", "eps_ada"), float)
