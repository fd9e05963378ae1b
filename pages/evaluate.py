"""Evaluate: where the model is wrong (confusion, mistakes, calibration); keep, export and share it."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from dlplay.checkpoint import (
    MAX_CHECKPOINT_BYTES,
    checkpoint_from_session,
    export_onnx,
    export_torchscript,
    file_stem,
    load_checkpoint,
    loading_snippet,
    missing_export_modules,
)
from dlplay.data import class_label
from dlplay.errors import UserError
from dlplay.evaluation import build_report, mistake_indices, predict_session
from dlplay.i18n import translate
from dlplay.figures_eval import class_metrics_figure, confusion_figure, reliability_figure
from dlplay.runs import architecture_label, record_from_session
from dlplay.ui.i18n import current_language, error_text, t
from dlplay.ui.runs import adopt_checkpoint, current_run_record
from dlplay.ui.share import share_link_button
from dlplay.ui.state import current_session, get_config, get_spec, heartbeat, init_state, is_active

REPORT = "eval_report"  # (session, token, report, step)
UPLOAD = "eval_upload_result"  # (file_id, Checkpoint | None, error text | None)
EXPORT_ERRORS = "eval_export_errors"  # export kind -> why its last download failed (shown on the next run)
EXPORTERS = {"onnx": export_onnx, "torchscript": export_torchscript}
EXPORT_NAMES = {"onnx": "ONNX", "torchscript": "TorchScript"}
INSIDE_PAGE = "pages/inside.py"
PER_PAGE = 24
COLUMNS = 6

init_state()
heartbeat()
if st.session_state.pop("eval_go_inside", False):  # set by an Inspect button's callback
    st.switch_page(INSIDE_PAGE)
lang = current_language()
st.title(t("eval.title"))
session = current_session()
snap = session.snapshot() if session is not None else None
has_weights = snap is not None and (snap.progress.global_step > 0 or session.status == "done")


def explain(exc: UserError) -> str:
    """The error, with the reason behind it when that is a UserError too (e.g. the spec's own message)."""
    cause = exc.__cause__
    if isinstance(cause, UserError) and "reason" in exc.params:
        return t(exc.key, **{**exc.params, "reason": error_text(cause)})
    return error_text(exc)


def report_for(session):
    """The evaluation of the current weights, computed once (while training runs: until Refresh)."""
    token = "active" if is_active(session) else session.status
    cached = st.session_state.get(REPORT)
    if cached is not None and cached[0] is session and cached[1] == token:
        return cached[2], cached[3]
    with st.spinner(t("eval.computing")):
        step = session.snapshot().progress.global_step
        report = build_report(predict_session(session))
    st.session_state[REPORT] = (session, token, report, step)
    return report, step


def labels_of(session) -> list[str]:
    return [class_label(session.dataset.info, i, lang) for i in range(session.spec.num_classes)]


def results_tab(report, labels) -> None:
    cols = st.columns(4)
    cols[0].metric(t("eval.metric_accuracy"), f"{report.accuracy:.2%}")
    cols[1].metric(t("eval.metric_mistakes"), f"{report.mistakes:,}")
    cols[2].metric(t("eval.metric_confidence"), f"{float(report.preds.confidence.mean()):.1%}")
    cols[3].metric(t("eval.metric_ece"), f"{report.calibration.ece:.2%}")
    left, right = st.columns([3, 2])
    with left:
        mode = st.segmented_control(
            t("eval.cm_mode"), ["counts", "normalized"], default="counts", key="eval_cm_mode",
            format_func=lambda m: t(f"eval.cm_{m}"),
        )
        st.plotly_chart(confusion_figure(report.confusion, labels, mode == "normalized", lang), key="eval_cm")
        st.caption(t("eval.cm_help"))
    with right:
        st.subheader(t("eval.pairs_title"))
        if not report.pairs:
            st.write(t("eval.pairs_none"))
        for i, pair in enumerate(report.pairs):
            a, b = st.columns([3, 1], vertical_alignment="center")
            a.write(t("eval.pair_text", true=labels[pair.true], pred=labels[pair.predicted], count=pair.count, share=pair.share))
            b.button(t("eval.pair_show"), key=f"eval_pair_{i}", on_click=show_pair, args=(pair.true, pair.predicted),
                     icon=":material/image_search:")
    st.subheader(t("eval.classes_title"))
    m = report.classes
    table = pd.DataFrame({
        t("eval.col_class"): labels,
        t("eval.col_support"): m.support,
        t("eval.col_correct"): m.correct,
        t("eval.col_accuracy"): m.accuracy * 100,
        t("eval.col_precision"): m.precision * 100,
        t("eval.col_f1"): m.f1 * 100,
    })
    percent = st.column_config.NumberColumn(format="%.1f%%")
    c1, c2 = st.columns([2, 3])
    c1.dataframe(table, hide_index=True, key="eval_classes_table", column_config={
        t("eval.col_accuracy"): percent, t("eval.col_precision"): percent, t("eval.col_f1"): percent})
    c2.plotly_chart(class_metrics_figure(m, labels, lang), key="eval_classes_fig")
    st.caption(t("eval.classes_help"))


def show_pair(true: int, predicted: int) -> None:
    st.session_state["eval_filter_true"] = true
    st.session_state["eval_filter_pred"] = predicted
    st.session_state["eval_gallery_page"] = 1
    st.session_state["eval_tabs"] = t("eval.tab_mistakes")


def mistakes_tab(session, report, labels) -> None:
    options = [-1, *range(len(labels))]
    name = lambda c: t("eval.filter_all") if c == -1 else labels[c]  # noqa: E731
    c1, c2, c3, _ = st.columns([2, 2, 1.4, 2.6], vertical_alignment="bottom")
    first_page = lambda: st.session_state.update(eval_gallery_page=1)  # noqa: E731 - a new filter starts at page 1
    true = c1.selectbox(t("eval.filter_true"), options, format_func=name, key="eval_filter_true", on_change=first_page)
    pred = c2.selectbox(t("eval.filter_pred"), options, format_func=name, key="eval_filter_pred", on_change=first_page)
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
    images = session.dataset.test_images[shown].cpu().numpy()
    can_inspect = (Path(__file__).resolve().parents[1] / INSIDE_PAGE).exists()
    cols = st.columns(COLUMNS)
    for k, (i, image) in enumerate(zip(shown.tolist(), images)):
        with cols[k % COLUMNS]:
            big = np.kron(image, np.ones((3, 3), dtype=np.uint8))
            st.image(big, caption=t("eval.gallery_caption", index=i, true=labels[report.preds.labels[i]],
                                     pred=labels[report.preds.predicted[i]], conf=float(report.preds.confidence[i])))
            if can_inspect:
                st.button(t("eval.inspect"), key=f"eval_inspect_{i}", help=t("eval.inspect_help"),
                          on_click=inspect, args=(int(i),))


def inspect(index: int) -> None:
    """Button callback: open test image ``index`` on the Inside page (switched to on the next run)."""
    st.session_state["inside_test_index"] = index
    st.session_state["eval_go_inside"] = True


def calibration_tab(report) -> None:
    st.plotly_chart(reliability_figure(report.calibration, lang), key="eval_reliability")
    st.caption(t("eval.calibration_help"))
    wrong = ~report.preds.correct
    st.write(t("eval.overconfident", n=int((wrong & (report.preds.confidence > 0.9)).sum())))


def keep_tab(session, usable: bool) -> None:
    if usable:
        st.subheader(t("eval.keep_download"))
        st.caption(t("eval.keep_download_help"))
        stem = file_stem(session.spec, session.config)
        info = session.dataset.info
        run = current_run_record(session)

        def ckpt_data() -> bytes:  # runs when clicked, without streamlit
            return checkpoint_from_session(session, run=run or record_from_session(session, evaluate_final=False))

        c1, c2, c3 = st.columns(3)
        c1.download_button(t("eval.download_ckpt"), ckpt_data, f"{stem}.pt", "application/octet-stream",
                           key="eval_download_ckpt", on_click="ignore", icon=":material/download:")
        missing = {kind: missing_export_modules(kind) for kind in EXPORTERS}
        c2.download_button(t("eval.download_onnx"), export_data("onnx", session), f"{stem}.onnx",
                           "application/octet-stream", key="eval_download_onnx", on_click="ignore",
                           icon=":material/download:", disabled=bool(missing["onnx"]))
        c3.download_button(t("eval.download_torchscript"), export_data("torchscript", session),
                           f"{stem}-torchscript.pt", "application/octet-stream", key="eval_download_torchscript",
                           on_click="ignore", icon=":material/download:", disabled=bool(missing["torchscript"]))
        failed = st.session_state.get(EXPORT_ERRORS, {})
        for kind in EXPORTERS:
            if missing[kind]:
                st.error(t("eval.export_missing", format=EXPORT_NAMES[kind], modules=", ".join(missing[kind]),
                           command="pip install -r requirements.txt"),
                         icon=":material/block:")
            elif kind in failed:
                st.error(failed[kind], icon=":material/error:")
        st.caption(t("eval.export_help"))
        with st.expander(t("eval.snippet_title")):
            names = {"checkpoint": f"{stem}.pt", "torchscript": f"{stem}-torchscript.pt", "onnx": f"{stem}.onnx"}
            for tab, kind in zip(st.tabs([t(f"eval.snippet_{k}") for k in names]), names):
                tab.code(loading_snippet(kind, names[kind], info.mean, info.std), language="python")
    upload_section()
    st.subheader(t("eval.keep_share"))
    st.caption(t("eval.share_help"))
    spec, config = (session.spec, session.config) if session is not None else (get_spec(), get_config())
    share_link_button(spec, config, key="eval_share")


def export_data(kind: str, session):
    """The download's data callable: it runs when clicked, outside the script (no streamlit there), so a
    failure is written, in the page's language, where the next run of the page shows it."""
    errors = st.session_state.setdefault(EXPORT_ERRORS, {})
    info, lang = session.dataset.info, current_language()

    def make() -> bytes:
        try:
            data = EXPORTERS[kind](session.model_copy("cpu"), info.mean, info.std)
        except Exception as exc:
            errors[kind] = translate("eval.export_failed", lang, format=EXPORT_NAMES[kind],
                                     error=f"{type(exc).__name__}: {exc}")
            raise
        errors.pop(kind, None)
        return data

    return make


def upload_section() -> None:
    st.subheader(t("eval.keep_upload"))
    # the server's upload limit (.streamlit/config.toml) or the loader's own, whichever is lower
    limit_mb = min(MAX_CHECKPOINT_BYTES / 2**20, st.get_option("server.maxUploadSize"))
    uploaded = st.file_uploader(t("eval.upload_label"), key="eval_upload", help=t("eval.upload_help", limit_mb=limit_mb))
    if uploaded is None:
        return
    result = st.session_state.get(UPLOAD)
    if result is None or result[0] != uploaded.file_id:
        try:
            if uploaded.size > MAX_CHECKPOINT_BYTES:  # refuse before reading it
                raise UserError("eval.ckpt_too_large", size_mb=uploaded.size / 2**20, limit_mb=limit_mb)
            result = (uploaded.file_id, load_checkpoint(uploaded.getvalue()), None)
        except UserError as exc:
            result = (uploaded.file_id, None, explain(exc))
        st.session_state[UPLOAD] = result
    _, ckpt, error = result
    if error is not None:
        st.error(error, icon=":material/block:")
        return
    cfg = ckpt.config
    st.success(t("eval.upload_ok", arch=architecture_label(ckpt.spec), optimizer=t(f"runs.optimizer_{cfg.optimizer}"), lr=cfg.lr,
                 epochs=len(ckpt.run.epochs) if ckpt.run else cfg.epochs), icon=":material/verified:")
    if ckpt.run is not None and ckpt.run.test_acc is not None:
        st.write(t("eval.upload_acc", acc=ckpt.run.test_acc))
    st.button(t("eval.use_ckpt"), key="eval_use_ckpt", help=t("eval.use_ckpt_help"), type="primary",
              on_click=use_checkpoint, args=(ckpt,))
    error = st.session_state.pop("eval_use_error", None)
    if error:
        st.error(error)


def use_checkpoint(ckpt) -> None:
    """Button callback: the uploaded checkpoint becomes the current model."""
    try:
        adopt_checkpoint(ckpt)
    except UserError as exc:
        st.session_state["eval_use_error"] = explain(exc)
        return
    st.session_state.pop(REPORT, None)
    st.toast(t("eval.ckpt_in_use"), icon=":material/check:")


if not has_weights:
    st.info(t("eval.no_model"))
    if Path(__file__).with_name("train.py").exists():
        st.page_link("pages/train.py", label=t("eval.go_train"), icon=":material/model_training:")
    keep_tab(session, usable=False)
    st.stop()

if session.status == "diverged":
    st.warning(t("eval.diverged"))
    keep_tab(session, usable=False)
    st.stop()

report, step = report_for(session)
st.caption(t("eval.intro", n=len(report.preds.labels)))
if is_active(session):
    a, b = st.columns([5, 1], vertical_alignment="center")
    a.info(t("eval.active_note", step=step))
    b.button(t("eval.refresh"), key="eval_refresh", icon=":material/refresh:",
             on_click=lambda: st.session_state.pop(REPORT, None))

labels = labels_of(session)
tab_names = [t("eval.tab_results"), t("eval.tab_mistakes"), t("eval.tab_calibration"), t("eval.tab_keep")]
tabs = st.tabs(tab_names, key="eval_tabs", on_change="rerun")  # tracked: hidden tabs do no work
if tabs[0].open is not False:
    with tabs[0]:
        results_tab(report, labels)
if tabs[1].open is not False:
    with tabs[1]:
        mistakes_tab(session, report, labels)
if tabs[2].open is not False:
    with tabs[2]:
        calibration_tab(report)
if tabs[3].open is not False:
    with tabs[3]:
        keep_tab(session, usable=True)
