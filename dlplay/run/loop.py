"""RunLoop: the run machinery every task shares — a thread steered by commands between its steps.

A task (classify: :class:`dlplay.classify.train.TrainingSession`; generate: :class:`dlplay.gan.session.GanSession`)
subclasses RunLoop and supplies only what differs: its models, its step and its metrics. RunLoop owns

- the commands, callable from any thread: ``start``, ``pause``, ``resume``, ``step``, ``stop``,
  ``set_lr``, ``set_pace``, ``heartbeat``, ``join``;
- the gate a task's loop calls before each step (``_gate()``, then ``_regain_slot()``): it applies a
  new learning rate, holds the loop while paused (flushing the metrics, giving the slot up after a
  long pause while others wait), lets single steps through, paces the steps, and raises
  :class:`StopRun` on Stop or a lost heartbeat;
- the status (``status``, ``_set_status``) kept in the run's :class:`~dlplay.run.metrics.MetricsHistory`;
- the thread's wrapper ``_run``: take a run slot (``slot_pool``), run ``_loop()``, turn the way it
  ended into a status with a message (done, stopped, abandoned, diverged, out of memory, failed), give
  the slot back and call the callbacks' ``on_end``.

A subclass implements ``_loop()`` (steps until done, calling ``_gate()`` and ``_regain_slot()`` first
each time and raising :class:`Diverged` when its loss stops being finite), and may override
``_prepare()`` (reset per-run state before the loop; ``_flush()`` must work right after it),
``_flush()`` (bring device-side metrics to the host; also called on pause and stop),
``_change_lr(lr)`` (apply a learning rate set by ``set_lr``, in the training thread) and
``_diverged_message(step)`` (the status message of a diverged run). Callbacks are objects with hooks
looked up by name (``_call("on_sync")``), so each task types them with its own Protocol.
"""
from __future__ import annotations

import contextlib
import math
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

import torch

from dlplay.errors import UserError
from dlplay.nn.spec import validate_lr
from dlplay.run.memory import keep_freed_memory
from dlplay.run.metrics import MetricsHistory
from dlplay.run.status import Status

MAX_PACE = 1000.0  # steps per second; a slower pace lets a learner watch each step (None: full speed)


class StopRun(Exception):
    """Raised in the training thread to end the run as stopped (``StopRun("abandoned")``: heartbeat lost)."""


class Diverged(Exception):
    """Raised by a task's loop when its loss became NaN or infinite at global step ``step``."""

    def __init__(self, step: int):
        super().__init__(step)
        self.step = step


