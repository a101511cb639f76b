"""A standalone gloo process group between the learner's rank 0 and the generators' vLLM workers.

It never touches torch.distributed's default group: the learner already has one (Ray Train), and vLLM
workers have their own. Every blocking step (store connect, group rendezvous, each collective) is bounded
by ``timeout_s`` so a missing peer surfaces as an error instead of a hang.
"""
from __future__ import annotations

import socket
from datetime import timedelta

import torch.distributed as dist

# The store is shared by nothing else, but a prefix keeps keys readable in debugging and lets a future
# re-setup on the same store avoid stale keys.
_PREFIX = "apmpo_weight_sync"


def local_address_towards(peer: str) -> str:
    """The local IP that routes to ``peer``; gloo must bind an interface the peer can reach."""
    if peer in ("127.0.0.1", "localhost"):
        return "127.0.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((peer, 9))  # UDP connect sends nothing; it only resolves the route
        return probe.getsockname()[0]


def open_master_store(master_address: str, world_size: int, timeout_s: float) -> dist.TCPStore:
    """The rank-0 rendezvous store on an OS-chosen free port (``store.port``), listening on all interfaces."""
    return dist.TCPStore(master_address, 0, world_size, is_master=True, timeout=timedelta(seconds=timeout_s),
                         wait_for_workers=False)


def join_group(*, store: dist.Store | None, master_address: str, master_port: int, rank: int,
               world_size: int, timeout_s: float) -> dist.ProcessGroupGloo:
    """Form (or join) the group; blocks until all ``world_size`` ranks are present or ``timeout_s`` passes."""
    timeout = timedelta(seconds=timeout_s)
    if store is None:
        store = dist.TCPStore(master_address, master_port, world_size, is_master=False, timeout=timeout)
    # Announce ourselves first, so that rank 0 can name the ranks that never arrived if the rendezvous fails.
    store.set(_joined_key(rank), "1")
    options = dist.ProcessGroupGloo._Options()
    options._timeout = timeout
    options._devices = [dist.ProcessGroupGloo.create_device(hostname=local_address_towards(master_address))]
    return dist.ProcessGroupGloo(dist.PrefixStore(_PREFIX, store), rank, world_size, options)


def _joined_key(rank: int) -> str:
    return f"{_PREFIX}/joined/{rank}"


def missing_ranks(store: dist.Store, world_size: int) -> list[int]:
    """Ranks that never started joining (rank 0's view after a failed rendezvous)."""
    return [rank for rank in range(world_size) if not store.check([_joined_key(rank)])]
