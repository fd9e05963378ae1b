"""The 2-D playground's hand editor (page parts): while the run stands still, one weight or bias of the
chosen neuron dragged or typed; the live view's pictures and losses come from the edited copy
(:class:`dlplay.plane.edit.PlaneEditor`); Undo; Give back to training (the run takes the weights, records
the edits, and goes on). The core is dlplay/plane/edit.py; this module only keeps the editor in the
session and draws its widgets inside the page's live fragment (an edit reruns only that fragment).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from dlplay.errors import UserError
from dlplay.plane.edit import MAX_VALUE, PlaneEdit, PlaneEditor, PlaneEditView, parse_value
from dlplay.plane.handle import PlaneHandle
from dlplay.run.status import Status
from dlplay.ui import plane as pl
from dlplay.ui.i18n import error_text, t
from dlplay.ui.training import await_status

ON_KEY = "plane_edit_on"
EDITOR_KEY = "plane_editor"
ERROR_KEY = "plane_edit_error"
GIVEN_KEY = "plane_edit_given"
WHICH_KEY = "plane_edit_which"
SLIDER_KEY = "plane_edit_slider"
VALUE_KEY = "plane_edit_value"
TARGET_KEY = "plane_edit_target"  # the entry the widgets show: (editor id, layer, unit, index)
BIAS = -1  # the entry choice for the bias
STILL = (Status.READY, Status.PAUSED)


def can_edit(run: PlaneHandle | None, status: str) -> bool:
    return run is not None and status in STILL and not pl.is_training(run)


def editing(run: PlaneHandle | None, status: str) -> bool:
    return can_edit(run, status) and bool(st.session_state.get(ON_KEY))


def editor_for(run: PlaneHandle) -> PlaneEditor:
    """The session's editor of this run at the epoch it stands at (a new one when either has changed)."""
    editor: PlaneEditor | None = st.session_state.get(EDITOR_KEY)
    epoch = run.snapshot().progress.global_step
    if editor is None or editor.run_id != run.run_id or editor.epoch != epoch:
        editor = PlaneEditor(run)
        st.session_state[EDITOR_KEY] = editor
        st.session_state.pop(TARGET_KEY, None)
    return editor


def target(node: tuple[int, int], editor: PlaneEditor) -> tuple[int, int] | None:
    """(dense layer, neuron) of the chosen node, or None for an input feature (no weights)."""
    column, unit = node
    if column == 0 or column > editor.layers:
        return None
    return column - 1, unit


def edited_view(run: PlaneHandle | None, status: str, node: tuple[int, int]) -> PlaneEditView | None:
    """The edited network's view when the learner is editing (the live view draws it instead of the run)."""
    if run is None or not editing(run, status):
        return None
    editor = editor_for(run)
    where = target(node, editor)
    return editor.view(*(where or (0, 0)))


def _which() -> int | None:
    which = st.session_state.get(WHICH_KEY, BIAS)
    return None if which in (None, BIAS) else int(which)


def _range(editor: PlaneEditor, layer: int, unit: int) -> float:
    d = editor.dense[layer]
    top = float(max(d.weight[unit].abs().max(), d.bias[unit].abs()))
    return float(min(MAX_VALUE, np.ceil(max(2.0, 2 * top) * 10) / 10))


def _sync(editor: PlaneEditor, layer: int, unit: int) -> None:
    """The slider and the text box show the entry's value now."""
    value = editor.value(layer, unit, _which())
    r = _range(editor, layer, unit)
    st.session_state[SLIDER_KEY] = float(np.clip(value, -r, r))
    st.session_state[VALUE_KEY] = f"{value:.4g}"
    st.session_state[TARGET_KEY] = (id(editor), layer, unit, _which())


def _set(layer: int, unit: int, source: str) -> None:
    editor: PlaneEditor | None = st.session_state.get(EDITOR_KEY)
    if editor is None:
        return
    st.session_state[ERROR_KEY] = None
    st.session_state[GIVEN_KEY] = None
    try:
        value = parse_value(st.session_state.get(source))
        editor.set(layer, unit, _which(), value)
    except UserError as exc:
        st.session_state[ERROR_KEY] = error_text(exc)  # the typed text stays in its box; the weights are as they were
        return
    _sync(editor, layer, unit)


def on_undo() -> None:
    editor: PlaneEditor | None = st.session_state.get(EDITOR_KEY)
    if editor is None:
        return
    st.session_state[ERROR_KEY] = None
    last = editor.undo()
    if last is not None:  # show the entry taken back
        st.session_state[pl.NEURON_KEY] = (last.layer + 1, last.unit)
        st.session_state[WHICH_KEY] = BIAS if last.index is None else last.index
        _sync(editor, last.layer, last.unit)


def on_give_back() -> None:
    """The run takes the edited weights and records the edits, then trains on from them."""
    editor: PlaneEditor | None = st.session_state.get(EDITOR_KEY)
    run = pl.run_of()
    if editor is None or run is None:
        return
    st.session_state[ERROR_KEY] = None
    try:
        edits = editor.give_back(run)
        if run.status == Status.PAUSED:
            run.resume()
            await_status(run, (Status.PAUSED,))
        else:
            run.start()
            await_status(run, (Status.READY,))
    except UserError as exc:
        st.session_state[ERROR_KEY] = error_text(exc)
        return
    st.session_state[GIVEN_KEY] = t("plane_edit.given", n=len(edits), epoch=editor.epoch)
    st.session_state.pop(EDITOR_KEY, None)


