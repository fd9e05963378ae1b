"""A run's status: one enum, and the groups of statuses the pages and the server ask about.

``Status`` is a ``StrEnum``: a member equals its value (``Status.RUNNING == "running"``), so the
status travels in JSON, share links and run records as the plain string it always was.
"""
from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    READY = "ready"  # created, not started
    QUEUED = "queued"  # waiting for a run slot
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"  # all epochs trained
    STOPPED = "stopped"  # the learner (or a lost heartbeat) stopped it
    DIVERGED = "diverged"  # the loss became NaN or infinite
    FAILED = "failed"  # an error ended it (out of memory, bad data, a lost worker)


ACTIVE: frozenset[Status] = frozenset({Status.QUEUED, Status.RUNNING, Status.PAUSED})
MOVING: frozenset[Status] = frozenset({Status.QUEUED, Status.RUNNING})  # goes on by itself: a page polls it
FINISHED: frozenset[Status] = frozenset({Status.DONE, Status.STOPPED, Status.DIVERGED, Status.FAILED})
PROBLEM: frozenset[Status] = frozenset({Status.DIVERGED, Status.FAILED})  # the page shows their message as an error
