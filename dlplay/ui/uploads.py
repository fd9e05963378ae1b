"""Upload boxes that say in words what they take and what they refused.

Streamlit's browser side refuses a file over the server's upload limit (``server.maxUploadSize``) or of
a type the widget does not list before the server ever sees it: the file gets a red "!" chip whose
reason (English only) is hidden, and the widget's value stays the *previous* file, so everything below
still describes that one. dlplay's uploaders therefore list no types (the page checks the content and
says what it accepts) and are drawn inside :func:`upload_box`: while the box holds a refused file, CSS
shows the page's own message, in the page's language, and hides what described the previous file.
"""
from __future__ import annotations

import html
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

REFUSED_CHIP = "[data-testid=stFileChip][aria-invalid=true]"


def server_limit_mb() -> int:
    """The largest file the server takes at all (``server.maxUploadSize``, MB)."""
    return int(st.get_option("server.maxUploadSize"))


def refused_html(box: str, message: str, stale: tuple[str, ...] = ()) -> str:
    """The refusal message (shown by CSS only while the box holds a refused file; ``stale``: keys of
    containers anywhere on the page, hidden meanwhile). Plain HTML, not ``st.error``: it is there on
    every run, and only the browser knows whether it applies."""
    hidden = ", ".join(f"[data-testid=stMain]:has(.st-key-{box} {REFUSED_CHIP}) .st-key-{key}" for key in stale)
    rules = [
        f".dl-refused-{box} {{display: none; padding: 0.75rem 1rem; border-radius: 0.5rem;"
        " background: rgba(255, 43, 43, 0.09); color: rgb(125, 53, 59); margin-top: 0.25rem;}",
        f".st-key-{box}:has({REFUSED_CHIP}) .dl-refused-{box} {{display: block;}}",
        *([f"{hidden} {{display: none;}}"] if stale else []),
    ]
    return (f"<style>{' '.join(rules)}</style>"
            f'<div class="dl-refused dl-refused-{box}" role="alert">{html.escape(message)}</div>')


@contextmanager
def upload_box(box: str, refused: str, stale: tuple[str, ...] = ()) -> Iterator[None]:
    """A keyed container for one uploader: ``refused`` (the page's words for a file the browser refused)
    shows while a refused file is in it; the containers keyed ``stale`` are hidden meanwhile."""
    with st.container(key=box):
        yield
        st.html(refused_html(box, refused, stale))
