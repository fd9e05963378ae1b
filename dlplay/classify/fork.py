"""Fork a run: from any step of a run, a new run from exactly that state with one change.

"Exactly that state" is the weights, the optimiser's state, the learning-rate schedule's position, the
random generators (the epochs' permutations and the dropout masks) and the place in the current
epoch's permutation. Keeping every step's state is impossible, so a :class:`SnapshotKeeper` (a
training callback) keeps :class:`ResumeState` snapshots, on the CPU, at the start, at every epoch
boundary and every ``every`` steps, within ``max_bytes`` (past it every other snapshot is dropped
and ``every`` doubles); the state at any other step is *replayed* from the nearest snapshot before
it (at most ``every`` steps; CPU training is deterministic for a given seed, the dense engine and
autograd alike, so the replay lands on the same bits).

The one change (:class:`Change`): learning rate, optimiser (a different one starts with fresh
state: its moments cannot be carried over), batch size, dropout (every layer) or schedule, or none.
*Same order of the remaining batches* after a batch-size change means the same permutation of the
images the epoch has not yet trained on, cut into batches of the new size; later epochs draw the
same permutations as the parent's. The schedule's position is the step: its progress is the share
of the run's steps done, the fork's steps counted at its own batch size (unchanged batch size: the
parent's own schedule, step for step).

A fork is an ordinary run (``dlplay/ui/state.py`` makes it under the server's rules) whose
``forked_from`` and run record say where it came from: (parent run id, step, change, old, new).
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dlplay.classify.callbacks import TrainingCallback, TrainingState
from dlplay.classify.probe import M, ProbeSnapshot
from dlplay.classify.resume import Origin, ResumeState, cpu_copy  # noqa: F401 - ResumeState re-exported (it was defined here)
from dlplay.errors import UserError
from dlplay.nn.optimizers import OPTIMIZERS, SCHEDULES
from dlplay.nn.spec import MAX_BATCH, ModelSpec, TrainConfig, validate_lr
from dlplay.run.metrics import MetricsSnapshot

SNAPSHOT_EVERY = 100  # steps between two snapshots (a replay is at most this long, until thinned)
MAX_BYTES = 64 * 2**20  # snapshots of one run (then every other one goes and the interval doubles)
REPLAY_TIMEOUT_S = 300.0
CHANGES = ("none", "lr", "optimizer", "batch_size", "dropout", "schedule")



class SnapshotKeeper(TrainingCallback):
    """Keeps a run's :class:`ResumeState` snapshots in bounded memory and replays to any step."""

    def __init__(self, every: int = SNAPSHOT_EVERY, max_bytes: int = MAX_BYTES):
        self.every = max(1, int(every))
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._snaps: list[ResumeState] = []

    def steps(self) -> list[int]:
        with self._lock:
            return [s.step for s in self._snaps]

    # ----- callbacks (training thread) ------------------------------------------------------------
    def on_start(self, session: TrainingState) -> None:
        start = getattr(session, "_start_from", None)
        with self._lock:
            self._snaps = []
        self._add(start if start is not None else session.capture_state())

    def on_sync(self, session: TrainingState) -> None:
        last = self._snaps[-1].step if self._snaps else -1
        step = session.global_step
        if step > last and (step - last >= self.every or session.consumed >= session.train_size):
            self._add(session.capture_state())

    def on_end(self, session: TrainingState) -> None:
        if session.global_step > (self._snaps[-1].step if self._snaps else -1):
            with contextlib.suppress(Exception):  # a run that failed before its loop started has no state
                self._add(session.capture_state())

    def _add(self, state: ResumeState) -> None:
        with self._lock:
            self._snaps.append(state)
            while len(self._snaps) > 2 and sum(s.nbytes for s in self._snaps) > self.max_bytes:
                first, rest = self._snaps[0], self._snaps[1:]
                # every other one goes (the first and the latest stay); the interval doubles
                self._snaps = [first, *rest[1::2]] if len(rest) % 2 == 0 else [first, *rest[0::2]]
                self.every *= 2

    # ----- a fork's start (any thread, the run paused or ended) -------------------------------------
    def resume_state(self, session: Any, step: int) -> ResumeState:
        """The run's state after ``step`` steps: a snapshot, or a replay from the nearest one before it."""
        done = int(session.snapshot().progress.global_step)
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= done:
            raise UserError("fork.bad_step", step=step, last=done)
        with self._lock:
            before = [s for s in self._snaps if s.step <= step]
        if not before:
            raise UserError("fork.no_snapshots")
        nearest = before[-1]
        if nearest.step == step:
            return nearest
        return replay(session, nearest, step)


