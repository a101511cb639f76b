"""Trainer-side transports: how rank 0 forms the group and pushes packed buckets.

Each transport pairs with a vLLM worker-side engine of the same backend name and produces exactly the
init and update payloads that engine parses, so the generators need not know which one is in use.
"""
from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

import torch

from . import buckets, gloo_group


class TransportTimeout(TimeoutError):
    pass


class GlooTransport:
    """A standalone ProcessGroupGloo over a private TCPStore; pairs with ``GlooWeightTransferEngine``."""

    backend = "gloo"

    def __init__(self, master_address: str, bucket_bytes: int, timeout_s: float) -> None:
        self.master_address = master_address
        self.bucket_bytes = bucket_bytes
        self.timeout_s = timeout_s
        self._store = None
        self._group = None

    def prepare(self, world_size: int) -> None:
        # The store must exist (and own its port) before the workers are told where to connect.
        self._store = gloo_group.open_master_store(self.master_address, world_size, self.timeout_s)
        self._world_size = world_size

    def worker_init_info(self, rank_offset: int) -> dict[str, Any]:
        return {"master_address": self.master_address, "master_port": self._store.port,
                "rank_offset": rank_offset, "world_size": self._world_size, "timeout_s": self.timeout_s}

    def open(self) -> None:
        self._group = gloo_group.join_group(store=self._store, master_address=self.master_address,
                                            master_port=self._store.port, rank=0,
                                            world_size=self._world_size, timeout_s=self.timeout_s)

    def missing_ranks(self) -> list[int] | None:
        """After a failed open(): the ranks that never arrived."""
        return None if self._store is None else gloo_group.missing_ranks(self._store, self._world_size)

    def update_payload(self, metas: list[buckets.TensorMeta]) -> dict[str, Any]:
        return {"names": [m.name for m in metas], "dtype_names": [m.dtype_name for m in metas],
                "shapes": [list(m.shape) for m in metas],
                "bucket_sizes": buckets.plan_buckets(metas, self.bucket_bytes)}

    def send(self, tensors: list[torch.Tensor], payload: dict[str, Any]) -> int:
        """Broadcasts the buckets; returns how many were sent. Each collective is bounded by the group timeout."""
        start = 0
        for count in payload["bucket_sizes"]:
            self._group.broadcast(buckets.pack(tensors[start:start + count]), 0).wait()
            start += count
        return len(payload["bucket_sizes"])

    def close(self) -> None:
        if self._group is not None:
            try:
                self._group.shutdown()
            except Exception:  # peers that already left make a clean shutdown impossible; nothing to undo
                pass
        self._group = None
        self._store = None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]


def _bounded(fn: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Runs ``fn`` on a daemon thread; NCCL calls cannot be interrupted, so a missing peer leaves the thread
    parked, but the caller gets a TransportTimeout instead of hanging with it."""
    box: dict[str, Any] = {}
    device = torch.cuda.current_device()  # a new thread starts on device 0, not on the caller's device

    def target() -> None:
        try:
            torch.cuda.set_device(device)
            box["value"] = fn()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"weight-sync-{what}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise TransportTimeout(f"{what} did not finish within {timeout_s:.0f}s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


class NcclTransport:
    """vLLM's own NCCL rendezvous and packed producer; pairs with vLLM's ``NCCLWeightTransferEngine``.

    Buckets are cut by vLLM's packing rule (a bucket closes once it exceeds ``bucket_bytes``), which the
    worker mirrors from ``packed_buffer_size_bytes`` in the init info.
    """

    backend = "nccl"
    num_buffers = 2

    def __init__(self, master_address: str, bucket_bytes: int, timeout_s: float) -> None:
        self.master_address = master_address
        self.bucket_bytes = bucket_bytes
        self.timeout_s = timeout_s
        self._comm = None

    def prepare(self, world_size: int) -> None:
        self._port = _free_port()
        self._world_size = world_size

    def worker_init_info(self, rank_offset: int) -> dict[str, Any]:
        return {"master_address": self.master_address, "master_port": self._port, "rank_offset": rank_offset,
                "world_size": self._world_size, "packed": True, "packed_buffer_size_bytes": self.bucket_bytes,
                "packed_num_buffers": self.num_buffers}

    def open(self) -> None:
        from vllm.distributed.device_communicators.pynccl import PyNcclCommunicator
        from vllm.distributed.utils import StatelessProcessGroup
        from vllm.utils.nccl import unpinned_nccl_env

        def connect():
            pg = StatelessProcessGroup.create(host=self.master_address, port=self._port, rank=0,
                                              world_size=self._world_size, store_timeout=int(self.timeout_s))
            with unpinned_nccl_env():
                return PyNcclCommunicator(pg, device=torch.cuda.current_device())

        self._comm = _bounded(connect, self.timeout_s, "NCCL group formation")

    def missing_ranks(self) -> list[int] | None:
        return None  # NCCL's rendezvous does not say who is missing

    def update_payload(self, metas: list[buckets.TensorMeta]) -> dict[str, Any]:
        return {"names": [m.name for m in metas], "dtype_names": [m.dtype_name for m in metas],
                "shapes": [list(m.shape) for m in metas]}

    def send(self, tensors: list[torch.Tensor], payload: dict[str, Any]) -> int:
        from vllm.distributed.weight_transfer.packed_tensor import packed_nccl_broadcast_producer

        device = torch.device("cuda", torch.cuda.current_device())
        pairs = ((name, t.to(device)) for name, t in zip(payload["names"], tensors))
        _bounded(lambda: packed_nccl_broadcast_producer(
            iterator=pairs, group=self._comm, src=0, post_iter_func=lambda item: item[1],
            buffer_size_bytes=self.bucket_bytes, num_buffers=self.num_buffers), self.timeout_s, "NCCL broadcast")
        return buckets.count_vllm_buckets([buckets.TensorMeta.of(n, t) for n, t in zip(payload["names"], tensors)],
                                          self.bucket_bytes)

    def close(self) -> None:
        # A communicator stuck in a timed-out collective cannot be destroyed safely; dropping it is all we can do.
        self._comm = None


TRANSPORTS = {"gloo": GlooTransport, "nccl": NcclTransport}


def resolve_backend(backend: str) -> str:
    """"auto" means NCCL where this process sees a GPU, gloo otherwise."""
    if backend == "auto":
        return "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in TRANSPORTS:
        raise ValueError(f"unknown weight-sync backend {backend!r}; expected 'auto', {', '.join(map(repr, TRANSPORTS))}")
    return backend