def entry_name(run: PlaneHandle, layer: int, index: int | None) -> str:
    """"bias b" or "weight from <the input's name>" (a feature, or a neuron of the layer below)."""
    if index is None:
        return t("plane_edit.bias")
    name = pl.feature_label(run.features[index]) if layer == 0 else t("plane.neuron_title", layer=layer, n=index + 1)
    return t("plane_edit.weight_from", name=name)


def where_name(run: PlaneHandle, layers: int, layer: int, unit: int) -> str:
    if layer < layers - 1:
        return t("plane.neuron_title", layer=layer + 1, n=unit + 1)
    return t("plane.output_value") if run.regression else t("plane.output_class", n=unit + 1)


def toggle(run: PlaneHandle | None, status: str) -> None:
    """The switch that opens the editor (only while the run stands still)."""
    if can_edit(run, status):
        st.toggle(t("plane_edit.toggle"), key=ON_KEY, help=t("plane_edit.toggle_help"))
    given = st.session_state.get(GIVEN_KEY)
    if given:
        with st.container(key="plane_edit_given"):
            st.success(given, icon=":material/play_circle:")


def panel(run: PlaneHandle, node: tuple[int, int], view: PlaneEditView) -> None:
    """The editor's widgets and numbers for the chosen node (call only while editing)."""
    editor = editor_for(run)
    error = st.session_state.get(ERROR_KEY)
    where = target(node, editor)
    with st.container(key="plane_edit", border=True):
        if error:
            st.error(error, icon=":material/error:")
        if where is None:
            st.info(t("plane_edit.pick_neuron"), icon=":material/touch_app:")
            _buttons(editor)
            return
        layer, unit = where
        inputs = editor.shape(layer)[1]
        options = [BIAS, *range(inputs)]
        if st.session_state.get(WHICH_KEY) not in options:
            st.session_state[WHICH_KEY] = BIAS
        if st.session_state.get(TARGET_KEY) != (id(editor), layer, unit, _which()):
            _sync(editor, layer, unit)
        st.caption(t("plane_edit.intro", name=where_name(run, editor.layers, layer, unit)))
        st.selectbox(t("plane_edit.which"), options, key=WHICH_KEY,
                     format_func=lambda i: entry_name(run, layer, None if i == BIAS else i))
        r = _range(editor, layer, unit)
        a, b = st.columns([3, 2])
        a.slider(t("plane_edit.drag"), -r, r, key=SLIDER_KEY, step=r / 200, format="%.3f", on_change=_set,
                 args=(layer, unit, SLIDER_KEY))
        b.text_input(t("plane_edit.type"), key=VALUE_KEY, on_change=_set, args=(layer, unit, VALUE_KEY),
                     help=t("plane_edit.type_help", limit=f"{MAX_VALUE:g}"))
        x, y = (f"{c:.2f}" for c in view.point)
        c1, c2, c3 = st.columns([1, 1, 1.15])
        c1.metric(t("plane_edit.z", x=x, y=y), f"{view.z:.4f}", help=t("plane_edit.point_help", x=x, y=y))
        c2.metric(t("plane_edit.a", x=x, y=y), f"{view.a:.4f}")
        with c3.container(key="plane_edit_pred"):
            if run.regression:
                st.metric(t("plane_edit.pred"), f"{float(view.prediction[0]):.3f}")
            else:
                k = int(np.argmax(view.prediction))
                st.metric(t("plane_edit.pred"), t("plane_edit.pred_class", n=k + 1, p=f"{view.prediction[k]:.0%}"))
        _buttons(editor, view)


def _buttons(editor: PlaneEditor, view: PlaneEditView | None = None) -> None:
    with st.container(key="plane_edit_state"):
        if editor.history and view is not None:
            st.caption(t("plane_edit.state", n=len(editor.history), ms=f"{view.seconds * 1000:.1f}"))
        elif not editor.history:
            st.caption(t("plane_edit.no_edits_yet"))
    b1, b2 = st.columns(2)
    b1.button(t("plane_edit.undo"), key="plane_edit_undo", icon=":material/undo:", on_click=on_undo,
              disabled=not editor.history, width="stretch")
    b2.button(t("plane_edit.give_back"), key="plane_edit_give_back", type="primary", icon=":material/play_circle:",
              on_click=on_give_back, disabled=not editor.history, help=t("plane_edit.give_back_help"),
              width="stretch")


def history(run: PlaneHandle) -> None:
    """The hand edits the run has recorded, newest first."""
    edits: list[PlaneEdit] = run.edits
    if not edits:
        return
    layers = len(run.config.hidden) + 1
    with st.expander(t("plane_edit.history", n=len(edits)), icon=":material/history:"), \
            st.container(key="plane_edit_history"):
        st.markdown("\n".join(
            "- " + t("plane_edit.history_row", epoch=e.epoch, where=where_name(run, layers, e.layer, e.unit),
                     entry=entry_name(run, e.layer, e.index), old=f"{e.old:.4g}", new=f"{e.new:.4g}")
            for e in reversed(edits)))


def metric_values(view: PlaneEditView | None, snap: Any) -> tuple[float | None, float | None, float | None]:
    """Training loss, test loss, test accuracy: the edited network's while editing, else the run's."""
    if view is not None:
        return view.train_loss, view.test_loss, view.test_acc
    if snap is None:
        return None, None, None
    return snap.last("train_loss"), snap.last("test_loss"), snap.last("test_acc")
