"""Explore page, robustness tab: accuracy curves under noise, rotation, shift and stroke thickness for the
current model, models measured before in this session and checkpoint files, overlaid; the learner's
drawing under the same transforms with the model's guess."""
from __future__ import annotations

import numpy as np
import streamlit as st
from PIL import Image

from dlplay.classify.checkpoint import MAX_CHECKPOINT_BYTES, load_checkpoint
from dlplay.classify.handle import RunHandle
from dlplay.data.datasets import class_label
from dlplay.errors import UserError
from dlplay.figures.robustness import curves_figure, level_text
from dlplay.learn.robustness import PERTURBATIONS, Curve, all_curves, drawing_under
from dlplay.nn.model import Net
from dlplay.ui.charts import chart
from dlplay.ui.i18n import error_text, t
from dlplay.ui.nav import available_pages
from dlplay.ui.uploads import server_limit_mb, upload_box

CURVES = "rob_curves"  # {model key: (name, n, {kind: Curve})}, in the order measured
ERROR_KEY = "rob_error"
REQUEST = "rob_request"  # what a button asked to measure: "current" or "checkpoint"
DRAWING_KEY = "drawing28"  # the Draw page's current digit (dlplay/ui/drawing.py)
SIZES = (1000, 2000, 5000, 10000)
MAX_MODELS = 6  # curves kept for overlay (the oldest go first)
PLOT_CONFIG = {"displayModeBar": False}


def model_name(session: RunHandle) -> tuple[str, dict]:
    """The curve's name as a translation key and its parameters (shown in the page's language then)."""
    p = session.snapshot().progress
    return "robustness.current_name", {"model": session.spec.describe(), "step": p.global_step}


def _measure(model: Net, key: str, name: tuple[str, dict], images, labels, mean: float, std: float) -> None:
    text = t("robustness.measuring", name=t(name[0], **name[1]))
    bar = st.progress(0.0, text=text)

    def report(share: float) -> None:
        bar.progress(share, text=text)

    curves = all_curves(model, images, labels, mean, std, report=report)
    bar.empty()
    kept: dict = st.session_state.setdefault(CURVES, {})
    kept.pop(key, None)
    kept[key] = (name, len(labels), curves)
    while len(kept) > MAX_MODELS:
        kept.pop(next(iter(kept)))


def _request(what: str) -> None:
    """Button callback: measure on this run (a flag, so a rerun in between does not lose the click)."""
    st.session_state[REQUEST] = what


def _test_images(session: RunHandle, n: int):
    images, labels = session.test_split()
    return images[:n], labels[:n]


def robustness_tab(session: RunHandle, lang: str) -> None:
    info = session.dataset_info
    c_n, c_go, c_clear = st.columns([2, 2, 1], vertical_alignment="bottom")
    total = len(session.test_split()[1])
    sizes = [s for s in SIZES if s < total] + [total]
    st.session_state.setdefault("rob_n", 2000 if 2000 in sizes else sizes[-1])
    n = int(c_n.selectbox(t("robustness.n_images"), sizes, key="rob_n", help=t("robustness.n_help"),
                          format_func=lambda k: t("robustness.all", n=k) if k == total else f"{k:,}"))
    c_go.button(t("robustness.measure"), key="rob_measure", type="primary", icon=":material/query_stats:",
                on_click=_request, args=("current",))
    c_clear.button(t("robustness.clear"), key="rob_clear", on_click=lambda: st.session_state.pop(CURVES, None))
    with st.expander(t("robustness.add_checkpoint")):
        limit_mb = min(MAX_CHECKPOINT_BYTES // 2**20, server_limit_mb())
        # no type list: the browser would refuse another file with a hidden chip; the loader says what it is
        with upload_box("rob_ckpt_box", t("eval.upload_refused", limit_mb=limit_mb)):
            upload = st.file_uploader(t("robustness.checkpoint"), key="rob_ckpt",
                                      help=t("robustness.checkpoint_help", mb=limit_mb))
        st.button(t("robustness.measure_checkpoint"), key="rob_measure_ckpt", disabled=upload is None,
                  on_click=_request, args=("checkpoint",))
    request = st.session_state.pop(REQUEST, None)
    images, labels = _test_images(session, n)
    if request == "current":
        _measure(session.model_copy(), f"run:{session.run_id}:{session.snapshot().progress.global_step}:{n}",
                 model_name(session), images, labels, info.mean, info.std)
    if request == "checkpoint" and upload is not None:
        try:
            ckpt = load_checkpoint(upload.getvalue())
            if ckpt.spec.input_shape != session.spec.input_shape or len(ckpt.classes) != info.num_classes:
                raise UserError("robustness.checkpoint_other_data")
            name = ("robustness.checkpoint_name", {"file": upload.name, "model": ckpt.spec.describe()})
            _measure(ckpt.model(), f"file:{upload.name}:{upload.size}:{n}", name, images, labels, ckpt.mean, ckpt.std)
            st.session_state[ERROR_KEY] = None
        except UserError as exc:
            st.session_state[ERROR_KEY] = error_text(exc)
    if st.session_state.get(ERROR_KEY):
        st.error(st.session_state[ERROR_KEY])

    kept: dict = st.session_state.get(CURVES) or {}
    if not kept:
        st.info(t("robustness.press_measure"))
    else:
        series = [(t(name[0], **name[1]), curves) for name, _, curves in reversed(kept.values())]  # the newest first, drawn boldest
        sizes_measured = {count for _, count, _ in kept.values()}
        zero = [f"{name}: {curves['noise'].at(0.0):.1%}" for name, curves in series]
        st.caption(t("robustness.zero_note", n=", ".join(f"{s:,}" for s in sorted(sizes_measured)))
                   + " " + " · ".join(zero))
        with st.container(key="rob_charts"):
            for row in (("noise", "rotate"), ("shift", "thickness")):
                cols = st.columns(2)
                for col, kind in zip(cols, row):
                    pairs: list[tuple[str, Curve]] = [(name, curves[kind]) for name, curves in series]
                    chart(col, curves_figure(pairs, kind, lang, height=340), key=f"rob_fig_{kind}",
                                     config=PLOT_CONFIG)
        st.caption(t("robustness.how"))
    st.divider()
    drawing_section(session, lang)


def drawing_section(session: RunHandle, lang: str) -> None:
    """The learner's drawing under every level of one perturbation, and the model's guess for each."""
    st.subheader(t("robustness.drawing_title"))
    drawing = st.session_state.get(DRAWING_KEY)
    if drawing is None:
        st.info(t("robustness.no_drawing"))
        if any(p[0] == "views/draw.py" for p in available_pages()):
            st.page_link("views/draw.py", label=t("robustness.go_draw"), icon=":material/draw:")
        return
    kind = st.radio(t("robustness.transform"), list(PERTURBATIONS), key="rob_draw_kind", horizontal=True,
                    format_func=lambda k: t(f"robustness.kind_{k}"))
    info = session.dataset_info
    under = drawing_under(session.model_copy(), np.asarray(drawing, dtype=np.uint8), info.mean, info.std, kind)
    with st.container(key="rob_drawing"):
        cols = st.columns(len(under.levels))
        for col, level, image, guess, conf in zip(cols, under.levels, under.images, under.guesses, under.confidence):
            big = Image.fromarray(image).resize((84, 84), Image.Resampling.NEAREST)
            col.image(big, caption=t("robustness.guess_caption", level=level_text(kind, level),
                                     guess=class_label(info, guess, lang), pct=f"{conf:.0%}"), width="stretch")
