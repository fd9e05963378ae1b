"""Shared test helpers: wait for a run (or any condition), train a run to its end, click in AppTest.

Imported by the test files as ``from helpers import ...`` (pytest puts ``tests/`` on the path, as for
``e2e_util``). The shared trained tutorial model is the ``trained_tutorial`` fixture in conftest.py.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from dlplay.classify.train import TrainingSession
from dlplay.nn.spec import ModelSpec, TrainConfig


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it holds (True) or ``timeout`` seconds have passed (False)."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(interval)
    return True


def wait_for_status(session: TrainingSession, *statuses: str, timeout: float = 30.0) -> bool:
    """Wait until the run's status is one of ``statuses``."""
    return wait_for(lambda: session.status in statuses, timeout)


def wait_for_step(session: TrainingSession, step: int, timeout: float = 30.0) -> bool:
    """Wait until the run has trained at least ``step`` steps (as its snapshot reports them)."""
    return wait_for(lambda: session.snapshot().progress.global_step >= step, timeout)


def train_to_end(mnist: Any, spec: ModelSpec, config: TrainConfig | None = None, *,
                 callbacks: Iterable[Any] = (), timeout: float = 300.0, **session_args: Any) -> TrainingSession:
    """A run on the CPU trained to "done" on ``mnist`` (the test fails if it does not get there)."""
    session = TrainingSession(spec, config or TrainConfig(), mnist, "cpu", callbacks=list(callbacks), **session_args)
    session.start()
    assert session.join(timeout), session.status
    assert session.status == "done", session.status
    return session


def stop_and_join(*sessions: TrainingSession, timeout: float = 10.0) -> None:
    """Stop runs a test started and wait for their threads (cleanup in ``finally``)."""
    for session in sessions:
        session.stop()
        session.join(timeout)


def click(at: Any, key: str) -> None:
    """Click the AppTest button with this key, rerun, and check the script raised nothing."""
    at.button(key=key).click().run()
    assert not at.exception, [e.value for e in at.exception]
