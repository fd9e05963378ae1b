"""2-D playground page helpers: the settings (one PlaneConfig from the widgets), the session's run, its
buttons, the learner's clicked points, and the live view (the grid, the pictures, the figures).

The run lives beside the session's other runs (``st.session_state[RUN_KEY]``), made here under the
server's rules (the shared slot pool, the heartbeat timeout, the registry). Any setting but the
learning rate makes a new, untrained network at once (as in TensorFlow Playground); the learning rate
applies to the running network from its next epoch. Callbacks keep a UserError's message, in the
page's language, for the page to show.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import streamlit as st

from dlplay.errors import UserError
from dlplay.figures import plane as fp
from dlplay.plane import datasets as ds
from dlplay.plane.features import FEATURES
from dlplay.plane.handle import PlaneHandle
from dlplay.plane.session import GRID, MAX_LAYERS, PlaneConfig, PlaneGrid, PlaneSession, PlaneSnapshot
from dlplay.run.status import FINISHED, MOVING, Status
from dlplay.server.admin import heartbeat_timeout
from dlplay.ui import server
from dlplay.ui.data import guarded_by
from dlplay.ui.i18n import error_text, t
from dlplay.ui.point_pad import point_pad
from dlplay.ui.training import FULL_SPEED, PACE_CHOICES, await_status, nearest

RUN_KEY = "plane_run"
ERROR_KEY = "plane_error"  # the last refusal of a button, as text in the page's language
DATA_ERROR_KEY = "plane_data_error"  # why there is no network (the drawn points are not a data set yet)
POINTS_KEY = "plane_points"  # the learner's clicked points, rows (x, y, class)
PAD_KEY = "plane_pad"
STEP_WAIT_KEY = "plane_step_wait"
PACE_KEY = "plane_pace"
CLASS_KEY = "plane_draw_class"
NEURON_KEY = "plane_neuron"
POLL_S = 0.1  # the live view's refresh while the run trains: 10 a second
DEFAULT_PACE = FULL_SPEED
DRAW_CLASSES = 4  # classes the learner can click
LR_CHOICES = [1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
BATCH_CHOICES = [1, 2, 5, 10, 16, 32, 64, 128, 256]
RATIO_CHOICES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
REG_RATES = [0.0, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0]
DEFAULTS = PlaneConfig()
# PlaneConfig field -> its widget's key (the hidden layers: LAYERS_KEY and one UNITS_KEY per layer)
WIDGETS = {"dataset": "plane_dataset", "noise": "plane_noise", "test_ratio": "plane_ratio", "seed": "plane_seed",
           "features": "plane_features", "activation": "plane_activation", "optimizer": "plane_optimizer",
           "lr": "plane_lr", "batch_size": "plane_batch", "regularization": "plane_reg", "reg_rate": "plane_reg_rate"}
LAYERS_KEY = "plane_layers"
UNITS_KEY = "plane_units_{}"
DEFAULT_UNITS = 4


def choices(name: str) -> tuple:
    """The declared choices of a PlaneConfig field."""
    return next(f.metadata["choices"] for f in fields(PlaneConfig) if f.name == name)


def init_plane_state() -> None:
    """At the top of the page: every widget's default, from PlaneConfig's defaults."""
    for name, key in WIDGETS.items():
        st.session_state.setdefault(key, list(getattr(DEFAULTS, name)) if name == "features" else getattr(DEFAULTS, name))
    st.session_state.setdefault(LAYERS_KEY, len(DEFAULTS.hidden))
    for i in range(MAX_LAYERS):
        st.session_state.setdefault(UNITS_KEY.format(i), DEFAULTS.hidden[i] if i < len(DEFAULTS.hidden) else DEFAULT_UNITS)
    st.session_state.setdefault(POINTS_KEY, [])
    st.session_state.setdefault(PACE_KEY, DEFAULT_PACE)
    st.session_state.setdefault(CLASS_KEY, 0)
    st.session_state.setdefault(RUN_KEY, None)


def chosen_config() -> PlaneConfig:
    """The settings on the page as one PlaneConfig (validated; UserError for a bad one)."""
    values: dict[str, Any] = {name: st.session_state.get(key, getattr(DEFAULTS, name)) for name, key in WIDGETS.items()}
    values["features"] = tuple(values["features"] or ())
    values["noise"] = float(values["noise"])
    values["seed"] = int(values["seed"])
    layers = int(st.session_state.get(LAYERS_KEY, len(DEFAULTS.hidden)))
    values["hidden"] = tuple(int(st.session_state.get(UNITS_KEY.format(i), DEFAULT_UNITS)) for i in range(layers))
    if values["dataset"] == ds.DRAWN:
        values["drawn"] = tuple(tuple(p) for p in st.session_state.get(POINTS_KEY, []))
    return replace(DEFAULTS, **values).validated()


# ---------------------------------------------------------------- the run of this browser session
def run_of() -> PlaneHandle | None:
    return st.session_state.get(RUN_KEY)


def _same_network(a: PlaneConfig, b: PlaneConfig) -> bool:
    """Equal but for the learning rate (which the run takes on the fly)."""
    return replace(a, lr=0.0) == replace(b, lr=0.0)


def _make_current(run: PlaneHandle | None) -> None:
    old = st.session_state.get(RUN_KEY)
    if old is not None and old is not run:
        old.stop()
    st.session_state[RUN_KEY] = run


def _new_run(config: PlaneConfig) -> PlaneHandle:
    run = PlaneSession(config, slot_pool=server.local_slot_pool(), heartbeat_timeout=heartbeat_timeout())
    run.set_pace(chosen_pace())
    server.registry().add_run(server.browser_session(), run)
    _make_current(run)
    return run


def current_run() -> PlaneHandle | None:
    """The run of the settings on the page: the current one if it matches them (a new learning rate is
    passed on), else a new untrained network in its place (None, and the reason kept, when the settings
    make no data set, e.g. too few clicked points)."""
    try:
        config = chosen_config()
    except UserError as exc:
        st.session_state[DATA_ERROR_KEY] = error_text(exc)
        _make_current(None)
        return None
    st.session_state[DATA_ERROR_KEY] = None
    run = run_of()
    if run is not None and _same_network(run.config, config):
        if run.lr != config.lr and run.status not in FINISHED:
            run.set_lr(config.lr)
        return run
    try:
        return _new_run(config)
    except UserError as exc:
        st.session_state[DATA_ERROR_KEY] = error_text(exc)
        _make_current(None)
        return None


def heartbeat() -> None:
    server.browser_session()
    run = run_of()
    if run is not None:
        run.heartbeat()


def _step_pending(run: PlaneHandle) -> bool:
    wait = st.session_state.get(STEP_WAIT_KEY)
    if wait is None or wait[0] is not run:
        return False
    if run.status in FINISHED or run.snapshot().progress.global_step > wait[1]:
        st.session_state.pop(STEP_WAIT_KEY, None)
        return False
    return True


def is_training(run: PlaneHandle | None) -> bool:
    """Whether the live view polls: while the run trains or waits for a slot, or a Step is on its way."""
    return run is not None and (run.status in MOVING or _step_pending(run))


def poll_every(run: PlaneHandle | None) -> float | None:
    return POLL_S if is_training(run) else None


guarded = guarded_by(ERROR_KEY)


def chosen_pace() -> float | None:
    value = st.session_state.get(PACE_KEY, DEFAULT_PACE)
    return None if value == FULL_SPEED else float(value)


def sync_pace_widget(run: PlaneHandle | None) -> None:
    pace = run.pace if run is not None and run.status not in FINISHED else chosen_pace()
    value = FULL_SPEED if pace is None else nearest(PACE_CHOICES[:-1], pace)
    if st.session_state.get(PACE_KEY) != value:
        st.session_state[PACE_KEY] = value


@guarded
def on_pace() -> None:
    run = run_of()
    if run is not None and run.status not in FINISHED:
        run.set_pace(chosen_pace())


@guarded
def on_play() -> None:
    """Train: start the network (a finished run starts over with a fresh one), or resume it."""
    run = current_run()
    if run is None:
        return
    if run.status in FINISHED:
        run = _new_run(run.config)
    if run.status == Status.PAUSED:
        run.resume()
        await_status(run, (Status.PAUSED,))
    elif not run.is_alive:
        run.start()
        await_status(run, (Status.READY,))


@guarded
def on_pause() -> None:
    run = run_of()
    if run is not None:
        run.pause()
        await_status(run, (Status.RUNNING,))


@guarded
def on_step() -> None:
    """One epoch, then paused (a finished run starts over first)."""
    run = current_run()
    if run is None:
        return
    if run.status in FINISHED:
        run = _new_run(run.config)
    st.session_state[STEP_WAIT_KEY] = (run, run.snapshot().progress.global_step)
    run.step(1)
    end = time.monotonic() + 1.0  # an epoch takes milliseconds: the rerun after the click shows it taken
    while _step_pending(run) and time.monotonic() < end:
        time.sleep(0.01)


@guarded
def on_reset() -> None:
    """A fresh, untrained network of the same settings."""
    run = run_of()
    if run is not None:
        _new_run(run.config)


# ---------------------------------------------------------------- the learner's points
def drawn_points_input() -> None:
    """The plane to click points onto, with the class of the next click."""
    st.segmented_control(t("plane.draw_class"), list(range(DRAW_CLASSES)), key=CLASS_KEY,
                         format_func=lambda k: t("plane.fig_class", n=k + 1), help=t("plane.draw_class_help"))
    current = st.session_state.get(CLASS_KEY)
    current = 0 if current is None else int(current)
    points = point_pad(PAD_KEY, st.session_state.get(POINTS_KEY, []), current=current,
                       colours=[fp.class_colour(k) for k in range(DRAW_CLASSES)], extent=ds.EXTENT,
                       max_points=ds.MAX_POINTS, undo=t("plane.undo"), clear=t("plane.clear"),
                       current_label=t("plane.fig_class", n=current + 1), label=t("plane.draw_title"))
    if points is not None:
        st.session_state[POINTS_KEY] = points
    counts = np.bincount([p[2] for p in st.session_state[POINTS_KEY]], minlength=DRAW_CLASSES)
    st.caption(t("plane.drawn_count", n=int(counts.sum()),
                 per_class=", ".join(f"{t('plane.fig_class', n=k + 1)}: {c}" for k, c in enumerate(counts) if c)))


# ---------------------------------------------------------------- the live view
@dataclass(frozen=True)
class PlaneView:
    """What the live view draws at one moment (plain values)."""

    status: str
    message: str
    message_params: dict[str, Any]
    epoch: int
    snapshot: PlaneSnapshot | None
    grid: PlaneGrid | None
    data: ds.PlaneData | None
    regression: bool
    classes: int


def view_of(run: PlaneHandle | None) -> PlaneView:
    if run is None:
        return PlaneView(Status.READY, "", {}, 0, None, None, None, False, 2)
    snap = run.snapshot()
    p = snap.progress
    return PlaneView(p.status, p.message, dict(p.message_params), p.global_step, snap, run.grid(GRID), run.data,
                     run.regression, run.data.classes)


def number(value: float | None, digits: int = 3) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return f"{value:.{digits}f}"


def percent(value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return f"{100 * value:.1f}%"


def feature_label(name: str) -> str:
    return FEATURES[name].label


def node_labels(run: PlaneHandle, grid: PlaneGrid) -> list[list[str]]:
    """Hover text of every node of the diagram."""
    cols = [[t("plane.node_feature", name=feature_label(f)) for f in run.features]]
    for li, (layer, bias) in enumerate(zip(grid.neurons, grid.biases)):
        cols.append([t("plane.node_neuron", layer=li + 1, n=i + 1, b=f"{bias[i]:.3f}") for i in range(len(layer))])
    out_bias = grid.biases[-1]
    if run.regression:
        cols.append([t("plane.node_output_value", b=f"{out_bias[0]:.3f}")])
    else:
        cols.append([t("plane.node_output_class", n=k + 1, b=f"{out_bias[k]:.3f}") for k in range(len(out_bias))])
    return cols


def column_titles(run: PlaneHandle, grid: PlaneGrid) -> list[str]:
    return [t("plane.col_features"), *(t("plane.col_layer", n=i + 1) for i in range(len(grid.neurons))),
            t("plane.col_output")]


def neuron_options(run: PlaneHandle, grid: PlaneGrid) -> list[tuple[int, int]]:
    """Every node of the diagram as (column, index), the output first."""
    out_col = len(grid.neurons) + 1
    nodes = [(out_col, k) for k in range(len(grid.output) if not run.regression else 1)]
    nodes += [(c + 1, i) for c, layer in enumerate(grid.neurons) for i in range(len(layer))]
    nodes += [(0, i) for i in range(len(run.features))]
    return nodes


def neuron_title(run: PlaneHandle, grid: PlaneGrid, node: tuple[int, int]) -> str:
    c, i = node
    if c == 0:
        return t("plane.node_feature", name=feature_label(run.features[i]))
    if c <= len(grid.neurons):
        return t("plane.neuron_title", layer=c, n=i + 1)
    return t("plane.output_value") if run.regression else t("plane.output_class", n=i + 1)


def neuron_rgb(run: PlaneHandle, grid: PlaneGrid, node: tuple[int, int]) -> np.ndarray:
    """The node's output over the whole grid as colours [R, R, 3] (the enlarged view)."""
    c, i = node
    if c == 0:
        values = grid.inputs[i]
        return fp.diverging_rgb(values, max(float(np.abs(values).max()), 1e-6))
    if c <= len(grid.neurons):
        return fp.diverging_rgb(grid.neurons[c - 1][i])
    if run.regression:
        return fp.diverging_rgb(grid.output[0])
    return fp.class_prob_rgb(grid.output[i], i)


OVERLAY_KEY = "plane_points_layer"


def points_layer(run: PlaneHandle, show_test: bool) -> Any:
    """The run's points as a picture layer, drawn once per run (and choice of showing the test points)."""
    key = (run.run_id, show_test)
    cached = st.session_state.get(OVERLAY_KEY)
    if cached is None or cached[0] != key:
        data = run.data
        cached = (key, fp.points_overlay(data.x_train, data.y_train, data.x_test, data.y_test,
                                         regression=run.regression, show_test=show_test))
        st.session_state[OVERLAY_KEY] = cached
    return cached[1]


def chosen_neuron(options: list[tuple[int, int]]) -> tuple[int, int]:
    """The node the learner looks at (the output until another is chosen; a choice gone with the
    network's shape falls back to it)."""
    chosen = st.session_state.get(NEURON_KEY)
    if chosen not in options:
        chosen = options[0]
        st.session_state[NEURON_KEY] = chosen
    return chosen
