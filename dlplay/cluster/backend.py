"""The Ray backend: connect to Ray, keep the pool of worker actors, create runs in them.

Workers are named, detached actors (``dlplay-worker-<i>`` in the ``dlplay`` namespace): every app
process connected to the cluster finds the same ones, and they outlive any one app process. Each
asks Ray for ``DLPLAY_RAY_WORKER_CPUS`` CPUs and ``DLPLAY_RAY_WORKER_GPUS`` GPUs (a fraction shares
a GPU; Ray's fractions place workers but do not cap their memory, so every worker still checks a
run's memory estimate against the device's free memory before it accepts it). Ray spreads them
over the nodes. A missing worker (never created, or its process died) is created again the next
time the pool is asked for one: a restarted worker joins the pool by itself.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import ray
from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError

from dlplay.classify.checkpoint import Checkpoint
from dlplay.classify.fork import ResumeState
from dlplay.cluster.broker import get_broker
from dlplay.cluster.handle import HEAD_LOST_KEY, RayRunHandle
from dlplay.cluster.settings import NAMESPACE, ClusterSettings
from dlplay.cluster.worker import CONCURRENCY, RunInfo, RunWorker, WorkerInfo
from dlplay.errors import UserError
from dlplay.nn.spec import ModelSpec, TrainConfig
from dlplay.server.guardrails import Limits
from dlplay.server.slots import PoolState

_ACTOR_OPTIONS: dict[str, Any] = {"concurrency_groups": CONCURRENCY}  # commands in order, reads beside them
WorkerActor = ray.remote(**_ACTOR_OPTIONS)(RunWorker)
PING_TIMEOUT_S = 10.0
CREATE_TIMEOUT_S = 120.0  # a worker's first run loads its dataset


def connect_ray(address: str) -> None:
    """Connect this process to the running Ray cluster at ``address`` once (``ray start --head`` prints it,
    or ``auto``). ``local`` is not an address here: :class:`~.link.ClusterLink` starts a head for it."""
    if ray.is_initialized():
        return
    if address == "local":
        raise ValueError("start a local head with dlplay.cluster.link.ClusterLink, then connect to its address")
    # Ray reads RAY_AUTH_* and RAY_<config> variables once and caches them: read them again (the link
    # may have set the token mode and the driver's GCS timeout after ray was imported), as Ray's own
    # token setup does
    from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()
    ray.init(address=address, namespace=NAMESPACE, log_to_driver=False)


@dataclass(frozen=True)
class WorkerRow:
    """A worker as the admin view lists it: its info, or None when it did not answer (lost, starting)."""

    name: str
    info: WorkerInfo | None


class ClusterSlots:
    """The cluster-wide run limit, with the in-process SlotPool's reading interface for the admin page
    (``state()`` lists run ids, not run objects)."""

    def __init__(self, settings: ClusterSettings):
        self.settings = settings

    def _broker(self, fresh: bool = False) -> Any:
        return get_broker(self.settings.run_limit, fresh=fresh)

    @property
    def limit(self) -> int:
        return self.state().limit

    @property
    def threads_per_run(self) -> int:
        return self.settings.threads_per_run

    def set_limit(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        ray.get(self._broker().set_limit.remote(int(limit)), timeout=PING_TIMEOUT_S)

    def state(self) -> PoolState:
        try:
            s = ray.get(self._broker().state.remote(), timeout=PING_TIMEOUT_S)
        except (RayActorError, GetTimeoutError):
            self._broker(fresh=True)
            return PoolState(self.settings.run_limit, (), (), (), self.settings.threads_per_run)
        return PoolState(s.limit, s.running, s.queued, s.waiting_s, self.settings.threads_per_run)

    def drop_worker(self, worker_id: str) -> None:
        with contextlib.suppress(Exception):  # the lease runs out anyway
            self._broker().drop_worker.remote(worker_id)


class RayBackend:
    """Runs in a pool of Ray worker actors (one backend per app process)."""

    _instances: ClassVar[dict[str, RayBackend]] = {}
    _class_lock = threading.Lock()

    def __init__(self, settings: ClusterSettings, alive: Callable[[], bool] | None = None):
        self.settings = settings
        self.alive: Callable[[], bool] = alive or (lambda: True)  # False once the link lost the Ray head
        self.slots = ClusterSlots(settings)
        self._lock = threading.Lock()
        self._actors: dict[int, Any] = {}

    @classmethod
    def connect(cls, address: str, settings: ClusterSettings | None = None,
                alive: Callable[[], bool] | None = None) -> RayBackend:
        """This process's backend for ``address`` (connects to Ray on first use, unless connected already).
        ``alive``: whether the Ray head still answers (the link's watch), asked before each remote call."""
        with cls._class_lock:
            if address not in cls._instances:
                connect_ray(address)
                backend = cls(settings or ClusterSettings.from_env(), alive)
                get_broker(backend.settings.run_limit)
                cls._instances[address] = backend
            return cls._instances[address]

    # ----- the pool -------------------------------------------------------------------------
    def actor(self, index: int, fresh: bool = False) -> Any:
        """Worker ``index``'s actor handle, created if it does not exist (or no longer does)."""
        with self._lock:
            if fresh or index not in self._actors:
                s = self.settings
                self._actors[index] = WorkerActor.options(
                    name=s.worker_name(index), namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
                    num_cpus=s.worker_cpus, num_gpus=s.worker_gpus, max_restarts=0,
                    scheduling_strategy="SPREAD",
                ).remote(s.worker_name(index), s)
            return self._actors[index]

    def workers(self) -> list[WorkerRow]:
        """Every worker's info (a worker that does not answer is created again for next time)."""
        refs = {i: self.actor(i).info.remote() for i in range(self.settings.workers)}
        rows = []
        for i, ref in refs.items():
            try:
                rows.append(WorkerRow(self.settings.worker_name(i), ray.get(ref, timeout=PING_TIMEOUT_S)))
            except RayActorError:
                self.actor(i, fresh=True)
                rows.append(WorkerRow(self.settings.worker_name(i), None))
            except (GetTimeoutError, ActorUnavailableError):
                rows.append(WorkerRow(self.settings.worker_name(i), None))
        return rows

    def _choose(self) -> int:
        """The live worker with the fewest active runs (ties: the lowest index)."""
        live = [(row.info.runs_active, row.info.runs_total, i) for i, row in enumerate(self.workers())
                if row.info is not None]
        if not live:  # every worker was just re-created: the first one will answer
            return 0
        return min(live)[2]

    def worker_lost(self, worker_id: str) -> None:
        """A handle found its worker lost: its slots are freed now (not when their lease runs out)."""
        self.slots.drop_worker(worker_id)

    # ----- runs -----------------------------------------------------------------------------
    def create_run(self, spec: ModelSpec, config: TrainConfig, *, limits: Limits, heartbeat_timeout: float | None,
                   probe_every: int | None, callbacks: Iterable[Any] = (), checkpoint: Checkpoint | None = None,
                   start_from: ResumeState | None = None) -> RayRunHandle:
        """A new run (not started) in the least busy worker; UserError when a guardrail refuses it."""
        index = self._choose()
        for attempt in range(2):
            actor = self.actor(index, fresh=attempt > 0)
            ref = actor.create.remote(spec, config, limits, heartbeat_timeout, probe_every, checkpoint, start_from)
            try:
                info: RunInfo = ray.get(ref, timeout=CREATE_TIMEOUT_S)
            except RayActorError:
                continue  # it died since it was chosen: once more, in a fresh one
            except (GetTimeoutError, ActorUnavailableError):
                raise UserError(HEAD_LOST_KEY if not self.alive() else "cluster.no_worker") from None
            except ray.exceptions.RayTaskError as exc:
                if isinstance(exc.cause, UserError):
                    raise UserError(exc.cause.key, **exc.cause.params) from None
                raise
            handle = RayRunHandle(actor, info, spec, callbacks=callbacks, on_lost=self.worker_lost, head_alive=self.alive)
            handle.forked_from = start_from.origin if start_from is not None else None
            return handle
        raise UserError("cluster.no_worker")
