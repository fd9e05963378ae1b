"""Evaluate page helpers: the report of the current weights (cached), the gallery's images, the buttons'
callbacks, and the Keep tab (download, export, upload a checkpoint, share)."""
from __future__ import annotations

from typing import TypeGuard

import numpy as np
import pandas as pd
import streamlit as st

from dlplay.classify import checkpoint
from dlplay.classify.checkpoint import (
    MAX_CHECKPOINT_BYTES,
    Checkpoint,
    checkpoint_from_session,
    file_stem,
    load_checkpoint,
    loading_snippet,
    missing_export_modules,
)
from dlplay.classify.evaluation import ClassMetrics, EvalReport, build_report, predict_session
from dlplay.classify.handle import RunHandle
from dlplay.classify.runs import architecture_label, record_from_session
from dlplay.data.datasets import class_label
from dlplay.errors import UserError
from dlplay.i18n import translate
from dlplay.ui.i18n import current_language, error_text, t
from dlplay.ui.nav import ROOT
from dlplay.ui.share import share_link_button
from dlplay.ui.state import (
    adopt_checkpoint,
    current_run_record,
    get_config,
    get_spec,
    is_active,
)
from dlplay.ui.uploads import server_limit_mb, upload_box

REPORT = "eval_report"  # (session, token, report, step)
UPLOAD = "eval_upload_result"  # (file_id, Checkpoint | None, UserError | None)
EXPORT_ERRORS = "eval_export_errors"  # export kind -> why its last download failed (shown on the next run)
EXPORTERS = {"onnx": "export_onnx", "torchscript": "export_torchscript"}  # looked up when clicked
EXPORT_NAMES = {"onnx": "ONNX", "torchscript": "TorchScript"}
GO_INSIDE = "eval_go_inside"  # set by an Inspect button's callback: the page switches on its next run
INSIDE_PAGE = "views/inside.py"


def has_weights(session: RunHandle | None) -> TypeGuard[RunHandle]:
    """A run that has taken a step (or was loaded finished from a checkpoint)."""
    return session is not None and (session.snapshot().progress.global_step > 0 or session.status == "done")


def explain(exc: UserError) -> str:
    """The error, with the reason behind it when that is a UserError too (e.g. the spec's own message)."""
    cause = exc.__cause__
    if isinstance(cause, UserError) and "reason" in exc.params:
        return t(exc.key, **{**exc.params, "reason": error_text(cause)})
    return error_text(exc)


def report_for(session: RunHandle) -> tuple[EvalReport, int]:
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


def forget_report() -> None:
    st.session_state.pop(REPORT, None)


def labels_of(session: RunHandle, lang: str) -> list[str]:
    return [class_label(session.dataset_info, i, lang) for i in range(session.spec.num_classes)]


