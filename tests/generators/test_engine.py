"""VLLMGenerator on the embedded tiny model: sample shapes, behaviour log-probs, scoring."""
import pytest
import torch

from apmpo_ray.generators.engine import VLLMGenerator
from apmpo_ray.models.tiny import build_tokenizer, tiny_model_path


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


@pytest.fixture(scope="module")
def model_path():
    return str(tiny_model_path())


@pytest.fixture(scope="module")
def generator(model_path):
    gen = VLLMGenerator(model_path, seed=0, kv_cache_gib=0.25)
    yield gen
    gen.close()


@pytest.fixture(scope="module")
def hf_model(model_path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()


def encode(tokenizer, text):
    return [tokenizer.bos_token_id] + tokenizer.encode(text, add_special_tokens=False)


def hf_logprobs(model, prompt, response, temperature=1.0):
    with torch.no_grad():
        logits = model(torch.tensor([prompt + response])).logits[0].double()
    logp = (logits / temperature).log_softmax(-1)
    return [logp[len(prompt) - 1 + i, tok].item() for i, tok in enumerate(response)]


def test_generate_returns_n_well_formed_samples_per_prompt(generator, tokenizer):
    prompts = [encode(tokenizer, p) for p in ("3+4=", "9-2=", "5*3=")]
    groups = generator.generate(prompts, n=4, max_new_tokens=6, seed=0)
    assert len(groups) == 3 and all(len(g) == 4 for g in groups)
    for group in groups:
        for s in group:
            assert 1 <= len(s.response_ids) <= 6
            assert len(s.logprobs) == len(s.response_ids)
            assert all(lp <= 0.0 for lp in s.logprobs)
            assert s.finish_reason in ("stop", "length")
            if s.finish_reason == "stop":
                assert s.response_ids[-1] == tokenizer.eos_token_id
            else:
                assert len(s.response_ids) == 6
            assert s.text == tokenizer.decode(s.response_ids, skip_special_tokens=True)
    assert generator.version == 0


def test_max_new_tokens_truncates_with_length(generator, tokenizer):
    # Every answer of the warmed-up model is at least one digit plus eos, so one token cannot finish it.
    (group,) = generator.generate([encode(tokenizer, "8+8=")], n=8, max_new_tokens=1, seed=1)
    assert {s.finish_reason for s in group} == {"length"}
    assert all(len(s.response_ids) == 1 for s in group)


def test_same_seed_same_samples_and_prompts_in_a_batch_draw_independently(generator, tokenizer):
    prompt = encode(tokenizer, "7+6=")
    a = generator.generate([prompt, prompt], n=8, max_new_tokens=4, seed=123)
    b = generator.generate([prompt, prompt], n=8, max_new_tokens=4, seed=123)
    ids = lambda groups: [[s.response_ids for s in g] for g in groups]  # noqa: E731
    assert ids(a) == ids(b)
    assert ids(a)[0] != ids(a)[1]


def test_sampled_logprobs_match_scoring_at_temperature_one(generator, tokenizer, hf_model):
    prompt = encode(tokenizer, "4+5=")
    (group,) = generator.generate([prompt], n=8, max_new_tokens=5, seed=7)
    for s in group:
        scored = generator.sequence_logprobs(prompt, s.response_ids)
        assert scored == pytest.approx(s.logprobs, abs=1e-4)
        assert scored == pytest.approx(hf_logprobs(hf_model, prompt, s.response_ids), abs=1e-4)


def test_behaviour_logprobs_are_of_the_tempered_distribution(generator, tokenizer, hf_model):
    prompt = encode(tokenizer, "6+7=")
    (group,) = generator.generate([prompt], n=8, max_new_tokens=5, temperature=0.6, seed=3)
    differs = False
    for s in group:
        assert s.logprobs == pytest.approx(hf_logprobs(hf_model, prompt, s.response_ids, temperature=0.6), abs=1e-4)
        differs |= max(abs(a - b) for a, b in zip(s.logprobs, hf_logprobs(hf_model, prompt, s.response_ids))) > 1e-3
    assert differs  # otherwise the check above could not tell tempered from raw log-probs


def test_sequence_logprobs_rejects_sequences_longer_than_the_context(generator, tokenizer):
    with pytest.raises(ValueError, match="tokens"):
        generator.sequence_logprobs(encode(tokenizer, "1+1="), [5] * 70)