class _Capture(TrainingCallback):
    """The replay's callback: apply the parent's learning-rate changes; take the state at ``target``."""

    def __init__(self, target: int, lr_changes: Sequence[tuple[int, float]]):
        self.target = target
        self.lr_changes = dict(lr_changes)
        self.state: ResumeState | None = None

    def after_step(self, session: TrainingState, step: int) -> None:
        lr = self.lr_changes.get(step + 1)
        if lr is not None and step + 1 <= self.target:
            session.set_lr(lr)

    def on_sync(self, session: TrainingState) -> None:
        if self.state is None and session.global_step == self.target:
            self.state = session.capture_state()
            session.stop()


def replay(parent: Any, start: ResumeState, target: int) -> ResumeState:
    """Train a copy of ``parent`` from ``start`` to step ``target`` (its settings, its lr changes) and
    return its state there. Runs a short run in its own thread and waits for it."""
    changes = [(s, lr) for s, lr in parent.snapshot().lr_changes if start.step < s <= target]
    capture_cb = _Capture(target, changes)
    config = dataclasses.replace(parent.config, lr=start.base_lr)
    engine = "auto" if getattr(parent, "engine", None) is not None else "autograd"
    run = type(parent)(parent.spec, config, parent.dataset, parent.device, sync_every=1,
                          callbacks=[capture_cb], start_from=start, engine=engine)
    lr_now = changes[0][1] if changes and changes[0][0] == start.step + 1 else None
    if lr_now is not None:
        run.set_lr(lr_now)
    run.start()
    run.join(REPLAY_TIMEOUT_S)
    if capture_cb.state is None:
        run.stop()
        run.join(5.0)
        raise UserError("fork.replay_failed", step=target)
    return capture_cb.state


# ----- the one change -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    """What a fork changes: ``kind`` one of CHANGES, ``value`` its new value."""

    kind: str = "none"
    value: Any = None


def current_value(spec: ModelSpec, config: TrainConfig, kind: str, base_lr: float | None = None) -> Any:
    """The parent's value of what ``kind`` changes (its learning rate: the one in force at the fork)."""
    if kind == "lr":
        return config.lr if base_lr is None else base_lr
    if kind == "optimizer":
        return config.optimizer
    if kind == "batch_size":
        return config.batch_size
    if kind == "schedule":
        return config.schedule
    if kind == "dropout":
        drops = {layer.dropout for layer in spec.layers if "dropout" in _uses(layer.kind)}
        return max(drops) if drops else 0.0
    return None


def _uses(kind: str) -> tuple[str, ...]:
    from dlplay.nn.layers import LAYER_KINDS

    return LAYER_KINDS[kind].uses


def apply_change(spec: ModelSpec, config: TrainConfig, change: Change) -> tuple[ModelSpec, TrainConfig]:
    """The fork's spec and settings: the parent's with the one change (a UserError if it is not valid)."""
    kind, value = change.kind, change.value
    if kind not in CHANGES:
        raise UserError("fork.bad_change", change=kind)
    if kind == "lr":
        return spec, config.with_changes(lr=validate_lr(value))
    if kind == "optimizer":
        if value not in OPTIMIZERS:
            raise UserError("spec.unknown_optimizer", optimizer=value, choices=", ".join(OPTIMIZERS))
        return spec, config.with_changes(optimizer=value)
    if kind == "batch_size":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BATCH:
            raise UserError("fork.bad_batch", value=value, max=MAX_BATCH)
        return spec, config.with_changes(batch_size=value)
    if kind == "schedule":
        if value not in SCHEDULES:
            raise UserError("spec.unknown_schedule", schedule=value, choices=", ".join(SCHEDULES))
        return spec, config.with_changes(schedule=value)
    if kind == "dropout":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise UserError("fork.bad_dropout", value=value)
        layers = tuple(dataclasses.replace(layer, dropout=float(value)) if "dropout" in _uses(layer.kind) else layer
                       for layer in spec.layers)
        return dataclasses.replace(spec, layers=layers), config
    return spec, config