def class_table(m: ClassMetrics, labels: list[str], support: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Per-class numbers as a table (ratios in percent), and the names of its percentage columns;
    ``support`` names the images counted (default: the test images)."""
    table = pd.DataFrame({
        t("eval.col_class"): labels,
        support or t("eval.col_support"): m.support,
        t("eval.col_correct"): m.correct,
        t("eval.col_accuracy"): m.accuracy * 100,
        t("eval.col_precision"): m.precision * 100,
        t("eval.col_f1"): m.f1 * 100,
    })
    return table, [t("eval.col_accuracy"), t("eval.col_precision"), t("eval.col_f1")]


def test_images(session: RunHandle, indices: np.ndarray) -> np.ndarray:
    """Test images ``indices`` as uint8 arrays."""
    return session.test_split()[0][indices].numpy()


def can_inspect() -> bool:
    return (ROOT / INSIDE_PAGE).exists()


# ------------------------------------------------------------------ button callbacks
def show_pair(true: int, predicted: int) -> None:
    st.session_state["eval_filter_true"] = true
    st.session_state["eval_filter_pred"] = predicted
    st.session_state["eval_gallery_page"] = 1
    st.session_state["eval_tabs"] = t("eval.tab_mistakes")


def first_gallery_page() -> None:
    st.session_state.update(eval_gallery_page=1)  # a new filter starts at page 1


def inspect(index: int) -> None:
    """Button callback: open test image ``index`` on the Inside page (switched to on the next run)."""
    st.session_state["inside_test_index"] = index
    st.session_state[GO_INSIDE] = True


def use_checkpoint(ckpt: Checkpoint) -> None:
    """Button callback: the uploaded checkpoint becomes the current model."""
    try:
        adopt_checkpoint(ckpt)
    except UserError as exc:
        st.session_state["eval_use_error"] = explain(exc)
        return
    forget_report()
    st.toast(t("eval.ckpt_in_use"), icon=":material/check:")


# ------------------------------------------------------------------ the Keep tab
def keep_tab(session: RunHandle | None, usable: bool) -> None:
    if usable and session is not None:  # usable: the page checked has_weights(session)
        download_section(session)
    upload_section()
    st.subheader(t("eval.keep_share"))
    st.caption(t("eval.share_help"))
    spec, config = (session.spec, session.config) if session is not None else (get_spec(), get_config())
    share_link_button(spec, config, key="eval_share")


def download_section(session: RunHandle) -> None:
    st.subheader(t("eval.keep_download"))
    st.caption(t("eval.keep_download_help"))
    stem = file_stem(session.spec, session.config)
    info = session.dataset_info
    record = current_run_record(session)

    def ckpt_data() -> bytes:  # runs when clicked, without streamlit
        return checkpoint_from_session(session, run=record or record_from_session(session, evaluate_final=False))

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


def export_data(kind: str, session: RunHandle):
    """The download's data callable: it runs when clicked, outside the script (no streamlit there), so a
    failure is written, in the page's language, where the next run of the page shows it."""
    errors = st.session_state.setdefault(EXPORT_ERRORS, {})
    info, lang = session.dataset_info, current_language()

    def make() -> bytes:
        try:
            data = getattr(checkpoint, EXPORTERS[kind])(session.model_copy("cpu"), info.mean, info.std)
        except Exception as exc:
            errors[kind] = translate("eval.export_failed", lang, format=EXPORT_NAMES[kind],
                                     error=f"{type(exc).__name__}: {exc}")
            raise
        errors.pop(kind, None)
        return data

    return make


def upload_limit_mb() -> float:
    """The largest checkpoint this page takes: the server's upload limit (.streamlit/config.toml) or the
    loader's own, whichever is lower."""
    return min(MAX_CHECKPOINT_BYTES / 2**20, server_limit_mb())


def read_upload(uploaded, limit_mb: float) -> tuple[Checkpoint | None, str | None]:
    """The uploaded file as a checkpoint, or the reason it is not one, in the page's current language
    (the file is checked once; the reason is kept as the error, so a language switch translates it)."""
    result = st.session_state.get(UPLOAD)
    if result is None or result[0] != uploaded.file_id:
        try:
            if uploaded.size > limit_mb * 2**20:  # refuse before reading it
                raise UserError("eval.ckpt_too_large", size_mb=uploaded.size / 2**20, limit_mb=limit_mb)
            result = (uploaded.file_id, load_checkpoint(uploaded.getvalue()), None)
        except UserError as exc:
            result = (uploaded.file_id, None, exc)
        st.session_state[UPLOAD] = result
    return result[1], (explain(result[2]) if result[2] is not None else None)


def upload_section() -> None:
    st.subheader(t("eval.keep_upload"))
    limit_mb = upload_limit_mb()
    st.caption(t("eval.upload_limit", limit_mb=limit_mb))  # said before anything is uploaded
    # a file over the server's limit never reaches this script: the box says so and hides the old result
    with upload_box("eval_upload_box", t("eval.upload_refused", limit_mb=limit_mb), stale=("eval_upload_outcome",)):
        uploaded = st.file_uploader(t("eval.upload_label"), key="eval_upload", help=t("eval.upload_help", limit_mb=limit_mb))
    if uploaded is None:
        return
    ckpt, error = read_upload(uploaded, limit_mb)
    with st.container(key="eval_upload_outcome"):
        if error is not None:
            st.error(error, icon=":material/block:")
            return
        assert ckpt is not None  # read_upload gives a checkpoint or the reason it is not one
        cfg = ckpt.config
        st.success(t("eval.upload_ok", arch=architecture_label(ckpt.spec), optimizer=t(f"runs.optimizer_{cfg.optimizer}"),
                     lr=cfg.lr, epochs=len(ckpt.run.epochs) if ckpt.run else cfg.epochs), icon=":material/verified:")
        if ckpt.run is not None and ckpt.run.test_acc is not None:
            st.write(t("eval.upload_acc", acc=ckpt.run.test_acc))
        st.button(t("eval.use_ckpt"), key="eval_use_ckpt", help=t("eval.use_ckpt_help"), type="primary",
                  on_click=use_checkpoint, args=(ckpt,))
        error = st.session_state.pop("eval_use_error", None)
        if error:
            st.error(error)
