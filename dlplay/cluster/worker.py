"""A Ray worker actor: one long-lived process hosting several training runs, each a TrainingSession
thread (a CUDA context costs hundreds of MB per process: no process per learner).

The app reaches a run through :class:`~dlplay.cluster.handle.RayRunHandle`, which calls this actor
by run id. Everything that crosses is plain data: specs, configs, snapshots (frozen dataclasses of
numpy arrays), state dicts of CPU tensors, run records. The worker loads its datasets itself from
``DLPLAY_DATA_DIR`` as set where its Ray node was started (the folder must exist on every node).
"""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import ray
import torch
from ray.exceptions import GetTimeoutError, RayActorError

from dlplay.classify.callbacks import TrainingCallback
from dlplay.classify.checkpoint import Checkpoint, load_into_session
from dlplay.classify.fork import ResumeState, SnapshotKeeper
from dlplay.classify.pins import Pins, PinsSnapshot
from dlplay.classify.probe import Probe
from dlplay.classify.train import TrainingSession
from dlplay.cluster.broker import get_broker
from dlplay.cluster.settings import ClusterSettings
from dlplay.data.datasets import Dataset, DatasetInfo, load_dataset
from dlplay.errors import UserError
from dlplay.nn.spec import ModelSpec, TrainConfig
from dlplay.run.device import choose_device, describe_device
from dlplay.run.metrics import MetricsSnapshot
from dlplay.run.status import ACTIVE, Status
from dlplay.server.admin import configure_threads
from dlplay.server.guardrails import Limits, check_run, free_memory_bytes, limit_train_size, memory_report
from dlplay.server.registry import training_threads
from dlplay.server.slots import PAUSED_GRACE_S, POLL_S, heartbeat_lost

ENV_FORGET_S = "DLPLAY_RAY_FORGET_S"
DEFAULT_FORGET_S = 3600.0  # a finished run nobody has asked about for this long is dropped from its worker
KEEPER_EVERY_S = 2.0  # lease renewal and clean-up
CALL_TIMEOUT_S = 10.0
COMMANDS = frozenset({"set_pins", "start", "pause", "resume", "step", "stop", "set_lr", "set_pace", "set_probe_every",
                      "heartbeat"})


@dataclass(frozen=True)
class RunView:
    """What the page needs of a run at one moment, in one reply (the handle caches it briefly)."""

    snapshot: MetricsSnapshot
    started_at: float | None
    finished_at: float | None
    pace: float | None
    probe_every: int | None
    alive: bool  # its thread trains or waits
    ended: bool  # its thread has ended (the in-process backend calls on_end then)


@dataclass(frozen=True)
class RunInfo:
    """A new run's fixed facts, returned by :meth:`RunWorker.create`."""

    run_id: str
    config: TrainConfig  # the server's training-set limit may have shortened it
    created_at: float
    total_steps: int
    steps_per_epoch: int
    device_name: str
    dataset_info: DatasetInfo
    worker: str  # the actor's name
    worker_id: str  # this incarnation of it
    pid: int
    node: str
    view: RunView


@dataclass(frozen=True)
class WorkerInfo:
    """One worker for the admin view: where it is, what it runs, what memory it uses."""

    name: str
    worker_id: str
    pid: int
    node: str  # the node's IP address
    hostname: str
    device: str  # e.g. "CPU (2 cores)" or the GPU's name
    cpus: float
    gpus: float
    runs_active: int
    runs_total: int
    train_threads: int
    rss_bytes: int | None
    device_allocated: int | None


class _EndFlag(TrainingCallback):
    """Knows when the run's thread ended (the handle then records the run, as RunRecorder does)."""

    ended = False

    def on_end(self, session: Any) -> None:
        self.ended = True


