"""Runs on a Ray cluster: the Ray run backend behind :class:`dlplay.classify.handle.RunHandle` (no streamlit here).

Off unless ``DLPLAY_RAY_ADDRESS`` is set (a Ray address such as ``127.0.0.1:6379`` or ``auto``, or
``local`` to start a Ray head owned by this process, :mod:`.head`); then runs train in long-lived Ray
worker actors (:mod:`.worker`), several runs per actor, and the app talks to them through
:class:`~dlplay.cluster.handle.RayRunHandle`. :class:`~dlplay.cluster.link.ClusterLink` connects and
watches the head: when the connection fails or the head is lost, runs train in the app's process
again and the pages say so. Without the variable nothing here is imported and
runs stay threads in the app's process (the embedded default). Ray is an optional dependency
(``requirements-cluster.txt``): only this package imports it.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dlplay.cluster.backend import RayBackend
    from dlplay.cluster.link import ClusterLink

ENV_RAY_ADDRESS = "DLPLAY_RAY_ADDRESS"


def ray_address() -> str | None:
    """``DLPLAY_RAY_ADDRESS`` (stripped), or None when runs stay in this process."""
    value = (os.environ.get(ENV_RAY_ADDRESS) or "").strip()
    return value or None


def link_from_env() -> ClusterLink | None:
    """This process's link to Ray (connecting from the first call on), or None without ``DLPLAY_RAY_ADDRESS``."""
    address = ray_address()
    if address is None:
        return None
    from dlplay.cluster.link import ClusterLink

    return ClusterLink.for_address(address)


def backend_from_env() -> RayBackend | None:
    """The run backend this process uses now: None for the in-process thread (the default, and whenever
    the Ray cluster could not be reached or its head was lost), the Ray backend (connected, its worker
    pool in place) when ``DLPLAY_RAY_ADDRESS`` is set and Ray answers."""
    link = link_from_env()
    return None if link is None else link.backend()
