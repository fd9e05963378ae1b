"""Generate: two networks in a contest. The 2-D lab (GAN Lab's lesson: D's verdict over the plane, the
generator's grid, the gradient arrows, step D / step G) and MNIST digits (filmstrip, curves, then the
learner's classifier grades what the generator made)."""
import streamlit as st

from dlplay.figures import gan as fg
from dlplay.run.status import PROBLEM, Status
from dlplay.ui import generate as gen
from dlplay.ui.charts import chart
from dlplay.ui.data import show_data_problem
from dlplay.ui.i18n import current_language, t
from dlplay.ui.state import init_state
from dlplay.ui.training import pace_label

init_state()
gen.init_generate_state()
lang = current_language()
st.title(t("generate.title"))
st.caption(t("generate.intro"))

mode = st.radio(t("generate.mode"), gen.MODES, key=gen.MODE_KEY, horizontal=True, persist_state=gen.PERSIST,
                format_func=lambda m: t(f"generate.mode_{m}"))
problem = st.session_state.get(gen.ERROR_KEY)
if problem:
    st.error(problem, icon=":material/error:")
show_data_problem("generate")


def run_message(status: str, message: str, params: dict) -> None:
    if message:
        (st.error if status in PROBLEM else st.info)(t(message, **params))


# ==================================================================== the 2-D lab
def lab_settings() -> None:
    with st.sidebar:
        st.subheader(t("generate.lab_settings"))
        shapes = gen.lab_shapes()
        st.selectbox(t("generate.shape"), shapes, key=gen.SHAPE_KEY, index=shapes.index(gen.DEFAULT_SHAPE),
                     persist_state=gen.PERSIST,
                     format_func=lambda s: t(f"generate.shape_{s}"), help=t("generate.shape_help"))
        st.select_slider(t("generate.lab_steps"), gen.LAB_STEP_CHOICES, key=gen.LAB_STEPS_KEY, value=gen.LAB_STEPS_DEFAULT,
                         format_func=lambda n: f"{n:,}", help=t("generate.lab_steps_help"), persist_state=gen.PERSIST)
        st.caption(t("generate.lab_defaults", **gen.lab_defaults()))
    if st.session_state.get(gen.SHAPE_KEY) == gen.DRAWN:
        st.markdown(f"**{t('generate.draw_title')}**")
        gen.drawn_points_input()
        problem, refused = gen.drawn_problem()  # the drawing's one current message, beside it
        if problem:
            with st.container(key="gen_drawn_problem"):
                (st.error if refused else st.warning)(problem, icon=":material/gesture:")


def lab_controls(run, status: str) -> None:
    cols = st.columns(6)
    busy = status in (Status.RUNNING, Status.QUEUED)
    cols[0].button(t("generate.start"), key="gen_lab_start", type="primary", icon=":material/play_arrow:",
                   on_click=gen.on_lab_start, disabled=busy, width="stretch", help=t("generate.start_help"))
    if status == Status.PAUSED:
        cols[1].button(t("generate.resume"), key="gen_lab_resume", icon=":material/resume:",
                       on_click=gen.on_resume, args=(gen.LAB_RUN,), width="stretch")
    else:
        cols[1].button(t("generate.pause"), key="gen_lab_pause", icon=":material/pause:", on_click=gen.on_pause,
                       args=(gen.LAB_RUN,), disabled=status != Status.RUNNING, width="stretch")
    for col, which in zip(cols[2:5], ("d", "g", "both")):
        col.button(t(f"generate.step_{which}"), key=f"gen_lab_step_{which}", icon=":material/skip_next:",
                   on_click=gen.on_lab_step, args=(which,), disabled=busy, help=t(f"generate.step_{which}_help"),
                   width="stretch")
    cols[5].button(t("generate.reset"), key="gen_lab_reset", icon=":material/restart_alt:", on_click=gen.on_reset,
                   args=(gen.LAB_RUN,), disabled=run is None, width="stretch")
    gen.sync_pace_widget(run, gen.LAB_PACE_KEY)
    st.select_slider(t("generate.pace"), gen.LAB_PACE_CHOICES, key=gen.LAB_PACE_KEY, format_func=pace_label,
                     persist_state=gen.PERSIST,
                     on_change=gen.on_pace, args=(gen.LAB_RUN, gen.LAB_PACE_KEY), help=t("generate.pace_help"))


