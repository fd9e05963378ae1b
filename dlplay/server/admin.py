"""The server's policy, without Streamlit: environment settings (heartbeat, admin token), the admin
token check, the process's thread and allocator configuration, and the keeper's work (heartbeats for
connected tabs, garbage collection). ``dlplay/ui/server.py`` wires these into ``st.cache_resource``.
"""
from __future__ import annotations

import gc
import hmac
import os
import sys
import time
from collections.abc import Callable

import torch

from dlplay.server.registry import BrowserSession, SessionRegistry

ENV_HEARTBEAT = "DLPLAY_HEARTBEAT_S"
ENV_ADMIN_TOKEN = "DLPLAY_ADMIN_TOKEN"
DEFAULT_HEARTBEAT_S = 60.0  # a run whose page has not polled for this long stops itself
SWITCH_INTERVAL_S = 0.001  # see configure_threads
GC_MIN_INTERVAL_S = 10.0
GC_INTERVAL_S = 60.0  # a full collection at least this often (Streamlit's own after each rerun is off)
M_ARENA_MAX = -8  # glibc's mallopt parameter
MALLOC_ARENAS = 2


def configure_threads(threads_per_run: int | None) -> int:
    """Torch threads (``threads_per_run`` for every run and the server) and the GIL switch; returns the count.

    A training thread gives up the GIL around every torch operation and must wait to get it back;
    while a page's script builds figures in pure Python, each wait lasted up to Python's default
    switch interval (5 ms), and training ran 4-5x slower (a "convoy"). With 1 ms the two share the
    interpreter about evenly (measured here: 15.4k img/s alone, 3.3k beside a busy Python thread
    at 5 ms, 7.6k at 1 ms).
    """
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    limit_malloc_arenas()
    n = threads_per_run or 1
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


def keep_connected_runs_alive(reg: SessionRegistry, is_connected: Callable[[BrowserSession], bool | None]) -> int:
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


def keep_alive_forever(reg: SessionRegistry, is_connected: Callable[[BrowserSession], bool | None]) -> None:
    """The keeper thread's loop: ``keep_connected_runs_alive`` every few seconds, and garbage
    collection: after the web server has forgotten closed tabs (at most every ``GC_MIN_INTERVAL_S``)
    and otherwise every ``GC_INTERVAL_S`` (~100 ms each with torch and plotly loaded)."""
    seen_forgotten, last_collect = 0, time.monotonic()
    while True:
        time.sleep(max(0.5, min(5.0, heartbeat_timeout() / 4)))
        try:
            keep_connected_runs_alive(reg, is_connected)
            # a forgotten tab's runs can sit in reference cycles (callbacks that point back at
            # their run) until Python's cyclic collector happens to run; collect them now
            since = time.monotonic() - last_collect
            if (reg.forgotten > seen_forgotten and since > GC_MIN_INTERVAL_S) or since > GC_INTERVAL_S:
                seen_forgotten, last_collect = reg.forgotten, time.monotonic()
                gc.collect()
        except Exception:  # noqa: BLE001 - a missed beat is retried; the keeper must not die
            pass


def admin_token() -> str | None:
    """The admin page's token (``DLPLAY_ADMIN_TOKEN``); None, i.e. admin disabled, when unset or blank."""
    token = os.environ.get(ENV_ADMIN_TOKEN, "")
    return token if token.strip() else None


def token_matches(given: str, expected: str) -> bool:
    """Constant-time comparison, so the answer's timing does not reveal how much of a guess was right."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
