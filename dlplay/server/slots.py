"""Server-wide limit on concurrent training runs, with a first-come, first-served queue.

One machine serves a whole class: each running session trains in its own thread, and more runs
than cores (or than a GPU's share of CPU feeders) make every run slower, not more of them faster.
``TrainingSession`` calls ``acquire`` from its training thread before the first step (status
"queued" meanwhile) and ``release`` when the thread ends. While a run waits, its
``Progress.queue_position`` (1 = next) is kept up to date for the page to show, and its
``Progress.message`` says why it waits (QUEUED_ONE / QUEUED_MANY: the places, who holds them, its place).

Torch CPU threads: torch's intra-op thread count is effectively process-wide (``set_num_threads``
from any thread changes it for every thread that starts parallel work afterwards), so dlplay uses
one value for the whole server, ``threads_per_run``: the cores left after one for the web server,
shared among the runs allowed at once (at least 1). Each run sets it again in its own thread when
it gets its slot, so nothing else can have changed it underneath. On this project's 2-core machine
that is 1 run x 1 thread; two threads per run with anything else busy made training 50-100x slower.
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

ENV_MAX_RUNS = "DLPLAY_MAX_RUNS"
POLL_S = 0.2  # how often a queued run re-checks its stop flag and heartbeat
PAUSED_GRACE_S = 10.0  # a paused run keeps its slot this long while others wait, then lets the next one train
GPU_MAX_RUNS = 8
QUEUED_ONE = "slots.queued_single"  # the status message of a queued run: one run at a time on this server
QUEUED_MANY = "slots.queued_many"  # ... several at a time, all taken


def cpu_cores() -> int:
    """Cores this process may use (the affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_max_runs(device_kind: str = "cpu", cores: int | None = None) -> int:
    """Concurrent runs a machine holds well: one per core beyond the first on a CPU; more on a GPU.

    On a GPU the arithmetic is on the device and each run needs about one CPU core to feed it,
    so the default is the core count, between 2 and ``GPU_MAX_RUNS``.
    """
    cores = cores or cpu_cores()
    if device_kind in ("cuda", "mps"):
        return max(2, min(GPU_MAX_RUNS, cores))
    return max(1, cores - 1)


def max_runs_from_env(device_kind: str = "cpu", env: Mapping[str, str] | None = None) -> int:
    """``DLPLAY_MAX_RUNS`` when set (a positive integer), else ``default_max_runs(device_kind)``."""
    env = os.environ if env is None else env
    raw = (env.get(ENV_MAX_RUNS) or "").strip()
    if not raw:
        return default_max_runs(device_kind)
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{ENV_MAX_RUNS} must be a positive integer, got {raw!r}")
    return value


def threads_per_run(max_runs: int, device_kind: str = "cpu", cores: int | None = None) -> int:
    """Torch intra-op threads for each run: the cores left after one for the server, shared by the runs.

    On a GPU the CPU side of a run is mostly launching kernels, which one thread does best.
    """
    if device_kind in ("cuda", "mps"):
        return 1
    cores = cores or cpu_cores()
    return max(1, (cores - 1) // max(1, max_runs))


@dataclass(frozen=True)
class PoolState:
    """A consistent picture of the pool for the admin view."""

    limit: int
    running: tuple[Any, ...]  # sessions holding a slot, in the order they got it
    queued: tuple[Any, ...]  # waiting sessions, next first
    waiting_since: tuple[float, ...]  # time.monotonic() each queued session joined the queue
    threads_per_run: int | None


def heartbeat_lost(session: Any) -> bool:
    """True when the session has a heartbeat timeout and its page has not called in for longer."""
    timeout = getattr(session, "heartbeat_timeout", None)
    return timeout is not None and session.seconds_since_heartbeat() > timeout


class SlotPool:
    """At most ``limit`` sessions train at once; the others wait in arrival order.

    ``acquire`` blocks the calling (training) thread and gives up when ``should_stop()`` turns
    true (Stop while queued) or when the session's heartbeat is lost (tab closed while queued).
    ``set_limit`` may change the limit while runs hold slots; a lower limit applies as runs end.
    A run paused for ``paused_grace_s`` while others wait gives its slot up (``yield_if_waited_for``)
    and queues again when it resumes: a closed tab's paused run no longer blocks the class.
    """

    def __init__(self, limit: int, *, threads_per_run: int | None = None, paused_grace_s: float = PAUSED_GRACE_S):
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.paused_grace_s = paused_grace_s
        self._cond = threading.Condition()
        self._limit = limit
        self._threads = threads_per_run
        self._holders: dict[int, Any] = {}
        self._queue: deque[Any] = deque()
        self._since: dict[int, float] = {}

    # ----- configuration ---------------------------------------------------------------------
    @property
    def limit(self) -> int:
        return self._limit

    @property
    def threads_per_run(self) -> int | None:
        return self._threads

    def set_limit(self, limit: int) -> None:
        """Change how many runs may train at once (queued runs start at once if slots opened)."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        with self._cond:
            self._limit = limit
            self._cond.notify_all()

    # ----- used by the training thread -------------------------------------------------------
    def acquire(self, session: Any, should_stop: Callable[[], bool]) -> bool:
        """Wait for a slot in arrival order; True once held, False if the run gave up waiting."""
        key = id(session)
        with self._cond:
            if key in self._holders:
                return True
            self._queue.append(session)
            self._since[key] = time.monotonic()
            self._renumber()
            got = False
            try:
                while True:
                    if should_stop() or heartbeat_lost(session):
                        return False
                    if self._queue[0] is session and len(self._holders) < self._limit:
                        got = True
                        break
                    self._cond.wait(POLL_S)
            finally:
                self._queue.remove(session)
                self._since.pop(key, None)
                if got:
                    self._holders[key] = session
                _set_position(session, None, self._limit)
                self._renumber()
                self._cond.notify_all()
        if self._threads:
            torch.set_num_threads(self._threads)
        return True

    def yield_if_waited_for(self, session: Any, paused_since: float) -> bool:
        """A paused holder gives its slot to the queue once it has been paused ``paused_grace_s``
        (``paused_since``: time.monotonic()) and someone waits; True when it did (it must
        ``acquire`` again before its next step)."""
        with self._cond:
            if (id(session) in self._holders and self._queue
                    and time.monotonic() - paused_since >= self.paused_grace_s):
                del self._holders[id(session)]
                self._cond.notify_all()
                return True
            return False

    def release(self, session: Any) -> None:
        """Give the slot back (called once when the training thread ends); the next in line starts."""
        with self._cond:
            self._holders.pop(id(session), None)
            self._cond.notify_all()

    # ----- reads -----------------------------------------------------------------------------
    def state(self) -> PoolState:
        with self._cond:
            return PoolState(
                limit=self._limit,
                running=tuple(self._holders.values()),
                queued=tuple(self._queue),
                waiting_since=tuple(self._since.get(id(s), 0.0) for s in self._queue),
                threads_per_run=self._threads,
            )

    def position(self, session: Any) -> int | None:
        """1-based place of ``session`` in the queue, or None when it is not waiting."""
        with self._cond:
            for i, queued in enumerate(self._queue, 1):
                if queued is session:
                    return i
            return None

    def _renumber(self) -> None:
        for i, queued in enumerate(self._queue, 1):
            _set_position(queued, i, self._limit, self.paused_grace_s)


def _set_position(session: Any, position: int | None, limit: int, grace_s: float = PAUSED_GRACE_S) -> None:
    """The queued run's place, and the message that says why it waits (cleared when it leaves the queue).
    A browser tab is its own session, so a learner's second tab waits for the first tab's run like any other:
    the message says that the place may be held by the learner's own run in another tab."""
    metrics = getattr(session, "metrics", None)
    if metrics is None:
        return
    if position is None:
        if metrics.progress.message in (QUEUED_ONE, QUEUED_MANY):
            metrics.update_progress(queue_position=None, message="", message_params=())
        else:
            metrics.update_progress(queue_position=None)
        return
    params = (("grace", f"{grace_s:g}"), ("limit", limit), ("position", position))
    metrics.update_progress(queue_position=position, message=QUEUED_ONE if limit == 1 else QUEUED_MANY,
                            message_params=params)
