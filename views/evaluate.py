"""Evaluate: where the model is wrong (confusion, mistakes, calibration); keep, export and share it."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import streamlit as st

from dlplay.classify.evaluation import mistake_indices
from dlplay.classify.handle import RunHandle
from dlplay.figures.evaluation import class_metrics_figure, reliability_figure
from dlplay.ui import evaluate as ev
from dlplay.ui import export as ex
from dlplay.ui import fixdata as fx
from dlplay.ui.charts import chart
from dlplay.ui.i18n import current_language, t
from dlplay.ui.state import current_session, heartbeat, init_state, is_active

PER_PAGE = 24
COLUMNS = 6

init_state()
heartbeat()
if st.session_state.pop(ev.GO_INSIDE, False):  # set by an Inspect button's callback
    st.switch_page(ev.INSIDE_PAGE)
if st.session_state.pop(fx.GO_TRAIN, False):  # set by "Retrain with these edits"
    st.switch_page(fx.TRAIN_PAGE)
lang = current_language()
st.title(t("eval.title"))
session = current_session()


def results_tab(session: RunHandle, report, labels) -> None:
    split = fx.split_picker(session)  # test, validation or training images (fix the data: dlplay/ui/fixdata.py)
    report, indices = fx.report_for(session, split)
    st.caption(t(f"fixdata.measured_{split}", n=len(report.preds.labels)))  # every number below names its images
    cols = st.columns(4)
    cols[0].metric(t(f"fixdata.accuracy_{split}"), f"{report.accuracy:.2%}")
    cols[1].metric(t("eval.metric_mistakes"), f"{report.mistakes:,}")
    cols[2].metric(t("eval.metric_confidence"), f"{float(report.preds.confidence.mean()):.1%}")
    cols[3].metric(t("eval.metric_ece"), f"{report.calibration.ece:.2%}")
    left, right = st.columns([3, 2])
    with left:
        mode = st.segmented_control(
            t("eval.cm_mode"), ["counts", "normalized"], default="counts", key="eval_cm_mode",
            format_func=lambda m: t(f"eval.cm_{m}"),
        )
        fx.confusion_chart(report, labels, split, mode == "normalized", lang)
        st.caption(t("eval.cm_help"))
    with right:
        st.subheader(t("eval.pairs_title"))
        if not report.pairs:
            st.write(t(f"fixdata.pairs_none_{split}"))
        for i, pair in enumerate(report.pairs):
            a, b = st.columns([3, 1], vertical_alignment="center")
            a.write(t("eval.pair_text", true=labels[pair.true], pred=labels[pair.predicted], count=pair.count, share=pair.share))
            b.button(t("eval.pair_show"), key=f"eval_pair_{i}", icon=":material/image_search:",
                     on_click=ev.show_pair if split == "test" else fx.select_cell,
                     args=(pair.true, pair.predicted) if split == "test" else (split, pair.true, pair.predicted))
    fx.cell_images(session, report, indices, labels, split)
    fx.edits_panel(session, labels)
    st.subheader(t("eval.classes_title"))
    table, percent_columns = ev.class_table(report.classes, labels, t(f"fixdata.support_{split}"))
    percent = st.column_config.NumberColumn(format="%.1f%%")
    c1, c2 = st.columns([1, 1])  # the table needs half the width: its last column was cut off
    c1.dataframe(table, hide_index=True, key="eval_classes_table",
                 column_config={column: percent for column in percent_columns})
    chart(c2, class_metrics_figure(report.classes, labels, lang), key="eval_classes_fig")
    st.caption(t("eval.classes_help"))


def mistakes_tab(session, report, labels) -> None:
    options = [-1, *range(len(labels))]
    name = lambda c: t("eval.filter_all") if c == -1 else labels[c]  # noqa: E731
    c1, c2, c3, _ = st.columns([2, 2, 1.4, 2.6], vertical_alignment="bottom")
    true = c1.selectbox(t("eval.filter_true"), options, format_func=name, key="eval_filter_true",
                        on_change=ev.first_gallery_page)
    pred = c2.selectbox(t("eval.filter_pred"), options, format_func=name, key="eval_filter_pred",
                        on_change=ev.first_gallery_page)
    idx = mistake_indices(report.preds, None if true == -1 else true, None if pred == -1 else pred)
    if len(idx) == 0:
        st.info(t("eval.gallery_none"))
        return
    pages = math.ceil(len(idx) / PER_PAGE)
    if st.session_state.get("eval_gallery_page", 1) > pages:
        st.session_state["eval_gallery_page"] = 1
    page = c3.number_input(t("eval.gallery_page", pages=pages), 1, pages, 1, key="eval_gallery_page") if pages > 1 else 1
    st.write(t("eval.gallery_count", n=len(idx)))
    shown = idx[(page - 1) * PER_PAGE : page * PER_PAGE]
    images = ev.test_images(session, shown)
    can_inspect = ev.can_inspect()
    cols = st.columns(COLUMNS)
    for k, (i, image) in enumerate(zip(shown.tolist(), images)):
        with cols[k % COLUMNS]:
            big = np.kron(image, np.ones((3, 3), dtype=np.uint8))
            st.image(big, caption=t("eval.gallery_caption", index=i, true=labels[report.preds.labels[i]],
                                     pred=labels[report.preds.predicted[i]], conf=float(report.preds.confidence[i])))
            if can_inspect:
                st.button(t("eval.inspect"), key=f"eval_inspect_{i}", help=t("eval.inspect_help"),
                          on_click=ev.inspect, args=(int(i),))


def calibration_tab(report) -> None:
    chart(st, reliability_figure(report.calibration, lang), key="eval_reliability")
    st.caption(t("eval.calibration_help"))
    wrong = ~report.preds.correct
    st.write(t("eval.overconfident", n=int((wrong & (report.preds.confidence > 0.9)).sum())))


if not ev.has_weights(session):
    st.info(t("eval.no_model"))
    if Path(__file__).with_name("train.py").exists():
        st.page_link("views/train.py", label=t("eval.go_train"), icon=":material/model_training:")
    ev.keep_tab(session, usable=False)
    st.stop()

if session.status == "diverged":
    st.warning(t("eval.diverged"))
    ev.keep_tab(session, usable=False)
    st.stop()

report, step = ev.report_for(session)
st.caption(t("eval.intro", n=len(report.preds.labels)))
if is_active(session):
    a, b = st.columns([5, 1], vertical_alignment="center")
    a.info(t("eval.active_note", step=step))
    b.button(t("eval.refresh"), key="eval_refresh", icon=":material/refresh:",
             on_click=ev.forget_report)

labels = ev.labels_of(session, lang)
tab_names = [t("eval.tab_results"), t("eval.tab_mistakes"), t("eval.tab_calibration"), t("eval.tab_keep"),
             t("export.title")]
tabs = st.tabs(tab_names, key="eval_tabs", on_change="rerun")  # tracked: hidden tabs do no work
if tabs[0].open is not False:
    with tabs[0]:
        results_tab(session, report, labels)
if tabs[1].open is not False:
    with tabs[1]:
        mistakes_tab(session, report, labels)
if tabs[2].open is not False:
    with tabs[2]:
        calibration_tab(report)
if tabs[3].open is not False:
    with tabs[3]:
        ev.keep_tab(session, usable=True)
if tabs[4].open is not False:
    with tabs[4]:
        ex.code_tab(session, key="eval")  # the run as code: dlplay/ui/export.py
