"""Process-wide singletons shared by every browser session: the slot pool, the registry, the limits.

Streamlit runs each browser session's script in its own thread; ``st.cache_resource`` makes one
object per server process, which is what a class sharing one machine needs. The policy itself (env
settings, the admin token, thread configuration, the keeper's loop) is in :mod:`dlplay.server.admin`.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import streamlit as st

from dlplay.cluster import backend_from_env
from dlplay.run.device import choose_device
from dlplay.server.admin import configure_threads, keep_alive_forever
from dlplay.server.guardrails import Limits
from dlplay.server.registry import BrowserSession, SessionRegistry
from dlplay.server.slots import SlotPool, max_runs_from_env, threads_per_run

if TYPE_CHECKING:
    from dlplay.cluster.backend import ClusterSlots, RayBackend

BROWSER_KEY = "_dlplay_browser"


def run_backend() -> RayBackend | None:
    """Where runs train now: None for threads in this process (the default), the Ray backend when
    ``DLPLAY_RAY_ADDRESS`` is set and its cluster answers (see dlplay/cluster; once the connection
    failed or the head was lost, None again: runs fall back to this process)."""
    return backend_from_env()


@st.cache_resource(show_spinner=False)
def local_slot_pool() -> SlotPool:
    """The limit on runs training in this process (``DLPLAY_MAX_RUNS``, else from the device)."""
    kind = choose_device().type
    limit = max_runs_from_env(kind)
    return SlotPool(limit, threads_per_run=threads_per_run(limit, kind))


def slot_pool() -> SlotPool | ClusterSlots:
    """The server's limit on concurrent runs: this process's, or with the Ray backend the cluster-wide
    limit that every app process shares."""
    backend = run_backend()
    return backend.slots if backend is not None else local_slot_pool()


@st.cache_resource(show_spinner=False)
def registry() -> SessionRegistry:
    """Every browser session and run of this server process (weak references)."""
    return SessionRegistry()


@st.cache_resource(show_spinner=False)
def limits() -> Limits:
    """Per-run limits from ``DLPLAY_MAX_*`` environment variables (read once per process)."""
    return Limits.from_env()


@st.cache_resource(show_spinner=False)
def configure_torch_threads() -> int:
    """Once per process: torch threads and the GIL switch (see :func:`dlplay.server.admin.configure_threads`)."""
    return configure_threads(slot_pool().threads_per_run)


def _client_id() -> str:
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        return ctx.session_id if ctx is not None else ""
    except Exception:  # noqa: BLE001 - an id is only used to tell whether the tab is connected
        return ""


def browser_session() -> BrowserSession:
    """This browser session's record in the registry (created on its first script run), marked as seen."""
    record = st.session_state.get(BROWSER_KEY)
    if not isinstance(record, BrowserSession):
        record = registry().open_browser(_client_id())
        st.session_state[BROWSER_KEY] = record
        connection_keeper()
    record.touch()
    return record


@st.cache_resource(show_spinner=False)
def connection_keeper() -> threading.Thread:
    """One daemon thread per process: heartbeats for connected tabs' runs, and garbage collection
    (:func:`dlplay.server.admin.keep_alive_forever`)."""
    thread = threading.Thread(target=keep_alive_forever, args=(registry(), is_connected), name="dlplay-heartbeat",
                              daemon=True)
    thread.start()
    return thread


def is_connected(record: BrowserSession) -> bool | None:
    """Whether the tab still has a live connection (None when the server cannot tell, e.g. in tests)."""
    try:
        from streamlit.runtime import Runtime

        if not record.client_id or not Runtime.exists():
            return None
        answer = Runtime.instance().is_active_session(record.client_id)
        return answer if isinstance(answer, bool) else None
    except Exception:  # noqa: BLE001
        return None
