"""Learner rank 0 -> generators: one process group, bucketed broadcasts, loud failures.

Group layout: rank 0 is the calling (learner) process; ranks 1.. are every vLLM worker of every generator,
in the order of ``generators``. The group is private to weight sync and never the default torch.distributed
group, which the learner already uses for training.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import torch

from . import buckets
from .transports import TRANSPORTS, resolve_backend

log = logging.getLogger(__name__)


class WeightSyncError(RuntimeError):
    """A weight sync did not complete; the message names the generators that failed or never answered."""


def _default_master_address() -> str:
    import ray

    return ray.util.get_node_ip_address() if ray.is_initialized() else "127.0.0.1"


class WeightBroadcaster:
    def __init__(self, generators: list, *, backend: str = "auto", bucket_mb: float = 64,
                 timeout_s: float = 300.0, master_address: str | None = None) -> None:
        if not generators:
            raise ValueError("WeightBroadcaster needs at least one generator")
        if bucket_mb <= 0 or timeout_s <= 0:
            raise ValueError(f"bucket_mb and timeout_s must be positive, got {bucket_mb} and {timeout_s}")
        self.generators = list(generators)
        self.backend = resolve_backend(backend)
        self.timeout_s = float(timeout_s)
        self.bucket_bytes = max(1, int(bucket_mb * 2**20))
        self.master_address = master_address or _default_master_address()
        self._transport = None
        self.last_bucket_count = 0  # buckets in the latest broadcast, for logs and tests

    @property
    def is_set_up(self) -> bool:
        return self._transport is not None

    def setup(self) -> None:
        """Forms the group; blocks until every generator's workers joined, or raises WeightSyncError."""
        self.close()
        deadline = time.monotonic() + self.timeout_s
        sizes = self._await([g.weight_sync_world_size.remote() for g in self.generators], deadline,
                            "report its weight-sync world size")
        world_size = 1 + sum(sizes)
        transport = TRANSPORTS[self.backend](self.master_address, self.bucket_bytes, self.timeout_s)
        transport.prepare(world_size)
        offsets = [1 + sum(sizes[:i]) for i in range(len(sizes))]
        refs = [g.init_weight_sync.remote(transport.worker_init_info(offset))
                for g, offset in zip(self.generators, offsets)]
        try:
            transport.open()  # blocks until every rank joined; the generators join concurrently
            self._await(refs, deadline, "join the weight-sync group")
        except Exception as exc:
            absent = self._absent_generators(transport.missing_ranks(), sizes, offsets)
            transport.close()
            message = str(exc) if isinstance(exc, WeightSyncError) else self._report(refs, "join the weight-sync "
                                                                                          "group", exc)
            if absent:
                message = f"generators {absent} never joined the weight-sync group " \
                          f"({', '.join(self._label(i) for i in absent)}); the others waited for them. {message}"
            raise WeightSyncError(message) from exc
        self._transport = transport
        log.info("weight-sync group formed: backend %s, world size %d", self.backend, world_size)

    def broadcast(self, named_tensors: Iterable[tuple[str, torch.Tensor]], version: int) -> float:
        """Pushes the tensors to every generator as policy ``version``; returns the seconds taken.

        The names are the Hugging Face parameter names; vLLM's ``load_weights`` maps them (and skips
        ``lm_head`` when embeddings are tied). Every tensor is held until the send ends, because the
        generators need all names and shapes before the first byte: a source that reuses one buffer must
        yield copies. After a WeightSyncError the group is closed (its state is unknown): call setup() again.
        """
        if self._transport is None:
            raise WeightSyncError("weight-sync group is not set up: call setup() first")
        start = time.monotonic()
        deadline = start + self.timeout_s
        names, tensors = [], []
        for name, tensor in named_tensors:
            names.append(name)
            tensors.append(tensor.detach())
        payload = self._transport.update_payload([buckets.TensorMeta.of(n, t) for n, t in zip(names, tensors)])
        what = f"receive weights version {version}"
        refs = [g.receive_weights.remote({**payload, "version": int(version)}) for g in self.generators]
        try:
            self.last_bucket_count = self._transport.send(tensors, payload)
            confirmed = self._await(refs, deadline, what)
        except Exception as exc:
            self.close()
            if isinstance(exc, WeightSyncError):
                raise
            raise WeightSyncError(self._report(refs, what, exc)) from exc
        wrong = {i: v for i, v in enumerate(confirmed) if v != version}
        if wrong:
            self.close()
            raise WeightSyncError(f"generators reported versions {wrong} after a broadcast of version {version}")
        seconds = time.monotonic() - start
        log.debug("broadcast version %d: %d tensors in %d buckets, %.3fs", version, len(tensors),
                 self.last_bucket_count, seconds)
        return seconds

    @staticmethod
    def _absent_generators(missing: list[int] | None, sizes: list[int], offsets: list[int]) -> list[int]:
        missing = set(missing or ())
        return [i for i, (offset, size) in enumerate(zip(offsets, sizes))
                if missing & set(range(offset, offset + size))]

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def _await(self, refs: list, deadline: float, what: str) -> list[Any]:
        """The results of ``refs`` by ``deadline``, or a WeightSyncError naming each generator that failed."""
        import ray

        ray.wait(refs, num_returns=len(refs), timeout=max(0.0, deadline - time.monotonic()))
        results, problems = self._collect(refs)
        if problems:
            raise WeightSyncError(self._report(refs, what, None, problems))
        return results

    def _collect(self, refs: list) -> tuple[list[Any], list[str]]:
        import ray

        ready = set(ray.wait(refs, num_returns=len(refs), timeout=0)[0])
        results, problems = [], []
        for i, ref in enumerate(refs):
            if ref not in ready:
                problems.append(f"generator {i} ({self._label(i)}) did not answer within {self.timeout_s:g}s")
                continue
            try:
                results.append(ray.get(ref))
            except Exception as exc:
                first_line = (str(exc).strip().splitlines() or [""])[-1][:300]
                problems.append(f"generator {i} ({self._label(i)}) failed: {type(exc).__name__}: {first_line}")
        return results, problems

    def _report(self, refs: list, what: str, cause: Exception | None, problems: list[str] | None = None) -> str:
        problems = problems if problems is not None else self._collect(refs)[1]
        message = f"weight sync failed to {what}: " + ("; ".join(problems) or "every generator answered")
        if cause is not None:
            message += f"; on rank 0: {type(cause).__name__}: {str(cause).strip()[:300]}"
        return message

    def _label(self, index: int) -> str:
        actor_id = getattr(self.generators[index], "_actor_id", None)
        return f"actor {actor_id.hex()[:12]}" if actor_id is not None else repr(self.generators[index])
