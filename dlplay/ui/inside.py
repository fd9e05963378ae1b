"""Inside page helpers: choosing the input (a test image or the Draw page's digit), the quick-train
callback, and the tabs' figures and formulas for one traced input."""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from dlplay.classify.handle import RunHandle
from dlplay.classify.predict import predictions
from dlplay.data.datasets import DatasetInfo, class_label
from dlplay.errors import UserError
from dlplay.figures import inside as fi
from dlplay.learn.formulas import tutorial_deltas, unit_backward, unit_forward
from dlplay.learn.latex import backward_latex, forward_latex, loss_latex
from dlplay.nn.activations import IDENTITY
from dlplay.nn.layers import shape_text
from dlplay.ui.charts import chart
from dlplay.ui.i18n import error_text, t
from dlplay.ui.nav import available_pages
from dlplay.ui.state import new_session

DRAWING_KEY = "drawing28"  # the Draw page's current digit: 28x28 uint8 or None
QUICK_ERROR = "inside_quick_error"
POLL_S = 1.0
PER_ROW = 3
LIVE = ("ready", "queued", "running")  # with the thread alive: the weights are changing
PLOT_CONFIG = {"displayModeBar": False}
STALE = ("inside_target", "inside_saliency_class", "inside_step_class")  # follow the input: reset when it changes


def page_link(page: str, label_key: str, icon: str) -> None:
    if any(p[0] == page for p in available_pages()):
        st.page_link(page, label=t(label_key), icon=icon)


def is_live(session: RunHandle | None) -> bool:
    return session is not None and session.is_alive and session.status in LIVE


def plot(fig: Any, key: str) -> None:
    chart(st, fig, key=key, config=PLOT_CONFIG)


def class_names(info: DatasetInfo, lang: str) -> list[str]:
    """``3`` for a digit, ``3 · dress`` where a class has a name."""
    names = [class_label(info, i, lang) for i in range(info.num_classes)]
    return [f"{i} · {name}" if name != str(i) else str(i) for i, name in enumerate(names)]


def quick_train() -> None:
    """Button callback: a run from the current design and settings, trained for one epoch, then paused."""
    try:
        fresh = new_session()
        fresh.step(fresh.steps_per_epoch)  # one epoch, then it waits (it can be resumed on the Train page)
    except UserError as exc:
        st.session_state[QUICK_ERROR] = error_text(exc)


# --------------------------------------------------------------------------------- the input
@dataclass(frozen=True)
class Chosen:
    image: np.ndarray  # 28x28 uint8
    label: int | None  # the true class of a test image
    key: str  # identifies the input: selections that depend on it reset when it changes


def choose_input(session: RunHandle, class_name: Callable[[int], str]) -> Chosen:
    """The source and pick widgets, and the image they choose (stops the page when there is none)."""
    images, labels = session.test_split()
    test_labels = labels.numpy()
    drawing = st.session_state.get(DRAWING_KEY)
    handoff = st.session_state.pop("inside_test_index", None)  # a mistake clicked on the Evaluate page
    if handoff is not None:
        st.session_state.update(inside_source="test", inside_pick="index", inside_index=int(handoff))
    c_source, c_mode, c_which = st.columns([1, 1.6, 1.4], vertical_alignment="bottom")
    source = c_source.radio(t("inside.source"), ["test", "drawing"], format_func=lambda s: t(f"inside.source_{s}"),
                            key="inside_source")
    if source == "drawing":
        if drawing is None:
            st.info(t("inside.no_drawing"))
            page_link("views/draw.py", "inside.go_draw", ":material/draw:")
            st.stop()
        image = np.asarray(drawing, dtype=np.uint8)
        return Chosen(image, None, "drawing:" + hashlib.sha1(image.tobytes()).hexdigest()[:12])
    mode = c_mode.radio(t("inside.pick"), ["index", "digit", "wrong"], format_func=lambda m: t(f"inside.pick_{m}"),
                        key="inside_pick")
    n_test = len(test_labels)
    if mode == "index":
        st.session_state["inside_index"] = min(int(st.session_state.get("inside_index", 0)), n_test - 1)
        index = int(c_which.number_input(t("inside.index", n=n_test - 1), 0, n_test - 1, step=1, key="inside_index"))
    elif mode == "digit":
        with c_which:
            digit = st.selectbox(t("inside.digit"), range(session.dataset_info.num_classes), format_func=class_name,
                                 key="inside_digit")
            another = st.button(t("inside.another"), key="inside_another", icon=":material/casino:")
        pick = st.session_state.get("inside_random")
        if another or pick is None or pick[0] != digit:
            candidates = np.flatnonzero(test_labels == digit)
            pick = (digit, int(np.random.default_rng().choice(candidates)))
            st.session_state["inside_random"] = pick
        index = pick[1]
    else:
        wrong, pred = wrong_predictions(session, images, test_labels)
        if len(wrong) == 0:
            st.success(t("inside.no_wrong"))
            st.stop()
        st.session_state["inside_wrong_k"] = min(int(st.session_state.get("inside_wrong_k", 1)), len(wrong))
        k = int(c_which.number_input(t("inside.wrong_k", n=len(wrong)), 1, len(wrong), step=1,
                                     key="inside_wrong_k"))
        index = int(wrong[k - 1])
        st.caption(t("inside.wrong_caption", n=len(wrong), total=n_test, index=index,
                     label=class_name(int(test_labels[index])), pred=class_name(int(pred[index]))))
    return Chosen(images[index].numpy(), int(test_labels[index]), f"test:{index}")


