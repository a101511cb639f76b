"""Packing and bucket planning, and the vLLM plugin registration: pure functions, no engine."""
import importlib.metadata

import pytest
import torch

from apmpo_ray.weight_sync import buckets


def metas_of(tensors):
    return [buckets.TensorMeta.of(f"t{i}", t) for i, t in enumerate(tensors)]


def test_pack_unpack_roundtrip_mixed_dtypes_and_views():
    base = torch.randn(6, 4)
    tensors = [torch.randn(3, 5), torch.arange(7, dtype=torch.int64), base.t(),  # non-contiguous view
               torch.randn(2, 2, dtype=torch.bfloat16), torch.tensor(3.5, dtype=torch.float64)]
    out = buckets.unpack(buckets.pack(tensors), metas_of(tensors))
    assert [n for n, _ in out] == [f"t{i}" for i in range(len(tensors))]
    for (_, got), want in zip(out, tensors):
        assert got.dtype == want.dtype and got.shape == want.shape
        assert torch.equal(got, want)


def test_unpack_refuses_a_buffer_of_the_wrong_size():
    tensors = [torch.randn(4)]
    with pytest.raises(ValueError, match="bytes"):
        buckets.unpack(torch.zeros(15, dtype=torch.uint8), metas_of(tensors))


def test_buckets_respect_the_cap_and_keep_order():
    sizes_bytes = [400, 400, 400, 1000, 100, 2500, 100]  # float32 elements * 4
    metas = metas_of([torch.zeros(n // 4) for n in sizes_bytes])
    plan = buckets.plan_buckets(metas, 1000)
    assert sum(plan) == len(metas)
    start = 0
    for count in plan:
        chunk = sizes_bytes[start:start + count]
        assert sum(chunk) <= 1000 or count == 1  # only a lone oversized tensor may exceed the cap
        start += count
    assert plan == [2, 1, 1, 1, 1, 1]


def test_vllm_bucket_count_follows_its_overflow_rule():
    metas = metas_of([torch.zeros(100) for _ in range(10)])  # 400 bytes each
    assert buckets.count_vllm_buckets(metas, 1000) == 4  # closes after 1200, 1200, 1200, then 400 left


def test_plugin_is_declared_and_registers_gloo_idempotently():
    from vllm.distributed.weight_transfer.factory import WeightTransferEngineFactory

    points = importlib.metadata.entry_points(group="vllm.general_plugins")
    (point,) = [p for p in points if p.name == "apmpo_ray_weight_sync"]
    register = point.load()
    register()
    register()  # vLLM may load plugins more than once per process
    from apmpo_ray.weight_sync.gloo_engine import GlooWeightTransferEngine

    assert WeightTransferEngineFactory._registry["gloo"]() is GlooWeightTransferEngine


def test_backend_auto_follows_the_visible_accelerator_and_unknown_backends_are_rejected():
    from apmpo_ray.weight_sync import WeightBroadcaster

    handle = object()  # the constructor does not contact generators
    expected = "nccl" if torch.cuda.is_available() else "gloo"
    assert WeightBroadcaster([handle], master_address="127.0.0.1").backend == expected
    with pytest.raises(ValueError, match="mpi"):
        WeightBroadcaster([handle], backend="mpi", master_address="127.0.0.1")
