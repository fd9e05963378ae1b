"""Inside the network: one input's forward and backward pass with the current weights, in real numbers."""
from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from dlplay import figures_inside as fi
from dlplay.data import class_label
from dlplay.errors import UserError
from dlplay.inference import (
    DEFAULT_STEP_SIZE,
    backward_latex,
    forward_latex,
    loss_latex,
    predictions,
    probabilities,
    second_best,
    trace,
    tutorial_deltas,
    unit_backward,
    unit_forward,
)
from dlplay.ui.i18n import current_language, error_text, t
from dlplay.ui.nav import available_pages
from dlplay.ui.state import current_session, heartbeat, init_state, new_session

DRAWING_KEY = "drawing28"  # the Draw page's current digit: 28x28 uint8 or None
POLL_S = 1.0
PER_ROW = 3
LIVE = ("ready", "queued", "running")  # with the thread alive: the weights are changing
PLOT_CONFIG = {"displayModeBar": False}

init_state()
lang = current_language()
st.title(t("inside.title"))
st.caption(t("inside.intro"))


def page_link(page: str, label_key: str, icon: str) -> None:
    if any(p[0] == page for p in available_pages()):
        st.page_link(page, label=t(label_key), icon=icon)


def is_live(session) -> bool:
    return session is not None and session.is_alive and session.status in LIVE


def plot(fig, key: str) -> None:
    st.plotly_chart(fig, key=key, config=PLOT_CONFIG)


# --------------------------------------------------------------------------------- no run yet
def quick_train() -> None:
    """Button callback: a run from the current design and settings, trained for one epoch, then paused."""
    try:
        fresh = new_session()
        fresh.step(fresh.steps_per_epoch)  # one epoch, then it waits (it can be resumed on the Train page)
    except UserError as exc:
        st.session_state["inside_quick_error"] = error_text(exc)


session = current_session()
if session is None:
    st.info(t("inside.no_run"))
    if st.session_state.get("inside_quick_error"):
        st.error(st.session_state.pop("inside_quick_error"))
    left, right = st.columns(2)
    with left:
        st.button(t("inside.quick_train"), key="inside_quick_train", type="primary", help=t("inside.quick_train_help"),
                  on_click=quick_train)
    with right:
        page_link("pages/train.py", "inside.go_train", ":material/model_training:")
    st.stop()

heartbeat()
dataset = session.dataset
info = dataset.info
names = [class_label(info, i, lang) for i in range(info.num_classes)]


def class_name(i: int) -> str:
    return f"{i} · {names[i]}" if names[i] != str(i) else str(i)


# --------------------------------------------------------------------------------- choose the input
test_labels = dataset.test_labels.cpu().numpy()
drawing = st.session_state.get(DRAWING_KEY)
handoff = st.session_state.pop("inside_test_index", None)  # a mistake clicked on the Evaluate page
if handoff is not None:
    st.session_state.update(inside_source="test", inside_pick="index", inside_index=int(handoff))
sources = ["test", "drawing"]
c_source, c_mode, c_which = st.columns([1, 1.6, 1.4], vertical_alignment="bottom")
source = c_source.radio(t("inside.source"), sources, format_func=lambda s: t(f"inside.source_{s}"), key="inside_source")
image: np.ndarray | None = None
label: int | None = None
if source == "drawing":
    if drawing is None:
        st.info(t("inside.no_drawing"))
        page_link("pages/draw.py", "inside.go_draw", ":material/draw:")
        st.stop()
    image = np.asarray(drawing, dtype=np.uint8)
    input_key = "drawing:" + hashlib.sha1(image.tobytes()).hexdigest()[:12]
