"""Sequences page helpers: the run's model (cached per step), the input (a test image or the Draw
page's drawing), and the page's sections. Talks to the run through the RunHandle protocol only."""
from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from dlplay.classify.handle import RunHandle
from dlplay.data.datasets import class_label
from dlplay.figures import sequences as fs
from dlplay.i18n import join_list
from dlplay.learn.hints import format_factor, time_gradient_hint
from dlplay.nn import sequences as seq
from dlplay.nn.cells import CELLS
from dlplay.nn.presets import PRESETS
from dlplay.ui.charts import chart
from dlplay.ui.i18n import current_language, t
from dlplay.ui.nav import available_pages

DRAWING_KEY = "drawing28"  # the Draw page's current digit (dlplay.ui.drawing.DRAWING_KEY)
MODEL_KEY = "seq_model_cache"
POLL_S = 1.0
PLOT_CONFIG = {"displayModeBar": False}
RECURRENT_PRESETS = [key for key, preset in PRESETS.items() if preset.spec.is_recurrent()]


# ---------------------------------------------------------------- the run, through RunHandle members
def probe_snapshot(handle: RunHandle) -> Any:
    return handle.probe_snapshot()


def dataset_info(handle: RunHandle) -> Any:
    return handle.dataset_info


def test_split(handle: RunHandle) -> tuple[Any, Any]:
    return handle.test_split()


def model(handle: Any) -> Any:
    """An eval-mode CPU copy of the run's network, copied again only when training has moved on."""
    progress = handle.snapshot().progress
    key = (handle, progress.global_step, progress.status)
    cached = st.session_state.get(MODEL_KEY)
    if cached is not None and cached[0] == key:
        return cached[1]
    net = handle.model_copy("cpu")
    st.session_state[MODEL_KEY] = (key, net)
    return net


def page_link(page: str, label_key: str, icon: str) -> None:
    if any(p[0] == page for p in available_pages()):
        st.page_link(page, label=t(label_key), icon=icon)


def not_recurrent_notice(has_run: bool) -> None:
    """No run, or a run without a recurrent layer: say what to do."""
    names = join_list((f"“{t(f'presets.{k}.name')}”" for k in RECURRENT_PRESETS), current_language())
    st.info(t("sequences.no_recurrent" if has_run else "sequences.no_run", presets=names), icon=":material/info:")
    page_link("views/train.py", "sequences.go_train", ":material/model_training:")
    page_link("views/build.py", "sequences.go_build", ":material/account_tree:")


# ---------------------------------------------------------------- the input
def choose_input(handle: Any) -> tuple[np.ndarray | None, int | None, str]:
    """(28×28 uint8 image, its label if known, a caption); the learner picks a test image or the drawing."""
    drawing = st.session_state.get(DRAWING_KEY)
    has_drawing = drawing is not None and np.asarray(drawing).max() > 0
    sources = {"test": t("sequences.source_test"), "drawing": t("sequences.source_drawing")}
    source = st.radio(t("sequences.source"), list(sources), format_func=sources.get, horizontal=True, key="seq_source")
    if source == "drawing":
        if not has_drawing:
            st.info(t("sequences.no_drawing"), icon=":material/draw:")
            page_link("views/draw.py", "sequences.go_draw", ":material/draw:")
            return None, None, ""
        return np.asarray(drawing, dtype=np.uint8).reshape(28, 28), None, t("sequences.your_drawing")
    images, labels = test_split(handle)
    index = st.number_input(t("sequences.test_index"), 0, len(labels) - 1, 0, step=1, key="seq_test_index",
                            help=t("sequences.test_index_help"))
    label = int(labels[int(index)])
    return images[int(index)].numpy(), label, t("sequences.test_caption", index=int(index), label=label)


# ---------------------------------------------------------------- sections
def reading_section(net: Any, image: np.ndarray, label: int | None, lang: str) -> None:
    info = net.spec
    handle_info = st.session_state["_seq_info"]
    mean, std = handle_info.mean, handle_info.std
    probs = seq.early_predictions(net, image, mean, std)
    steps = len(probs)
    names = [class_label(handle_info, k, lang) for k in range(probs.shape[1])]
    step = st.slider(t("sequences.step_slider"), 1, steps, steps, key="seq_step", help=t("sequences.step_slider_help"))
    final = int(probs[-1].argmax())
    knows = seq_first_sure(probs, final)
    left, right = st.columns([2, 3])
    with left:
        chart(st, fs.revealed_figure(image, info.order, step, lang), key="seq_revealed", config=PLOT_CONFIG)
    with right:
        now = int(probs[step - 1].argmax())
        st.metric(t("sequences.guess_after", step=step), f"{names[now]} · {probs[step - 1, now] * 100:.0f}%")
        if knows is not None:
            st.caption(t("sequences.knows_at", step=knows, steps=steps, label=names[final]))
        else:
            st.caption(t("sequences.never_sure", label=names[final]))
    with st.container(key="seq_early_chart"):
        chart(st, fs.early_prediction_figure(probs, step, names, lang), key="seq_early", config=PLOT_CONFIG)
    st.caption(t("sequences.cap_early_all" if net.blocks[seq.sequence_block(net)].op.read == "all" else "sequences.cap_early"))


def seq_first_sure(probs: np.ndarray, final: int, threshold: float = 0.9) -> int | None:
    """The first step (1-based) from which the final answer stays the guess with ≥ threshold probability."""
    sure = (probs.argmax(1) == final) & (probs[:, final] >= threshold)
    if not sure[-1]:
        return None
    not_sure = np.flatnonzero(~sure)
    return int(not_sure[-1]) + 2 if len(not_sure) else 1


