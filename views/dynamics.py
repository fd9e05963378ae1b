"""Dynamics page: gradients, updates, activations and weights of every layer while the network learns."""
import streamlit as st

from dlplay.classify.probe import ProbeSnapshot
from dlplay.figures.dynamics import (
    activation_figure,
    dead_saturated_figure,
    first_layer_figure,
    gradient_figure,
    heatmap_figure,
    histogram_figure,
    update_ratio_figure,
)
from dlplay.i18n import layer_name
from dlplay.learn.hints import find_hints, schedule_share, share_notes
from dlplay.ui.charts import chart
from dlplay.ui.i18n import current_language, t
from dlplay.ui.state import current_session, heartbeat, init_state, is_active, probe_every, set_probe_every

EVERY_OPTIONS = (10, 20, 50, 100, 200, 500, 1000)  # steps between measurements
CURVES_EVERY_S = 1.0  # hints and time series
DETAILS_EVERY_S = 3.0  # heatmap, histograms, first-layer images: heavier to draw in the browser

init_state()
lang = current_language()

st.title(t("dynamics.title"))
st.caption(t("dynamics.intro"))
st.session_state["dyn_every"] = probe_every()  # the widget shows the setting; it has no default of its own
st.select_slider(t("dynamics.every"), options=EVERY_OPTIONS, key="dyn_every", help=t("dynamics.every_help"),
                 on_change=lambda: set_probe_every(st.session_state["dyn_every"]))

session = current_session()
if session is None:
    st.info(t("dynamics.no_session"))
    st.page_link("views/train.py", label=t("dynamics.go_train"), icon=":material/model_training:")
    st.stop()

was_active = is_active(session)


def latest_probe() -> ProbeSnapshot | None:
    session = current_session()
    return None if session is None else session.probe_snapshot()


@st.fragment(run_every=CURVES_EVERY_S if was_active else None)
def curves() -> None:
    session = current_session()
    if session is None:
        return
    heartbeat()
    snap = session.snapshot()
    p = snap.progress
    probe = session.probe_snapshot()
    every = session.probe_every()  # the setting now (the snapshot's is the one of its last probe)
    if probe is None or probe.probes == 0:
        st.info(t("dynamics.waiting") if every is not None else t("dynamics.no_probe"))
    else:
        st.caption(t("dynamics.status", status=t(f"train.status_{p.status}"), step=p.global_step,
                     total=p.total_steps, probe_step=probe.last_step, every=every, probes=probe.probes))
        draw_curves(probe, schedule_share(session.config.schedule, probe, session.total_steps))
    if was_active and not is_active(session):
        st.rerun()  # the run ended: a full rerun stops the polling


def draw_curves(probe: ProbeSnapshot, lr_share: float) -> None:
    hints = find_hints(probe, lr_share=lr_share)  # small steps where the schedule plans them are no warning
    with st.container(key="dyn_hints"):
        st.subheader(t("dynamics.hints_title"))
        if hints:
            for hint in hints:
                (st.warning if hint.level == "warning" else st.info)(hint.text(lang), icon=":material/lightbulb:")
        else:
            st.success(t("dynamics.no_hints"), icon=":material/check_circle:")
            for note in share_notes(probe):  # the largest share of dead/saturated units, and the hint's threshold
                st.caption(note.text(lang))

    st.subheader(t("dynamics.sec_gradients"))
    kind = st.radio(t("dynamics.grad_kind"), ["grad_w", "delta"], horizontal=True, key="dyn_grad_kind",
                    format_func=lambda k: t("dynamics.grad_kind_w" if k == "grad_w" else "dynamics.grad_kind_delta"))
    c1, c2 = st.columns(2)
    with c1:
        with st.container(key="dyn_grad_chart"):
            chart(st, gradient_figure(probe, lang, kind), width="stretch", key="dyn_grad_fig")
        st.caption(t("dynamics.cap_grad"))
    with c2:
        chart(st, update_ratio_figure(probe, lang), width="stretch", key="dyn_update_fig")
        st.caption(t("dynamics.cap_update"))

    st.subheader(t("dynamics.sec_activations"))
    c1, c2 = st.columns(2)
    chart(c1, activation_figure(probe, lang), width="stretch", key="dyn_act_fig")
    chart(c2, dead_saturated_figure(probe, lang), width="stretch", key="dyn_dead_fig")
    st.caption(t("dynamics.cap_act"))


@st.fragment(run_every=DETAILS_EVERY_S if was_active else None)
def details() -> None:
    probe = latest_probe()
    if probe is None or probe.probes == 0:
        return
    st.subheader(t("dynamics.sec_heatmap"))
    names = [layer_name(m.name, lang) for m in probe.layers]
    choice = st.selectbox(t("dynamics.heat_layer"), range(len(names)), format_func=names.__getitem__,
                          key="dyn_heat_layer")
    choice = choice if choice is not None and choice < len(names) else 0
    chart(st, heatmap_figure(probe, choice, lang), width="stretch", key="dyn_heat_fig")
    st.caption(t("dynamics.cap_heat"))

    st.subheader(t("dynamics.sec_weights"))
    c1, c2 = st.columns(2)
    with c1:
        chart(st, histogram_figure(probe, lang), width="stretch", key="dyn_hist_fig")
        st.caption(t("dynamics.cap_hist"))
    with c2:
        chart(st, first_layer_figure(probe, lang), width="stretch", key="dyn_first_fig")
        conv = probe.first_layer is not None and probe.first_layer.startswith("conv")
        st.caption(t("dynamics.cap_first_conv" if conv else "dynamics.cap_first"))


curves()
details()