def wrong_predictions(session: RunHandle, images: Any, test_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the test images the current weights get wrong, and all predictions (cached per weights)."""
    version = (id(session), session.snapshot().version)
    cached = st.session_state.get("inside_wrong")
    if cached is None or cached[0] != version:
        with st.spinner(t("inside.finding_wrong")):
            pred = predictions(session.model_copy(session.device_name), images, session.dataset_info)
        cached = (version, np.flatnonzero(pred != test_labels), pred)
        st.session_state["inside_wrong"] = cached
    return cached[1], cached[2]


def forget_stale_selections(input_key: str) -> None:
    """Selections that depend on the input start again from their defaults when the input changes."""
    if st.session_state.get("inside_input") != input_key:
        stale = [*STALE, *(key for key in st.session_state if str(key).startswith("inside_unit_"))]
        for key in stale:
            st.session_state.pop(key, None)
        st.session_state["inside_input"] = input_key


# --------------------------------------------------------------------------------- the traced input
def weights_line(session: RunHandle, live: bool) -> None:
    """Whose weights the page shows: untrained, live (changing), or a step of a paused or finished run."""
    progress = session.snapshot().progress
    if session.status == "ready" and not session.is_alive:
        st.warning(t("inside.untrained"))
    elif live:
        st.info(t("inside.live", step=progress.global_step, epoch=progress.epoch, epochs=progress.epochs))
    else:
        st.caption(t("inside.weights_of", step=progress.global_step, epoch=progress.epoch, epochs=progress.epochs,
                     status=t(f"inside.status_{session.status}")))


def dense_layers(layers: Any) -> list[int]:
    return [i for i, lt in enumerate(layers) if lt.is_dense]


def layer_title(lt: Any) -> str:
    shape = shape_text(lt.z.shape)
    if lt.name == "output":
        return t("inside.layer_output", n=shape)
    if lt.activation == IDENTITY:
        return f"{lt.name} · {shape}"
    return f"{lt.name} · {lt.activation} · {shape}"


def heatmap_rows(tr: Any, quantity: str, selected: tuple[int, int] | None, key: str, lang: str) -> None:
    """Every layer's z, a or delta as heatmaps, PER_ROW to a row."""
    for start in range(0, len(tr.layers), PER_ROW):
        cols = st.columns(PER_ROW)
        for col, i in zip(cols, range(start, len(tr.layers))):
            lt = tr.layers[i]
            values = {"z": lt.z, "a": lt.a, "delta": lt.delta}[quantity]
            unit = selected[1] if selected is not None and selected[0] == i else None
            row = lt.units if lt.name == "output" else None  # the output layer in one row: unit j = class j
            with col:
                plot(fi.layer_figure(values, layer_title(lt), quantity, lang, selected=unit, columns=row), f"{key}_{i}")


def unit_tab(tr: Any, layer: int, unit: int, info: DatasetInfo, lang: str) -> None:
    """One neuron's weights and its forward formula with the real numbers."""
    lt = tr.layers[layer]
    if len(dense_layers(tr.layers)) < len(tr.layers):
        st.caption(t("inside.dense_only"))
    uf = unit_forward(tr, layer, unit)
    w_col, n_col = st.columns([2, 1])
    with w_col:
        plot(fi.weights_figure(lt.weight[unit], lt.input_shape, t("inside.fig_weights", unit=unit, layer=lt.name),
                               lang), "inside_fig_weights")
    with n_col:
        st.metric(t("inside.bias"), f"{uf.bias:.4g}")
        st.metric("z", f"{uf.z:.4g}")
        st.metric(t("inside.prob") if uf.is_output else "a", f"{uf.prob:.4g}" if uf.is_output else f"{uf.a:.4g}")
    st.markdown(t("inside.forward_formula"))
    for line in forward_latex(uf):
        st.latex(line)
    st.caption(t("inside.terms_caption", k=len(uf.terms), rest=uf.n_rest))
    if layer == 0:
        st.caption(t("inside.input_norm", mean=f"{info.mean:g}", std=f"{info.std:g}",
                     black=f"{-info.mean / info.std:.4g}", white=f"{(1 - info.mean) / info.std:.4g}"))


def backward_tab(tr: Any, selected: tuple[int, int], lang: str) -> None:
    """The loss, every layer's delta, and the selected unit's gradient with its formula."""
    layer, unit = selected
    lt = tr.layers[layer]
    st.latex(loss_latex(tr))
    st.caption(t("inside.delta_caption"))
    heatmap_rows(tr, "delta", selected, "inside_fig_delta", lang)
    ub = unit_backward(tr, layer, unit, k=3)
    st.markdown(t("inside.backward_formula", unit=unit, layer=lt.name))
    g_col, m_col = st.columns([2, 1])
    with g_col:
        plot(fi.weights_figure(lt.grad_weight[unit], lt.input_shape, t("inside.fig_grad", unit=unit, layer=lt.name),
                               lang), "inside_fig_grad")
    with m_col:
        st.metric("δ", f"{ub.delta:.4g}")
        st.metric("∂J/∂b", f"{ub.grad_bias:.4g}")
    for line in backward_latex(ub):
        st.latex(line)
    explicit = tutorial_deltas(tr)
    diffs = [float(np.abs(d - lt_.delta).max()) for d, lt_ in zip(explicit, tr.layers) if d is not None]
    st.caption(t("inside.check", n=len(diffs), diff=f"{max(diffs):.1e}"))
    st.caption(t("inside.step_hint"))


def saliency_tab(tr: Any, class_name: Callable[[int], str], classes: list[int], lang: str) -> None:
    """Which pixels matter, and what one step on the input does to the guess."""
    s_left, s_right = st.columns(2)
    with s_left:
        plot(fi.saliency_figure(tr.image, tr.saliency, class_name(tr.saliency_class), lang), "inside_fig_saliency")
        st.caption(t("inside.saliency_caption"))
    with s_right:
        after_guess = int(np.argmax(tr.probs_after_step))
        plot(fi.probs_figure(tr.probs, [class_name(i) for i in classes], lang, after=tr.probs_after_step,
                             highlight=tr.prediction), "inside_fig_after")
        i_col, txt_col = st.columns([1, 1])
        with i_col:
            plot(fi.image_figure(tr.image_after_step, t("inside.fig_after_image"), lang, height=220),
                 "inside_fig_after_image")
        with txt_col:
            st.metric(t("inside.after_guess"), class_name(after_guess),
                      t("inside.confidence", p=f"{tr.probs_after_step[after_guess]:.1%}"), delta_color="off",
                      delta_arrow="off")
            changed = after_guess != tr.prediction
            st.caption(t("inside.changed" if changed else "inside.unchanged", size=f"{tr.step_size:g}"))
