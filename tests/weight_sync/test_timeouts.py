"""A generator that never joins, or joins and never receives, fails the sync within timeout_s instead of hanging.

The faulty generators are small Ray actors that speak the generator's weight-sync methods; the one that
joins does so through the same gloo rendezvous the vLLM worker engine uses.
"""
import time

import pytest

import ray

from apmpo_ray.weight_sync import WeightBroadcaster, WeightSyncError


@ray.remote(num_cpus=0, max_concurrency=1)
class FaultyGenerator:
    def __init__(self, joins: bool, world_size: int = 1):
        self.joins = joins
        self.world_size = world_size
        self.group = None

    def weight_sync_world_size(self):
        return self.world_size

    def init_weight_sync(self, init_info):
        if self.joins:
            from apmpo_ray.weight_sync import gloo_group

            self.group = gloo_group.join_group(
                store=None, master_address=init_info["master_address"], master_port=init_info["master_port"],
                rank=init_info["rank_offset"], world_size=init_info["world_size"], timeout_s=init_info["timeout_s"])

    def receive_weights(self, update_info):
        time.sleep(3600)  # stuck: never posts the receives


def tensors():
    import torch

    return [("w", torch.ones(1000)), ("b", torch.zeros(10))]


def test_broadcast_before_setup_is_an_error(ray_session):
    actor = FaultyGenerator.remote(joins=True)
    broadcaster = WeightBroadcaster([actor], backend="gloo", timeout_s=5)
    with pytest.raises(WeightSyncError, match="setup"):
        broadcaster.broadcast(tensors(), version=1)
    ray.kill(actor)


@pytest.mark.parametrize("world_size", [1, 2], ids=["never-joins", "claims-two-ranks-joins-none"])
def test_setup_fails_within_timeout_when_a_generator_never_joins(ray_session, world_size):
    good, bad = FaultyGenerator.remote(joins=True), FaultyGenerator.remote(joins=False, world_size=world_size)
    ray.get([good.weight_sync_world_size.remote(), bad.weight_sync_world_size.remote()])  # started: only joining is timed
    broadcaster = WeightBroadcaster([good, bad], backend="gloo", timeout_s=4)
    start = time.monotonic()
    with pytest.raises(WeightSyncError) as caught:
        broadcaster.setup()
    elapsed = time.monotonic() - start
    assert 3 < elapsed < 15
    assert "generators [1] never joined" in str(caught.value)
    assert not broadcaster.is_set_up
    for actor in (good, bad):
        ray.kill(actor)


def test_broadcast_fails_within_timeout_naming_the_generator_that_never_receives(ray_session):
    stuck = FaultyGenerator.remote(joins=True)
    broadcaster = WeightBroadcaster([stuck], backend="gloo", timeout_s=4)
    broadcaster.setup()
    start = time.monotonic()
    with pytest.raises(WeightSyncError, match=r"generator 0 .*did not answer"):
        broadcaster.broadcast(tensors(), version=1)
    assert time.monotonic() - start < 15
    assert not broadcaster.is_set_up  # the group's state is unknown after a failure: setup() again
    ray.kill(stuck)
