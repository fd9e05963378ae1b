"""Runs: every run of this browser session; overlay their curves, see what differed, keep them on disk."""
from __future__ import annotations

import streamlit as st

from dlplay.classify.runs import RunRecord, RunStore, disk_enabled
from dlplay.figures.evaluation import compare_figure
from dlplay.ui import runs as ru
from dlplay.ui.charts import chart
from dlplay.ui.export import runs_code
from dlplay.ui.fork import record_note
from dlplay.ui.i18n import current_language, t
from dlplay.ui.share import share_link_button
from dlplay.ui.state import heartbeat, init_state, run_history

init_state()
heartbeat()
lang = current_language()
history = run_history()
st.title(t("runs.title"))
st.caption(t("runs.intro"))


def disk_section(records: list[RunRecord]) -> None:
    if not disk_enabled():
        st.caption(t("runs.disk_off"))
        return
    store = RunStore()
    saved = store.saved_ids()
    with st.expander(t("runs.disk_title", n=len(saved)), icon=":material/hard_drive:"):
        st.caption(t("runs.disk_folder", folder=str(store.folder)))
        c1, c2 = st.columns(2)
        c1.button(t("runs.save_all"), key="runs_save_all", disabled=not records, on_click=ru.save_all)
        c2.button(t("runs.load_saved"), key="runs_load_saved", disabled=not saved, on_click=ru.load_saved)
    # outside the box: its title counts the saved runs, so saving redraws it closed
    ru.show_message(ru.DISK_MESSAGE)


def comparison(chosen: list[RunRecord], names: list[str]) -> None:
    metric = st.segmented_control(t("runs.metric"), ru.METRICS, default="test_acc", key="runs_metric",
                                  format_func=lambda m: t(f"runs.metric_{m}")) or "test_acc"
    chart(st, compare_figure(chosen, names, metric, lang), key="runs_compare_fig")
    st.subheader(t("runs.diff_title"))
    show_all = st.toggle(t("runs.show_all"), key="runs_show_all")
    table = ru.settings_table(chosen, names, show_all)
    if table is not None:
        st.dataframe(table, key="runs_diff_table")
    else:
        st.info(t("runs.diff_none"))
    st.subheader(t("runs.results_title"))
    st.dataframe(ru.results_table(chosen, names), key="runs_results_table")


def manage(records: list[RunRecord], names: dict[str, str]) -> None:
    st.subheader(t("runs.manage_title"))
    ids = [r.run_id for r in records]
    run_id = st.selectbox(t("runs.manage_pick"), ids, index=len(ids) - 1, format_func=names.__getitem__,
                          key="runs_manage")
    record = history.get(run_id)
    if record is None:
        return
    name = names[run_id]
    if record.source == "checkpoint":
        st.caption(t("runs.from_checkpoint"))
    if record.fork:
        st.caption(record_note(record))
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    label_key = f"runs_label_{run_id}"
    c1.text_input(t("runs.label"), value=record.label, max_chars=80, key=label_key)
    c2.button(t("runs.rename"), key="runs_rename", on_click=ru.rename, args=(run_id, label_key))
    cols = st.columns(5)
    cols[0].button(t("runs.use"), key="runs_use", help=t("runs.use_help"), icon=":material/replay:",
                   on_click=ru.use_settings, args=(run_id, name))
    cols[1].download_button(t("runs.download_json"), record.to_json(), f"dlplay-run-{run_id}.json", "application/json",
                            key="runs_download_json", on_click="ignore", icon=":material/download:")
    if disk_enabled():
        if run_id in RunStore().saved_ids():
            cols[2].button(t("runs.unsave"), key="runs_unsave", icon=":material/delete:", on_click=ru.unsave,
                           args=(run_id, name))
        else:
            cols[2].button(t("runs.save"), key="runs_save", icon=":material/save:", on_click=ru.save,
                           args=(run_id, name))
    cols[3].button(t("runs.remove"), key="runs_remove", icon=":material/close:", on_click=ru.remove, args=(run_id,))
    with cols[4]:  # the run's architecture and settings as a link (not its weights), as the README says
        share_link_button(record.spec, record.config, key="runs_share", label=t("runs.share"), help=t("runs.share_help"))
    ru.show_message()


records = history.records()
disk_section(records)
if not records:
    st.info(t("runs.empty"))
    st.stop()

names = ru.run_names(records)
ids = [r.run_id for r in records]
ru.keep_selection(ids)
chosen_ids = st.multiselect(t("runs.pick"), ids, format_func=names.__getitem__, key=ru.SELECTED,
                            placeholder=t("runs.pick_placeholder"))
if not chosen_ids:
    st.info(t("runs.pick_some"))
else:
    by_id = {r.run_id: r for r in records}  # the picker offers only these runs
    comparison([by_id[i] for i in chosen_ids], [names[i] for i in chosen_ids])
manage(records, names)
runs_code(history)  # the chosen run as code: dlplay/ui/export.py
