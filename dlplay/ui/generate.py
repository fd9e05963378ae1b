"""Generate page helpers: the two GAN runs of a browser session (the 2-D lab's and the MNIST digits'),
their buttons, the learner's drawn points, and the numbers the page writes out.

The GAN runs live beside the session's classifier run (``state.current_session()``), not in its
place: the digits are graded by that classifier. Each GAN run is made here under the same server
rules as any run (the shared slot pool, the heartbeat timeout, the server registry) and stops when
it is replaced or reset. Widget callbacks catch :class:`UserError` and keep its message, in the
page's language, for the page to show.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import streamlit as st

from dlplay import gan2d
from dlplay.errors import UserError
from dlplay.gan2d import LabFrame, Minimax
from dlplay.server.admin import heartbeat_timeout
from dlplay.status import ACTIVE, FINISHED
from dlplay.ui import server
from dlplay.ui.canvas_widget import decode_png_data_url, draw_canvas
from dlplay.ui.data import PROBLEM, remember_problem
from dlplay.ui.i18n import error_text, t
from dlplay.ui.training import FULL_SPEED, PACE_CHOICES, nearest

MODE_KEY = "gen_mode"
MODES = ("lab", "digits")
LAB_RUN, DIGITS_RUN = "gen_lab_run", "gen_digits_run"  # the two runs, one per mode
ERROR_KEY = "gen_error"  # the last refusal, as text in the page's language
DRAWN_ERROR_KEY = "gen_drawn_error"
CANVAS_KEY = "gen_canvas"
CANVAS_PX = 280
CANVAS_STROKE = 14
MIN_DRAWN_POINTS = 20  # fewer distinct places than this is no distribution to learn
MAX_DRAWN_POINTS = 1000
POLL_S = 0.5
LAB_PACE_KEY, DIGITS_PACE_KEY = "gen_lab_pace", "gen_digits_pace"
DEFAULT_LAB_PACE = 20  # steps per second: GAN Lab's slow motion is what makes the contest watchable
LAB_PACE_CHOICES = PACE_CHOICES
GRADE_KEY, MEMO_KEY, PAIR_KEY = "gen_grade_result", "gen_memo_result", "gen_interp_pair"
FRAME_COUNT_KEY = "gen_frame_count"
DEFAULT_SHAPE = "ring"  # the lab converges on it in its default settings (tests/test_gan2d.py)
DRAWN = "drawn"  # the lab's shape "drawn by the learner"
PLANE_LAYERS = ("heatmap", "real", "fake", "manifold", "arrows")
TOOL_TABS = ("interp", "grade", "memo", "draw", "save")


# ---------------------------------------------------------------- the runs of this browser session
def init_generate_state() -> None:
    """At the top of the page: no GAN run until the learner starts one."""
    for key in (LAB_RUN, DIGITS_RUN):
        st.session_state.setdefault(key, None)


def run_of(key: str) -> Any | None:
    """The session's GAN run for one mode (LAB_RUN or DIGITS_RUN), if there is one."""
    return st.session_state.get(key)


def is_active(run: Any | None) -> bool:
    return run is not None and run.status in ACTIVE


def _register(run: Any) -> Any:
    """A new run joins the server's registry (so the Admin page and the connection keeper see it)."""
    server.registry().add_run(server.browser_session(), run)
    return run


def _make_current(key: str, run: Any | None) -> None:
    """``run`` becomes the mode's run; the one it replaces stops."""
    old = st.session_state.get(key)
    if old is not None and old is not run:
        old.stop()
    st.session_state[key] = run


def heartbeat() -> None:
    """The tab is still open: both GAN runs (and the browser session) hear of it."""
    server.browser_session()
    for key in (LAB_RUN, DIGITS_RUN):
        run = st.session_state.get(key)
        if run is not None:
            run.heartbeat()


