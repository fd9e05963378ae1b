"""The cluster-wide run limit and queue, as plain bookkeeping keyed by run id (no threads, no Ray).

One named actor (:data:`~dlplay.cluster.settings.BROKER_NAME`) holds one ``SlotLedger`` for the
whole cluster; every worker's runs ask it for a slot (``poll``) until they get one. It is the
in-process :class:`dlplay.server.slots.SlotPool`'s rule (first come, first served; a paused run
gives its slot to a waiting one after a grace period) without blocking calls: a remote caller must
never hold the actor. Entries are leased: a worker renews its runs' entries every few seconds, and
the entries of a worker that stopped renewing (its process was killed, its node was lost) lapse,
so a lost worker never holds slots for ever.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

LEASE_S = 15.0  # a worker that has not renewed its entries for this long is taken for lost


@dataclass
class _Entry:
    run_id: str
    worker: str  # the worker actor's id (a new id for a restarted worker)
    since: float = field(default_factory=time.monotonic)  # joined the queue / got the slot
    seen: float = field(default_factory=time.monotonic)  # last renewed


@dataclass(frozen=True)
class LedgerState:
    limit: int
    running: tuple[str, ...]  # run ids holding a slot, in the order they got it
    queued: tuple[str, ...]  # waiting run ids, next first
    waiting_s: tuple[float, ...]  # how long each queued run has waited


class SlotLedger:
    """At most ``limit`` runs hold a slot; the others queue in arrival order."""

    def __init__(self, limit: int, lease_s: float = LEASE_S):
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.lease_s = lease_s
        self._holders: dict[str, _Entry] = {}
        self._queue: dict[str, _Entry] = {}  # insertion order is arrival order

    def set_limit(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit

    def poll(self, run_id: str, worker: str) -> int:
        """0 when ``run_id`` holds a slot (granted now or before), else its place in the queue (1 = next)."""
        now = time.monotonic()
        self._expire(now)
        held = self._holders.get(run_id)
        if held is not None:
            held.seen = now
            return 0
        entry = self._queue.get(run_id)
        if entry is None:
            entry = self._queue[run_id] = _Entry(run_id, worker)
        entry.seen = now
        order = list(self._queue)
        if order[0] == run_id and len(self._holders) < self.limit:
            del self._queue[run_id]
            entry.since = now
            self._holders[run_id] = entry
            return 0
        return order.index(run_id) + 1

    def leave(self, run_id: str) -> None:
        """The run gave its slot back, or stopped waiting."""
        self._holders.pop(run_id, None)
        self._queue.pop(run_id, None)

    def yield_if_waited_for(self, run_id: str, paused_s: float, grace_s: float) -> bool:
        """A holder paused for ``grace_s`` gives its slot up when someone waits; True when it did."""
        self._expire(time.monotonic())
        if run_id in self._holders and self._queue and paused_s >= grace_s:
            del self._holders[run_id]
            return True
        return False

    def renew(self, worker: str, holding: list[str]) -> None:
        """``worker`` is alive and its runs in ``holding`` hold slots (re-added if this ledger is new)."""
        now = time.monotonic()
        for entry in [*self._holders.values(), *self._queue.values()]:
            if entry.worker == worker:
                entry.seen = now
        for run_id in holding:
            if run_id not in self._holders:
                self._queue.pop(run_id, None)
                self._holders[run_id] = _Entry(run_id, worker, now, now)

    def drop_worker(self, worker: str) -> int:
        """Forget every entry of a worker known to be lost; returns how many."""
        gone = [k for k, e in [*self._holders.items(), *self._queue.items()] if e.worker == worker]
        for run_id in gone:
            self.leave(run_id)
        return len(gone)

    def state(self) -> LedgerState:
        now = time.monotonic()
        self._expire(now)
        return LedgerState(self.limit, tuple(self._holders), tuple(self._queue),
                           tuple(now - e.since for e in self._queue.values()))

    def _expire(self, now: float) -> None:
        for table in (self._holders, self._queue):
            for run_id in [k for k, e in table.items() if now - e.seen > self.lease_s]:
                del table[run_id]
