"""Ray actor shell around :class:`VLLMGenerator`.

Engine calls (rollouts, scoring) run one at a time in the default concurrency group. Weight sync has a group
of its own, so a broadcast is received while a rollout is in flight: the engine stages it and swaps it in
before its next call (or, where it cannot stage, loads it right after the call in flight). Generation never
mixes weights within one call.
"""
from __future__ import annotations

import ray

from .engine import VLLMGenerator


@ray.remote(max_concurrency=1, concurrency_groups={"weight_sync": 1})
class GeneratorActor:
    def __init__(self, model_path: str, **kwargs) -> None:
        self._generator = VLLMGenerator(str(model_path), **kwargs)

    def ping(self) -> int:
        """Liveness probe; returns the policy version the next rollout samples with."""
        return self._generator.current_version()

    def get_version(self) -> int:
        return self._generator.current_version()

    def generate(self, prompts, *, n, max_new_tokens, temperature=1.0, top_p=1.0, seed=None, min_new_tokens=0):
        return self._generator.generate(prompts, n=n, max_new_tokens=max_new_tokens, temperature=temperature,
                                        top_p=top_p, seed=seed, min_new_tokens=min_new_tokens)

    def rollout_requests(self, requests, **sampling):
        """``generate_requests`` plus the policy version that produced the samples."""
        return self._generator.rollout_requests(requests, **sampling)

    def vocab_size(self) -> int:
        return self._generator.vocab_size

    def sequence_logprobs(self, prompt_ids, response_ids):
        return self._generator.sequence_logprobs(prompt_ids, response_ids)

    def continuation_logprobs(self, pairs):
        return self._generator.continuation_logprobs(pairs)

    @ray.method(concurrency_group="weight_sync")  # answers during a rollout
    def weight_timing(self) -> dict:
        """Updates taken, seconds receiving them and seconds sampling paused to load them."""
        return dict(self._generator.weight_timing)

    @ray.method(concurrency_group="weight_sync")
    def weight_sync_world_size(self) -> int:
        return self._generator.weight_sync_world_size()

    @ray.method(concurrency_group="weight_sync")
    def init_weight_sync(self, init_info: dict) -> None:
        self._generator.init_weight_sync(init_info)

    @ray.method(concurrency_group="weight_sync")
    def receive_weights(self, update_info: dict) -> int:
        return self._generator.receive_weights(update_info)

    def close(self) -> None:
        self._generator.close()
