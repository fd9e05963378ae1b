"""2-D playground: points on a plane, a small network, and its decision boundary forming as it learns
(TensorFlow Playground's lesson), with each neuron's own picture on the network diagram."""
import streamlit as st

from dlplay.figures import plane as fp
from dlplay.plane import datasets as ds
from dlplay.plane.features import FEATURES
from dlplay.plane.session import MAX_LAYERS, MAX_NEURONS
from dlplay.run.status import PROBLEM, Status
from dlplay.ui import plane as pl
from dlplay.ui import plane_edit as pe
from dlplay.ui.charts import chart
from dlplay.ui.i18n import current_language, t
from dlplay.ui.state import init_state
from dlplay.ui.training import PACE_CHOICES, pace_label

init_state()
pl.init_plane_state()
lang = current_language()
st.title(t("plane.title"))
st.caption(t("plane.intro"))

# ==================================================================== settings
with st.sidebar:
    st.subheader(t("plane.data"))
    st.selectbox(t("plane.dataset"), ds.NAMES, key=pl.WIDGETS["dataset"], format_func=lambda d: t(f"plane.data_{d}"),
                 help=t("plane.dataset_help"))
    st.slider(t("plane.noise"), 0, ds.MAX_NOISE, step=5, key=pl.WIDGETS["noise"], help=t("plane.noise_help"))
    st.select_slider(t("plane.ratio"), pl.RATIO_CHOICES, key=pl.WIDGETS["test_ratio"],
                     format_func=lambda r: f"{round(100 * r)}%", help=t("plane.ratio_help"))
    st.number_input(t("plane.seed"), 0, 2**31 - 1, step=1, key=pl.WIDGETS["seed"], help=t("plane.seed_help"))
    st.subheader(t("plane.features"))
    st.pills(t("plane.features_pick"), list(FEATURES), key=pl.WIDGETS["features"], selection_mode="multi",
             format_func=pl.feature_label, help=t("plane.features_help"))  # text, not LaTeX: a screen reader reads it
    st.subheader(t("plane.network"))
    st.number_input(t("plane.layers"), 0, MAX_LAYERS, step=1, key=pl.LAYERS_KEY, help=t("plane.layers_help"))
    layers = int(st.session_state[pl.LAYERS_KEY])
    if layers:
        cols = st.columns(3)
        for i in range(layers):
            cols[i % 3].number_input(t("plane.units", n=i + 1), 1, MAX_NEURONS, step=1, key=pl.UNITS_KEY.format(i))
    st.selectbox(t("plane.activation"), pl.choices("activation"), key=pl.WIDGETS["activation"],
                 format_func=lambda a: t(f"plane.act_{a}"))
    st.subheader(t("plane.training"))
    st.selectbox(t("plane.optimizer"), pl.choices("optimizer"), key=pl.WIDGETS["optimizer"],
                 format_func=lambda o: t(f"train.opt_{o}"), help=t("plane.optimizer_help"))
    st.select_slider(t("plane.lr"), pl.LR_CHOICES, key=pl.WIDGETS["lr"], format_func=lambda v: f"{v:g}",
                     help=t("plane.lr_help"))
    st.select_slider(t("plane.batch"), pl.BATCH_CHOICES, key=pl.WIDGETS["batch_size"], help=t("plane.batch_help"))
    st.selectbox(t("plane.reg"), pl.choices("regularization"), key=pl.WIDGETS["regularization"],
                 format_func=lambda r: t(f"plane.reg_{r}"), help=t("plane.reg_help"))
    if st.session_state[pl.WIDGETS["regularization"]] != "none":
        st.select_slider(t("plane.reg_rate"), pl.REG_RATES, key=pl.WIDGETS["reg_rate"], format_func=lambda v: f"{v:g}")

if st.session_state[pl.WIDGETS["dataset"]] == ds.DRAWN:
    with st.expander(t("plane.draw_title"), expanded=True, icon=":material/ads_click:"):
        st.caption(t("plane.draw_help"))
        pl.drawn_points_input()

run = pl.current_run()
problem = st.session_state.get(pl.ERROR_KEY)
if problem:
    st.error(problem, icon=":material/error:")
data_problem = st.session_state.get(pl.DATA_ERROR_KEY)
if data_problem:
    st.info(data_problem, icon=":material/ads_click:")


# ==================================================================== the live view
def controls(run, status: str) -> None:
    cols = st.columns([1, 1, 1, 3])
    if status in (Status.RUNNING, Status.QUEUED):
        cols[0].button(t("plane.pause"), key="plane_pause", icon=":material/pause:", on_click=pl.on_pause,
                       width="stretch")
    else:
        cols[0].button(t("plane.play"), key="plane_play", type="primary", icon=":material/play_arrow:",
                       on_click=pl.on_play, disabled=run is None, width="stretch", help=t("plane.play_help"))
    cols[1].button(t("plane.step"), key="plane_step", icon=":material/skip_next:", on_click=pl.on_step,
                   disabled=run is None or status in (Status.RUNNING, Status.QUEUED), width="stretch",
                   help=t("plane.step_help"))
    cols[2].button(t("plane.reset"), key="plane_reset", icon=":material/restart_alt:", on_click=pl.on_reset,
                   disabled=run is None, width="stretch", help=t("plane.reset_help"))
    pl.sync_pace_widget(run)
    cols[3].select_slider(t("plane.pace"), PACE_CHOICES, key=pl.PACE_KEY, format_func=pace_label, on_change=pl.on_pace,
                          help=t("plane.pace_help"), label_visibility="collapsed")


