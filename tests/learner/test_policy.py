"""The DeepSpeed policy update on the real tiny model, in one process."""
import pytest
import torch

from apmpo_ray.algorithms import prepare_step
from apmpo_ray.config import load_config
from apmpo_ray.learner.batch import build_batch
from apmpo_ray.learner.policy import Policy
from apmpo_ray.models.tiny import build_tokenizer, tiny_model_path
from apmpo_ray.rollout.types import Prompt, RolloutGroup, Sample


def _batch(tokenizer, seed=0):
    g = torch.Generator().manual_seed(seed)
    groups = []
    for i in range(8):
        prompt = [tokenizer.bos_token_id] + tokenizer.encode(f"{i}+{i}=", add_special_tokens=False)
        samples = []
        for _ in range(8):
            length = int(torch.randint(1, 3, (1,), generator=g))
            ids = torch.randint(4, 14, (length,), generator=g).tolist() + [tokenizer.eos_token_id]
            samples.append(Sample(ids, [-1.0] * len(ids), "", reward=float(torch.rand(1, generator=g) < 0.4)))
        groups.append(RolloutGroup(Prompt(i, prompt, ""), samples, version=0))
    return groups


@pytest.fixture(scope="module")
def policy(single_process_group):
    cfg = load_config(None, ["trainer.mini_batch_size=32", "rollout.prompts_per_step=8", "trainer.lr=1e-4"])
    return cfg, Policy(str(tiny_model_path()), cfg.trainer, cfg.algo)


def test_update_raises_likelihood_of_rewarded_responses(policy):
    cfg, pol = policy
    tokenizer = build_tokenizer()
    batch = build_batch(_batch(tokenizer), tokenizer.pad_token_id)
    inputs = prepare_step(batch.rewards.view(8, 8), batch.loss_mask, cfg.algo)
    old = pol.score(batch)
    assert torch.allclose(old, pol.score(batch, reference=True))
    batch = batch.with_(advantages=inputs.advantages, proximal_logprobs=old,
                        ref_logprobs=pol.score(batch, reference=True))
    metrics = pol.update(batch, inputs.loss, inputs.controls, epochs=1, seed=0)
    for key in ("loss/policy", "loss/kl", "clip/frac_low", "clip/frac_high", "policy/entropy"):
        assert key in metrics and torch.isfinite(torch.tensor(metrics[key]))
    change = ((pol.score(batch) - old) * batch.loss_mask).sum(dim=1)
    sequence_adv = inputs.advantages.sum(dim=1) / batch.loss_mask.sum(dim=1)
    positive, negative = sequence_adv > 0, sequence_adv < 0
    assert change[positive].mean() > 0 > change[negative].mean()
    assert (change * sequence_adv).sum() > 0
    assert pol.skipped_updates == 0


def test_non_finite_loss_skips_the_update_and_is_counted(policy):
    cfg, pol = policy
    tokenizer = build_tokenizer()
    batch = build_batch(_batch(tokenizer, seed=1), tokenizer.pad_token_id)
    inputs = prepare_step(batch.rewards.view(8, 8), batch.loss_mask, cfg.algo)
    old = pol.score(batch)
    before = {name: w.clone() for name, w in pol.full_weights()}
    skipped = pol.skipped_updates
    poisoned = batch.with_(advantages=inputs.advantages, proximal_logprobs=old * float("nan"),
                           ref_logprobs=pol.score(batch, reference=True))
    pol.update(poisoned, inputs.loss, inputs.controls, epochs=1, seed=0)
    assert pol.skipped_updates == skipped + 2  # both mini-batches of 32
    assert all(torch.equal(before[name], w) for name, w in pol.full_weights())
    # and training carries on normally afterwards
    healthy = poisoned.with_(proximal_logprobs=old)
    pol.update(healthy, inputs.loss, inputs.controls, epochs=1, seed=0)
    assert pol.skipped_updates == skipped + 2
    assert any(not torch.equal(before[name], w) for name, w in pol.full_weights())


def test_save_pretrained_round_trips(policy, tmp_path):
    from transformers import AutoModelForCausalLM

    cfg, pol = policy
    pol.save_pretrained(str(tmp_path), build_tokenizer())
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    weights = dict(pol.full_weights())
    for name, value in loaded.named_parameters():
        assert torch.equal(value, weights[name])


def test_proximal_logprobs_filled_in_by_the_update_match_a_scoring_pass_before_it(single_process_group):
    """π_prox left to the update (the first mini-batch's from its own forward, the rest scored before the first
    optimizer step) trains exactly as π_prox scored beforehand, over two mini-batches, micro-batches, two epochs."""
    cfg = load_config(None, ["trainer.mini_batch_size=32", "trainer.micro_batch_size=8", "rollout.prompts_per_step=8",
                             "trainer.lr=1e-3", "algo.name=grpo"])
    tokenizer = build_tokenizer()
    batch = build_batch(_batch(tokenizer, seed=2), tokenizer.pad_token_id)
    inputs = prepare_step(batch.rewards.view(8, 8), batch.loss_mask, cfg.algo)
    batch = batch.with_(advantages=inputs.advantages)
    torch.manual_seed(0)
    scored_first = Policy(str(tiny_model_path()), cfg.trainer, cfg.algo)
    torch.manual_seed(0)
    filled_in = Policy(str(tiny_model_path()), cfg.trainer, cfg.algo)
    ref = scored_first.score(batch, reference=True)
    before = scored_first.score(batch)
    given = batch.with_(proximal_logprobs=before.clone(), ref_logprobs=ref)
    left = batch.with_(proximal_logprobs=None, ref_logprobs=ref)
    a = scored_first.update(given, inputs.loss, inputs.controls, epochs=2, seed=5)
    b = filled_in.update(left, inputs.loss, inputs.controls, epochs=2, seed=5)
    assert torch.allclose(left.proximal_logprobs * batch.loss_mask, before * batch.loss_mask, atol=1e-5)
    for (name, wa), (_, wb) in zip(scored_first.full_weights(), filled_in.full_weights()):
        assert torch.allclose(wa, wb, atol=1e-5), name
    assert not torch.allclose(filled_in.score(batch), before, atol=1e-3)  # and the update did move the policy
    assert abs(a["loss/policy"] - b["loss/policy"]) < 1e-5 and "perf/logprob_recompute_s" in b