def _text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class ForkPlan:
    """A fork ready to be made into a run: its spec, settings and start."""

    spec: ModelSpec
    config: TrainConfig
    start: ResumeState

    @property
    def origin(self) -> Origin:
        assert self.start.origin is not None
        return self.start.origin


def plan_fork(parent: Any, step: int, change: Change) -> ForkPlan:
    """The state of ``parent`` (a RunHandle) after ``step`` steps, and the fork's spec and settings.

    The parent must not be training (paused, or ended): a UserError otherwise."""
    if parent.status in ("running", "queued"):
        raise UserError("fork.pause_first")
    state = parent.resume_state(step)
    base = dataclasses.replace(parent.config, lr=state.base_lr)  # its learning rate at the fork
    spec, config = apply_change(parent.spec, base, change)
    old = current_value(parent.spec, base, change.kind)
    new = current_value(spec, config, change.kind)
    origin: Origin = (parent.run_id, int(step), change.kind, _text(old) if old is not None else "",
                      _text(new) if new is not None else "")
    return ForkPlan(spec, config, dataclasses.replace(state, origin=origin))


# ----- the two runs side by side --------------------------------------------------------------------
def epochs_at(steps: np.ndarray | Sequence[int], train_size: int, batch_size: int, start: ResumeState | None = None) -> np.ndarray:
    """Where each global step lands in epochs (images trained on / training-set size) for a run of
    ``batch_size``, started from ``start`` (a fork) or from step 0: the x axis two runs share even
    when their batch sizes differ."""
    steps = np.asarray(steps, dtype=np.int64)
    n, b = train_size, batch_size
    per_epoch = math.ceil(n / b)
    s0, e0, c0 = (start.step, start.epoch, start.consumed) if start is not None else (0, 0, 0)
    first = math.ceil((n - c0) / b)  # steps left in the fork's first epoch
    k = steps - s0
    in_first = np.minimum(c0 + k * b, n) + e0 * n
    later = k - first
    images_later = (e0 + 1 + later // per_epoch) * n + np.minimum((later % per_epoch) * b, n)
    images = np.where(k <= first, in_first, images_later)
    return images / n


@dataclass(frozen=True)
class RunCurves:
    """One run's curves for the overlay: per-step loss, per-epoch test accuracy, probed gradient norm."""

    loss_x: np.ndarray
    loss: np.ndarray
    acc_x: np.ndarray
    acc: np.ndarray
    grad_x: np.ndarray
    grad: np.ndarray


def curves(snap: MetricsSnapshot, probe: ProbeSnapshot | None, train_size: int, batch_size: int,
           start: ResumeState | None = None, from_step: int = 0) -> RunCurves:
    """A run's curves from step ``from_step`` on, on the epochs axis (see epochs_at)."""
    steps, losses = np.asarray(snap.steps), np.asarray(snap.losses)
    keep = steps > from_step
    acc_x = np.array([e.epoch for e in snap.epochs], dtype=float)
    acc = np.array([e.test_acc for e in snap.epochs], dtype=float)
    fork_x = float(epochs_at(np.array([from_step]), train_size, batch_size, start)[0]) if from_step else 0.0
    acc_keep = acc_x > fork_x + 1e-9
    grad_x = grad = np.zeros(0)
    if probe is not None and len(probe.steps):
        gw = np.asarray(probe.values)[:, :, M["grad_w"]]
        total = np.sqrt(np.nansum(gw**2, axis=1))
        pk = np.asarray(probe.steps) > from_step
        grad_x, grad = epochs_at(np.asarray(probe.steps)[pk], train_size, batch_size, start), total[pk]
    return RunCurves(epochs_at(steps[keep], train_size, batch_size, start), losses[keep], acc_x[acc_keep],
                     acc[acc_keep], grad_x, grad)