def lab_live(polling: bool) -> None:
    run = gen.run_of(gen.LAB_RUN)
    view = gen.lab_view(run)
    lab_controls(run, view.status)
    if run is None:
        st.info(t("generate.lab_press_start"), icon=":material/touch_app:")
    else:
        gen.heartbeat()
        run_message(view.status, view.message, view.message_params)
    st.progress(view.fraction, text=t("generate.progress", step=f"{view.step:,}", total=f"{view.total:,}"))
    if run is not None and view.status == Status.DONE:
        with st.container(key="gen_lab_finished"):
            st.info(t("generate.lab_finished", total=f"{view.total:,}"), icon=":material/flag:")
    m = st.columns(5)
    m[0].metric(t("generate.m_status"), t(f"train.status_{view.status}"))
    m[1].metric(t("generate.m_step"), f"{view.step:,}")
    m[2].metric(t("generate.m_d_loss"), gen.number(view.last("d_loss")))
    m[3].metric(t("generate.m_g_loss"), gen.number(view.last("g_loss")))
    m[4].metric(t("generate.m_divergence", name=view.divergence_name), gen.number(view.last("divergence")))
    # the layer pills across the page's width: in the plane's column the last ones were cut ("gradient a…")
    layers = st.pills(t("generate.layers"), gen.PLANE_LAYERS, key=gen.LAYERS_KEY, selection_mode="multi",
                      default=list(gen.PLANE_LAYERS), persist_state=gen.PERSIST, format_func=lambda k: t(f"generate.layer_{k}"))
    left, right = st.columns([1.25, 1], gap="medium")
    with left:
        with st.container(key="gen_plane"):
            chart(st, fg.plane_figure(view.xs, view.ys, view.d_grid, view.real, view.fake, lang,
                                            manifold=view.manifold, arrows=view.arrows, show=layers or ()),
                            key="gen_plane_fig", width="stretch", config={"displayModeBar": False})
        st.caption(t("generate.plane_help"))
    with right:
        st.markdown(f"**{t('generate.minmax_title')}**")
        st.latex(gen.minmax_latex(view.minimax))
        st.caption(t("generate.minmax_help"))
        chart(st, fg.divergence_figure(view.div_steps.tolist(), view.divergence.tolist(), lang,
                                             view.divergence_name),
                        key="gen_div_fig", width="stretch", config={"displayModeBar": False})
        st.caption(t("generate.divergence_help", name=view.divergence_name))
    c1, c2 = st.columns(2)
    chart(c1, fg.d_outputs_figure(view.steps.tolist(), view.d_real.tolist(), view.d_fake.tolist(), lang),
                    key="gen_lab_dout_fig", width="stretch")
    chart(c2, fg.loss_curves_figure(view.steps.tolist(), view.d_loss.tolist(), view.g_loss.tolist(), lang),
                    key="gen_lab_loss_fig", width="stretch")
    if polling != gen.is_training(run):
        st.rerun()  # started, paused, resumed or ended: a full rerun starts or stops the polling


# ==================================================================== MNIST digits
def digits_settings() -> None:
    with st.sidebar:
        st.subheader(t("generate.digits_settings"))
        presets = gen.digit_presets()
        st.selectbox(t("generate.preset"), presets, key=gen.PRESET_KEY, persist_state=gen.PERSIST,
                     format_func=lambda p: t(f"gan_mnist.preset.{p}.name"))
        st.caption(gen.preset_text(st.session_state.get(gen.PRESET_KEY) or presets[0]))
        st.toggle(t("generate.conditional"), key=gen.CONDITIONAL_KEY, help=t("generate.conditional_help"),
                  persist_state=gen.PERSIST)
        if gen.is_conditional():
            st.selectbox(t("generate.digit"), list(range(10)), key=gen.DIGIT_KEY, help=t("generate.digit_help"),
                         persist_state=gen.PERSIST)
        gen.sync_pace_widget(gen.run_of(gen.DIGITS_RUN), gen.DIGITS_PACE_KEY)
        st.select_slider(t("generate.pace"), gen.LAB_PACE_CHOICES, key=gen.DIGITS_PACE_KEY, format_func=pace_label,
                         persist_state=gen.PERSIST,
                         on_change=gen.on_pace, args=(gen.DIGITS_RUN, gen.DIGITS_PACE_KEY),
                         help=t("generate.pace_help"))


def digits_controls(run, status: str) -> None:
    cols = st.columns(3)
    busy = status in (Status.RUNNING, Status.QUEUED)
    cols[0].button(t("generate.start"), key="gen_digits_start", type="primary", icon=":material/play_arrow:",
                   on_click=gen.on_digits_start, disabled=busy, width="stretch", help=t("generate.digits_start_help"))
    if status == Status.PAUSED:
        cols[1].button(t("generate.resume"), key="gen_digits_resume", icon=":material/resume:",
                       on_click=gen.on_resume, args=(gen.DIGITS_RUN,), width="stretch")
    else:
        cols[1].button(t("generate.pause"), key="gen_digits_pause", icon=":material/pause:", on_click=gen.on_pause,
                       args=(gen.DIGITS_RUN,), disabled=status != Status.RUNNING, width="stretch")
    cols[2].button(t("generate.stop"), key="gen_digits_stop", icon=":material/stop:", on_click=gen.on_stop,
                   args=(gen.DIGITS_RUN,), disabled=not gen.is_active(run), width="stretch")


