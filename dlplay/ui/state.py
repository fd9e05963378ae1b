"""Per-browser-session state: the model being designed, the training settings, the run history and
the current run.

This module owns a run's whole life: :func:`replace_run` (and :func:`new_session` on top of it)
creates one under the server's rules and makes it current, :func:`adopt_checkpoint` makes a loaded
checkpoint the current run, :func:`reset_session` ends it. Every run it creates is recorded in the
run history when it ends. Pages and the other ``dlplay/ui`` helpers see a run only as a
:class:`~dlplay.classify.handle.RunHandle`.

``init_state()`` (at the top of every page) fills in the defaults and may rerun the script; the
getters below only read.
"""
from __future__ import annotations

import dataclasses

import streamlit as st

from dlplay.classify.checkpoint import Checkpoint, load_into_session, usable_config
from dlplay.classify.fork import ForkPlan, ResumeState, SnapshotKeeper
from dlplay.classify.handle import RunHandle
from dlplay.classify.pins import Pins
from dlplay.classify.probe import DEFAULT_EVERY, Probe
from dlplay.classify.runs import RunHistory, RunRecord, RunRecorder
from dlplay.classify.train import TrainingSession
from dlplay.errors import UserError
from dlplay.nn.presets import DEFAULT_PRESET, PRESETS
from dlplay.nn.spec import ModelSpec, TrainConfig
from dlplay.run.device import choose_device
from dlplay.run.status import ACTIVE
from dlplay.server.admin import heartbeat_timeout
from dlplay.server.guardrails import check_run, free_memory_bytes, limit_train_size
from dlplay.ui import server
from dlplay.ui.data import dataset_on

SPEC, CONFIG, SESSION = "spec", "config", "train_session"
HISTORY = "run_history"
PROBE_EVERY = "probe_every"  # steps between measurements of the layers, for this browser session
PINS = "pins"  # (uint8 images [n, H, W], labels [n]) the learner follows through training (dlplay/classify/pins.py)


@st.cache_resource
def _configure_torch_threads() -> int:
    """Once per process: torch threads per run from the server's slot pool (see dlplay/server/slots.py)."""
    return server.configure_torch_threads()


def init_state() -> None:
    """At the top of every page: defaults in place, the server set up, the current run's heartbeat."""
    _configure_torch_threads()
    server.browser_session()
    preset = PRESETS[DEFAULT_PRESET]
    st.session_state.setdefault(SPEC, preset.spec)
    st.session_state.setdefault(CONFIG, preset.config)
    st.session_state.setdefault(SESSION, None)
    if st.session_state[SESSION] is not None:
        st.session_state[SESSION].heartbeat()  # any script run of any page shows the tab is still open


# ------------------------------------------------------------------ reads (no side effects)
def get_spec() -> ModelSpec:
    spec = st.session_state.get(SPEC)
    return PRESETS[DEFAULT_PRESET].spec if spec is None else spec


def get_config() -> TrainConfig:
    config = st.session_state.get(CONFIG)
    return PRESETS[DEFAULT_PRESET].config if config is None else config


def current_session() -> RunHandle | None:
    """The current run, if there is one."""
    return st.session_state.get(SESSION)


def is_active(session: RunHandle | None) -> bool:
    return session is not None and session.status in ACTIVE


def probe_every() -> int:
    """Steps between two measurements of the layers (the Dynamics page sets it)."""
    return int(st.session_state.get(PROBE_EVERY, DEFAULT_EVERY))


def run_history() -> RunHistory:
    """This browser session's runs. The history object is created once and kept: a run's recorder,
    in the training thread, adds to the same object the pages read."""
    history = st.session_state.get(HISTORY)
    if history is None:
        history = st.session_state[HISTORY] = RunHistory()
    return history


def current_run_record(session: RunHandle) -> RunRecord | None:
    """The history's record of ``session`` (a finished run, or one adopted from a checkpoint)."""
    history = st.session_state.get(HISTORY)
    return history.get(session.run_id) if history is not None else None


# ------------------------------------------------------------------ writes
def set_spec(spec: ModelSpec) -> None:
    st.session_state[SPEC] = spec


def set_config(config: TrainConfig) -> None:
    st.session_state[CONFIG] = config


def set_probe_every(every: int) -> None:
    """For the next runs and, at once, for the current run."""
    st.session_state[PROBE_EVERY] = int(every)
    session = current_session()
    if session is not None:
        session.set_probe_every(every)


def heartbeat() -> None:
    server.browser_session()
    session = current_session()
    if session is not None:
        session.heartbeat()


# ------------------------------------------------------------------ a run's life
def pinned():
    """(uint8 images [n, H, W], labels [n]) pinned in this browser session, or None."""
    return st.session_state.get(PINS)


