"""Thread-safe metric history with bounded memory, read by the UI as immutable snapshots."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from dlplay.run.status import Status

MAX_POINTS = 2000  # points per drawn curve: plain SVG scatter stays smooth below this (WebGL froze headless Chromium)


@dataclass(frozen=True)
class EpochRecord:
    epoch: int  # 1-based
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    seconds: float
    samples_per_s: float
    val_loss: float | None = None  # on the run's validation split (None: the run has none)
    val_acc: float | None = None


@dataclass(frozen=True)
class Progress:
    status: str = Status.READY  # ready, queued, running, paused, done, stopped, diverged, failed
    message: str = ""  # a translation key (see locales/*/train.json) or ""
    message_params: tuple = ()
    epoch: int = 0  # epochs completed
    epochs: int = 0
    step_in_epoch: int = 0
    steps_per_epoch: int = 0
    global_step: int = 0
    total_steps: int = 0
    samples_per_s: float = 0.0
    elapsed_s: float = 0.0
    eta_s: float | None = None
    lr: float = 0.0
    queue_position: int | None = None
    warning: str = ""  # a translation key: the run goes on, but something is wrong (the loss exploded, chance level)
    warning_params: tuple = ()
    evaluating: float | None = None  # share of the test set evaluated at an epoch's end; None while training
    engine: str = ""  # what trains: "dense" (dlplay.nn.engine, the tutorial's equations) or "autograd"
    cuda_graph: str = ""  # CUDA graphs (dlplay.run.cudagraph): "" not on a GPU or off, else the state ("on", "off_...")

    @property
    def fraction(self) -> float:
        return self.global_step / self.total_steps if self.total_steps else 0.0


@dataclass(frozen=True)
class MetricsSnapshot:
    version: int
    steps: np.ndarray  # global step of each recorded loss (1-based)
    losses: np.ndarray  # training loss (averaged over ``loss_stride`` steps once history is long)
    loss_stride: int
    epochs: tuple[EpochRecord, ...]
    lr_changes: tuple[tuple[int, float], ...]  # (global step, new learning rate)
    progress: Progress
    extras: dict[str, Any] = field(default_factory=dict)


def downsample(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Average consecutive points so at most ``max_points`` remain (keeps the shape of the curve);
    each average is placed at the last x of its group."""
    n = len(x)
    if n <= max_points:
        return x, y
    k = int(np.ceil(n / max_points))
    m = n // k * k
    xs = x[:m].reshape(-1, k)[:, -1]
    ys = y[:m].reshape(-1, k).mean(axis=1)
    if m < n:
        xs, ys = np.append(xs, x[-1]), np.append(ys, y[m:].mean())
    return xs, ys


class StepSeries:
    """Per-step values in bounded memory: when full, neighbouring pairs are averaged and the stride doubles.

    Each value has the shape ``shape``: () for the training loss, (layers, metrics) for a probe's readings.
    """

    def __init__(self, capacity: int = 8192, shape: tuple[int, ...] = ()):
        if capacity < 2 or capacity % 2:
            raise ValueError("capacity must be an even number >= 2")
        self.capacity = capacity
        self.steps = np.zeros(capacity, dtype=np.int64)
        self.values = np.zeros((capacity, *shape), dtype=np.float64)
        self.size = 0
        self.stride = 1
        self._pending_sum = np.zeros(shape)
        self._pending_count = 0

    def append(self, step: int, value: float | np.ndarray) -> None:
        self._pending_sum = self._pending_sum + value
        self._pending_count += 1
        if self._pending_count < self.stride:
            return
        if self.size == self.capacity:
            half = self.capacity // 2
            self.values[:half] = self.values.reshape(half, 2, *self.values.shape[1:]).mean(axis=1)
            self.steps[:half] = self.steps.reshape(half, 2)[:, 1]
            self.size = half
            self.stride *= 2
            if self._pending_count < self.stride:
                return
        self.steps[self.size] = step
        self.values[self.size] = self._pending_sum / self._pending_count
        self.size += 1
        self._pending_sum, self._pending_count = np.zeros_like(self._pending_sum), 0

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return self.steps[: self.size].copy(), self.values[: self.size].copy()


class MetricsHistory:
    """Written by the training thread, read by the UI; every read is a consistent copy."""

    def __init__(self, capacity: int = 8192):
        self._lock = threading.Lock()
        self._losses = StepSeries(capacity)
        self._epochs: list[EpochRecord] = []
        self._lr_changes: list[tuple[int, float]] = []
        self._progress = Progress()
        self._extras: dict[str, Any] = {}
        self._version = 0

    def append_losses(self, first_step: int, losses: list[float]) -> None:
        with self._lock:
            for i, value in enumerate(losses):
                self._losses.append(first_step + i, value)
            self._version += 1

    def add_epoch(self, record: EpochRecord) -> None:
        with self._lock:
            self._epochs.append(record)
            self._version += 1

    def add_lr_change(self, step: int, lr: float) -> None:
        with self._lock:
            self._lr_changes.append((step, lr))
            self._version += 1

    def update_progress(self, **changes: Any) -> None:
        with self._lock:
            self._progress = replace(self._progress, **changes)
            self._version += 1

    def set_extra(self, name: str, value: Any) -> None:
        """Attach another producer's data (e.g. probe statistics); ``value`` should be immutable."""
        with self._lock:
            self._extras[name] = value
            self._version += 1

    @property
    def progress(self) -> Progress:
        with self._lock:
            return self._progress

    @property
    def version(self) -> int:
        with self._lock:
            return self._version

    def snapshot(self) -> MetricsSnapshot:
        with self._lock:
            steps, values = self._losses.arrays()
            return MetricsSnapshot(
                version=self._version,
                steps=steps,
                losses=values,
                loss_stride=self._losses.stride,
                epochs=tuple(self._epochs),
                lr_changes=tuple(self._lr_changes),
                progress=self._progress,
                extras=dict(self._extras),
            )
