"""RayRunHandle: a run that trains in a Ray worker actor, seen through the RunHandle Protocol.

Commands are actor calls, fire-and-forget except ``start`` and ``step`` (the page reads the new
status right after them). Reads come from one :class:`~.worker.RunView` fetched at most every
``CACHE_S`` seconds, so the several reads of one script run cost one call. Weights cross as CPU
tensors and ``model_copy`` is built here from the spec and ``state_dict()``. A worker that dies
(its process killed, its node lost) ends its active runs as failed with the message
``cluster.worker_lost``; the app, the other runs and the next run go on.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import ray
import torch
from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError, RayTaskError

from dlplay.classify.fork import ResumeState
from dlplay.classify.pins import PinsSnapshot
from dlplay.classify.probe import ProbeSnapshot
from dlplay.cluster.worker import RunInfo, RunView
from dlplay.data.datasets import DatasetInfo
from dlplay.errors import UserError
from dlplay.nn.model import Net
from dlplay.nn.spec import ModelSpec, TrainConfig, validate_lr
from dlplay.run.loop import MAX_PACE
from dlplay.run.metrics import MetricsSnapshot
from dlplay.run.status import ACTIVE, Status

CACHE_S = 0.2  # a view this young is reused (the Train page polls every 0.5 s)
BEAT_EVERY_S = 1.0  # heartbeats reach the worker at most this often
READ_TIMEOUT_S = 10.0  # a snapshot that takes longer is skipped this time (the last one is shown)
COMMAND_TIMEOUT_S = 30.0
LONG_TIMEOUT_S = 600.0  # weights, evaluation
LOST_KEY = "cluster.worker_lost"
HEAD_LOST_KEY = "cluster.head_lost_run"  # the whole cluster's head stopped answering (no parameters)


class WorkerLost(Exception):
    """The run's worker is gone (raised inside the handle only)."""


class HeadLost(WorkerLost):
    """The Ray head is gone: the run cannot be reached any more (raised inside the handle only)."""


def _always() -> bool:
    return True


def _forget(worker: Any, run_id: str, head_alive: Callable[[], bool]) -> None:
    """The handle was collected: the worker may let the run go (best effort, never raises)."""
    try:
        if ray.is_initialized() and head_alive():
            worker.forget.remote(run_id)
    except Exception:  # noqa: BLE001
        pass


