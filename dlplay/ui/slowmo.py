"""The One step page: a real training step in slow motion, a neuron's weights in the learner's hands, and
the loss landscape around the run. The core is dlplay/learn/slowmo.py and dlplay/learn/landscape.py."""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import streamlit as st

from dlplay.classify.handle import RunHandle
from dlplay.errors import UserError
from dlplay.figures.draw import probability_figure
from dlplay.figures.landscape import landscape_figure
from dlplay.figures.slowmo import step_figure
from dlplay.i18n import layer_name
from dlplay.learn import slowmo as sm
from dlplay.learn.landscape import LandscapeJob
from dlplay.nn.presets import DEFAULT_PRESET, PRESETS
from dlplay.run.status import Status
from dlplay.ui.charts import chart
from dlplay.ui.fork import origin_text
from dlplay.ui.i18n import current_language, error_text, t
from dlplay.ui.state import current_session, fork_run, heartbeat, new_session, set_config, set_spec

RECORD, PHASE, PLAYING, TICK = "slowmo_record", "slowmo_phase_index", "slowmo_playing", "slowmo_tick"
ERROR, CHECK, EDITOR, GIVEN, JOB, RUNS = "slowmo_error", "slowmo_check", "slowmo_editor", "slowmo_given", \
    "slowmo_land_job", "slowmo_runs"
SPEEDS = [0.5, 1.0, 2.0, 4.0]  # phases per second
PLOT_CONFIG = {"displayModeBar": False}
BIAS = -1  # the editor's choice for the bias (a selectbox shows None as no choice)
SIGNED = {sm.FORWARD: True, sm.BACKWARD: True, sm.GRAD: False, sm.UPDATE: False}


# ----------------------------------------------------------------------------- the run
def remember(session: RunHandle) -> None:
    """Keep the handles of the runs this page has shown (the latest few): a fork's parent for the landscape."""
    runs: dict[str, RunHandle] = st.session_state.setdefault(RUNS, {})
    runs[session.run_id] = session
    while len(runs) > 6:
        runs.pop(next(iter(runs)))


def parent_of(session: RunHandle) -> RunHandle | None:
    origin = session.forked_from
    if not origin:
        return None
    runs: dict[str, RunHandle] = st.session_state.get(RUNS, {})
    if origin[0] in runs:
        return runs[origin[0]]
    from dlplay.ui import server

    return server.registry().find(origin[0])


