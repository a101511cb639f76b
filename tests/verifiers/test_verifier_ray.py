"""Verifiers on Ray: math inside actors, the pool's ordering and spread, and surviving a killed actor."""
import asyncio
import threading
import time

import pytest
import ray

from apmpo_ray.verifiers import VerifierActor, VerifierPool


@ray.remote
class AsyncMathCaller:
    """Calls the math reward the way an async rollout coordinator would: on its event-loop thread."""

    async def score_directly(self, response, reference):
        from apmpo_ray.rewards import get_reward_fn

        on_main = threading.current_thread() is threading.main_thread()
        return on_main, get_reward_fn("math")(response, reference)

    async def score_through_pool(self, pool, responses, references):
        return await pool.score_async(responses, references)


def test_math_scores_one_inside_an_async_actor(ray_cluster):
    caller = AsyncMathCaller.remote()
    on_main, reward = ray.get(caller.score_directly.remote("\\boxed{\\frac{1}{2}}", "0.5"))
    assert on_main is False  # the case where math-verify's alarm cannot work
    assert reward == 1.0
    ray.kill(caller)


def test_verifier_actor_scores_math_and_times_out_the_pathological(ray_cluster):
    actor = VerifierActor.remote("math", processes=1, timeout_s=1.0)
    started = time.monotonic()
    rewards = ray.get(actor.score.remote(["\\boxed{1/2}", "\\boxed{9^{9^{9^{9}}}}", "\\boxed{x=3}"],
                                         ["0.5", "5", "3"]))
    assert rewards == [1.0, 0.0, 1.0]
    assert time.monotonic() - started < 20
    assert ray.get(actor.stats.remote())["timeouts"] == 1
    ray.get(actor.close.remote())
    ray.kill(actor)


def test_pool_keeps_order_spreads_over_actors_and_works_from_an_async_actor(ray_cluster):
    pool = VerifierPool("verifier_test_rewards:pid", num_actors=2, timeout_s=5.0)
    try:
        pids = pool.score(["?"] * 6, [None] * 6)
        assert len(set(pids)) == 2  # two actors, one worker process each
        assert pids[:3] == [pids[0]] * 3 and pids[3:] == [pids[3]] * 3  # contiguous chunks, in order
        single = [pool.score(["?"], [None])[0] for _ in range(4)]
        assert len(set(single)) == 2  # one-sample calls alternate between the actors
        caller = AsyncMathCaller.remote()
        assert len(ray.get(caller.score_through_pool.remote(pool, ["?"] * 5, [None] * 5))) == 5
        ray.kill(caller)
        assert pool.stats()["scored"] == 6 + 4 + 5
        assert pool.stats()["actors"] == 2
    finally:
        pool.shutdown()


def test_pool_score_async_in_the_driver_event_loop(ray_cluster):
    pool = VerifierPool("countdown", num_actors=1)
    try:
        rewards = asyncio.run(pool.score_async(["3*5", "7+5", "7+5+3"], ["(3 5 7)15"] * 3))
        assert rewards == [1.0, 0.0, 1.0]
        with pytest.raises(ValueError, match="2 responses but 1 references"):
            pool.score(["a", "b"], ["a"])
        assert pool.score([], []) == []
    finally:
        pool.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        pool.score(["3"], ["(3)3"])


def test_killed_actor_is_restarted_and_no_score_is_lost(ray_cluster):
    pool = VerifierPool("verifier_test_rewards:slow", num_actors=1, timeout_s=5.0)
    try:
        actor = pool.actors[0]
        pid_before = ray.get(actor.ping.remote())
        ref = actor.score.remote(["x"] * 8, [0.25] * 8)  # about 2 s of work
        time.sleep(0.7)
        ray.kill(actor, no_restart=False)
        assert ray.get(ref, timeout=60) == [1.0] * 8
        assert ray.get(actor.ping.remote()) != pid_before  # really restarted
        assert pool.score(["x"] * 2, [0.0] * 2) == [1.0, 1.0]
    finally:
        pool.shutdown()


def test_pool_with_an_unknown_reward_fails_clearly(ray_cluster):
    with pytest.raises(ValueError, match="failed to start"):
        VerifierPool("no_such_module_xyz:score", num_actors=1)
