"""The mailbox a colocated engine serves: calls wait until the hosting worker answers, in order, errors included."""
import asyncio

import pytest

from apmpo_ray.config import ConfigError, load_config
from apmpo_ray.generators.colocated import GeneratorMailbox


def test_calls_wait_for_the_host_and_get_its_answers_and_errors():
    async def scenario():
        mailbox = GeneratorMailbox()
        first = asyncio.ensure_future(mailbox.rollout_requests(["r1"], temperature=0.5))
        second = asyncio.ensure_future(mailbox.continuation_logprobs([([1], [2])]))
        third = asyncio.ensure_future(mailbox.rollout_requests(["r3"]))
        taken = [await mailbox.next_request() for _ in range(3)]
        assert [(method, args, kwargs) for _, method, args, kwargs in taken] == [
            ("rollout_requests", (["r1"],), {"temperature": 0.5}),
            ("continuation_logprobs", ([([1], [2])],), {}),
            ("rollout_requests", (["r3"],), {})]
        await asyncio.sleep(0)
        assert not any(f.done() for f in (first, second, third))  # nothing answered yet
        ids = [request_id for request_id, *_ in taken]
        mailbox.complete(ids[1], [[-0.5]], version=3)
        mailbox.complete(ids[0], (3, ["samples"]))
        mailbox.complete(ids[2], error=RuntimeError("engine failed"))
        assert await second == [[-0.5]] and await first == (3, ["samples"])
        with pytest.raises(RuntimeError, match="engine failed"):
            await third
        assert await mailbox.ping() == 3  # the version the host last reported

    asyncio.run(scenario())


def test_colocated_placement_needs_one_engine_per_learner_worker():
    with pytest.raises(ConfigError, match="rollout.num_generators \\(2\\) must equal trainer.num_workers \\(1\\)"):
        load_config(None, ["rollout.placement=colocated", "rollout.num_generators=2"])
    with pytest.raises(ConfigError, match="tensor_parallel_size must be 1"):
        load_config(None, ["rollout.placement=colocated", "rollout.tensor_parallel_size=2"])
    assert load_config(None, ["rollout.placement=colocated"]).rollout.placement == "colocated"
