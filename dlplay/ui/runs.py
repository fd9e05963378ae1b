"""Runs page helpers: run names, the comparison tables, the selection, and the buttons' callbacks.

The run history itself, and recording every run into it, belong to :mod:`dlplay.ui.state`.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dlplay.classify.runs import (
    RunRecord,
    RunStore,
    architecture_label,
    differing_fields,
    result_fields,
    run_fields,
    with_label,
)
from dlplay.ui.i18n import t
from dlplay.ui.state import run_history, set_config, set_spec

SELECTED, SEEN, MESSAGE = "runs_selected", "runs_seen", "runs_message"
DISK_MESSAGE = "runs_disk_message"  # a message of the "Saved runs" box's buttons, shown under the box
METRICS = ("test_acc", "test_loss", "train_acc", "train_loss", "step_loss")
DEFAULT_SELECTION = 3


def run_name(number: int, record: RunRecord) -> str:
    """``#3 first try · 784-128-10 · adam 0.001 · 95.1%``"""
    parts = [f"#{number}"]
    if record.label:
        parts.append(record.label)
    parts.append(architecture_label(record.spec))
    parts.append(f"{t(f'runs.optimizer_{record.config.optimizer}')} {record.config.lr:g}")
    if record.test_acc is not None:
        parts.append(f"{record.test_acc:.1%}")
    if record.status != "done":
        parts.append(t(f"runs.status_{record.status}"))
    return f"{parts[0]} " + " · ".join(parts[1:])


def run_names(records: list[RunRecord]) -> dict[str, str]:
    """Every run's name by id, numbered in the history's order."""
    return {r.run_id: run_name(i + 1, r) for i, r in enumerate(records)}


def keep_selection(ids: list[str]) -> None:
    """Before the picker is drawn: drop runs that are gone, add the ones that appeared since the last visit."""
    seen = st.session_state.get(SEEN)
    selection = [i for i in st.session_state.get(SELECTED, ids[-DEFAULT_SELECTION:]) if i in ids]
    if seen is not None:
        selection += [i for i in ids if i not in seen and i not in selection]
    st.session_state[SEEN] = set(ids)
    st.session_state[SELECTED] = selection


def localized_fields(record: RunRecord) -> dict[str, str]:
    """run_fields with the named choices (initialisation, optimizer) in the page's language."""
    fields = run_fields(record)
    fields["init"] = t(f"runs.init_{record.spec.init}")
    fields["optimizer"] = t(f"runs.optimizer_{record.config.optimizer}")
    fields["schedule"] = t(f"train.sched_{record.config.schedule}")
    if record.engine:
        fields["engine"] = t("runs.engine_dense") if record.engine == "dense" else t("runs.engine_autograd")
    return fields


def settings_table(chosen: list[RunRecord], names: list[str], show_all: bool) -> pd.DataFrame | None:
    """The settings of the chosen runs, one column each: all of them, or those that differ (None: none do)."""
    settings = [localized_fields(r) for r in chosen]
    rows = list(settings[0]) if show_all or len(chosen) == 1 else differing_fields(chosen)
    if not rows:
        return None
    return pd.DataFrame({name: [s[f] for f in rows] for name, s in zip(names, settings)},
                        index=[t(f"runs.field_{f}") for f in rows])


def results_table(chosen: list[RunRecord], names: list[str]) -> pd.DataFrame:
    """What each chosen run reached, one column each."""
    results = [result_fields(r) for r in chosen]
    for res in results:
        res["status"] = t(f"runs.status_{res['status']}")
    return pd.DataFrame({name: list(res.values()) for name, res in zip(names, results)},
                        index=[t(f"runs.result_{f}") for f in results[0]])


def show_message(key: str = MESSAGE) -> None:
    """The message a button's callback left under ``key``, shown once where that button is."""
    message = st.session_state.pop(key, None)
    if message:
        getattr(st, message[0])(message[1])


# ------------------------------------------------------------------ button callbacks
def save_all() -> None:
    records = run_history().records()
    try:
        for record in records:
            RunStore().save(record)
        st.session_state[DISK_MESSAGE] = ("success", t("runs.saved_all", n=len(records)))
    except OSError as exc:
        st.session_state[DISK_MESSAGE] = ("error", t("runs.save_failed", error=str(exc)))


def load_saved() -> None:
    history = run_history()
    loaded, bad = RunStore().load_all()
    for record in loaded:
        if history.get(record.run_id) is None:
            history.add(record)
    text = t("runs.loaded", n=len(loaded)) + (" " + t("runs.bad_files", n=bad) if bad else "")
    st.session_state[DISK_MESSAGE] = ("warning" if bad else "success", text)


def rename(run_id: str, label_key: str) -> None:
    history = run_history()
    record = history.get(run_id)
    if record is not None:
        history.add(with_label(record, st.session_state.get(label_key, "")))


def use_settings(run_id: str, name: str) -> None:
    record = run_history().get(run_id)
    if record is not None:
        set_spec(record.spec)
        set_config(record.config)
        st.session_state[MESSAGE] = ("success", t("runs.used", name=name))


def save(run_id: str, name: str) -> None:
    record = run_history().get(run_id)
    if record is None:  # removed meanwhile: nothing to save
        return
    try:
        path = RunStore().save(record)
        st.session_state[MESSAGE] = ("success", t("runs.saved", name=name, path=str(path)))
    except OSError as exc:
        st.session_state[MESSAGE] = ("error", t("runs.save_failed", error=str(exc)))


def unsave(run_id: str, name: str) -> None:
    RunStore().delete(run_id)
    st.session_state[MESSAGE] = ("success", t("runs.unsaved", name=name))


def remove(run_id: str) -> None:
    run_history().remove(run_id)
