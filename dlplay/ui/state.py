"""Per-browser-session state: the model being designed, the training settings, the current run."""
from __future__ import annotations

import time

import streamlit as st
import torch

from dlplay.device import choose_device, serving_threads
from dlplay.errors import UserError
from dlplay.presets import DEFAULT_PRESET, PRESETS
from dlplay.spec import ModelSpec, TrainConfig
from dlplay.train import ACTIVE, TrainingSession
from dlplay.ui.data import dataset_on

SPEC, CONFIG, SESSION = "spec", "config", "train_session"
HEARTBEAT_TIMEOUT_S = 60.0  # a run whose page has not polled for this long stops itself


@st.cache_resource
def _configure_torch_threads() -> int:
    """Once per process: leave a core for the web server (two threads per run on two cores collapses)."""
    n = serving_threads()
    torch.set_num_threads(n)
    return n


def init_state() -> None:
    _configure_torch_threads()
    preset = PRESETS[DEFAULT_PRESET]
    st.session_state.setdefault(SPEC, preset.spec)
    st.session_state.setdefault(CONFIG, preset.config)
    st.session_state.setdefault(SESSION, None)


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


def new_session() -> TrainingSession:
    """Stop any current run and create a fresh one from the session's spec and config (not started)."""
    old = current_session()
    if old is not None:
        old.stop()
    config = get_config()
    device = choose_device(config.device)
    dataset = dataset_on(config.dataset, str(device))
    session = TrainingSession(get_spec(), config, dataset, device, heartbeat_timeout=HEARTBEAT_TIMEOUT_S)
    st.session_state[SESSION] = session
    return session


def reset_session() -> None:
    old = current_session()
    if old is not None:
        old.stop()
    st.session_state[SESSION] = None


def heartbeat() -> None:
    session = current_session()
    if session is not None:
        session.heartbeat()