else:
    modes = ["index", "digit", "wrong"]
    mode = c_mode.radio(t("inside.pick"), modes, format_func=lambda m: t(f"inside.pick_{m}"), key="inside_pick")
    n_test = len(test_labels)
    index: int | None = None
    if mode == "index":
        st.session_state["inside_index"] = min(int(st.session_state.get("inside_index", 0)), n_test - 1)
        index = int(c_which.number_input(t("inside.index", n=n_test - 1), 0, n_test - 1, step=1, key="inside_index"))
    elif mode == "digit":
        with c_which:
            digit = st.selectbox(t("inside.digit"), range(info.num_classes), format_func=class_name, key="inside_digit")
            another = st.button(t("inside.another"), key="inside_another", icon=":material/casino:")
        pick = st.session_state.get("inside_random")
        if another or pick is None or pick[0] != digit:
            candidates = np.flatnonzero(test_labels == digit)
            pick = (digit, int(np.random.default_rng().choice(candidates)))
            st.session_state["inside_random"] = pick
        index = pick[1]
    else:
        version = (id(session), session.snapshot().version)
        cached = st.session_state.get("inside_wrong")
        if cached is None or cached[0] != version:
            with st.spinner(t("inside.finding_wrong")):
                pred = predictions(session.model_copy(session.device), dataset.test_images, info)
            cached = (version, np.flatnonzero(pred != test_labels), pred)
            st.session_state["inside_wrong"] = cached
        _, wrong, pred = cached
        if len(wrong) == 0:
            st.success(t("inside.no_wrong"))
            st.stop()
        st.session_state["inside_wrong_k"] = min(int(st.session_state.get("inside_wrong_k", 1)), len(wrong))
        k = int(c_which.number_input(t("inside.wrong_k", n=len(wrong)), 1, len(wrong), step=1,
                                     key="inside_wrong_k"))
        index = int(wrong[k - 1])
        st.caption(t("inside.wrong_caption", n=len(wrong), total=n_test, index=index, label=class_name(int(test_labels[index])),
                     pred=class_name(int(pred[index]))))
    image = dataset.test_images[index].cpu().numpy()
    label = int(test_labels[index])
    input_key = f"test:{index}"

# selections that depend on the input start again from their defaults when the input changes
if st.session_state.get("inside_input") != input_key:
    stale = ["inside_target", "inside_saliency_class", "inside_step_class"]
    stale += [key for key in st.session_state if str(key).startswith("inside_unit_")]
    for key in stale:
        st.session_state.pop(key, None)
    st.session_state["inside_input"] = input_key


def dense_layers(layers) -> list[int]:
    return [i for i, lt in enumerate(layers) if lt.is_dense]


def layer_title(lt) -> str:
    shape = "×".join(str(s) for s in lt.z.shape)
    if lt.name == "output":
        return t("inside.layer_output", n=shape)
    if lt.activation == "identity":
        return f"{lt.name} · {shape}"
    return f"{lt.name} · {lt.activation} · {shape}"


def heatmap_rows(tr, quantity: str, selected: tuple[int, int] | None, key: str) -> None:
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


# --------------------------------------------------------------------------------- the live view
live = is_live(session)


