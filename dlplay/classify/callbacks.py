"""Training callbacks: the hooks a :class:`dlplay.classify.train.TrainingSession` calls in its training thread,
and :class:`TrainingState`, the loop's public state they read.

``TrainingHooks`` is the Protocol (what ``TrainingSession(callbacks=...)`` is typed with);
``TrainingCallback`` is a base class whose hooks do nothing, so a callback overrides only the ones
it needs and still satisfies the Protocol. The session looks each hook up by name (``getattr``), so
an object with only some of them keeps working at run time; subclassing makes mypy check them.

Hooks, in the order a run calls them:

- ``on_start(session)``: before the first step (the model and dataset are on the device);
- ``after_backward(session, step)``: after a step's backward pass, before the optimiser updates;
- ``after_step(session, step)``: after the update of global step ``step`` (1-based);
- ``on_sync(session)``: after a host sync, when the window's losses reached the metrics;
- ``on_epoch_end(session, record)``: after an epoch's evaluation, with its :class:`~dlplay.run.metrics.EpochRecord`;
- ``on_end(session)``: once when the run ends (finished, stopped, diverged or failed).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import threading

    import torch

    from dlplay.classify.resume import ResumeState
    from dlplay.data.datasets import Dataset
    from dlplay.nn.spec import ModelSpec, TrainConfig
    from dlplay.run.metrics import EpochRecord, MetricsHistory, MetricsSnapshot


class TrainingState(Protocol):
    """The training loop's public state: what a hook may read (in the training thread, between steps).

    :class:`dlplay.classify.train.TrainingSession` provides it; hooks never reach into the loop's own fields."""

    run_id: str
    spec: ModelSpec
    config: TrainConfig
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    model_lock: threading.RLock
    device: torch.device
    dataset: Dataset
    metrics: MetricsHistory
    train_size: int
    total_steps: int
    steps_per_epoch: int

    @property
    def global_step(self) -> int: ...  # steps done so far
    @property
    def consumed(self) -> int: ...  # training images used in the current epoch
    def capture_state(self) -> ResumeState: ...  # the exact state between two steps (a fork's start)
    def snapshot(self) -> MetricsSnapshot: ...
    def state_dict(self) -> dict[str, torch.Tensor]: ...
    def stop(self) -> None: ...
    def set_lr(self, lr: float) -> None: ...


class TrainingHooks(Protocol):
    """What a TrainingSession calls on each of its callbacks (in the training thread)."""

    def on_start(self, session: TrainingState) -> None: ...
    def after_backward(self, session: TrainingState, step: int) -> None: ...
    def after_step(self, session: TrainingState, step: int) -> None: ...
    def on_sync(self, session: TrainingState) -> None: ...
    def on_epoch_end(self, session: TrainingState, record: EpochRecord) -> None: ...
    def on_end(self, session: TrainingState) -> None: ...


class TrainingCallback:
    """A callback whose hooks do nothing: subclass it and override the hooks you need."""

    def on_start(self, session: TrainingState) -> None:
        return None

    def after_backward(self, session: TrainingState, step: int) -> None:
        return None

    def after_step(self, session: TrainingState, step: int) -> None:
        return None

    def on_sync(self, session: TrainingState) -> None:
        return None

    def on_epoch_end(self, session: TrainingState, record: EpochRecord) -> None:
        return None

    def on_end(self, session: TrainingState) -> None:
        return None
