"""Train page: the validation settings (share held out, early stopping), the run's label edits, and
what validation tells during a run (early stopping's outcome, the overfitting hint)."""
from __future__ import annotations

import streamlit as st

from dlplay.classify.earlystop import EarlyStopInfo
from dlplay.learn.hints import overfitting_hint
from dlplay.nn.spec import TrainConfig
from dlplay.run.metrics import MetricsSnapshot
from dlplay.ui import settings as ui_settings
from dlplay.ui.i18n import current_language, t
from dlplay.ui.training import ERROR_KEY, _guard


@_guard
def clear_edits() -> None:
    ui_settings.set_value("label_edits", "")


def settings(config: TrainConfig) -> None:
    """In the Train page's sidebar, under the seed."""
    ui_settings.widget("val_share", error_key=ERROR_KEY)  # no share: early stopping goes off with it
    ui_settings.widget("patience", error_key=ERROR_KEY, disabled=not config.val_share)
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
