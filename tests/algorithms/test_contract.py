"""The typed loss contract: controls validated once and by name, inputs checked, outputs typed."""
import pytest
import torch

from apmpo_ray.algorithms import LOSSES, AlgorithmConfig, Controls, LossInputs, LossOutput, get_loss, prepare_step


def inputs(B=3, T=4, **kw):
    lp = torch.zeros(B, T, requires_grad=True)
    return LossInputs(lp, lp.detach(), torch.ones(B, T), torch.ones(B, T), global_tokens=float(B * T),
                      global_sequences=float(B), **kw)


def test_unknown_control_is_named():
    with pytest.raises(TypeError, match="eps_hihg"):
        Controls(eps_low=0.2, eps_hihg=0.3)


@pytest.mark.parametrize("name,controls,message", [
    ("apmpo", Controls(eps_low=0.2, eps_high=0.3), r"loss 'apmpo' needs control\(s\) \['p'\]"),
    ("grpo", Controls(eps_low=0.2), r"needs control\(s\) \['eps_high'\]"),
    ("grpo", Controls(eps_low=0.2, eps_high=0.2, p=0.5), r"loss 'grpo' does not read control\(s\) \['p'\]"),
    ("gmpo", Controls(eps_low=0.2, log_clip=0.4), r"does not read control\(s\) \['eps_low'\]"),
])
def test_missing_or_ignored_control_is_an_error_naming_it(name, controls, message):
    with pytest.raises(ValueError, match=message):
        get_loss(name)(inputs(), controls)


@pytest.mark.parametrize("field,value", [("eps_low", 1.0), ("eps_low", -0.1), ("p", 0.0), ("log_clip", 0.0),
                                         ("is_cap", 0.5), ("shaping_lambda", 0.0), ("aggregation", "mean"),
                                         ("correction", "ppo")])
def test_control_values_are_validated_once_at_construction(field, value):
    with pytest.raises(ValueError, match=field if field not in ("aggregation", "correction") else repr(value)):
        Controls(**{field: value})


def test_per_sequence_controls_are_validated_too():
    with pytest.raises(ValueError, match="control p must be > 0"):
        Controls(p=torch.tensor([0.5, 0.0]))


def test_every_registered_loss_gets_exactly_its_controls_from_prepare_step():
    rewards = torch.tensor([[0.0, 1.0, 1.0, 0.0]])
    for name, spec in LOSSES.items():
        step = prepare_step(rewards, torch.ones(4, 3), AlgorithmConfig(name=name))
        assert step.controls.given() == set(spec.uses), name
        out = step.loss(LossInputs(torch.zeros(4, 3, requires_grad=True), torch.zeros(4, 3), step.advantages,
                                   torch.ones(4, 3), global_tokens=12.0, global_sequences=4.0), step.controls)
        assert isinstance(out, LossOutput) and out.loss.dim() == 0
        assert all(isinstance(v, float) for v in out.metrics.values())


def test_inputs_are_checked():
    with pytest.raises(ValueError, match="off_policy must be"):
        inputs(off_policy=torch.zeros(2, dtype=torch.bool))
    with pytest.raises(ValueError, match="behaviour_logprobs has shape"):
        inputs(behaviour_logprobs=torch.zeros(3, 5))
    lp = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="global_tokens"):
        LossInputs(lp, lp, lp, torch.ones(2, 2), global_tokens=0.0, global_sequences=2.0)


def test_sequence_level_losses_reject_token_varying_advantages_by_row():
    mask = torch.ones(3, 4)
    adv = torch.ones(3, 4)
    adv[2, 1] = 0.5
    lp = torch.zeros(3, 4, requires_grad=True)
    step = prepare_step(torch.tensor([[0.0, 1.0, 1.0]]), mask, AlgorithmConfig(name="apmpo"))
    x = LossInputs(lp, lp.detach(), adv, mask, global_tokens=12.0, global_sequences=3.0)
    with pytest.raises(ValueError, match=r"rows \[2\] vary across tokens"):
        step.loss(x, step.controls)
    grpo = prepare_step(torch.tensor([[0.0, 1.0, 1.0]]), mask, AlgorithmConfig(name="grpo"))
    assert torch.isfinite(grpo.loss(x, grpo.controls).loss)  # token-level losses take them


@pytest.mark.parametrize("name,acting", [("grpo", ()), ("dapo", ()), ("gmpo", ()), ("agpo", ()),
                                         ("apmpo", ("mu", "sigma", "p", "fss", "eps_ada")),
                                         ("pmpo_only", ("mu", "sigma", "p")),
                                         ("fac_only", ("mu", "sigma", "fss", "eps_ada"))])
def test_only_acting_controls_are_reported(name, acting):
    step = prepare_step(torch.tensor([[0.0, 1.0, 1.0, 0.0]]), torch.ones(4, 2), AlgorithmConfig(name=name))
    assert set(step.metrics) == {f"apmpo/{a}" for a in acting}
