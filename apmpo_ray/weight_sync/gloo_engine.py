"""Worker side of the gloo weight transfer: a vLLM ``WeightTransferEngine`` for CPU (and any device).

Registered under the backend name "gloo" by :mod:`apmpo_ray.weight_sync.vllm_plugin`, so a vLLM engine
started with ``weight_transfer_config={"backend": "gloo"}`` builds it in every worker. It follows the
same lifecycle as vLLM's NCCL engine (init -> start/update/finish per round, layerwise reload), so the
CPU path exercises the code the GPU path runs; only the transport differs.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from vllm.distributed.weight_transfer.base import (
    WeightTransferEngine,
    WeightTransferInitInfo,
    WeightTransferUpdateInfo,
)

from . import buckets, gloo_group, reload

log = logging.getLogger(__name__)


@dataclass
class GlooWeightTransferInitInfo(WeightTransferInitInfo):
    master_address: str
    master_port: int
    rank_offset: int  # group rank of this generator's first worker (the trainer is rank 0)
    world_size: int
    timeout_s: float = 300.0


@dataclass
class GlooWeightTransferUpdateInfo(WeightTransferUpdateInfo):
    names: list[str]
    dtype_names: list[str]
    shapes: list[list[int]]
    bucket_sizes: list[int] = field(default_factory=list)  # tensors per packed bucket, in order

    def __post_init__(self) -> None:
        n = len(self.names)
        if len(self.dtype_names) != n or len(self.shapes) != n:
            raise ValueError(f"update info lists differ in length: {n} names, {len(self.dtype_names)} dtypes, "
                             f"{len(self.shapes)} shapes")
        if sum(self.bucket_sizes) != n:
            raise ValueError(f"bucket_sizes cover {sum(self.bucket_sizes)} tensors, update info names {n}")

    def metas(self) -> list[buckets.TensorMeta]:
        return [buckets.TensorMeta(n, d, tuple(s)) for n, d, s in zip(self.names, self.dtype_names, self.shapes)]


def group_rank(parallel_config: Any, rank_offset: int) -> int:
    """This worker's rank in the transfer group: unique across data-parallel replicas, as in vLLM's NCCL engine."""
    worker_rank = parallel_config.data_parallel_index * parallel_config.world_size + parallel_config.rank
    return rank_offset + worker_rank


class GlooWeightTransferEngine(WeightTransferEngine[GlooWeightTransferInitInfo, GlooWeightTransferUpdateInfo]):
    init_info_cls = GlooWeightTransferInitInfo
    update_info_cls = GlooWeightTransferUpdateInfo

    def __init__(self, config, vllm_config, device: torch.device, model: torch.nn.Module) -> None:
        super().__init__(config, vllm_config, device, model)
        self.group: torch.distributed.ProcessGroupGloo | None = None

    def init_transfer_engine(self, init_info: GlooWeightTransferInitInfo) -> None:
        self.shutdown()  # a re-setup (e.g. after a peer restarted) replaces the old group
        rank = group_rank(self.parallel_config, init_info.rank_offset)
        log.info("joining gloo weight-transfer group at %s:%d as rank %d/%d", init_info.master_address,
                 init_info.master_port, rank, init_info.world_size)
        self.group = gloo_group.join_group(store=None, master_address=init_info.master_address,
                                           master_port=init_info.master_port, rank=rank,
                                           world_size=init_info.world_size, timeout_s=init_info.timeout_s)

    def start_weight_update(self) -> None:
        reload.start_reload(self.model)

    def finish_weight_update(self) -> None:
        reload.finish_reload(self.model, self.model_config)

    def update_weights(self, update_info: dict[str, Any]) -> None:
        # The base class ends with torch.accelerator.synchronize(), which raises on a CPU-only torch.
        self.receive_weights(self.parse_update_info(update_info))
        if torch.accelerator.is_available():
            torch.accelerator.synchronize()

    def receive_weights(self, update_info: GlooWeightTransferUpdateInfo) -> None:
        try:
            for named_tensors in self.receive_buckets(update_info):
                self.model.load_weights(named_tensors)
        except BaseException:
            # The worker forgets the update session on error, but the layers are still staged on the meta
            # device; finalizing puts real tensors back so the next full update starts from a clean state.
            # The weights are a mix of old and partial new ones until then, and the generator refuses to
            # sample with them.
            self.finish_weight_update()
            raise

    def receive_buckets(self, update_info: GlooWeightTransferUpdateInfo) -> Iterator[list[tuple[str, torch.Tensor]]]:
        """The broadcast's buckets as they arrive, each unpacked into (name, tensor) views of its own buffer."""
        if self.group is None:
            raise RuntimeError("gloo weight transfer is not initialized: call init_weight_transfer_engine first")
        metas = update_info.metas()
        start = 0
        for count in update_info.bucket_sizes:
            bucket = metas[start:start + count]
            start += count
            # A fresh buffer per bucket: layerwise reload may hold on to the unpacked views until a layer
            # is complete, which can span buckets, and a staged update keeps them all.
            buffer = torch.empty(sum(m.nbytes for m in bucket), dtype=torch.uint8)
            self.group.broadcast(buffer, 0).wait()
            yield buckets.unpack(buffer, bucket)

    def shutdown(self) -> None:
        if self.group is not None:
            try:
                self.group.shutdown()
            except Exception as exc:  # a group whose peers vanished may fail to close cleanly
                log.warning("closing the gloo weight-transfer group failed: %s", exc)
            self.group = None


def receive_to_staging(worker, update_info: dict[str, Any]) -> list[tuple[str, torch.Tensor]]:
    """Run in a vLLM worker (``LLM.collective_rpc``): receives a whole broadcast without touching the model,
    which may be sampling meanwhile; the caller loads the tensors between two engine calls."""
    engine = worker.weight_transfer_engine
    return [pair for named_tensors in engine.receive_buckets(engine.parse_update_info(update_info))
            for pair in named_tensors]