def _wait_paused(session: RunHandle, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while session.status not in (Status.PAUSED, *sm_done()) and time.monotonic() < end:
        time.sleep(0.02)


def sm_done() -> tuple[Status, ...]:
    return (Status.DONE, Status.STOPPED, Status.FAILED, Status.DIVERGED)


def start_tutorial() -> None:
    """Button callback: the tutorial model (784 → 128 ReLU → 10, Adam) as the current run, paused at step 0."""
    preset = PRESETS[DEFAULT_PRESET]
    try:
        set_spec(preset.spec)
        set_config(preset.config)
        session = new_session()
        session.start(paused=True)
        _wait_paused(session)
    except UserError as exc:
        st.session_state[ERROR] = error_text(exc)
    _forget()


def pause_run() -> None:
    session = current_session()
    if session is not None:
        if session.status == Status.READY:
            session.start(paused=True)
        else:
            session.pause()
        _wait_paused(session)
    _forget()


def _forget() -> None:
    for key in (RECORD, EDITOR, CHECK):
        st.session_state.pop(key, None)
    st.session_state[PHASE] = 0
    st.session_state[PLAYING] = False


def current_record(session: RunHandle) -> sm.StepRecord | None:
    """The recorded next step of the paused run (recorded now if the run moved on); None with an error shown."""
    record: sm.StepRecord | None = st.session_state.get(RECORD)
    done = int(session.snapshot().progress.global_step)
    if record is not None and record.run_id == session.run_id and record.step == done + 1:
        return record
    try:
        with st.spinner(t("slowmo.recording", step=done + 1)):
            record = sm.record_next_step(session)
    except UserError as exc:
        st.error(error_text(exc))
        return None
    st.session_state[RECORD] = record
    st.session_state[PHASE] = 0
    st.session_state.pop(EDITOR, None)
    return record


# ----------------------------------------------------------------------------- the player
def _phase_count() -> int:
    record = st.session_state.get(RECORD)
    return len(record.phases) if record is not None else 1


def on_prev() -> None:
    st.session_state[PLAYING] = False
    st.session_state[PHASE] = max(0, st.session_state.get(PHASE, 0) - 1)


def on_next() -> None:
    st.session_state[PLAYING] = False
    st.session_state[PHASE] = min(_phase_count() - 1, st.session_state.get(PHASE, 0) + 1)


def on_play() -> None:
    playing = not st.session_state.get(PLAYING, False)
    if playing and st.session_state.get(PHASE, 0) >= _phase_count() - 1:
        st.session_state[PHASE] = 0
    st.session_state[PLAYING] = playing
    st.session_state[TICK] = time.monotonic()


def on_take_step() -> None:
    """Button callback: the run takes the recorded step itself; its weights are compared with the replay's."""
    session = current_session()
    record = st.session_state.get(RECORD)
    if session is None or record is None:
        return
    try:
        diff = sm.take_step(session, record)
    except UserError as exc:
        st.session_state[ERROR] = error_text(exc)
        return
    st.session_state[CHECK] = (record.step, diff)
    _forget_keep_check()


def _forget_keep_check() -> None:
    check = st.session_state.get(CHECK)
    _forget()
    st.session_state[CHECK] = check


def _name(block: str) -> str:
    """A block's name as the learner reads it (``output`` translated)."""
    return layer_name(block, current_language())


def phase_title(record: sm.StepRecord, phase: sm.Phase) -> str:
    if phase.kind == sm.LOSS:
        return t("slowmo.phase_loss")
    return t(f"slowmo.phase_{phase.kind}", layer=phase.layer + 1, name=_name(record.layers[phase.layer].name))


def controls() -> None:
    record: sm.StepRecord = st.session_state[RECORD]
    n = len(record.phases)
    i = min(st.session_state.get(PHASE, 0), n - 1)
    cols = st.columns([1.3, 1.3, 1.3, 2, 3])
    cols[0].button(t("slowmo.prev"), key="slowmo_prev", icon=":material/skip_previous:", on_click=on_prev,
                   disabled=i == 0, use_container_width=True)
    playing = st.session_state.get(PLAYING, False)
    cols[1].button(t("slowmo.pause") if playing else t("slowmo.play"), key="slowmo_play",
                   icon=":material/pause:" if playing else ":material/play_arrow:", on_click=on_play,
                   use_container_width=True)
    cols[2].button(t("slowmo.next"), key="slowmo_next", icon=":material/skip_next:", on_click=on_next,
                   disabled=i >= n - 1, use_container_width=True)
    cols[3].select_slider(t("slowmo.speed"), SPEEDS, value=1.0, key="slowmo_speed", format_func=lambda v: f"{v:g}/s")
    cols[4].button(t("slowmo.take"), key="slowmo_take", type="primary", icon=":material/check_circle:",
                   on_click=on_take_step, help=t("slowmo.take_help"), use_container_width=True)


def _chart_pick() -> list | None:
    """(layer, neuron) of a neuron clicked on the diagram that has not been applied yet, else None."""
    event = st.session_state.get("slowmo_chart")
    if event is None:
        return None
    try:
        points = event["selection"]["points"]  # a dict-like selection state
    except (KeyError, TypeError):
        return None
    data = points[0].get("customdata") if points else None
    if not data or st.session_state.get("slowmo_chart_seen") == list(data):
        return None
    return list(data)


def apply_chart_click() -> None:
    """A click on a neuron of the diagram selects it (at the top of a full run, before the selection
    widgets are drawn: the diagram's fragment asks for that run when a click arrives)."""
    data = _chart_pick()
    if data is None:
        return
    st.session_state["slowmo_chart_seen"] = data
    st.session_state["slowmo_layer"], st.session_state["slowmo_unit"] = int(data[0]), int(data[1])


def neuron_picker(record: sm.StepRecord) -> tuple[int, int, int]:
    """(layer, neuron, example): the keyboard path to a neuron, and which image of the batch."""
    names = {i: f"{i + 1} · {_name(layer.name)} ({layer.z.shape[1]})" for i, layer in enumerate(record.layers)}
    left, mid, right = st.columns(3)
    st.session_state.setdefault("slowmo_layer", 0)
    layer = left.selectbox(t("slowmo.layer"), list(names), key="slowmo_layer", format_func=names.__getitem__)
    units = record.layers[layer].z.shape[1]
    if st.session_state.get("slowmo_unit", 0) >= units:
        st.session_state["slowmo_unit"] = 0
    unit = int(mid.number_input(t("slowmo.neuron"), 0, units - 1, key="slowmo_unit", step=1))
    labels = record.labels.tolist()
    examples = {b: t("slowmo.example_option", n=b + 1, label=labels[b]) for b in range(len(labels))}
    example = right.selectbox(t("slowmo.example"), list(examples), key="slowmo_example",
                              format_func=examples.__getitem__)
    return int(layer), unit, int(example)


def player_view(layer: int, unit: int, example: int) -> None:
    """The diagram at the current phase, the phase's title and the chosen neuron's formula; while playing
    a fragment polls every 1/speed seconds and moves on one phase each time (the interval is decided on
    each full rerun, as Streamlit fixes it when the fragment is defined)."""
    playing = bool(st.session_state.get(PLAYING))
    speed = float(st.session_state.get("slowmo_speed", 1.0))

    @st.fragment(run_every=1.0 / speed if playing else None)
    def view() -> None:
        record: sm.StepRecord | None = st.session_state.get(RECORD)
        if record is None:
            return
        heartbeat()
        if _chart_pick() is not None:
            st.rerun()  # a neuron was clicked: the full run selects it in the widgets above
        order = record.phases
        if st.session_state.get(PLAYING):
            now = time.monotonic()
            if now - st.session_state.get(TICK, 0.0) >= 0.9 / speed:
                st.session_state[TICK] = now
                nxt = min(st.session_state.get(PHASE, 0) + 1, len(order) - 1)
                st.session_state[PHASE] = nxt
                if nxt >= len(order) - 1:
                    st.session_state[PLAYING] = False
                    st.rerun()  # the end: a full rerun stops the polling and shows Play again
        elif playing:
            st.rerun()  # paused by a button: stop polling
        draw(record, order)

    def draw(record: sm.StepRecord, order: list[sm.Phase]) -> None:
        i = min(st.session_state.get(PHASE, 0), len(order) - 1)
        phase = order[i]
        with st.container(key="slowmo_phase_label"):
            st.markdown(t("slowmo.phase_of", i=i + 1, n=len(order), title=phase_title(record, phase)))
        columns = []
        for li, layer_step in enumerate(record.layers):
            kind = sm.shown_kind(record, phase, li)
            values = sm.neuron_value(record, phase, li, example)
            label = t(f"slowmo.shows_{kind}", l=li + 1) if kind else t("slowmo.shows_none")
            if kind == sm.FORWARD and li == len(record.layers) - 1:
                label = t("slowmo.shows_prob")
            columns.append((f"{li + 1} · {_name(layer_step.name)}", label, values, SIGNED.get(kind or "", True)))
        arrow = t("slowmo.arrow_forward") if phase.kind in (sm.FORWARD, sm.LOSS) else t("slowmo.arrow_backward") \
            if phase.kind in (sm.BACKWARD, sm.GRAD) else t("slowmo.arrow_update")
        fig = step_figure(columns, phase.layer if phase.layer >= 0 else None, (layer, unit),
                          t("slowmo.fig_title", step=record.step), arrow)
        with st.container(key="slowmo_diagram"):
            chart(st, fig, key="slowmo_chart", config=PLOT_CONFIG, on_select="rerun", selection_mode="points")
        formula_panel(record, phase, layer, unit, example)

    view()


def formula_panel(record: sm.StepRecord, phase: sm.Phase, layer: int, unit: int, example: int) -> None:
    """The chosen neuron's number in the latest phase that produced it, and the formula with the numbers."""
    with st.container(key="slowmo_formula", border=True):
        if phase.kind == sm.LOSS:
            st.markdown(t("slowmo.loss_now", loss=record.loss))
            for line in sm.phase_latex(record, phase, layer, unit, example):
                st.latex(line)
            return
        kind = sm.shown_kind(record, phase, layer)
        name = _name(record.layers[layer].name)
        if kind is None:
            st.caption(t("slowmo.not_yet", layer=layer + 1, name=name, unit=unit))
            return
        st.markdown(t(f"slowmo.formula_{kind}", layer=layer + 1, name=name, unit=unit, example=example + 1))
        for line in sm.phase_latex(record, sm.Phase(kind, layer), layer, unit, example):
            st.latex(line)


def check_line() -> None:
    check = st.session_state.get(CHECK)
    if check is None:
        return
    step, diff = check
    with st.container(key="slowmo_check"):
        if diff <= sm.TOLERANCE:
            st.success(t("slowmo.check_ok", step=step, diff=diff))
        else:
            st.error(t("slowmo.check_bad", step=step, diff=diff))


def batch_line(record: sm.StepRecord) -> None:
    opt = t(f"train.opt_{record.optimizer}")
    st.caption(t("slowmo.batch_line", step=record.step, epoch=record.epoch + 1, b=len(record.labels), opt=opt,
                 lr=record.lr, loss=record.loss))


# ----------------------------------------------------------------------------- the editor
def editor_for(record: sm.StepRecord, session: RunHandle, layer: int, unit: int) -> sm.NeuronEditor:
    editor: sm.NeuronEditor | None = st.session_state.get(EDITOR)
    key = (record.run_id, record.step, layer, unit)
    if editor is None or getattr(editor, "ui_key", None) != key:
        editor = sm.NeuronEditor(session.spec, record.state_before(), record.x, record.labels, layer, unit)
        editor.ui_key = key  # type: ignore[attr-defined]
        strength = (editor.weight[unit].abs() * editor.a_prev.abs().mean(0))
        editor.choices = [BIAS, *np.argsort(-strength.numpy(), kind="stable")[:12].tolist()]  # type: ignore[attr-defined]
        st.session_state[EDITOR] = editor
        st.session_state["slowmo_edit_which"] = BIAS
        _sync_widgets(editor)
    return editor


def _sync_widgets(editor: sm.NeuronEditor) -> None:
    value = editor.value(_which())
    st.session_state["slowmo_edit_slider"] = float(np.clip(value, -_range(editor), _range(editor)))
    st.session_state["slowmo_edit_value"] = float(value)


def _which() -> int | None:
    """The input whose weight is edited (None: the bias)."""
    which = st.session_state.get("slowmo_edit_which", BIAS)
    return None if which == BIAS else int(which)


def _range(editor: sm.NeuronEditor) -> float:
    top = float(max(editor.weight[editor.unit].abs().max(), editor.bias[editor.unit].abs()))
    return float(np.ceil(max(1.0, 3 * top) * 10) / 10)


def _set_from(key: str) -> None:
    editor: sm.NeuronEditor | None = st.session_state.get(EDITOR)
    if editor is None:
        return
    try:
        editor.set(_which(), float(st.session_state[key]))
    except UserError as exc:
        st.session_state[ERROR] = error_text(exc)
    _sync_widgets(editor)


def on_which() -> None:
    editor = st.session_state.get(EDITOR)
    if editor is not None:
        _sync_widgets(editor)


def on_undo() -> None:
    editor = st.session_state.get(EDITOR)
    if editor is not None:
        editor.undo()
        _sync_widgets(editor)


def on_give_back() -> None:
    """Button callback: the run carries on from the edited weights (a fork whose origin says "edit")."""
    session, editor = current_session(), st.session_state.get(EDITOR)
    if session is None or editor is None:
        return
    try:
        plan = sm.give_back(session, editor)
        remember(session)
        child = fork_run(plan)
        child.start(paused=True)
        _wait_paused(child)
    except UserError as exc:
        st.session_state[ERROR] = error_text(exc)
        return
    remember(child)
    _forget()
    st.session_state[GIVEN] = (child.run_id, origin_text(plan.origin))
    st.session_state[GIVEN + "_rerun"] = True  # the fragment reruns the whole page: a new run is current


@st.fragment
def editor_tab(record: sm.StepRecord, session: RunHandle, layer: int, unit: int, example: int) -> None:
    """The hand editor, a fragment: an edit reruns only it (the page's diagram and landscape stay)."""
    heartbeat()
    if st.session_state.pop(GIVEN + "_rerun", False):
        st.rerun()
    editor = editor_for(record, session, layer, unit)
    st.caption(t("slowmo.edit_intro", layer=layer + 1, name=_name(record.layers[layer].name), unit=unit,
                 b=len(record.labels)))
    names = {BIAS: t("slowmo.edit_bias")} | {i: t("slowmo.edit_weight", i=i) for i in editor.choices[1:]}  # type: ignore[attr-defined]
    left, mid, right = st.columns([2, 3, 2])
    which = left.selectbox(t("slowmo.edit_which"), editor.choices, key="slowmo_edit_which",  # type: ignore[attr-defined]
                           format_func=names.__getitem__, on_change=on_which)
    r = _range(editor)
    mid.slider(t("slowmo.edit_drag"), -r, r, key="slowmo_edit_slider", step=r / 200, format="%.4f",
               on_change=_set_from, args=("slowmo_edit_slider",))
    right.number_input(t("slowmo.edit_type"), key="slowmo_edit_value", format="%.5f", step=0.01,
                       on_change=_set_from, args=("slowmo_edit_value",))
    view = editor.view()
    base = _baseline(editor)
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.metric(t("slowmo.edit_z", example=example + 1), f"{view.z[example]:.4f}",
              f"{view.z[example] - base.z[example]:+.4f}", delta_color="off")
    c2.metric(t("slowmo.edit_a", example=example + 1), f"{view.a[example]:.4f}",
              f"{view.a[example] - base.a[example]:+.4f}", delta_color="off")
    c3.metric(t("slowmo.edit_loss"), f"{view.loss:.4f}", f"{view.loss - base.loss:+.4f}", delta_color="inverse")
    c4.metric(t("slowmo.edit_acc"), f"{view.accuracy:.1%}", f"{(view.accuracy - base.accuracy) * 100:+.1f}%",
              delta_color="normal")
    pred = int(np.argmax(view.probs[example]))
    with c5.container(key="slowmo_edit_pred"):
        st.metric(t("slowmo.edit_pred", example=example + 1), f"{pred} ({view.probs[example, pred]:.0%})")
    with st.container(key="slowmo_edit_state"):
        st.caption(t("slowmo.edit_state", n=len(editor.history), ms=view.seconds * 1000, which=names.get(which, ""),
                     value=editor.value(_which())))
    chart(st, probability_figure(view.probs[example].tolist(), [str(i) for i in range(view.probs.shape[1])],
                                       current_language(), height=220), key="slowmo_edit_probs", config=PLOT_CONFIG)
    b1, b2 = st.columns(2)
    b1.button(t("slowmo.undo"), key="slowmo_undo", icon=":material/undo:", on_click=on_undo,
              disabled=not editor.history, use_container_width=True)
    b2.button(t("slowmo.give_back"), key="slowmo_give_back", type="primary", icon=":material/play_circle:",
              on_click=on_give_back, disabled=not editor.history, help=t("slowmo.give_back_help"),
              use_container_width=True)


def _baseline(editor: sm.NeuronEditor) -> sm.EditView:
    cached = getattr(editor, "baseline", None)
    if cached is None:
        untouched = sm.NeuronEditor(editor.net.spec, editor.original, editor.x, editor.y, editor.layer, editor.unit)
        cached = editor.baseline = untouched.view()  # type: ignore[attr-defined]
    return cached


# ----------------------------------------------------------------------------- the landscape
def on_landscape() -> None:
    session = current_session()
    if session is None:
        return
    previous_job = st.session_state.get(JOB)
    if previous_job is not None:
        previous_job.cancel()
    runs: list[tuple[str, Any]] = [(t("slowmo.land_this_run"), session)]
    parent = parent_of(session)
    if parent is not None and st.session_state.get("slowmo_land_compare", True):
        runs.append((t("slowmo.land_parent"), parent))
    job = LandscapeJob(runs, kind=st.session_state.get("slowmo_land_kind", "random"),
                       n=int(st.session_state.get("slowmo_land_n", 25)),
                       n_images=int(st.session_state.get("slowmo_land_images", 1000)),
                       budget_s=float(st.session_state.get("slowmo_land_budget", 60)))
    job.start()
    st.session_state[JOB] = job


def on_cancel() -> None:
    job = st.session_state.get(JOB)
    if job is not None:
        job.cancel()


def landscape_tab(session: RunHandle) -> None:
    st.caption(t("slowmo.land_intro"))
    kinds = {"random": t("slowmo.land_random"), "pca": t("slowmo.land_pca")}
    c1, c2, c3, c4 = st.columns(4)
    c1.radio(t("slowmo.land_kind"), list(kinds), key="slowmo_land_kind", format_func=kinds.get,
             help=t("slowmo.land_kind_help"))
    c2.select_slider(t("slowmo.land_n"), [11, 15, 21, 25, 31, 41], value=25, key="slowmo_land_n")
    c3.select_slider(t("slowmo.land_images"), [250, 500, 1000, 2000, 5000], value=1000, key="slowmo_land_images")
    c4.select_slider(t("slowmo.land_budget"), [10, 30, 60, 120], value=60, key="slowmo_land_budget",
                     format_func=lambda v: f"{v} s")
    parent = parent_of(session)
    if parent is not None:
        st.checkbox(t("slowmo.land_compare", run=parent.run_id), value=True, key="slowmo_land_compare")
    elif session.forked_from:
        st.caption(t("slowmo.land_no_parent"))
    job: LandscapeJob | None = st.session_state.get(JOB)
    running = job is not None and job.running
    b1, b2 = st.columns(2)
    b1.button(t("slowmo.land_go"), key="slowmo_land_go", type="primary", icon=":material/landscape:",
              on_click=on_landscape, disabled=running, use_container_width=True)
    b2.button(t("slowmo.land_cancel"), key="slowmo_land_cancel", icon=":material/cancel:", on_click=on_cancel,
              disabled=not running, use_container_width=True)
    landscape_view(running)


def landscape_view(running: bool) -> None:
    @st.fragment(run_every=0.5 if running else None)
    def view() -> None:
        job: LandscapeJob | None = st.session_state.get(JOB)
        if job is None:
            return
        heartbeat()
        with st.container(key="slowmo_land_status"):
            if job.running:
                st.progress(min(1.0, job.progress), text=t(f"slowmo.land_stage_{job.stage}", p=job.progress * 100))
                return
            if running:
                st.rerun()  # finished: a full rerun stops the polling and enables the buttons
            if job.error is not None:
                st.error(error_text(job.error) if isinstance(job.error, UserError) else str(job.error))
                return
            res = job.result
            if res is None:
                st.warning(t("slowmo.land_cancelled_early"))
                return
            key = "slowmo.land_done" if res.complete else "slowmo.land_cancelled" if res.cancelled else "slowmo.land_late"
            st.markdown(t(key, done=res.done, total=res.loss.size, images=res.n_images, s=res.seconds,
                          center=res.center_loss))
        paths = [(p.label, np.array(p.steps), p.coords, p.fork_step) for p in job.paths]
        kind = res.plane.kind
        fig = landscape_figure(res.alphas, res.betas, res.loss, paths, t("slowmo.land_title"),
                               t(f"slowmo.land_x_{kind}"), t(f"slowmo.land_y_{kind}"), t("slowmo.land_loss"),
                               t("slowmo.land_now"), t("slowmo.land_fork", step="{step}"))
        with st.container(key="slowmo_land_figure"):
            chart(st, fig, key="slowmo_land_fig", config=PLOT_CONFIG)

    view()


# ----------------------------------------------------------------------------- the page's top
def no_run_panel(session: RunHandle | None) -> str:
    """What to do before a step can be replayed: "step" (a paused dense run with steps left: the whole
    page), "over" (a finished one: its landscape only) or "" (nothing to show yet)."""
    if st.session_state.get(ERROR):
        st.error(st.session_state.pop(ERROR))
    given = st.session_state.get(GIVEN)
    if given and session is not None and given[0] == session.run_id:  # said while that run is the current one
        with st.container(key="slowmo_given"):
            st.success(t("slowmo.given", origin=given[1]))
    if session is None:
        st.info(t("slowmo.no_run"))
        st.button(t("slowmo.start_tutorial"), key="slowmo_start", type="primary", on_click=start_tutorial,
                  help=t("slowmo.start_tutorial_help"))
        return ""
    try:
        sm.check_dense(session)
    except UserError as exc:
        st.warning(error_text(exc))
        st.button(t("slowmo.start_tutorial"), key="slowmo_start", on_click=start_tutorial)
        return ""
    if session.status in (Status.RUNNING, Status.QUEUED, Status.READY):
        st.info(t("slowmo.is_running"))
        st.button(t("slowmo.pause_run"), key="slowmo_pause", type="primary", icon=":material/pause:", on_click=pause_run)
        return ""
    if int(session.snapshot().progress.global_step) >= session.total_steps or session.status in sm_done():
        st.info(t("slowmo.run_over"))
        st.button(t("slowmo.start_tutorial"), key="slowmo_start", on_click=start_tutorial)
        remember(session)
        return "over"
    remember(session)
    return "step"
