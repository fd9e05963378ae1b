"""Runs: every run of this browser session; overlay their curves, see what differed, keep them on disk."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dlplay.figures_eval import compare_figure
from dlplay.runs import (
    RunRecord,
    RunStore,
    architecture_label,
    differing_fields,
    disk_enabled,
    result_fields,
    run_fields,
    with_label,
)
from dlplay.ui.i18n import current_language, t
from dlplay.ui.runs import ensure_current_recorded, run_history
from dlplay.ui.state import heartbeat, init_state, set_config, set_spec

SELECTED, SEEN, MESSAGE = "runs_selected", "runs_seen", "runs_message"
METRICS = ("test_acc", "test_loss", "train_acc", "train_loss", "step_loss")
DEFAULT_SELECTION = 3

init_state()
heartbeat()
ensure_current_recorded()
lang = current_language()
history = run_history()
st.title(t("runs.title"))
st.caption(t("runs.intro"))


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


def disk_section(records: list[RunRecord]) -> None:
    if not disk_enabled():
        st.caption(t("runs.disk_off"))
        return
    store = RunStore()
    saved = store.saved_ids()
    with st.expander(t("runs.disk_title", n=len(saved)), icon=":material/hard_drive:"):
        st.caption(t("runs.disk_folder", folder=str(store.folder)))
        c1, c2 = st.columns(2)
        c1.button(t("runs.save_all"), key="runs_save_all", disabled=not records, on_click=save_all)
        c2.button(t("runs.load_saved"), key="runs_load_saved", disabled=not saved, on_click=load_saved)
        message = st.session_state.pop(MESSAGE, None)
        if message:
            getattr(st, message[0])(message[1])


def save_all() -> None:
    records = history.records()
    try:
        for record in records:
            RunStore().save(record)
        st.session_state[MESSAGE] = ("success", t("runs.saved_all", n=len(records)))
    except OSError as exc:
        st.session_state[MESSAGE] = ("error", t("runs.save_failed", error=str(exc)))


def load_saved() -> None:
    loaded, bad = RunStore().load_all()
    for record in loaded:
        if history.get(record.run_id) is None:
            history.add(record)
    text = t("runs.loaded", n=len(loaded)) + (" " + t("runs.bad_files", n=bad) if bad else "")
    st.session_state[MESSAGE] = ("warning" if bad else "success", text)


def localized_fields(record: RunRecord) -> dict[str, str]:
    """run_fields with the named choices (initialisation, optimizer) in the page's language."""
    fields = run_fields(record)
    fields["init"] = t(f"runs.init_{record.spec.init}")
    fields["optimizer"] = t(f"runs.optimizer_{record.config.optimizer}")
    fields["schedule"] = t(f"train.sched_{record.config.schedule}")
    if record.engine:
        fields["engine"] = t("runs.engine_dense") if record.engine == "dense" else t("runs.engine_autograd")
    return fields


def comparison(chosen: list[RunRecord], names: list[str]) -> None:
    metric = st.segmented_control(t("runs.metric"), METRICS, default="test_acc", key="runs_metric",
                                  format_func=lambda m: t(f"runs.metric_{m}")) or "test_acc"
    st.plotly_chart(compare_figure(chosen, names, metric, lang), key="runs_compare_fig")
    st.subheader(t("runs.diff_title"))
    show_all = st.toggle(t("runs.show_all"), key="runs_show_all")
    settings = [localized_fields(r) for r in chosen]
    rows = list(settings[0]) if show_all or len(chosen) == 1 else differing_fields(chosen)
    if rows:
        table = pd.DataFrame({name: [s[f] for f in rows] for name, s in zip(names, settings)},
                             index=[t(f"runs.field_{f}") for f in rows])
        st.dataframe(table, key="runs_diff_table")
    else:
        st.info(t("runs.diff_none"))
    st.subheader(t("runs.results_title"))
    results = [result_fields(r) for r in chosen]
    for res in results:
        res["status"] = t(f"runs.status_{res['status']}")
    table = pd.DataFrame({name: list(res.values()) for name, res in zip(names, results)},
                         index=[t(f"runs.result_{f}") for f in results[0]])
    st.dataframe(table, key="runs_results_table")


