"""The slot broker: one named, detached Ray actor holding the cluster's :class:`~.ledger.SlotLedger`.

Every app process and worker finds it by name; if its process dies Ray restarts it (empty), and the
workers' next lease renewals tell it again which runs hold slots.
"""
from __future__ import annotations

import threading
from typing import Any

import ray

from dlplay.cluster.ledger import LedgerState, SlotLedger
from dlplay.cluster.settings import BROKER_NAME, NAMESPACE


class Broker:
    """The actor's body: the ledger behind remote calls (one at a time: a plain, ordered actor)."""

    def __init__(self, limit: int):
        self.ledger = SlotLedger(limit)

    def poll(self, run_id: str, worker: str) -> int:
        return self.ledger.poll(run_id, worker)

    def leave(self, run_id: str) -> None:
        self.ledger.leave(run_id)

    def yield_if_waited_for(self, run_id: str, paused_s: float, grace_s: float) -> bool:
        return self.ledger.yield_if_waited_for(run_id, paused_s, grace_s)

    def renew(self, worker: str, holding: list[str]) -> None:
        self.ledger.renew(worker, holding)

    def drop_worker(self, worker: str) -> int:
        return self.ledger.drop_worker(worker)

    def set_limit(self, limit: int) -> None:
        self.ledger.set_limit(limit)

    def state(self) -> LedgerState:
        return self.ledger.state()


BrokerActor = ray.remote(Broker)
_lock = threading.Lock()
_cached: dict[str, Any] = {}


def get_broker(limit: int, *, fresh: bool = False) -> Any:
    """The broker's actor handle, created with ``limit`` by whoever asks first (``fresh``: look it up
    again, after a call to it failed)."""
    with _lock:
        if fresh or "broker" not in _cached:
            _cached["broker"] = BrokerActor.options(
                name=BROKER_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
                num_cpus=0, max_restarts=-1,
            ).remote(limit)
        return _cached["broker"]
