"""Datasets loaded once per process and moved to the device once (shared by all sessions), and the
box that tells a learner where to put a dataset this machine lacks, with a "Check again" button."""
from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import streamlit as st
import torch

from dlplay.data import datasets as data
from dlplay.errors import UserError
from dlplay.ui.i18n import error_text, t

PROBLEM = "data_problem"  # the UserError of a dataset that could not be found or downloaded
NOTE = "data_problem_note"  # (level, text): what the last "Check again" found
MISSING_KEYS = ("data.not_found", "data.not_found_offline")


@st.cache_resource(show_spinner=False, max_entries=4)
def dataset_on(name: str, device: str) -> data.Dataset:
    """The dataset ``name`` as uint8 tensors on ``device``; raises UserError when it cannot be found.

    A failure is not cached (Streamlit caches only returned values): the next call looks again.
    """
    return data.load_dataset(name).to(torch.device(device))


def remember_problem(exc: UserError) -> bool:
    """Keep a missing-dataset error for :func:`show_data_problem`; False for any other error."""
    if exc.key not in MISSING_KEYS:
        return False
    st.session_state[PROBLEM] = exc
    st.session_state.pop(NOTE, None)
    return True


def check_again() -> None:
    """Button callback: look for the missing dataset again (and validate what is found), no restart."""
    exc = st.session_state.get(PROBLEM)
    if exc is None:
        return
    name = str(exc.params.get("name", data.DEFAULT_DATASET))
    title = data.get_info(name).title
    now = time.strftime("%H:%M:%S")
    found = data.check_dataset(name)
    if found.usable:
        st.session_state.pop(PROBLEM, None)
        st.session_state[NOTE] = ("success", t("data.found_now", title=title, where=found.where))
    elif found.found and found.problem is not None:  # found but not usable: always a problem
        st.session_state[NOTE] = ("error", t("data.found_unusable", time=now, where=found.where,
                                             reason=error_text(found.problem)))
    else:
        st.session_state[NOTE] = ("warning", t("data.still_missing", time=now, title=title))


def show_data_problem(key: str) -> bool:
    """What to do first, a "Check again" button, then the failed downloads folded away; False if no problem."""
    exc = st.session_state.get(PROBLEM)
    note = st.session_state.get(NOTE)
    if exc is None:
        if note is not None and note[0] == "success":
            st.success(st.session_state.pop(NOTE)[1], icon=":material/check_circle:")
        return False
    st.error(error_text(exc), icon=":material/folder_off:")
    st.button(t("data.check_again"), key=f"{key}_check_again", on_click=check_again, icon=":material/refresh:",
              help=t("data.check_again_help"))
    if note is not None:
        getattr(st, note[0])(note[1])
    attempts = [a for a in str(exc.params.get("reason", "")).split("; ") if a]
    if attempts:
        with st.expander(t("data.attempts", n=len(attempts))):
            st.markdown("\n".join(f"- `{a}`" for a in attempts))
    return True


def guarded_by(error_key: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """A decorator for widget callbacks: a UserError becomes a message in ``st.session_state[error_key]`` (in
    the page's language) instead of a crash; a missing dataset is remembered for its own box (show_data_problem),
    and the whole page is drawn again so that the box shows at once."""
    def decorate(fn: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> None:
            st.session_state[error_key] = None
            st.session_state.pop(PROBLEM, None)
            try:
                fn(*args, **kwargs)
            except UserError as exc:
                if not remember_problem(exc):
                    st.session_state[error_key] = error_text(exc)
                    return
                # the dataset's box is drawn outside the fragment a button may sit in (Train's Start): a click
                # there reruns only the fragment, and the box would appear only when the page is next opened
                st.rerun()
        return wrapper
    return decorate