@st.fragment(run_every=POLL_S if live else None)
def inside_view() -> None:
    run = current_session()
    if run is None:
        st.rerun()
    heartbeat()
    if live and not is_live(run):
        st.rerun()  # the run has finished or paused: a full rerun stops the polling
    progress = run.snapshot().progress
    status_text = t(f"inside.status_{run.status}")
    if run.status == "ready" and not run.is_alive:
        st.warning(t("inside.untrained"))
    elif live:
        st.info(t("inside.live", step=progress.global_step, epoch=progress.epoch, epochs=progress.epochs))
    else:
        st.caption(t("inside.weights_of", step=progress.global_step, epoch=progress.epoch, epochs=progress.epochs,
                     status=status_text))

    model = run.model_copy()
    now = probabilities(model, image, info)
    guess = int(np.argmax(now))
    classes = list(range(info.num_classes))
    st.session_state.setdefault("inside_target", label if label is not None else guess)
    st.session_state.setdefault("inside_saliency_class", guess)
    st.session_state.setdefault("inside_step_class", second_best(now))
    st.session_state.setdefault("inside_step_size", DEFAULT_STEP_SIZE)

    top = st.container()
    tabs = st.tabs([t("inside.tab_forward"), t("inside.tab_unit"), t("inside.tab_backward"), t("inside.tab_saliency")])
    # widgets first (their values feed the trace), figures after it
    with tabs[3]:
        s_left, s_right = st.columns(2)
        saliency_class = s_left.selectbox(t("inside.saliency_class"), classes, format_func=class_name,
                                          key="inside_saliency_class", help=t("inside.saliency_help"))
        with s_right:
            c1, c2 = st.columns(2)
            step_class = c1.selectbox(t("inside.step_class"), classes, format_func=class_name, key="inside_step_class")
            step_size = c2.slider(t("inside.step_size"), 0.0, 10.0, step=0.5, key="inside_step_size",
                                  help=t("inside.step_size_help"))
    c_img, c_probs, c_num = top.columns([1, 2, 1])
    with c_num:
        target = st.selectbox(t("inside.target"), classes, format_func=class_name, key="inside_target",
                              help=t("inside.target_help"))
    tr = trace(model, image, info, target=target, label=label, saliency_class=saliency_class,
               step_class=step_class, step_size=step_size)
    dense = dense_layers(tr.layers)

    with top:
        with c_img:
            plot(fi.image_figure(tr.image, t("inside.fig_input"), lang), "inside_fig_input")
        with c_probs:
            plot(fi.probs_figure(tr.probs, [class_name(i) for i in classes], lang, highlight=tr.prediction),
                 "inside_fig_probs")
        with c_num:
            st.metric(t("inside.prediction"), class_name(tr.prediction),
                      t("inside.confidence", p=f"{tr.probs[tr.prediction]:.1%}"), delta_color="off", delta_arrow="off")
            if label is not None:
                st.metric(t("inside.true_label"), class_name(label))
            st.metric(t("inside.loss", target=tr.target), f"{tr.loss:.4f}")

    # ---- one neuron: selection widgets (also used to outline the unit in the heatmaps)
    with tabs[1]:
        n1, n2 = st.columns(2)
        if st.session_state.get("inside_layer") not in dense:
            st.session_state["inside_layer"] = dense[0]
        layer = n1.selectbox(t("inside.unit_layer"), dense, format_func=lambda i: layer_title(tr.layers[i]),
                             key="inside_layer")
        lt = tr.layers[layer]
        unit_key = f"inside_unit_{layer}"
        if unit_key not in st.session_state:
            st.session_state[unit_key] = tr.target if lt.name == "output" else int(np.argmax(np.abs(lt.a)))
        st.session_state[unit_key] = min(int(st.session_state[unit_key]), lt.units - 1)
        unit = int(n2.number_input(t("inside.unit", n=lt.units - 1), 0, lt.units - 1, step=1, key=unit_key,
                                   help=t("inside.unit_help")))
    selected = (layer, unit)

    with tabs[0]:
        quantity = st.radio(t("inside.quantity"), ["z", "a"], format_func=lambda q: t(f"inside.quantity_{q}"),
                            horizontal=True, key="inside_quantity")
        st.caption(t("inside.forward_caption"))
        heatmap_rows(tr, quantity, selected, "inside_fig_fwd")
        if any(not lt.is_dense for lt in tr.layers):
            st.caption(t("inside.conv_caption"))

    with tabs[1]:
        if len(dense) < len(tr.layers):
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

    with tabs[2]:
        st.latex(loss_latex(tr))
        st.caption(t("inside.delta_caption"))
        heatmap_rows(tr, "delta", selected, "inside_fig_delta")
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

    with tabs[3]:
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
                          t("inside.confidence", p=f"{tr.probs_after_step[after_guess]:.1%}"), delta_color="off", delta_arrow="off")
                changed = after_guess != tr.prediction
                st.caption(t("inside.changed" if changed else "inside.unchanged", size=f"{tr.step_size:g}"))


inside_view()
