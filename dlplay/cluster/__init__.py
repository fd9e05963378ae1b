"""Runs on a Ray cluster: the Ray run backend behind :class:`dlplay.handle.RunHandle` (no streamlit here).

Off unless ``DLPLAY_RAY_ADDRESS`` is set (a Ray address such as ``127.0.0.1:6379`` or ``auto``, or
``local`` to start a Ray instance in this process); then runs train in long-lived Ray worker actors
(:mod:`.worker`), several runs per actor, and the app talks to them through
:class:`~dlplay.cluster.handle.RayRunHandle`. Without the variable nothing here is imported and
runs stay threads in the app's process (the embedded default). Ray is an optional dependency
(``requirements-cluster.txt``): only this package imports it.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .backend import RayBackend

ENV_RAY_ADDRESS = "DLPLAY_RAY_ADDRESS"


def ray_address() -> str | None:
    """``DLPLAY_RAY_ADDRESS`` (stripped), or None when runs stay in this process."""
    value = (os.environ.get(ENV_RAY_ADDRESS) or "").strip()
    return value or None


def backend_from_env() -> RayBackend | None:
    """The run backend this process uses: None for the in-process thread (the default), the Ray
    backend (connected, its worker pool in place) when ``DLPLAY_RAY_ADDRESS`` is set."""
    address = ray_address()
    if address is None:
        return None
    from .backend import RayBackend

    return RayBackend.connect(address)