def live(polling: bool) -> None:
    run = pl.run_of()
    view = pl.view_of(run)
    controls(run, view.status)
    if run is not None:
        pl.heartbeat()
        if view.message:
            (st.error if view.status in PROBLEM else st.info)(t(view.message, **view.message_params))
    snap = view.snapshot
    options = pl.neuron_options(run, view.grid) if run is not None and view.grid is not None else []
    node = pl.chosen_neuron(options) if options else (0, 0)
    edited = pe.edited_view(run, view.status, node) if options else None  # the learner's edited copy, if editing
    train_loss, test_loss, test_acc = pe.metric_values(edited, snap)
    m = st.columns(5)
    m[0].metric(t("plane.m_status"), t(f"train.status_{view.status}"))
    m[1].metric(t("plane.m_epoch"), f"{view.epoch:,}")
    m[2].metric(t("plane.m_train_loss"), pl.number(train_loss))
    m[3].metric(t("plane.m_test_loss"), pl.number(test_loss))
    with m[4].container(key="plane_test_acc"):
        st.metric(t("plane.m_test_acc"), pl.percent(test_acc))
    pe.toggle(run, view.status)
    if run is None or view.grid is None or view.data is None:
        return
    grid, data = (edited.grid if edited is not None else view.grid), view.data
    fast = polling or edited is not None  # plain images: they redraw at once (10 a second, or after each edit)
    left, right = st.columns([1.35, 1], gap="medium")
    with left:
        tiles = fp.diagram_tiles(grid.inputs, grid.neurons, grid.output, view.regression)
        st.caption(" → ".join(pl.column_titles(run, grid)))
        with st.container(key="plane_network"):
            if fast:  # 10 pictures a second: one PNG (see dlplay/figures/plane.py, live pictures)
                st.image(fp.data_uri(fp.network_jpeg(tiles, grid.weights, selected=node)),
                         alt=t("a11y.alt_plane_network"))
            else:
                chart(st, fp.network_figure(tiles, pl.node_labels(run, grid), grid.weights, selected=node,
                                                  column_titles=pl.column_titles(run, grid)),
                                key="plane_network_fig", width="stretch", config={"displayModeBar": False})
        st.caption(t("plane_edit.network_help" if edited is not None else
                     "plane.network_help_live" if polling else "plane.network_help"))
        a, b = st.columns([1, 1.3])
        with a:
            st.selectbox(t("plane.neuron"), options, key=pl.NEURON_KEY,
                         format_func=lambda n: pl.neuron_title(run, grid, n), help=t("plane.neuron_help"))
        with b, st.container(key="plane_neuron_view"):
            if fast:
                st.markdown(f"**{pl.neuron_title(run, grid, node)}**")
                st.image(fp.data_uri(fp.picture_jpeg(pl.neuron_rgb(run, grid, node))), width=240,
                         alt=t("a11y.alt_plane_neuron"))
            else:
                chart(st, fp.neuron_figure(fp.png_uri(pl.neuron_rgb(run, grid, node)),
                                                 pl.neuron_title(run, grid, node), lang, height=260),
                                key="plane_neuron_fig", width="stretch", config={"displayModeBar": False})
        if edited is not None:
            pe.panel(run, node, edited)
        pe.history(run)
    with right:
        show_test = st.toggle(t("plane.show_test"), value=True, key="plane_show_test")
        heat = fp.output_rgb(grid.output, view.regression)
        with st.container(key="plane_output"):
            if fast:
                st.markdown(f"**{t('plane.fig_plane_title')}**")
                st.image(fp.data_uri(fp.plane_jpeg(heat, pl.points_layer(run, show_test))), width="stretch",
                         alt=t("a11y.alt_plane"))
            else:
                chart(st, fp.plane_figure(fp.png_uri(heat), data.x_train, data.y_train, data.x_test, data.y_test,
                                                lang, classes=view.classes, regression=view.regression,
                                                show_test=show_test),
                                key="plane_output_fig", width="stretch", config={"displayModeBar": False})
        st.caption(t("plane.output_help_regress" if view.regression else "plane.output_help"))
        if snap is not None and fast:  # while editing the curves do not change: no Plotly chart to redraw
            st.markdown(f"**{t('plane.fig_loss_title')}**")
            st.image(fp.data_uri(fp.loss_jpeg(snap.epochs, snap.train_loss, snap.test_loss)), width="stretch",
                     alt=t("plane.fig_loss_title"))
            st.caption(t("plane.loss_live_help"))
        elif snap is not None:
            chart(st, fp.loss_figure(snap.epochs, snap.train_loss, snap.test_loss, lang), key="plane_loss_fig",
                            width="stretch", config={"displayModeBar": False})
    if polling != pl.is_training(run):
        st.rerun()  # started, paused or ended: a full rerun starts or stops the polling


every = pl.poll_every(pl.run_of())
st.fragment(live, run_every=every)(every is not None)
