"""Train page: the validation settings (share held out, early stopping), the run's label edits, and
what validation tells during a run (early stopping's outcome, the overfitting hint)."""
from __future__ import annotations

import streamlit as st

from dlplay.earlystop import EarlyStopInfo
from dlplay.hints import overfitting_hint
from dlplay.metrics import MetricsSnapshot
from dlplay.spec import MAX_EPOCHS, TrainConfig
from dlplay.ui.i18n import current_language, t
from dlplay.ui.state import get_config, set_config
from dlplay.ui.training import _guard

SHARE_CHOICES = [0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5]


def _nearest_share(value: float) -> float:
    return min(SHARE_CHOICES, key=lambda c: abs(c - value))


def sync_widgets(config: TrainConfig) -> None:
    """Before the widgets are drawn: they show the current settings (a preset or a link changes them)."""
    values = {"tw_val": _nearest_share(config.val_share), "tw_patience": config.patience}
    for key, value in values.items():
        if st.session_state.get(key) != value:
            st.session_state[key] = value


@_guard
def on_change() -> None:
    s = st.session_state
    share = float(s["tw_val"])
    patience = int(s["tw_patience"]) if share else 0  # early stopping needs a validation split
    set_config(get_config().with_changes(val_share=share, patience=min(patience, MAX_EPOCHS)))
    s["tw_preset"] = "custom"


@_guard
def clear_edits() -> None:
    set_config(get_config().with_changes(label_edits=()))


def settings(config: TrainConfig) -> None:
    """In the Train page's sidebar, under the seed."""
    sync_widgets(config)
    st.select_slider(t("validation.share"), SHARE_CHOICES, key="tw_val", on_change=on_change,
                     format_func=lambda v: f"{v:.0%}", help=t("validation.share_help"))
    st.number_input(t("validation.patience"), 0, MAX_EPOCHS, key="tw_patience", on_change=on_change,
                    disabled=not config.val_share, help=t("validation.patience_help"))
    if config.label_edits:
        st.info(t("fixdata.settings_edits", n=len(config.label_edits)), icon=":material/edit_note:")
        st.button(t("fixdata.settings_clear"), key="tw_clear_edits", on_click=clear_edits)


def early_stop_text(info: EarlyStopInfo | None, epochs_done: int) -> str:
    """What early stopping did, or "" (not on, or nothing to say yet)."""
    if info is None or not info.best_epoch:
        return ""
    if info.stopped_at is not None:
        return t("validation.early_stopped", patience=info.patience, stopped=info.stopped_at,
                 best=info.best_epoch, loss=info.best_val_loss)
    if info.restored:
        return t("validation.early_kept", best=info.best_epoch, loss=info.best_val_loss, epochs=epochs_done)
    return t("validation.early_watching", best=info.best_epoch, loss=info.best_val_loss, patience=info.patience)


def notes(snap: MetricsSnapshot) -> None:
    """Under the progress: early stopping's outcome and the overfitting hint."""
    text = early_stop_text(snap.extras.get("early_stop"), len(snap.epochs))
    if text:
        with st.container(key="train_early_stop"):
            st.info(text, icon=":material/front_hand:")
    hint = overfitting_hint(snap.epochs)
    if hint is not None:
        with st.container(key="train_overfitting"):
            st.warning(hint.text(current_language()), icon=":material/trending_up:")