class RunLoop:
    """A run's thread, commands, gate, status and slot; subclasses add the task (see the module doc)."""

    thread_name = "dlplay-run"

    def __init__(
        self,
        device: torch.device,
        *,
        sync_every: int = 50,
        callbacks: Iterable[Any] = (),
        heartbeat_timeout: float | None = None,
        slot_pool: Any = None,
        history_capacity: int = 8192,
    ):
        self.run_id = uuid.uuid4().hex[:12]  # a RunRecord's id: the run history keys on it
        self.device = device
        self.sync_every = max(1, sync_every)
        self.callbacks = list(callbacks)
        self.heartbeat_timeout = heartbeat_timeout
        self.slot_pool = slot_pool
        self.metrics = MetricsHistory(history_capacity)
        self.created_at = time.time()
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.model_lock = threading.RLock()  # held by the training thread during a step; reads take it too
        self._cond = threading.Condition()
        self._paused = False
        self._stop_requested = False
        self._steps_allowed = 0  # single steps granted while paused
        self._pending_lr: float | None = None
        self._last_heartbeat = time.monotonic()
        self._thread: threading.Thread | None = None
        self._global_step = 0

    # ----- commands -------------------------------------------------------------------------
    def start(self, paused: bool = False) -> None:
        """Start the training thread (once). ``paused=True`` starts it waiting for step/resume."""
        with self._cond:
            if self._thread is not None:
                return
            self._paused = paused
            keep_freed_memory()  # a step's freed activations are reused by the next one (dlplay/run/memory.py)
            self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
            self._thread.start()

    def pause(self) -> None:
        with self._cond:
            self._paused = True
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def step(self, n: int = 1) -> None:
        """Run ``n`` single steps, then stay paused (starts the thread paused if needed)."""
        if self._thread is None:
            self.start(paused=True)
        with self._cond:
            self._paused = True
            self._steps_allowed += n
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stop_requested = True
            self._cond.notify_all()
        if self._thread is None:
            self._set_status("stopped")

    def set_lr(self, lr: float) -> None:
        """Change the learning rate; it applies from the next step."""
        lr = validate_lr(lr)
        with self._cond:
            self._pending_lr = lr
            self._cond.notify_all()

    _pace: float | None = None  # steps per second; None: full speed
    _last_step_at = 0.0  # time.monotonic() when the gate last let a paced step through

    def set_pace(self, steps_per_s: float | None) -> None:
        """Slow the run to ``steps_per_s`` steps per second so it can be watched (None: full speed).
        Applies from the next step, also while running; pause and stop still answer at once."""
        if steps_per_s is not None:
            if isinstance(steps_per_s, bool) or not isinstance(steps_per_s, (int, float)) \
                    or not math.isfinite(steps_per_s) or not 0 < steps_per_s <= MAX_PACE:
                raise UserError("train.pace_range", value=steps_per_s, max=MAX_PACE)
            steps_per_s = float(steps_per_s)
        with self._cond:
            self._pace = steps_per_s
            self._cond.notify_all()

    @property
    def pace(self) -> float | None:
        """Steps per second the run is held to, or None at full speed."""
        return self._pace

    def heartbeat(self) -> None:
        """The UI is still there; without one for ``heartbeat_timeout`` seconds the run stops itself."""
        self._last_heartbeat = time.monotonic()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; True if it has."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # ----- reads ----------------------------------------------------------------------------
    @property
    def status(self) -> Status:
        return Status(self.metrics.progress.status)

    @property
    def device_name(self) -> str:
        """Where the run trains: ``cpu``, ``cuda:0``, ``mps``."""
        return str(self.device)

    @property
    def last_heartbeat(self) -> float:
        """``time.monotonic()`` of the latest heartbeat (or of the run's creation)."""
        return self._last_heartbeat

    def seconds_since_heartbeat(self) -> float:
        return time.monotonic() - self._last_heartbeat

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    @property
    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ----- what a task supplies -------------------------------------------------------------
    def _loop(self) -> None:
        """The task's steps, each after ``self._gate()`` and ``self._regain_slot()``."""
        raise NotImplementedError

    def _prepare(self) -> None:
        """Reset the task's per-run state (called first in the thread; ``_flush`` must work after it)."""

    def _flush(self) -> None:
        """Bring the metrics accumulated on the device to the host (may raise Diverged)."""

    def _change_lr(self, lr: float) -> None:
        """Apply a learning rate set with ``set_lr`` (in the training thread, before the next step)."""
        raise NotImplementedError

    def _diverged_message(self, step: int) -> tuple[str, dict[str, Any]]:
        """The translation key and parameters of the status message of a run diverged at ``step``."""
        return "train.msg_diverged", {"step": step, "lr": 0.0}

    # ----- the loop's machinery -------------------------------------------------------------
    def _set_status(self, status: str, message: str = "", **params: Any) -> None:
        self.metrics.update_progress(status=status, message=message, message_params=tuple(sorted(params.items())))

    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(self, *args)

    def _gate(self) -> None:
        """Between steps: apply commands, honour pause / single steps / stop / a lost heartbeat."""
        with self._cond:
            while True:
                if self._stop_requested:
                    raise StopRun()
                if self.heartbeat_timeout is not None and time.monotonic() - self._last_heartbeat > self.heartbeat_timeout:
                    self._stop_requested = True
                    raise StopRun("abandoned")
                if self._pending_lr is not None:
                    self._change_lr(self._pending_lr)
                    self._pending_lr = None
                if not self._paused:
                    if self._pace is not None:
                        wait = self._last_step_at + 1.0 / self._pace - time.monotonic()
                        if wait > 0:  # not due yet: wait on the condition, so pause/stop/lr/pace answer at once
                            if self.status != "running":
                                self._set_status("running")
                            self._cond.wait(timeout=min(wait, 0.5))
                            continue
                        self._last_step_at = time.monotonic()
                    if self.status != "running":
                        self._set_status("running")
                    return
                if self._steps_allowed > 0:
                    self._steps_allowed -= 1
                    self._single_step = True
                    if self.status in (Status.READY, Status.QUEUED):  # it has its slot: stepping is training
                        self._set_status(Status.RUNNING)  # (paused again when the granted steps are done)
                    return
                if self.status != "paused":
                    self._flush()
                    self._set_status("paused")
                    self._paused_since = time.monotonic()
                self._yield_slot_while_paused()
                self._cond.wait(timeout=0.5)

    def _yield_slot_while_paused(self) -> None:
        """Paused long enough while others wait for a slot: let the next run train (see _regain_slot)."""
        if self.slot_pool is not None and not self._slot_yielded:
            self._slot_yielded = self.slot_pool.yield_if_waited_for(self, self._paused_since)

    def _regain_slot(self) -> None:
        """After a pause that gave the slot away: queue for one again before the next step."""
        if not self._slot_yielded:
            return
        self._set_status("queued")
        if not self.slot_pool.acquire(self, lambda: self._stop_requested):
            raise StopRun() if self._stop_requested else StopRun("abandoned")
        self._slot_yielded = False
        self._set_status("running")

    def _sync_window(self) -> int:
        """Steps between two host syncs: ``sync_every`` at full speed; at a watchable pace about one
        sync per 1/20 s (every step at 20 steps/s or slower), so the loss reaches the page as it goes."""
        pace = self._pace
        if pace is None:
            return self.sync_every
        return max(1, min(self.sync_every, int(pace // 20)))

    # the loop's state, set by _run (declared here so that mypy knows their types everywhere)
    _single_step: bool  # the gate let a single step through (the task flushes after it)
    _slot_yielded: bool
    _paused_since: float
    _sync_time: float  # time.perf_counter() of the latest host sync

    def _run(self) -> None:
        self._global_step = 0
        self._single_step = False
        self._paused_since = time.monotonic()
        self._slot_yielded = False  # the slot was given to a waiting run during a long pause
        self._prepare()
        slot_taken = False
        try:
            if self.slot_pool is not None:
                self._set_status("queued")
                slot_taken = self.slot_pool.acquire(self, lambda: self._stop_requested)
                if not slot_taken:
                    raise StopRun()
            self.started_at = time.time()
            self._sync_time = time.perf_counter()
            self._loop()
            self._set_status("done")
        except StopRun as stop:
            self._safe_flush()
            self._set_status("stopped", "train.msg_abandoned" if stop.args == ("abandoned",) else "")
        except Diverged as div:
            key, params = self._diverged_message(div.step)
            self._set_status("diverged", key, **params)
        except torch.OutOfMemoryError:
            self._set_status("failed", "train.msg_oom")
        except UserError as exc:
            self._set_status("failed", exc.key, **exc.params)
        except Exception as exc:  # noqa: BLE001 - any failure becomes a state the UI shows
            self._set_status("failed", "train.msg_failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            self.finished_at = time.time()
            if slot_taken:
                self.slot_pool.release(self)
            with contextlib.suppress(Exception):
                self._call("on_end")

    def _safe_flush(self) -> None:
        with contextlib.suppress(Diverged):
            self._flush()
