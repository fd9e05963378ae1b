"""Server-wide registry of browser sessions and their training runs, held by weak references.

The registry never keeps anything alive: a browser session's record lives in that session's own
state, and a run lives in the session's state (and in its training thread while it trains). When
the web server forgets a closed session, its record and finished runs disappear from here too,
so the lists stay as long as the class, not as long as the server's uptime. A run whose tab is
gone but whose thread still trains stays visible (its thread holds it) until its heartbeat stops it.
"""
from __future__ import annotations

import itertools
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any

from dlplay.nn.model import layer_summary
from dlplay.run.status import ACTIVE, Status

TRAIN_THREAD_NAME = "dlplay-train"


@dataclass(eq=False)
class BrowserSession:
    """One browser tab's record; the tab's session state holds the only strong reference."""

    id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    client_id: str = ""  # the web server's id for the session, to ask whether it is still connected
    created_at: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.time)

    def touch(self) -> None:
        self.last_seen = time.time()


@dataclass(frozen=True)
class RunEntry:
    """A run as the admin view lists it (the entry holds the run strongly: do not keep it around)."""

    run_id: str
    browser_id: str
    created_at: float
    run: Any

    @property
    def status(self) -> str:
        return self.run.status


class SessionRegistry:
    """Live browser sessions and their runs, for the admin view and for stopping runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._browsers: dict[str, weakref.ref[BrowserSession]] = {}
        self._runs: weakref.WeakKeyDictionary[Any, tuple[str, str, float]] = weakref.WeakKeyDictionary()
        self._ids = itertools.count(1)
        self._forgotten = 0

    def open_browser(self, client_id: str = "") -> BrowserSession:
        """A new record for a browser session; the caller keeps it (e.g. in its session state)."""
        record = BrowserSession(client_id=client_id)
        with self._lock:
            self._browsers[record.id] = weakref.ref(record)
        return record

    @property
    def forgotten(self) -> int:
        """How many browser sessions have been forgotten so far (counted when ``browsers()`` prunes)."""
        with self._lock:
            return self._forgotten

    def add_run(self, browser: BrowserSession | None, run: Any) -> str:
        """Register a run created by ``browser``; returns its short id."""
        with self._lock:
            run_id = f"r{next(self._ids)}"
            self._runs[run] = (run_id, browser.id if browser is not None else "", time.time())
        return run_id

    def browsers(self) -> list[BrowserSession]:
        """Browser sessions whose state still exists, oldest first (forgotten ones are pruned)."""
        with self._lock:
            live = []
            for key, ref in list(self._browsers.items()):
                record = ref()
                if record is None:
                    del self._browsers[key]
                    self._forgotten += 1
                else:
                    live.append(record)
        return sorted(live, key=lambda r: r.created_at)

    def runs(self, active_only: bool = False) -> list[RunEntry]:
        """Runs that still exist, oldest first; ``active_only``: queued, running or paused ones."""
        with self._lock:
            items = [(run, meta) for run, meta in self._runs.items()]
        entries = [RunEntry(meta[0], meta[1], meta[2], run) for run, meta in items]
        if active_only:
            entries = [e for e in entries if e.status in ACTIVE]
        return sorted(entries, key=lambda e: e.created_at)

    def find(self, run_id: str) -> Any | None:
        with self._lock:
            for run, meta in self._runs.items():
                if meta[0] == run_id:
                    return run
        return None

    def run_id(self, run: Any) -> str | None:
        with self._lock:
            meta = self._runs.get(run)
        return meta[0] if meta else None

    def stop_run(self, run_id: str) -> bool:
        """Stop one run (leaves the queue if it is waiting); False if there is no such run."""
        run = self.find(run_id)
        if run is None:
            return False
        run.stop()
        return True

    def stop_all(self) -> int:
        """Stop every active run; returns how many were asked to stop."""
        entries = self.runs(active_only=True)
        for entry in entries:
            entry.run.stop()
        return len(entries)


def training_threads() -> list[threading.Thread]:
    """The process's live training threads (what must be gone once every session has ended)."""
    return [t for t in threading.enumerate() if t.name == TRAIN_THREAD_NAME and t.is_alive()]


@dataclass(frozen=True)
class RunRow:
    """One line of the admin view's run table (plain values, safe to show)."""

    run_id: str
    browser_id: str
    status: str
    model: str
    params: int
    epoch: str
    samples_per_s: float
    queue_position: int | None
    idle_s: float | None  # seconds since the run's page last called in
    age_s: float


def run_row(entry: RunEntry, now: float | None = None) -> RunRow:
    """Summarise a run for the admin table: model, progress, speed, queue place, heartbeat age."""
    run = entry.run
    p = run.snapshot().progress
    spec = getattr(run, "spec", None)
    if spec is not None:
        model, params = spec.describe(), sum(row.params for row in layer_summary(spec))
    else:  # a run without a ModelSpec (a GAN: two networks): its own name, its weights counted
        model = getattr(run, "title", type(run).__name__)
        params = sum(v.numel() for k, v in run.state_dict().items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    return RunRow(
        run_id=entry.run_id,
        browser_id=entry.browser_id,
        status=p.status,
        model=model,
        params=params,
        epoch=f"{p.epoch}/{p.epochs}",
        samples_per_s=p.samples_per_s if p.status == Status.RUNNING else 0.0,
        queue_position=p.queue_position,
        idle_s=run.seconds_since_heartbeat(),
        age_s=(now or time.time()) - entry.created_at,
    )