class RemoteSlots:
    """The ``slot_pool`` a worker's TrainingSession uses: the cluster-wide broker, asked by polling.

    Same contract as :class:`dlplay.server.slots.SlotPool` (``acquire`` blocks the training thread,
    gives up on Stop or a lost heartbeat; ``yield_if_waited_for``; ``release``).
    """

    def __init__(self, worker_id: str, limit: int, threads: int | None):
        self.worker_id = worker_id
        self.limit = limit
        self.threads = threads
        self._holding: set[str] = set()
        self._asked: dict[str, float] = {}
        self._lock = threading.Lock()

    def _call(self, method: str, *args: Any, wait: bool = True) -> Any:
        broker = get_broker(self.limit)
        try:
            ref = getattr(broker, method).remote(*args)
            return ray.get(ref, timeout=CALL_TIMEOUT_S) if wait else None
        except (RayActorError, GetTimeoutError):
            get_broker(self.limit, fresh=True)
            return None

    def holding(self) -> list[str]:
        with self._lock:
            return sorted(self._holding)

    def acquire(self, session: Any, should_stop: Any) -> bool:
        run_id = session.run_id
        while True:
            if should_stop() or heartbeat_lost(session):
                self._call("leave", run_id, wait=False)
                session.metrics.update_progress(queue_position=None)
                return False
            place = self._call("poll", run_id, self.worker_id)
            if place == 0:
                with self._lock:
                    self._holding.add(run_id)
                session.metrics.update_progress(queue_position=None)
                if self.threads:
                    torch.set_num_threads(self.threads)
                return True
            if place:
                session.metrics.update_progress(queue_position=int(place))
            time.sleep(POLL_S)

    def yield_if_waited_for(self, session: Any, paused_since: float) -> bool:
        run_id = session.run_id
        now = time.monotonic()
        with self._lock:
            if run_id not in self._holding or now - paused_since < PAUSED_GRACE_S \
                    or now - self._asked.get(run_id, 0.0) < KEEPER_EVERY_S:
                return False
            self._asked[run_id] = now
        if self._call("yield_if_waited_for", run_id, now - paused_since, PAUSED_GRACE_S):
            with self._lock:
                self._holding.discard(run_id)
            return True
        return False

    def release(self, session: Any) -> None:
        with self._lock:
            self._holding.discard(session.run_id)
            self._asked.pop(session.run_id, None)
        self._call("leave", session.run_id, wait=False)

    def renew(self) -> None:
        self._call("renew", self.worker_id, self.holding(), wait=False)


