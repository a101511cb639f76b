"""A transformers sampler with ``VLLMGenerator.generate``'s signature, for the runner without a vLLM engine."""
import pytest
import torch

from apmpo_ray.rollout.types import Sample


class HFGenerator:
    def __init__(self, model_path):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
        self.calls = []

    @torch.no_grad()
    def generate(self, prompts, *, n, max_new_tokens, temperature=1.0, top_p=1.0, seed=None):
        self.calls.append({"prompts": len(prompts), "n": n, "temperature": temperature, "seed": seed})
        eos, pad = self.tokenizer.eos_token_id, self.tokenizer.pad_token_id
        out = []
        for i, prompt in enumerate(prompts):
            if seed is not None:
                torch.manual_seed(seed + i)
            ids = torch.tensor([prompt])
            sampled = self.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=temperature > 0,
                                          temperature=temperature or None, top_p=top_p, num_return_sequences=n,
                                          max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=pad)
            samples = []
            for row in sampled[:, len(prompt):].tolist():
                stop = eos in row
                response = row[: row.index(eos) + 1] if stop else row
                text = self.tokenizer.decode(response, skip_special_tokens=True)
                samples.append(Sample(response_ids=response, logprobs=[0.0] * len(response), text=text,
                                      finish_reason="stop" if stop else "length"))
            out.append(samples)
        return out


@pytest.fixture(scope="session")
def tiny_path():
    from apmpo_ray.models.tiny import tiny_model_path

    return tiny_model_path()


@pytest.fixture(scope="session")
def hf_generator(tiny_path):
    return HFGenerator(tiny_path)