def guarded(fn: Callable[..., None]) -> Callable[..., None]:
    """A callback whose UserError becomes a message on the page instead of a crash."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        st.session_state[ERROR_KEY] = None
        st.session_state.pop(PROBLEM, None)
        try:
            fn(*args, **kwargs)
        except UserError as exc:
            if not remember_problem(exc):  # a missing dataset gets its own box (show_data_problem)
                st.session_state[ERROR_KEY] = error_text(exc)
    return wrapper


# ---------------------------------------------------------------- pace
def chosen_pace(key: str) -> float | None:
    """Steps per second the learner chose for this mode (None: full speed)."""
    value = st.session_state.get(key, DEFAULT_LAB_PACE if key == LAB_PACE_KEY else FULL_SPEED)
    return None if value == FULL_SPEED else float(value)


def sync_pace_widget(run: Any | None, key: str) -> None:
    """Before the pace slider is drawn: it shows the run's pace while there is one, else the choice."""
    pace = run.pace if run is not None and run.status not in FINISHED else chosen_pace(key)
    value = FULL_SPEED if pace is None else nearest(PACE_CHOICES[:-1], pace)
    if st.session_state.get(key) != value:
        st.session_state[key] = value


# ---------------------------------------------------------------- the learner's drawn points
def points_from_png(png: str | None, extent: float, max_points: int = MAX_DRAWN_POINTS,
                    seed: int = 0) -> np.ndarray | None:
    """What is drawn on the canvas -> 2-D points on the plane [-extent, extent]² (None when nothing is drawn).

    The canvas is cut into cells of 4×4 pixels; each inked cell gives one point, placed at a random
    spot inside the cell (so a stroke becomes a band of points, not a lattice); the canvas's y runs
    down, the plane's up. More than ``max_points`` inked cells: a random subset.
    """
    rgba = decode_png_data_url(png)
    if rgba is None:
        return None
    return points_from_rgba(rgba, extent, max_points, seed)


