"""End to end: this process as learner rank 0 pushes a transformers model into a GeneratorActor over gloo."""
import pytest
import torch

import ray

from apmpo_ray.generators.actor import GeneratorActor
from apmpo_ray.models.tiny import build_tokenizer, tiny_model_path
from apmpo_ray.weight_sync import WeightBroadcaster


@pytest.fixture(scope="module")
def model_path():
    return str(tiny_model_path())


@pytest.fixture(scope="module")
def generator(ray_session, model_path):
    actor = GeneratorActor.options(num_cpus=1, max_restarts=-1, max_task_retries=0).remote(
        model_path, seed=0, kv_cache_gib=0.25)
    assert ray.get(actor.ping.remote(), timeout=300) == 0
    yield actor
    ray.get(actor.close.remote(), timeout=60)
    ray.kill(actor)


@pytest.fixture(scope="module")
def learner_model(model_path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)


@pytest.fixture(scope="module")
def sequence():
    tok = build_tokenizer()
    prompt = [tok.bos_token_id] + tok.encode("3+4=", add_special_tokens=False)
    response = tok.encode("7", add_special_tokens=False) + [tok.eos_token_id]
    return prompt, response


def hf_logprobs(model, prompt, response, forbidden_token=None):
    """``forbidden_token``: masked out at every position, as vLLM's min_tokens does with eos."""
    with torch.no_grad():
        logits = model(torch.tensor([prompt + response])).logits[0].double()
        if forbidden_token is not None:
            logits[:, forbidden_token] = float("-inf")
        logp = logits.log_softmax(-1)
    return [logp[len(prompt) - 1 + i, tok].item() for i, tok in enumerate(response)]


def vllm_logprobs(generator, prompt, response):
    return ray.get(generator.sequence_logprobs.remote(prompt, response), timeout=120)


def max_gap(a, b):
    return max(abs(x - y) for x, y in zip(a, b))


def test_broadcast_loads_the_learners_weights_into_the_generator(generator, learner_model, sequence):
    prompt, response = sequence
    model = learner_model
    assert max_gap(vllm_logprobs(generator, prompt, response), hf_logprobs(model, prompt, response)) < 1e-4

    # Round 1: noise on every parameter, the tied embedding (and so the LM head) included.
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    before = vllm_logprobs(generator, prompt, response)
    broadcaster = WeightBroadcaster([generator], backend="gloo", bucket_mb=0.25, timeout_s=60)
    broadcaster.setup()
    try:
        seconds = broadcaster.broadcast(model.named_parameters(), version=1)
        assert broadcaster.last_bucket_count > 1  # the 1.8 MB model does not fit one 0.25 MB bucket
        assert seconds > 0
        assert ray.get(generator.ping.remote()) == 1
        after = vllm_logprobs(generator, prompt, response)
        expected = hf_logprobs(model, prompt, response)
        assert max_gap(after, expected) < 1e-4
        assert max_gap(after, before) > 1e-2

        # Round 2, over a group formed again (as after a generator restart): a few SGD steps towards the answer.
        broadcaster.close()
        broadcaster.setup()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        ids = torch.tensor([prompt + response])
        labels = torch.tensor([[-100] * len(prompt) + response])
        for _ in range(5):
            optimizer.zero_grad()
            model(input_ids=ids, labels=labels).loss.backward()
            optimizer.step()
        broadcaster.broadcast(model.named_parameters(), version=2)
        assert ray.get(generator.ping.remote()) == 2
        trained = vllm_logprobs(generator, prompt, response)
        assert max_gap(trained, hf_logprobs(model, prompt, response)) < 1e-4
        # the answer the learner trained towards became likelier (by 0.79 nats on the reference machine)
        assert sum(trained) > sum(after) + 0.3

        # Samples come from the new weights too: their behaviour log-probs are the learner's.
        (group,) = ray.get(generator.generate.remote([prompt], n=4, max_new_tokens=4, seed=0), timeout=120)
        for s in group:
            assert max_gap(s.logprobs, hf_logprobs(model, prompt, s.response_ids)) < 1e-4
    finally:
        broadcaster.close()


def test_a_broadcast_lands_while_a_rollout_is_in_flight_and_the_next_call_samples_with_it(
        generator, learner_model, sequence):
    import copy
    import time

    from apmpo_ray.rollout.types import GenerationRequest

    prompt, response = sequence
    old = ray.get(generator.ping.remote())
    old_logprobs = vllm_logprobs(generator, prompt, response)
    model = copy.deepcopy(learner_model)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    broadcaster = WeightBroadcaster([generator], backend="gloo", bucket_mb=0.25, timeout_s=60)
    broadcaster.setup()
    try:
        # ~5 s of sampling on the reference machine; the broadcast takes milliseconds
        long_requests = [GenerationRequest(prompt, n=64, max_tokens=40, seed=i, min_tokens=40) for i in range(16)]
        in_flight = generator.rollout_requests.remote(long_requests)
        time.sleep(2.0)  # let it start
        broadcaster.broadcast(model.named_parameters(), version=old + 1)
        assert not ray.wait([in_flight], timeout=0)[0], "the receive waited for the rollout in flight"
        version, groups = ray.get(in_flight, timeout=120)
        assert version == old  # that rollout sampled with the old weights, all of it
        eos = build_tokenizer().eos_token_id
        for sample in (groups[0][0], groups[-1][-1]):  # the first and the last drawn; eos barred by min_tokens
            assert max_gap(sample.logprobs, hf_logprobs(learner_model, prompt, sample.response_ids, eos)) < 1e-4
            assert max_gap(sample.logprobs, hf_logprobs(model, prompt, sample.response_ids, eos)) > 1e-2
        assert ray.get(generator.ping.remote()) == old + 1
        new_logprobs = vllm_logprobs(generator, prompt, response)
        assert max_gap(new_logprobs, hf_logprobs(model, prompt, response)) < 1e-4
        assert max_gap(new_logprobs, old_logprobs) > 1e-2
        timing = ray.get(generator.weight_timing.remote())
        assert timing["staged"] and timing["receive_s"] > 0 and timing["load_s"] > 0
        assert timing["loaded"] == timing["received"]  # each version was sampled with before the next came
    finally:
        broadcaster.close()