class RayRunHandle:
    """A run in a Ray worker. ``callbacks``: app-side objects with ``on_end(handle)`` (e.g. the run
    history's RunRecorder), called once, in whichever thread first sees that the run ended;
    ``on_lost(worker_id)``: told when the worker is found lost; ``head_alive()``: whether the cluster's
    head still answers (asked before each remote call: once it does not, the run ends as failed with
    ``cluster.head_lost_run`` and nothing more is sent)."""

    def __init__(self, worker: Any, info: RunInfo, spec: ModelSpec, *, callbacks: Iterable[Any] = (),
                 on_lost: Callable[[str], None] | None = None, head_alive: Callable[[], bool] | None = None):
        self._worker = worker
        self._head_alive = head_alive or _always
        self.run_id = info.run_id
        self.spec = spec
        self.config: TrainConfig = info.config
        self.created_at = info.created_at
        self.total_steps = info.total_steps
        self.steps_per_epoch = info.steps_per_epoch
        self.worker_name = info.worker
        self.worker_id = info.worker_id
        self.worker_pid = info.pid
        self.node = info.node
        self._device_name = info.device_name
        self._dataset_info = info.dataset_info
        self._end_callbacks = list(callbacks)
        self._on_lost = on_lost
        self._lock = threading.RLock()
        self._view = info.view
        self._view_at = time.monotonic()
        self._lost = False
        self._lost_key = LOST_KEY
        self._ended = False
        self._pace = info.view.pace
        self._probe_every = info.view.probe_every
        self._last_beat = time.monotonic()
        self._beat_sent = 0.0
        self._weights: dict[str, torch.Tensor] | None = None  # the latest weights fetched (final once ended)
        self._weights_final = False
        self._test: tuple[torch.Tensor, torch.Tensor] | None = None
        weakref.finalize(self, _forget, worker, info.run_id, self._head_alive)

    # ----- remote calls ---------------------------------------------------------------------
    def _get(self, ref: Any, timeout: float) -> Any:
        """``ray.get`` that turns a dead worker (or one that no longer knows the run) into WorkerLost
        and a UserError raised in the worker into the same UserError here; a lost head into HeadLost."""
        if not self._head_alive():
            raise HeadLost()
        try:
            return ray.get(ref, timeout=timeout)
        except ActorUnavailableError as exc:  # unreachable for now (a network hiccup): not lost yet
            raise GetTimeoutError(str(exc)) from exc
        except RayActorError as exc:
            raise WorkerLost() from exc
        except RayTaskError as exc:
            cause = exc.cause
            if isinstance(cause, KeyError):
                raise WorkerLost() from exc
            if isinstance(cause, UserError):
                raise UserError(cause.key, **cause.params) from None
            raise

    def _send(self, name: str, *args: Any, wait: bool = False) -> None:
        if self._lost:
            return
        if not self._head_alive():
            self._mark_lost(head=True)
            return
        if name != "heartbeat":
            self._view_at = 0.0  # the next read asks again
        try:
            ref = self._worker.command.remote(self.run_id, name, args)
            if wait:
                self._get(ref, COMMAND_TIMEOUT_S)
        except WorkerLost as exc:
            self._mark_lost(head=isinstance(exc, HeadLost))
        except GetTimeoutError:
            pass

    def _current(self) -> RunView:
        ended = False
        with self._lock:
            settled = self._lost or (self._ended and not self._view.alive)  # an ended run's view is final
            if not settled and time.monotonic() - self._view_at >= CACHE_S:
                try:
                    self._view = self._get(self._worker.view.remote(self.run_id), READ_TIMEOUT_S)
                except WorkerLost as exc:
                    self._mark_lost(head=isinstance(exc, HeadLost))
                except GetTimeoutError:
                    pass  # a busy or unreachable worker: show the last view; Ray tells us if it is lost
                self._view_at = time.monotonic()
                if self._view.ended and not self._ended:
                    self._ended = ended = True
            view = self._view
        if ended:
            self._run_end_callbacks()
        return view

    def _mark_lost(self, head: bool = False) -> None:
        with self._lock:
            if self._lost:
                return
            self._lost = True
            self._lost_key = HEAD_LOST_KEY if head else LOST_KEY
            progress = self._view.snapshot.progress
            was_running = Status(progress.status) in ACTIVE or progress.status == Status.READY
            if was_running:
                params = () if head else (("worker", self.worker_name),)
                progress = dataclasses.replace(progress, status=Status.FAILED, message=self._lost_key,
                                               message_params=params, queue_position=None,
                                               evaluating=None, samples_per_s=0.0)
                snapshot = dataclasses.replace(self._view.snapshot, progress=progress)
                self._view = dataclasses.replace(self._view, snapshot=snapshot, alive=False,
                                                 finished_at=self._view.finished_at or time.time())
            started = self._view.started_at is not None and self._view.snapshot.progress.global_step > 0
            run_end = was_running and started and not self._ended
            self._ended = True
        if self._on_lost is not None and not head:
            with contextlib.suppress(Exception):
                self._on_lost(self.worker_id)
        if run_end:
            self._run_end_callbacks()

    def _lost_error(self) -> UserError:
        if self._lost_key == HEAD_LOST_KEY:
            return UserError(HEAD_LOST_KEY)
        return UserError(LOST_KEY, worker=self.worker_name)

    def _run_end_callbacks(self) -> None:
        for callback in self._end_callbacks:
            with contextlib.suppress(Exception):  # as in the training thread: a failing callback ends nothing else
                callback.on_end(self)

    # ----- commands -------------------------------------------------------------------------
    def start(self, paused: bool = False) -> None:
        self._send("start", paused, wait=True)

    def pause(self) -> None:
        self._send("pause")

    def resume(self) -> None:
        self._send("resume")

    def step(self, n: int = 1) -> None:
        self._send("step", n, wait=True)

    def stop(self) -> None:
        self._send("stop")

    def set_lr(self, lr: float) -> None:
        self._send("set_lr", validate_lr(lr))

    def set_pace(self, steps_per_s: float | None) -> None:
        if steps_per_s is not None:
            if isinstance(steps_per_s, bool) or not isinstance(steps_per_s, (int, float)) \
                    or not math.isfinite(steps_per_s) or not 0 < steps_per_s <= MAX_PACE:
                raise UserError("train.pace_range", value=steps_per_s, max=MAX_PACE)
            steps_per_s = float(steps_per_s)
        self._pace = steps_per_s
        self._send("set_pace", steps_per_s)

    def set_probe_every(self, every: int) -> None:
        if self._probe_every is not None:
            self._probe_every = int(every)
        self._send("set_probe_every", int(every))

    def heartbeat(self) -> None:
        now = time.monotonic()
        self._last_beat = now
        if now - self._beat_sent >= BEAT_EVERY_S:
            self._beat_sent = now
            self._send("heartbeat")

    # ----- reads ----------------------------------------------------------------------------
    @property
    def started_at(self) -> float | None:
        return self._current().started_at

    @started_at.setter
    def started_at(self, value: float | None) -> None:
        raise AttributeError("a remote run's start time is the worker's")

    @property
    def finished_at(self) -> float | None:
        return self._current().finished_at

    @finished_at.setter
    def finished_at(self, value: float | None) -> None:
        raise AttributeError("a remote run's end time is the worker's")

    @property
    def status(self) -> Status:
        return Status(self._current().snapshot.progress.status)

    @property
    def is_alive(self) -> bool:
        return self._current().alive and not self._lost

    @property
    def lost(self) -> bool:
        """True once the run's worker was found lost."""
        return self._lost

    @property
    def device_name(self) -> str:
        return self._device_name

    @property
    def dataset_info(self) -> DatasetInfo:
        return self._dataset_info

    @property
    def pace(self) -> float | None:
        return self._pace

    def seconds_since_heartbeat(self) -> float:
        return time.monotonic() - self._last_beat

    def snapshot(self) -> MetricsSnapshot:
        return self._current().snapshot

    def probe_snapshot(self) -> ProbeSnapshot | None:
        probe = self._current().snapshot.extras.get("probe")
        return probe if isinstance(probe, ProbeSnapshot) else None

    def probe_every(self) -> int | None:
        return self._probe_every

    def state_dict(self) -> dict[str, torch.Tensor]:
        """A CPU copy of the weights, fetched from the worker (kept once the run has ended; the latest
        fetched ones if the worker is lost)."""
        final = self._ended and not self._current().alive
        if not (self._weights_final or self._lost) or self._weights is None:
            try:
                weights = self._get(self._worker.state_dict.remote(self.run_id), LONG_TIMEOUT_S)
            except WorkerLost as exc:
                self._mark_lost(head=isinstance(exc, HeadLost))
            else:
                self._weights, self._weights_final = weights, final
        if self._weights is None:
            raise self._lost_error()
        return {k: v.clone() for k, v in self._weights.items()}

    def model_copy(self, device: str | torch.device = "cpu") -> Net:
        """The network built here from the spec and the worker's weights (eval mode; the global
        random generator untouched)."""
        with torch.device("meta"):
            clone = Net(self.spec)
        clone = clone.to_empty(device=device)
        clone.load_state_dict(self.state_dict(), strict=True)
        return clone.eval()

    def evaluate(self, split: str = "test") -> tuple[float, float]:
        try:
            loss, acc = self._get(self._worker.evaluate.remote(self.run_id, split), LONG_TIMEOUT_S)
        except WorkerLost as exc:
            self._mark_lost(head=isinstance(exc, HeadLost))
            raise self._lost_error() from None
        return float(loss), float(acc)

    def split_data(self, split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(uint8 images, labels with the run's edits, dataset indices) of a split, from the worker
        (the test split from this process's copy)."""
        if split == "test":
            images, labels = self.test_split()
            return images, labels, torch.arange(len(labels))
        try:
            return self._get(self._worker.split_data.remote(self.run_id, split), LONG_TIMEOUT_S)
        except WorkerLost as exc:
            self._mark_lost(head=isinstance(exc, HeadLost))
            raise self._lost_error() from None

    forked_from: tuple[str, int, str, str, str] | None = None  # a fork: (parent run id, step, change, old, new)

    def set_pins(self, images: torch.Tensor | np.ndarray | None, labels: torch.Tensor | np.ndarray | None = None) -> None:
        """Follow these images' probabilities in the worker (checked there: a bad shape is a UserError here)."""
        def tensor(a: torch.Tensor | np.ndarray | None) -> torch.Tensor | None:
            return None if a is None else torch.as_tensor(np.asarray(a)).cpu()
        self._send("set_pins", tensor(images), tensor(labels), wait=True)

    def pins_snapshot(self) -> PinsSnapshot | None:
        if self._lost:
            return None
        try:
            return self._get(self._worker.pins_snapshot.remote(self.run_id), READ_TIMEOUT_S)
        except (WorkerLost, GetTimeoutError):
            return None

    def resume_state(self, step: int) -> ResumeState:
        """The run's exact state after ``step``, replayed in its worker (weights, optimizer state, generators)."""
        try:
            return self._get(self._worker.resume_state.remote(self.run_id, step), LONG_TIMEOUT_S)
        except WorkerLost as exc:
            self._mark_lost(head=isinstance(exc, HeadLost))
            raise self._lost_error() from None

    def test_split(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._test is None:
            self._test = _test_split(self._dataset_info.name, self)
        return self._test


_tests: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
_tests_lock = threading.Lock()


def _test_split(dataset: str, handle: RayRunHandle) -> tuple[torch.Tensor, torch.Tensor]:
    """A dataset's test split, fetched from a worker once per app process (every run shares it)."""
    with _tests_lock:
        if dataset not in _tests:
            try:
                _tests[dataset] = handle._get(handle._worker.test_split.remote(handle.run_id), LONG_TIMEOUT_S)
            except WorkerLost as exc:
                handle._mark_lost(head=isinstance(exc, HeadLost))
                raise handle._lost_error() from None
        return _tests[dataset]


if TYPE_CHECKING:
    from dlplay.classify.handle import RunHandle

    # mypy checks that the Ray backend implements the pages' interface (nothing runs here)
    _implements_run_handle: type[RunHandle] = RayRunHandle