def set_pinned(images, labels) -> None:
    """Pin these images (numpy; None or none: unpin all) for the next runs and, at once, the current run."""
    pins = None if images is None or len(images) == 0 else (images, labels)
    session = current_session()
    if session is not None:
        session.set_pins(*(pins or (None, None)))  # a UserError (bad shape) leaves the pins as they were
    st.session_state[PINS] = pins


def _create_run(spec: ModelSpec, config: TrainConfig, probe_steps: int | None = None,
                start_from: ResumeState | None = None, *, checkpoint: Checkpoint | None = None) -> RunHandle:
    """The one place a run is made, under the server's rules: guardrails (UserError), the shared slot
    pool, the heartbeat, the registry; a probe for the Dynamics page, a recorder for the run history,
    snapshots to fork it from (dlplay/classify/fork.py) and the pinned images (dlplay/classify/pins.py).

    The training-set limit may shorten ``config.train_size``; the shortened config is the run's.
    ``start_from``: a fork's start (its training set must stay as it was).
    ``checkpoint``: the run starts finished, with the checkpoint's weights and history.
    With ``DLPLAY_RAY_ADDRESS`` set the run trains in a Ray worker (dlplay/cluster); else here.
    """
    backend = server.run_backend()
    if backend is not None:
        session: RunHandle = backend.create_run(spec, config, limits=server.limits(),
                                                heartbeat_timeout=heartbeat_timeout(),
                                                probe_every=probe_steps or probe_every(),
                                                callbacks=[RunRecorder(run_history())],
                                                checkpoint=checkpoint, start_from=start_from)
        server.registry().add_run(server.browser_session(), session)
        return session
    device = choose_device(config.device)
    dataset = dataset_on(config.dataset, str(device))
    limits = server.limits()
    limited = limit_train_size(config, len(dataset.train_labels), limits)
    if start_from is not None and limited != config:
        raise UserError("fork.limits_changed")
    config = limited
    check_run(spec, config, limits, train_available=len(dataset.train_labels), free_bytes=free_memory_bytes(device))
    pins = pinned()
    callbacks = [RunRecorder(run_history()), Probe(every=probe_steps or probe_every()), SnapshotKeeper(),
                 Pins(*pins) if pins is not None else Pins()]
    session = TrainingSession(spec, config, dataset, device, slot_pool=server.local_slot_pool(), callbacks=callbacks,
                               heartbeat_timeout=heartbeat_timeout(), start_from=start_from)
    if checkpoint is not None:
        load_into_session(session, checkpoint)
    server.registry().add_run(server.browser_session(), session)
    return session


def _make_current(session: RunHandle | None) -> None:
    """``session`` becomes the current run; the one it replaces stops."""
    old = st.session_state.get(SESSION)
    if old is not None and old is not session:
        old.stop()
    st.session_state[SESSION] = session


def replace_run(spec: ModelSpec, config: TrainConfig) -> RunHandle:
    """A new run (not started) replaces the current one, which stops.

    A guardrail refusal raises UserError before the current run is touched.
    """
    session = _create_run(spec, config)
    _make_current(session)
    return session


def start_side_run(spec: ModelSpec, config: TrainConfig, probe_steps: int | None = None) -> RunHandle:
    """A run that is not the current one (the Guess page's experiments), made under the same rules as
    every run (guardrails, slots, heartbeat, registry, run history) and started; the current run is
    left alone. The caller keeps the handle and touches its heartbeat while it shows it."""
    session = _create_run(spec, config, probe_steps)
    session.start()
    return session


def new_session() -> RunHandle:
    """A fresh run from the session's spec and config replaces the current one (not started)."""
    config = get_config()
    session = replace_run(get_spec(), config)
    if session.config != config:
        set_config(session.config)  # the server's training-set limit applied
    return session


def adopt_checkpoint(ckpt: Checkpoint) -> RunHandle:
    """A loaded checkpoint becomes the current run: finished, with its weights and its history.

    It is created like any run (the server's guardrails apply, so a checkpoint cannot bring in a
    model the server would not train); the designed spec and settings become the checkpoint's.
    """
    session = _create_run(ckpt.spec, usable_config(ckpt.config), checkpoint=ckpt)
    _make_current(session)
    set_spec(ckpt.spec)
    set_config(session.config)
    if ckpt.run is not None:
        run_history().add(dataclasses.replace(ckpt.run, run_id=session.run_id, source="checkpoint"))
    return session


def fork_run(plan: ForkPlan) -> RunHandle:
    """A fork of a run (dlplay/classify/fork.py) replaces the current run (not started); its spec and settings
    become the session's. A guardrail refusal raises UserError before the current run is touched."""
    session = _create_run(plan.spec, plan.config, start_from=plan.start)
    _make_current(session)
    set_spec(plan.spec)
    set_config(session.config)
    return session


def reset_session() -> None:
    """End the current run (it stops); there is none afterwards."""
    _make_current(None)
