"""State the page exposes for automation: a counter of the session's full script runs, in a hidden element.

A browser test reads it before an action and waits until it has moved on (and the app is idle again)
instead of sleeping: ``tests/e2e_util.py``'s ``rerun_after``. Fragment reruns (the live charts) do not move it.
"""
from __future__ import annotations

import streamlit as st

COUNTER = "dl_script_runs"
CSS_CLASS = "dl-script-runs"


def mark_script_run() -> int:
    """Count this script run and show the count in a hidden element of the sidebar; returns it."""
    count = int(st.session_state.get(COUNTER, 0)) + 1
    st.session_state[COUNTER] = count
    st.sidebar.html(f'<span class="{CSS_CLASS}" data-n="{count}" hidden></span>')
    return count