def memory_section(net: Any, image: np.ndarray, lang: str) -> None:
    handle_info = st.session_state["_seq_info"]
    mem = seq.memory(net, image, handle_info.mean, handle_info.std)
    options = ["h", *mem.gates]
    choice = st.radio(t("sequences.memory_show"), options, horizontal=True, key="seq_memory_show",
                      format_func=lambda k: t(f"sequences.gate_{k}"))
    values = mem.h if choice == "h" else mem.gates[choice]
    centered = choice in ("h", "c", "g", "n")
    chart(st, fs.memory_figure(values, mem.units, t(f"sequences.gate_{choice}"), lang,
                                     st.session_state.get("seq_step"), zero_centered=centered),
                    key="seq_memory", config=PLOT_CONFIG)
    # a plain RNN has no gates: the sentences about them only where there are some
    gates = [t("polish.cap_rows_kept"), t("sequences.cap_gates")] if mem.gates else []
    st.caption((" " if lang == "en" else "").join([t("polish.cap_memory", share=f"{seq.ONSET_SHARE:.0%}"), *gates]))


def connectivity_section(net: Any, image: np.ndarray, lang: str) -> None:
    handle_info = st.session_state["_seq_info"]
    conn, target = seq.connectivity(net, image, handle_info.mean, handle_info.std)
    label = class_label(handle_info, target, lang)
    left, right = st.columns([2, 3])
    chart(left, fs.connectivity_image(image, conn, net.spec.order, lang), key="seq_conn_image",
                      config=PLOT_CONFIG)
    chart(right, fs.connectivity_figure(conn, lang, label), key="seq_conn", config=PLOT_CONFIG)
    top = np.argsort(conn)[::-1][:3] + 1
    st.caption(t("sequences.cap_conn", label=label, top=join_list(top, current_language())))


def time_gradient_section(handle: Any, lang: str) -> None:
    """The probe's latest ‖∂L/∂h_t‖ with the hint (the page polls this while the run trains)."""
    snap = probe_snapshot(handle)
    grads = None if snap is None else snap.time_grad
    if grads is None:
        st.info(t("sequences.tgrad_waiting"), icon=":material/hourglass_top:")
        return
    hint = time_gradient_hint(grads)
    if hint is not None:
        (st.warning if hint.level == "warning" else st.success)(hint.text(lang), icon=":material/lightbulb:")
    with st.container(key="seq_tgrad_chart"):
        chart(st, fs.time_gradient_figure(grads, lang, snap.time_grad_step), key="seq_tgrad",
                        config=PLOT_CONFIG)
    st.caption(t("sequences.cap_tgrad", factor=format_factor(seq.gradient_factor(grads)), steps=len(grads),
                 step=snap.time_grad_step))


def formula_section(net: Any, image: np.ndarray, label: int | None, lang: str) -> None:
    handle_info = st.session_state["_seq_info"]
    block = net.blocks[seq.sequence_block(net)].op
    n_steps = seq.sequence_length(net)
    c1, c2 = st.columns(2)
    step = c1.number_input(t("sequences.formula_step"), 1, n_steps, min(n_steps, max(1, n_steps // 2)), key="seq_f_step")
    unit = c2.number_input(t("sequences.formula_unit"), 0, block.out_features - 1, 0, key="seq_f_unit")
    f = seq.step_formula(net, image, handle_info.mean, handle_info.std, int(step) - 1, int(unit), target=label)
    for line in formula_latex(f):
        st.latex(line)
    st.caption(t("sequences.forward_check", diff=f"{f.forward_difference:.1e}"))
    st.markdown(t("sequences.bptt_intro_" + f.cell))
    for line in bptt_latex(f.cell, f.nonlinearity):
        st.latex(line)
    t_idx = int(step) - 1
    d = f.delta_formula[t_idx]
    st.latex(rf"\|\delta_{{{int(step)}}}\| = {np.linalg.norm(d):.4g},\quad \delta_{{{int(step)},{int(unit)}}} = "
             rf"{d[int(unit)]:.4g}\ \ (\text{{autograd}}: {f.delta_autograd[t_idx, int(unit)]:.4g})")
    chart(st, fs.delta_figure(f.delta_formula, f.delta_autograd, lang), key="seq_delta", config=PLOT_CONFIG)
    ok = f.max_difference <= 1e-8 * max(1.0, float(np.abs(f.delta_autograd).max()))
    (st.success if ok else st.error)(t("sequences.bptt_check", diff=f"{f.max_difference:.1e}"), icon=":material/check_circle:")


def _vec(values: np.ndarray, k: int = 3) -> str:
    """The first ``k`` entries of a vector and its length, for a formula line."""
    shown = ", ".join(f"{v:.3g}" for v in values[:k])
    return rf"[{shown}, \dots]_{{{len(values)}}}" if len(values) > k else rf"[{shown}]"


def formula_latex(f: seq.StepFormula) -> list[str]:
    """The unit's forward formula at its step, symbols then numbers (the cell's own, dlplay.nn.cells)."""
    lines = CELLS[f.cell].forward_latex(f, float(f.w_x @ f.x), float(f.w_h @ f.h_prev))
    t_ = f.step + 1
    return [*lines, rf"x_{{{t_}}} = {_vec(f.x)},\quad h_{{{t_ - 1}}} = {_vec(f.h_prev)}"]


def bptt_latex(cell: str, nonlinearity: str) -> list[str]:
    """The δ recursion of back-propagation through time, δ_t = ∂L/∂h_t (one line per equation)."""
    return CELLS[cell].bptt_latex(nonlinearity)
