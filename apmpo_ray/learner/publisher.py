"""How a learner worker's new weights reach the generators and their version gets published.

Separate placement: rank 0 broadcasts over the weight-sync group, on a background thread while the next step
trains (one broadcast at a time, so versions arrive in order), and publishes the version to the coordinator
when every generator has it; it also answers the coordinator's requests to resync a generator Ray restarted.
Colocated placement: every worker loads the weights into the engine it hosts, in memory.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor

log = logging.getLogger(__name__)


class WeightPublisher:
    def __init__(self, cfg, policy, coordinator, generators: list, *, rank: int, colocated=None) -> None:
        self.cfg, self.policy, self.coordinator, self.generators = cfg, policy, coordinator, list(generators)
        self.rank, self.colocated = rank, colocated
        self.hands_out = rank == 0 or colocated is not None  # rank 0 broadcasts; a colocated worker loads
        self.broadcaster = self._resync_request = None
        self._weights = None
        self._thread: ThreadPoolExecutor | None = None
        self._pending: Future | None = None
        self.last_transfer_s: float | None = None
        if rank == 0 and colocated is None:
            from ..weight_sync import WeightBroadcaster

            t = cfg.trainer
            self._resync_request = coordinator.wait_for_resync_request.remote()
            self.broadcaster = WeightBroadcaster(generators, backend=t.weight_sync_backend,
                                                 bucket_mb=t.weight_sync_bucket_mb, timeout_s=t.weight_sync_timeout_s)
            self.broadcaster.setup()
            if t.weight_sync_in_background:
                self._thread = ThreadPoolExecutor(1, thread_name_prefix="weight-sync")

    def take(self) -> None:
        """The weights the generators get next (every rank calls: under ZeRO-3 gathering them is collective).
        Restart resyncs and retries reuse them, so rank 0 never enters a ZeRO-3 gather alone. A background
        broadcast gets a copy (its staging buffer): the live tensors change at the next optimizer step."""
        weights = self.policy.full_weights(every_rank=self.colocated is not None)
        if weights is not None and self._thread is not None:
            weights = [(name, tensor.clone()) for name, tensor in weights]
        self._weights = weights

    def publish(self, version: int) -> float:
        """Hands the taken weights out as ``version``; returns the seconds the learner waited for it."""
        if self._thread is None:
            return self.sync(version, regroup=self._take_resync_request())
        started = time.monotonic()
        self.wait()
        self._pending = self._thread.submit(self.sync, version, self._weights, self._take_resync_request())
        return time.monotonic() - started

    def wait(self) -> None:
        """Until the background broadcast in flight has ended; its failure surfaces here."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self.last_transfer_s = pending.result()

    def sync(self, version: int, weights=None, regroup: bool = False) -> float:
        """Hands ``weights`` (default: the taken ones) out as ``version`` now and publishes it (rank 0). A
        generator that Ray restarted lost its place in the group (and holds the initial weights): form the
        group again and re-send, once."""
        import ray

        from ..weight_sync import WeightSyncError

        started = time.monotonic()
        weights = self._weights if weights is None else weights
        if self.colocated is not None:
            self.colocated.load_weights(weights, version)
        else:
            if regroup:
                log.warning("a generator was restarted: forming the weight-sync group again")
                self._wait_for_generators()
                self.broadcaster.setup()
            try:
                self.broadcaster.broadcast(weights, version)
            except WeightSyncError as err:
                log.warning("weight sync of version %d failed (%s); forming the group again and retrying",
                            version, err)
                self._wait_for_generators()
                self.broadcaster.setup()
                self.broadcaster.broadcast(weights, version)
        if self.rank == 0:
            ray.get(self.coordinator.publish_version.remote(version))
        return time.monotonic() - started

    def resync_until(self, ref, version: int) -> None:
        """Rank 0, separate placement, waiting for ``ref`` (the next batch): re-sends ``version`` to any
        generator Ray restarted meanwhile, which could otherwise never produce the batch."""
        import ray

        while ray.wait([ref, self._resync_request], num_returns=1)[0] == [self._resync_request]:
            self._resync_request = self.coordinator.wait_for_resync_request.remote()
            self.wait()
            self.sync(version, regroup=True)

    def _take_resync_request(self) -> bool:
        """Whether a generator asked for the weights again since the last look."""
        import ray

        if self._resync_request is None or not ray.wait([self._resync_request], timeout=0)[0]:
            return False
        self._resync_request = self.coordinator.wait_for_resync_request.remote()
        return True

    def _wait_for_generators(self) -> None:
        """Until every generator answers: a restarting actor refuses calls until its engine is up again."""
        import ray

        deadline = time.monotonic() + self.cfg.trainer.weight_sync_timeout_s
        while True:
            try:
                ray.get([g.ping.remote() for g in self.generators], timeout=max(1.0, deadline - time.monotonic()))
                return
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(2.0)

    def close(self) -> None:
        self.wait()
        if self._thread is not None:
            self._thread.shutdown()
        if self.broadcaster is not None:
            self.broadcaster.close()