class RunWorker:
    """The worker actor's body (``ray.remote`` makes it an actor in :mod:`dlplay.cluster.backend`).

    Commands run one at a time in the ``commands`` concurrency group, in the order sent; reads
    (snapshots, weights, evaluation) run beside them in ``reads``, so a slow evaluation never holds
    up a pause.
    """

    def __init__(self, name: str, settings: ClusterSettings):
        self.name = name
        self.settings = settings
        try:
            self.worker_id = ray.get_runtime_context().get_actor_id() or uuid.uuid4().hex
        except Exception:  # noqa: BLE001 - outside an actor (unit tests)
            self.worker_id = uuid.uuid4().hex
        self.pid = os.getpid()
        self.node = ray.util.get_node_ip_address() if ray.is_initialized() else "127.0.0.1"
        self.hostname = socket.gethostname()
        configure_threads(settings.threads_per_run)
        self.slots = RemoteSlots(self.worker_id, settings.run_limit, settings.threads_per_run)
        self._runs: dict[str, tuple[TrainingSession, _EndFlag]] = {}
        self._datasets: dict[tuple[str, str], Dataset] = {}
        self._lock = threading.Lock()
        self._data_lock = threading.Lock()
        raw = (os.environ.get(ENV_FORGET_S) or "").strip()
        self.forget_s = float(raw) if raw else DEFAULT_FORGET_S
        self._keeper = threading.Thread(target=self._keep, name="dlplay-worker-keeper", daemon=True)
        self._keeper.start()

    # ----- runs -----------------------------------------------------------------------------
    @ray.method(concurrency_group="commands")
    def create(self, spec: ModelSpec, config: TrainConfig, limits: Limits, heartbeat_timeout: float | None,
               probe_every: int | None, checkpoint: Checkpoint | None = None,
               start_from: ResumeState | None = None) -> RunInfo:
        """A new run (not started) under the server's rules (UserError when a guardrail refuses);
        ``probe_every``: steps between the probe's measurements (None: no probe)."""
        device = choose_device(config.device)
        dataset = self._dataset(config.dataset, device)
        limited = limit_train_size(config, len(dataset.train_labels), limits)
        if start_from is not None and limited != config:
            raise UserError("fork.limits_changed")
        config = limited
        check_run(spec, config, limits, train_available=len(dataset.train_labels), free_bytes=free_memory_bytes(device))
        flag = _EndFlag()
        callbacks: list[TrainingCallback] = [flag, Pins(), SnapshotKeeper()]
        if probe_every is not None:
            callbacks.insert(0, Probe(every=probe_every))
        session = TrainingSession(spec, config, dataset, device, slot_pool=self.slots, callbacks=callbacks,
                                  heartbeat_timeout=heartbeat_timeout, start_from=start_from)
        if checkpoint is not None:
            load_into_session(session, checkpoint)
        with self._lock:
            self._runs[session.run_id] = (session, flag)
        return RunInfo(
            run_id=session.run_id, config=session.config, created_at=session.created_at,
            total_steps=session.total_steps, steps_per_epoch=session.steps_per_epoch,
            device_name=session.device_name, dataset_info=session.dataset_info, worker=self.name,
            worker_id=self.worker_id, pid=self.pid, node=self.node, view=self._view(session, flag),
        )

    @ray.method(concurrency_group="commands")
    def command(self, run_id: str, name: str, args: tuple = ()) -> None:
        if name not in COMMANDS:
            raise ValueError(f"unknown command {name!r}")
        getattr(self._session(run_id), name)(*args)

    @ray.method(concurrency_group="reads")
    def view(self, run_id: str) -> RunView:
        with self._lock:
            if run_id not in self._runs:
                raise KeyError(run_id)
            session, flag = self._runs[run_id]
        return self._view(session, flag)

    @ray.method(concurrency_group="reads")
    def state_dict(self, run_id: str) -> dict[str, torch.Tensor]:
        return self._session(run_id).state_dict()

    @ray.method(concurrency_group="reads")
    def evaluate(self, run_id: str, split: str = "test") -> tuple[float, float]:
        return self._session(run_id).evaluate(split)

    @ray.method(concurrency_group="reads")
    def split_data(self, run_id: str, split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self._session(run_id).split_data(split)

    @ray.method(concurrency_group="reads")
    def resume_state(self, run_id: str, step: int) -> ResumeState:
        """The run's exact state after ``step`` (replayed in this worker), to fork a run from."""
        return self._session(run_id).resume_state(step)

    @ray.method(concurrency_group="reads")
    def pins_snapshot(self, run_id: str) -> PinsSnapshot | None:
        return self._session(run_id).pins_snapshot()

    @ray.method(concurrency_group="reads")
    def test_split(self, run_id: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self._session(run_id).test_split()

    @ray.method(concurrency_group="commands")
    def forget(self, run_id: str) -> bool:
        """The app no longer holds the run: stop it and let it go."""
        with self._lock:
            entry = self._runs.pop(run_id, None)
        if entry is not None:
            entry[0].stop()
        return entry is not None

    @ray.method(concurrency_group="reads")
    def run_ids(self) -> list[str]:
        with self._lock:
            return list(self._runs)

    # ----- the worker -----------------------------------------------------------------------
    @ray.method(concurrency_group="reads")
    def info(self) -> WorkerInfo:
        with self._lock:
            sessions = [s for s, _ in self._runs.values()]
        device = choose_device()
        memory = memory_report(device)
        return WorkerInfo(
            name=self.name, worker_id=self.worker_id, pid=self.pid, node=self.node, hostname=self.hostname,
            device=describe_device(device).name, cpus=self.settings.worker_cpus, gpus=self.settings.worker_gpus,
            runs_active=sum(1 for s in sessions if s.status in ACTIVE), runs_total=len(sessions),
            train_threads=len(training_threads()), rss_bytes=memory.process_rss, device_allocated=memory.device_allocated,
        )

    # ----- internals ------------------------------------------------------------------------
    def _session(self, run_id: str) -> TrainingSession:
        with self._lock:
            if run_id not in self._runs:
                raise KeyError(run_id)  # the handle takes it for a lost worker (a restarted one lacks the run)
            return self._runs[run_id][0]

    @staticmethod
    def _view(session: TrainingSession, flag: _EndFlag) -> RunView:
        ended = flag.ended
        return RunView(snapshot=session.snapshot(), started_at=session.started_at, finished_at=session.finished_at,
                       pace=session.pace, probe_every=session.probe_every(), alive=session.is_alive, ended=ended)

    def _dataset(self, name: str, device: torch.device) -> Dataset:
        key = (name, str(device))
        with self._data_lock:
            if key not in self._datasets:
                self._datasets[key] = load_dataset(name).to(device)
            return self._datasets[key]

    def _keep(self) -> None:
        """Renew the slot leases; drop finished runs nobody has asked about for ``forget_s``."""
        while True:
            time.sleep(KEEPER_EVERY_S)
            try:
                self.slots.renew()
                with self._lock:
                    stale = [k for k, (s, _) in self._runs.items()
                             if not s.is_alive and s.status not in ACTIVE and s.seconds_since_heartbeat() > self.forget_s]
                    for run_id in stale:
                        del self._runs[run_id]
            except Exception:  # noqa: BLE001 - the keeper must not die
                pass


def status_of(view: RunView) -> Status:
    return Status(view.snapshot.progress.status)


CONCURRENCY = {"commands": 1, "reads": 8}  # the actor's concurrency groups (see RunWorker)
