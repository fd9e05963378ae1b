"""Training callbacks: the hooks a :class:`dlplay.classify.train.TrainingSession` calls in its training thread.

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
    from dlplay.classify.train import TrainingSession
    from dlplay.run.metrics import EpochRecord


class TrainingHooks(Protocol):
    """What a TrainingSession calls on each of its callbacks (in the training thread)."""

    def on_start(self, session: TrainingSession) -> None: ...
    def after_backward(self, session: TrainingSession, step: int) -> None: ...
    def after_step(self, session: TrainingSession, step: int) -> None: ...
    def on_sync(self, session: TrainingSession) -> None: ...
    def on_epoch_end(self, session: TrainingSession, record: EpochRecord) -> None: ...
    def on_end(self, session: TrainingSession) -> None: ...


class TrainingCallback:
    """A callback whose hooks do nothing: subclass it and override the hooks you need."""

    def on_start(self, session: TrainingSession) -> None:
        return None

    def after_backward(self, session: TrainingSession, step: int) -> None:
        return None

    def after_step(self, session: TrainingSession, step: int) -> None:
        return None

    def on_sync(self, session: TrainingSession) -> None:
        return None

    def on_epoch_end(self, session: TrainingSession, record: EpochRecord) -> None:
        return None

    def on_end(self, session: TrainingSession) -> None:
        return None