def digits_live(polling: bool) -> None:
    run = gen.run_of(gen.DIGITS_RUN)
    view = gen.digits_view(run)
    digits_controls(run, view.status)
    if run is None:
        st.info(t("generate.digits_press_start"), icon=":material/touch_app:")
        return
    gen.heartbeat()
    run_message(view.status, view.message, view.message_params)
    if view.loaded_steps is not None and view.status == Status.READY:
        st.info(t("generate.loaded", steps=f"{view.loaded_steps:,}"), icon=":material/upload_file:")
    st.progress(min(1.0, view.fraction), text=t("generate.progress", step=f"{view.step:,}", total=f"{view.total:,}"))
    m = st.columns(4)
    m[0].metric(t("generate.m_status"), t(f"train.status_{view.status}"))
    m[1].metric(t("generate.m_step"), f"{view.step:,}")
    m[2].metric(t("generate.m_d_real"), gen.number(view.last("d_real")))
    m[3].metric(t("generate.m_d_fake"), gen.number(view.last("d_fake")))
    c1, c2 = st.columns(2)
    chart(c1, fg.loss_curves_figure(view.steps.tolist(), view.d_loss.tolist(), view.g_loss.tolist(), lang),
                    key="gen_loss_fig", width="stretch")
    chart(c2, fg.d_outputs_figure(view.steps.tolist(), view.d_real.tolist(), view.d_fake.tolist(), lang),
                    key="gen_dout_fig", width="stretch")
    st.subheader(t("generate.filmstrip"))
    count = len(view.frames)
    if count == 0:
        st.caption(t("generate.filmstrip_wait"))
    else:
        index = gen.frame_index(count)
        if count > 1:
            st.slider(t("generate.frame"), 1, count, key="gen_frame", help=t("generate.frame_help"))
        frame_step, frame = view.frames[index]
        with st.container(key="gen_filmstrip"):
            chart(st, fg.filmstrip_figure(frame, frame_step, index, count, lang), key="gen_film_fig",
                            config={"displayModeBar": False})
        st.caption(t("generate.filmstrip_help", count=count))
    if polling != gen.is_training(run):
        st.rerun()


def digits_tools() -> None:
    """What to do with the generator: interpolate, grade, check memorisation, draw for D, save."""
    run = gen.run_of(gen.DIGITS_RUN)
    if run is None or not gen.has_generator(run):
        return
    tabs = st.tabs([t(f"generate.tab_{k}") for k in gen.TOOL_TABS])
    with tabs[0]:
        st.caption(t("generate.interp_help"))
        st.slider(t("generate.interp"), 0.0, 1.0, 0.5, 0.05, key="gen_interp")
        images, selected = gen.interpolation(run, st.session_state.get("gen_interp", 0.5))
        chart(st, fg.interpolation_figure(images, selected, lang), key="gen_interp_fig",
                        config={"displayModeBar": False})
        st.button(t("generate.interp_new"), key="gen_interp_new", on_click=gen.on_new_pair,
                  icon=":material/shuffle:")
    with tabs[1]:
        st.caption(t("generate.grade_help"))
        st.button(t("generate.grade"), key="gen_grade", type="primary", on_click=gen.on_grade,
                  icon=":material/grading:")
        grade = gen.last_grade(run)
        if grade is not None:
            gen.show_grade(grade, lang)
    with tabs[2]:
        st.caption(t("generate.memo_help"))
        st.button(t("generate.memo"), key="gen_memo", on_click=gen.on_memorisation, icon=":material/search:")
        memo = gen.last_memorisation(run)
        if memo is not None:
            chart(st, fg.pairs_figure(memo.samples, memo.nearest, memo.distances, lang), key="gen_memo_fig",
                            config={"displayModeBar": False})
            st.caption(t("generate.memo_read", mean=f"{memo.mean_distance:.2f}", typical=f"{memo.typical:.2f}"))
    with tabs[3]:
        gen.draw_for_d(run)
    with tabs[4]:
        gen.save_section(run)


if mode == "lab":
    lab_settings()
    lab_every = gen.poll_every(gen.run_of(gen.LAB_RUN))  # only while it trains: paused or ended, drawn once
    st.fragment(lab_live, run_every=lab_every)(lab_every is not None)
else:
    digits_settings()
    digits_every = gen.poll_every(gen.run_of(gen.DIGITS_RUN))
    st.fragment(digits_live, run_every=digits_every)(digits_every is not None)
    digits_tools()