def points_from_rgba(rgba: np.ndarray, extent: float, max_points: int = MAX_DRAWN_POINTS,
                     seed: int = 0) -> np.ndarray:
    h, w = rgba.shape[:2]
    cell = 4
    rgb = rgba[..., :3].astype(np.float64)
    background = np.median(rgb.reshape(-1, 3), axis=0)
    ink = np.abs(rgb - background).sum(axis=-1) > 60  # a pixel far from the background's colour
    ink = ink[: h // cell * cell, : w // cell * cell].reshape(h // cell, cell, w // cell, cell).mean(axis=(1, 3)) > 0.25
    rows, cols = np.nonzero(ink)
    rng = np.random.default_rng(seed)
    if len(rows) > max_points:
        keep = rng.choice(len(rows), max_points, replace=False)
        rows, cols = rows[keep], cols[keep]
    u = (cols + rng.random(len(cols))) / ink.shape[1]
    v = (rows + rng.random(len(rows))) / ink.shape[0]
    return np.stack([(2 * u - 1) * extent, (1 - 2 * v) * extent], axis=1).astype(np.float32)


def check_drawn_points(points: np.ndarray | None) -> None:
    """Raise UserError (the page shows it) when the drawing is no distribution to learn."""
    if points is None or len(points) == 0:
        raise UserError("generate.drawn_empty")
    if len(points) < MIN_DRAWN_POINTS:
        raise UserError("generate.drawn_too_few", n=len(points), min=MIN_DRAWN_POINTS)


# ---------------------------------------------------------------- the min-max loss, written out
def minmax_latex(mm: Minimax | None) -> str:
    """GAN's value function V(D, G) with the current numbers put in (natural logarithms), and the two
    losses that are minimised: D's, −V, and G's non-saturating −E[ln D(G(z))].

    D climbs V (D(x) → 1 on real x, D(G(z)) → 0 on generated points); G descends it. The terms are
    measured on the points the page shows: the real points and G's image of the fixed noise batch.
    """
    lines = [r"\min_G \max_D \; V(D,G)",
             r"V(D,G) &= \mathbb{E}_{x}\big[\ln D(x)\big]",
             r"&\quad + \mathbb{E}_{z}\big[\ln\big(1 - D(G(z))\big)\big]"]
    if mm is not None and all(np.isfinite([mm.real_term, mm.fake_term, mm.g_loss])):
        lines += [rf"&= {mm.real_term:.3f} + ({mm.fake_term:.3f}) = {mm.value:.3f}",
                  rf"\overline{{D(x)}} &= {mm.d_real:.3f}, \quad \overline{{D(G(z))}} = {mm.d_fake:.3f}",
                  rf"L_D &= -V = {-mm.value:.3f}",
                  rf"L_G &= -\mathbb{{E}}_z\big[\ln D(G(z))\big] = {mm.g_loss:.3f}"]
    else:
        lines += [r"L_D &= -V", r"L_G &= -\mathbb{E}_z\big[\ln D(G(z))\big]"]
    return lines[0] + r"\\[2pt]" + r"\begin{aligned}" + r"\\".join(lines[1:]) + r"\end{aligned}"


def number(value: float | None, digits: int = 3) -> str:
    """A metric's value, or a dash before there is one."""
    if value is None or not np.isfinite(value):
        return "–"
    return f"{value:.{digits}f}"


# ---------------------------------------------------------------- commands shared by both modes
@guarded
def on_pause(key: str) -> None:
    run = run_of(key)
    if run is not None:
        run.pause()


@guarded
def on_resume(key: str) -> None:
    run = run_of(key)
    if run is not None:
        run.resume()


@guarded
def on_stop(key: str) -> None:
    run = run_of(key)
    if run is not None:
        run.stop()


@guarded
def on_reset(key: str) -> None:
    """The mode's run stops and is forgotten; the page starts over."""
    _make_current(key, None)
    if key == DIGITS_RUN:
        for k in (GRADE_KEY, MEMO_KEY, PAIR_KEY, "gen_frame"):
            st.session_state.pop(k, None)


@guarded
def on_pace(key: str, pace_key: str) -> None:
    run = run_of(key)
    if run is not None and run.status not in FINISHED:
        run.set_pace(chosen_pace(pace_key))  # from the next step, also while it runs


def frame_index(count: int) -> int:
    """The filmstrip frame to show (0-based): the slider's choice, or the newest frame while the slider
    sits at the end (the learner who scrubbed back keeps the frame chosen while new ones arrive)."""
    chosen = st.session_state.get("gen_frame")
    last = st.session_state.get(FRAME_COUNT_KEY, 0)
    if not isinstance(chosen, int) or chosen >= last or chosen > count or chosen < 1:
        chosen = count
    st.session_state[FRAME_COUNT_KEY] = count
    if count > 1:
        st.session_state["gen_frame"] = chosen
    return chosen - 1


# ---------------------------------------------------------------- the lab's drawn points
DRAWN_POINTS_KEY = "gen_drawn_points"  # the points drawn last, on the plane (or None)
INK = "#2ca02c"  # the real points' green, on a white plane


def drawn_points_input(extent: float = gan2d.EXTENT[1]) -> np.ndarray | None:
    """The canvas where the learner draws the real distribution; its points on the plane (kept in the
    session for the next Start), and a message under it when they are too few."""
    png = draw_canvas(CANVAS_KEY, size=CANVAS_PX, stroke=CANVAS_STROKE, undo=t("draw.undo"), clear=t("draw.clear"),
                      label=t("generate.draw_title"), ink=INK, background="#ffffff")
    points = points_from_png(png, extent)
    st.session_state[DRAWN_POINTS_KEY] = points
    try:
        check_drawn_points(points)
    except UserError as exc:
        st.session_state[DRAWN_ERROR_KEY] = error_text(exc)
    else:
        st.session_state[DRAWN_ERROR_KEY] = None
        st.caption(t("generate.drawn_count", n=len(points)))
    return points


# ---------------------------------------------------------------- the 2-D lab
LAB_POINTS = 300  # real and generated points on the plane
LAB_RESOLUTION = 48  # the heatmap's grid
LAB_CONTEXT = "gen_lab_context"  # what the page keeps beside the lab's run (below)
MAX_DIVERGENCE_POINTS = 2000


@dataclass
class LabContext:
    """Beside a lab run: its real data, the fixed points shown, the latest frame and the divergence
    measured at each frame the page drew (the run does not measure it; the page does, on its points)."""

    run: Any
    shape: str
    real: np.ndarray  # [LAB_POINTS, 2]
    noise: Any  # the fixed noise batch (torch, CPU) whose images are the generated points shown
    frame: LabFrame | None = None
    frame_key: tuple = ()
    div_steps: list[int] = field(default_factory=list)
    divergence: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class LabView:
    """What the lab's live view draws at one moment (plain values; no run needed)."""

    status: str
    message: str
    message_params: dict[str, Any]
    step: int
    steps: np.ndarray
    d_loss: np.ndarray
    g_loss: np.ndarray
    d_real: np.ndarray
    d_fake: np.ndarray
    div_steps: np.ndarray
    divergence: np.ndarray
    xs: np.ndarray
    ys: np.ndarray
    d_grid: np.ndarray | None
    real: np.ndarray
    fake: np.ndarray
    manifold: np.ndarray | None
    arrows: np.ndarray | None
    minimax: Minimax | None
    divergence_name: str = "JS"

    def last(self, name: str) -> float | None:
        values = getattr(self, name)
        return float(values[-1]) if len(values) else None


def lab_shapes() -> tuple[str, ...]:
    return gan2d.SHAPES


def lab_defaults() -> dict[str, Any]:
    """The lab's settings, for the sentence under the shape choice."""
    cfg = gan2d.LAB_CONFIG
    hidden = " → ".join(str(u) for u in gan2d.LAB_HIDDEN)
    return {"g_arch": f"{cfg.noise_dim} → {hidden} → 2", "d_arch": f"2 → {hidden} → 1", "batch": cfg.batch_size,
            "d_steps": cfg.d_steps, "optimizer": t(f"train.opt_{cfg.optimizer_d}"), "lr": f"{cfg.lr_d:g}"}


def _drawn_or_none(shape: str) -> np.ndarray | None:
    if shape != DRAWN:
        return None
    points = st.session_state.get(DRAWN_POINTS_KEY)
    check_drawn_points(points)
    return points


def _check_limits(run: Any) -> None:
    """The server's per-run limits that apply to a GAN: the weights of both networks, and their memory."""
    limits = server.limits()
    params = sum(v.numel() for v in run.state_dict().values())
    if params > limits.max_params:
        raise UserError("admin.limit_params", params=f"{params:,}", limit=f"{limits.max_params:,}")


def _new_lab_run() -> Any:
    """A lab run (not started) on the chosen shape replaces the current one; its points for the page."""
    shape = st.session_state.get("gen_shape") or DEFAULT_SHAPE
    points = _drawn_or_none(shape)
    run = gan2d.lab_session(shape, points, slot_pool=server.slot_pool(), heartbeat_timeout=heartbeat_timeout())
    _check_limits(run)
    run.set_pace(chosen_pace(LAB_PACE_KEY))
    _make_current(LAB_RUN, _register(run))
    st.session_state[LAB_CONTEXT] = LabContext(run, shape, gan2d.real_points(shape, LAB_POINTS, seed=7, points=points),
                                               run.noise(LAB_POINTS, seed=1))
    return run


@guarded
def on_lab_start() -> None:
    _new_lab_run().start()


@guarded
def on_lab_step(which: str) -> None:
    """One step of D, of G, or of both; without a run (or after one ended) a new one starts paused."""
    run = run_of(LAB_RUN)
    if run is None or run.status in FINISHED:
        run = _new_lab_run()
    {"d": run.step_d, "g": run.step_g, "both": run.step}[which](1)


def _lab_context(run: Any | None) -> LabContext | None:
    ctx = st.session_state.get(LAB_CONTEXT)
    return ctx if ctx is not None and ctx.run is run else None


def _preview_points(shape: str) -> np.ndarray:
    """The chosen shape's real points before any run (nothing drawn yet: none)."""
    try:
        return gan2d.real_points(shape, LAB_POINTS, seed=7, points=_drawn_or_none(shape))
    except UserError:
        return np.zeros((0, 2), dtype=np.float32)


def lab_view(run: Any | None) -> LabView:
    """The lab's picture now: the run's curves and a frame of its networks (recomputed only when the
    run has moved on), or the chosen real data alone before a run."""
    xs, ys = gan2d.plane_grid(LAB_RESOLUTION)
    ctx = _lab_context(run)
    empty = np.zeros(0)
    if run is None or ctx is None:
        real = _preview_points(st.session_state.get("gen_shape") or DEFAULT_SHAPE)
        return LabView("ready", "", {}, 0, empty, empty, empty, empty, empty, empty, empty, xs, ys, None, real,
                       np.zeros((0, 2)), None, None, None)
    snap = run.snapshot()
    p = snap.progress
    key = (p.global_step, snap.version)
    if ctx.frame is None or ctx.frame_key != key:
        ctx.frame = gan2d.lab_frame(run, ctx.real, ctx.noise, LAB_RESOLUTION)
        ctx.frame_key = key
        if not ctx.div_steps or ctx.div_steps[-1] != ctx.frame.step:
            ctx.div_steps.append(ctx.frame.step)
            ctx.divergence.append(ctx.frame.js)
            if len(ctx.div_steps) > MAX_DIVERGENCE_POINTS:  # keep every other point: the curve's shape stays
                ctx.div_steps[:] = ctx.div_steps[::2]
                ctx.divergence[:] = ctx.divergence[::2]
    f = ctx.frame
    return LabView(p.status, p.message, dict(p.message_params), p.global_step, snap.steps, snap.d_loss, snap.g_loss,
                   snap.d_real, snap.d_fake, np.asarray(ctx.div_steps), np.asarray(ctx.divergence), f.xs, f.ys, f.heat,
                   f.real, f.fake, f.manifold, f.arrows, f.minimax)


# ---------------------------------------------------------------- MNIST digits
def digit_presets() -> tuple[str, ...]:
    return ("mlp", "dcgan", "conditional")


def preset_is_conditional(preset: str | None) -> bool:
    return preset == "conditional"


@dataclass(frozen=True)
class DigitsView:
    """What the digits' live view draws at one moment."""

    status: str
    message: str
    message_params: dict[str, Any]
    step: int
    total: int
    steps: np.ndarray
    d_loss: np.ndarray
    g_loss: np.ndarray
    d_real: np.ndarray
    d_fake: np.ndarray
    frames: list[tuple[int, np.ndarray]]

    @property
    def fraction(self) -> float:
        return self.step / self.total if self.total else 0.0

    def last(self, name: str) -> float | None:
        values = getattr(self, name)
        return float(values[-1]) if len(values) else None


def digits_view(run: Any | None) -> DigitsView:
    empty = np.zeros(0)
    if run is None:
        return DigitsView("ready", "", {}, 0, 0, empty, empty, empty, empty, empty, [])
    snap = run.snapshot()
    p = snap.progress
    return DigitsView(p.status, p.message, dict(p.message_params), p.global_step, run.total_steps, snap.steps,
                      snap.d_loss, snap.g_loss, snap.d_real, snap.d_fake, [])


def has_generator(run: Any | None) -> bool:
    return False


@guarded
def on_digits_start() -> None:
    raise UserError("generate.digits_unavailable")
