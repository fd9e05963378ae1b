"""Process-wide singletons shared by every browser session: the slot pool, the registry, the limits.

Streamlit runs each browser session's script in its own thread; ``st.cache_resource`` makes one
object per server process, which is what a class sharing one machine needs.
"""
from __future__ import annotations

import gc
import hmac
import os
import sys
import threading
import time

import streamlit as st
import torch

from dlplay.device import choose_device
from dlplay.server.guardrails import Limits
from dlplay.server.registry import BrowserSession, SessionRegistry
from dlplay.server.slots import SlotPool, max_runs_from_env, threads_per_run

ENV_HEARTBEAT = "DLPLAY_HEARTBEAT_S"
ENV_ADMIN_TOKEN = "DLPLAY_ADMIN_TOKEN"
DEFAULT_HEARTBEAT_S = 60.0  # a run whose page has not polled for this long stops itself
BROWSER_KEY = "_dlplay_browser"
SWITCH_INTERVAL_S = 0.001  # see configure_torch_threads
GC_MIN_INTERVAL_S = 10.0
GC_INTERVAL_S = 60.0  # a full collection at least this often (Streamlit's own after each rerun is off)
M_ARENA_MAX = -8  # glibc's mallopt parameter
MALLOC_ARENAS = 2


@st.cache_resource(show_spinner=False)
def slot_pool() -> SlotPool:
    """The server's limit on concurrent runs (``DLPLAY_MAX_RUNS``, else from the device)."""
    kind = choose_device().type
    limit = max_runs_from_env(kind)
    return SlotPool(limit, threads_per_run=threads_per_run(limit, kind))


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
    """Once per process: torch threads (``threads_per_run`` for every run and the server) and the GIL switch.

    A training thread gives up the GIL around every torch operation and must wait to get it back;
    while a page's script builds figures in pure Python, each wait lasted up to Python's default
    switch interval (5 ms), and training ran 4-5x slower (a "convoy"). With 1 ms the two share the
    interpreter about evenly (measured here: 15.4k img/s alone, 3.3k beside a busy Python thread
    at 5 ms, 7.6k at 1 ms).
    """
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    limit_malloc_arenas()
    n = slot_pool().threads_per_run or 1
    torch.set_num_threads(n)
    return n


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's per-thread malloc arenas (unless ``MALLOC_ARENA_MAX`` is set); True if applied.

    Every training run and every script run is a new thread, and glibc gives threads their own
    arenas, which keep freed memory: in bench/load.py the server's memory grew by about 30 MB per
    round of 3 tabs (479, 514, 547, 578 MB) and stayed; with 2 arenas it stayed flat (475, 471,
    477, 477 MB) at no measurable cost in speed.
    """
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, arenas) == 1
    except (OSError, AttributeError):  # not glibc
        return False


def heartbeat_timeout() -> float:
    """Seconds without a page poll after which a run stops itself (``DLPLAY_HEARTBEAT_S``, default 60)."""
    raw = (os.environ.get(ENV_HEARTBEAT) or "").strip()
    try:
        value = float(raw) if raw else DEFAULT_HEARTBEAT_S
    except ValueError:
        value = DEFAULT_HEARTBEAT_S
    return value if value > 0 else DEFAULT_HEARTBEAT_S


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


def keep_connected_runs_alive(reg: SessionRegistry) -> int:
    """Heartbeat every active run whose browser tab is still connected; returns how many.

    Pages beat while they poll, but a tab on a page that does not poll, or a browser too busy to
    poll on time (30 tabs on a small machine), is still open: the web server's connection says so.
    Once the tab closes, only the run's own timeout is left, and the run stops.
    """
    browsers = {b.id: b for b in reg.browsers()}
    beats = 0
    for entry in reg.runs(active_only=True):
        record = browsers.get(entry.browser_id)
        if record is not None and is_connected(record):
            entry.run.heartbeat()
            beats += 1
    return beats


@st.cache_resource(show_spinner=False)
def connection_keeper() -> threading.Thread:
    """One daemon thread per process: ``keep_connected_runs_alive`` every few seconds, and garbage
    collection: after the web server has forgotten closed tabs (at most every ``GC_MIN_INTERVAL_S``)
    and otherwise every ``GC_INTERVAL_S`` (~100 ms each with torch and plotly loaded)."""
    reg = registry()

    def loop() -> None:
        seen_forgotten, last_collect = 0, time.monotonic()
        while True:
            time.sleep(max(0.5, min(5.0, heartbeat_timeout() / 4)))
            try:
                keep_connected_runs_alive(reg)
                # a forgotten tab's runs can sit in reference cycles (callbacks that point back at
                # their run) until Python's cyclic collector happens to run; collect them now
                since = time.monotonic() - last_collect
                if (reg.forgotten > seen_forgotten and since > GC_MIN_INTERVAL_S) or since > GC_INTERVAL_S:
                    seen_forgotten, last_collect = reg.forgotten, time.monotonic()
                    gc.collect()
            except Exception:  # noqa: BLE001 - a missed beat is retried; the keeper must not die
                pass

    thread = threading.Thread(target=loop, name="dlplay-heartbeat", daemon=True)
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


def admin_token() -> str | None:
    """The admin page's token (``DLPLAY_ADMIN_TOKEN``); None, i.e. admin disabled, when unset or blank."""
    token = os.environ.get(ENV_ADMIN_TOKEN, "")
    return token if token.strip() else None


def token_matches(given: str, expected: str) -> bool:
    """Constant-time comparison, so the answer's timing does not reveal how much of a guess was right."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