def manage(records: list[RunRecord], names: dict[str, str]) -> None:
    st.subheader(t("runs.manage_title"))
    ids = [r.run_id for r in records]
    run_id = st.selectbox(t("runs.manage_pick"), ids, index=len(ids) - 1, format_func=names.get, key="runs_manage")
    record = history.get(run_id)
    if record is None:
        return
    name = names[run_id]
    if record.source == "checkpoint":
        st.caption(t("runs.from_checkpoint"))
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    label_key = f"runs_label_{run_id}"
    c1.text_input(t("runs.label"), value=record.label, max_chars=80, key=label_key)
    c2.button(t("runs.rename"), key="runs_rename", on_click=rename, args=(run_id, label_key))
    cols = st.columns(4)
    cols[0].button(t("runs.use"), key="runs_use", help=t("runs.use_help"), icon=":material/replay:",
                   on_click=use_settings, args=(run_id, name))
    cols[1].download_button(t("runs.download_json"), record.to_json(), f"dlplay-run-{run_id}.json", "application/json",
                            key="runs_download_json", on_click="ignore", icon=":material/download:")
    if disk_enabled():
        if run_id in RunStore().saved_ids():
            cols[2].button(t("runs.unsave"), key="runs_unsave", icon=":material/delete:", on_click=unsave,
                           args=(run_id, name))
        else:
            cols[2].button(t("runs.save"), key="runs_save", icon=":material/save:", on_click=save, args=(run_id, name))
    cols[3].button(t("runs.remove"), key="runs_remove", icon=":material/close:", on_click=history.remove, args=(run_id,))
    message = st.session_state.pop(MESSAGE, None)
    if message:
        getattr(st, message[0])(message[1])


def rename(run_id: str, label_key: str) -> None:
    record = history.get(run_id)
    if record is not None:
        history.add(with_label(record, st.session_state.get(label_key, "")))


def use_settings(run_id: str, name: str) -> None:
    record = history.get(run_id)
    if record is not None:
        set_spec(record.spec)
        set_config(record.config)
        st.session_state[MESSAGE] = ("success", t("runs.used", name=name))


def save(run_id: str, name: str) -> None:
    record = history.get(run_id)
    try:
        path = RunStore().save(record)
        st.session_state[MESSAGE] = ("success", t("runs.saved", name=name, path=str(path)))
    except OSError as exc:
        st.session_state[MESSAGE] = ("error", t("runs.save_failed", error=str(exc)))


def unsave(run_id: str, name: str) -> None:
    RunStore().delete(run_id)
    st.session_state[MESSAGE] = ("success", t("runs.unsaved", name=name))


records = history.records()
disk_section(records)
if not records:
    st.info(t("runs.empty"))
    st.stop()

numbers = {r.run_id: i + 1 for i, r in enumerate(records)}
names = {r.run_id: run_name(numbers[r.run_id], r) for r in records}
ids = [r.run_id for r in records]
# keep the selection valid, and add runs that appeared since the last visit
seen = st.session_state.get(SEEN)
selection = [i for i in st.session_state.get(SELECTED, ids[-DEFAULT_SELECTION:]) if i in names]
if seen is not None:
    selection += [i for i in ids if i not in seen and i not in selection]
st.session_state[SEEN] = set(ids)
st.session_state[SELECTED] = selection
chosen_ids = st.multiselect(t("runs.pick"), ids, format_func=names.get, key=SELECTED,
                            placeholder=t("runs.pick_placeholder"))
if not chosen_ids:
    st.info(t("runs.pick_some"))
else:
    chosen = [history.get(i) for i in chosen_ids]
    comparison(chosen, [names[i] for i in chosen_ids])
manage(records, names)
