"""The browser session's run history and loading checkpoints into it (Evaluate and Runs pages)."""
from __future__ import annotations

import dataclasses

import streamlit as st

from dlplay.checkpoint import Checkpoint, load_into_session, usable_config
from dlplay.runs import RunHistory, RunRecord, RunRecorder, record_from_session
from dlplay.train import FINISHED, TrainingSession

# dlplay.ui.state is imported inside the functions below, so that state.py may import run_recorder.

HISTORY = "run_history"
RECORDED = "run_recorded_for"  # (session, run_id) of a run recorded here, not by a RunRecorder


def run_history() -> RunHistory:
    """This browser session's runs (created on first use)."""
    history = st.session_state.get(HISTORY)
    if history is None:
        history = st.session_state[HISTORY] = RunHistory()
    return history


def run_recorder() -> RunRecorder:
    """A TrainingSession callback that adds the run to this browser session's history when it ends."""
    return RunRecorder(run_history())


def recorder_of(session: TrainingSession) -> RunRecorder | None:
    return next((cb for cb in session.callbacks if isinstance(cb, RunRecorder)), None)


def current_run_record(session: TrainingSession) -> RunRecord | None:
    """The history's record of ``session`` if it has one."""
    recorder = recorder_of(session)
    if recorder is not None and recorder.record is not None:
        return recorder.record
    mark = st.session_state.get(RECORDED)
    if mark is not None and mark[0] is session:
        return run_history().get(mark[1])
    return None


def ensure_current_recorded() -> None:
    """Record the current run if it has finished and no RunRecorder is attached to do it."""
    from dlplay.ui.state import current_session

    session = current_session()
    if session is None or session.status not in FINISHED or recorder_of(session) is not None:
        return
    mark = st.session_state.get(RECORDED)
    if mark is not None and mark[0] is session:
        return
    record = record_from_session(session)
    if record is not None:
        run_history().add(record)
        st.session_state[RECORDED] = (session, record.run_id)


def adopt_checkpoint(ckpt: Checkpoint) -> TrainingSession:
    """Make a loaded checkpoint the current model: a finished TrainingSession with its weights.

    The session is created like any run (the server's guardrails apply, so a checkpoint cannot
    bring in a model the server would not train); it is marked done and can be trained further.
    """
    from dlplay.ui import state

    config = usable_config(ckpt.config)
    session = state.create_session(ckpt.spec, config, callbacks=[run_recorder()])
    old = st.session_state.get(state.SESSION)  # not current_session(): no init_state() inside a callback
    if old is not None:
        old.stop()
    load_into_session(session, ckpt)
    state.set_spec(ckpt.spec)
    state.set_config(session.config)
    st.session_state[state.SESSION] = session
    if ckpt.run is not None:
        record = dataclasses.replace(ckpt.run, source="checkpoint")
        run_history().add(record)
        st.session_state[RECORDED] = (session, record.run_id)
    return session
