"""Per-browser-session state: the model being designed, the training settings, the current run."""
from __future__ import annotations

import streamlit as st

from dlplay.device import choose_device
from dlplay.guardrails import check_run, free_memory_bytes, limit_train_size
from dlplay.presets import DEFAULT_PRESET, PRESETS
from dlplay.probe import DEFAULT_EVERY, Probe, probe_of
from dlplay.spec import ModelSpec, TrainConfig
from dlplay.train import ACTIVE, TrainingSession
from dlplay.ui import server
from dlplay.ui.data import dataset_on
from dlplay.ui.runs import run_recorder

SPEC, CONFIG, SESSION = "spec", "config", "train_session"
PROBE_EVERY = "probe_every"  # steps between measurements of the layers, for this browser session
HEARTBEAT_TIMEOUT_S = server.DEFAULT_HEARTBEAT_S  # new_session uses server.heartbeat_timeout() (env DLPLAY_HEARTBEAT_S)


@st.cache_resource
def _configure_torch_threads() -> int:
    """Once per process: torch threads per run from the server's slot pool (see dlplay/slots.py)."""
    return server.configure_torch_threads()


def _leave_automatic_multipage_mode() -> None:
    """A page opened by URL before any session ran app.py runs without it (Streamlit's pages/-folder
    mode, which only app.py's st.navigation switches off): switch it off here and rerun through app.py."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        if not _in_widget_callback():  # st.rerun() in a callback would abort the callback
            st.rerun()


def _in_widget_callback() -> bool:
    from streamlit.runtime.scriptrunner_utils.script_run_context import RunLocation, ThreadState

    return ThreadState.get().run_location == RunLocation.CALLBACK


def init_state() -> None:
    _leave_automatic_multipage_mode()
    _configure_torch_threads()
    server.browser_session()
    preset = PRESETS[DEFAULT_PRESET]
    st.session_state.setdefault(SPEC, preset.spec)
    st.session_state.setdefault(CONFIG, preset.config)
    st.session_state.setdefault(SESSION, None)
    if st.session_state[SESSION] is not None:
        st.session_state[SESSION].heartbeat()  # any script run of any page shows the tab is still open


def get_spec() -> ModelSpec:
    init_state()
    return st.session_state[SPEC]


def get_config() -> TrainConfig:
    init_state()
    return st.session_state[CONFIG]


def set_spec(spec: ModelSpec) -> None:
    st.session_state[SPEC] = spec


def set_config(config: TrainConfig) -> None:
    st.session_state[CONFIG] = config


def current_session() -> TrainingSession | None:
    init_state()
    return st.session_state[SESSION]


def is_active(session: TrainingSession | None) -> bool:
    return session is not None and session.status in ACTIVE


def spec_differs_from_run() -> bool:
    """True when the designed architecture is not the one the current run trains (a reset is needed)."""
    session = current_session()
    return session is not None and session.spec != get_spec()


def probe_every() -> int:
    """Steps between two measurements of the layers (the Dynamics page sets it)."""
    return int(st.session_state.get(PROBE_EVERY, DEFAULT_EVERY))


def set_probe_every(every: int) -> None:
    """For the next runs and, at once, for the current run's probe."""
    st.session_state[PROBE_EVERY] = int(every)
    session = current_session()
    probe = probe_of(session.callbacks) if session is not None else None
    if probe is not None:
        probe.set_every(every)


def create_session(spec: ModelSpec, config: TrainConfig, **kwargs) -> TrainingSession:
    """A run under the server's rules: guardrails (UserError), the shared slot pool, the heartbeat, the registry.

    The training-set limit may shorten ``config.train_size``; the shortened config is the session's.
    """
    device = choose_device(config.device)
    dataset = dataset_on(config.dataset, str(device))
    limits = server.limits()
    config = limit_train_size(config, len(dataset.train_labels), limits)
    check_run(spec, config, limits, train_available=len(dataset.train_labels), free_bytes=free_memory_bytes(device))
    kwargs.setdefault("heartbeat_timeout", server.heartbeat_timeout())
    callbacks = list(kwargs.pop("callbacks", ()))
    if probe_of(callbacks) is None:
        callbacks.append(Probe(every=probe_every()))  # every run, quick ones from Draw/Inside too: the Dynamics page
    kwargs["callbacks"] = callbacks
    session = TrainingSession(spec, config, dataset, device, slot_pool=server.slot_pool(), **kwargs)
    server.registry().add_run(server.browser_session(), session)
    return session


def new_session() -> TrainingSession:
    """Stop any current run and create a fresh one from the session's spec and config (not started).

    A guardrail refusal raises UserError before the current run is touched.
    """
    config = get_config()
    # the run goes into the Runs page's history; the probe feeds the Dynamics page
    session = create_session(get_spec(), config, callbacks=[run_recorder()])
    if session.config != config:
        set_config(session.config)  # the server's training-set limit applied
    old = current_session()
    if old is not None:
        old.stop()
    st.session_state[SESSION] = session
    return session


def reset_session() -> None:
    old = current_session()
    if old is not None:
        old.stop()
    st.session_state[SESSION] = None


def heartbeat() -> None:
    server.browser_session()
    session = current_session()
    if session is not None:
        session.heartbeat()
