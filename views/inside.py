"""Inside the network: one input's forward and backward pass with the current weights, in real numbers."""
from __future__ import annotations

import numpy as np
import streamlit as st

from dlplay.classify.predict import probabilities
from dlplay.figures import inside as fi
from dlplay.learn.trace import DEFAULT_STEP_SIZE, second_best, trace
from dlplay.ui import inside as ins
from dlplay.ui.exercises import tryit_tab
from dlplay.ui.i18n import current_language, t
from dlplay.ui.state import current_session, heartbeat, init_state

init_state()
lang = current_language()
st.title(t("inside.title"))
st.caption(t("inside.intro"))

# --------------------------------------------------------------------------------- no run yet
session = current_session()
if session is None:
    st.info(t("inside.no_run"))
    if st.session_state.get(ins.QUICK_ERROR):
        st.error(st.session_state.pop(ins.QUICK_ERROR))
    left, right = st.columns(2)
    with left:
        st.button(t("inside.quick_train"), key="inside_quick_train", type="primary", help=t("inside.quick_train_help"),
                  on_click=ins.quick_train)
    with right:
        ins.page_link("views/train.py", "inside.go_train", ":material/model_training:")
    st.stop()

heartbeat()
info = session.dataset_info
names = ins.class_names(info, lang)
class_name = names.__getitem__

# --------------------------------------------------------------------------------- choose the input
chosen = ins.choose_input(session, class_name)
image, label = chosen.image, chosen.label
ins.forget_stale_selections(chosen.key)

# --------------------------------------------------------------------------------- the live view
live = ins.is_live(session)


@st.fragment(run_every=ins.POLL_S if live else None)
def inside_view() -> None:
    run = current_session()
    if run is None:
        st.rerun()
    heartbeat()
    if live and not ins.is_live(run):
        st.rerun()  # the run has finished or paused: a full rerun stops the polling
    ins.weights_line(run, live)

    model = run.model_copy()
    now = probabilities(model, image, info)
    guess = int(np.argmax(now))
    classes = list(range(info.num_classes))
    st.session_state.setdefault("inside_target", label if label is not None else guess)
    st.session_state.setdefault("inside_saliency_class", guess)
    st.session_state.setdefault("inside_step_class", second_best(now))
    st.session_state.setdefault("inside_step_size", DEFAULT_STEP_SIZE)

    top = st.container()
    tabs = st.tabs([t("inside.tab_forward"), t("inside.tab_unit"), t("inside.tab_backward"), t("inside.tab_saliency"),
                    t("exercises.tab")])
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
    dense = ins.dense_layers(tr.layers)

    with top:
        with c_img:
            ins.plot(fi.image_figure(tr.image, t("inside.fig_input"), lang), "inside_fig_input")
        with c_probs:
            ins.plot(fi.probs_figure(tr.probs.tolist(), [class_name(i) for i in classes], lang,
                                     highlight=tr.prediction), "inside_fig_probs")
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
        layer = n1.selectbox(t("inside.unit_layer"), dense, format_func=lambda i: ins.layer_title(tr.layers[i]),
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
        ins.heatmap_rows(tr, quantity, selected, "inside_fig_fwd", lang)
        if any(not lt.is_dense for lt in tr.layers):
            st.caption(t("inside.conv_caption"))

    with tabs[1]:
        ins.unit_tab(tr, layer, unit, info, lang)
    with tabs[2]:
        ins.backward_tab(tr, selected, lang)
    with tabs[3]:
        ins.saliency_tab(tr, class_name, classes, lang)
    with tabs[4]:
        tryit_tab(tr, run, chosen.key, live)


inside_view()
