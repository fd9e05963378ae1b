"""Generate page helpers: the two GAN runs of a browser session (the 2-D lab's and the MNIST digits'),
their buttons, the learner's drawn points, and the numbers the page writes out.

The GAN runs live beside the session's classifier run (``state.current_session()``), not in its
place: the digits are graded by that classifier. Each GAN run is made here under the same server
rules as any run (the shared slot pool, the heartbeat timeout, the server registry) and stops when
it is replaced or reset. Widget callbacks catch :class:`UserError` and keep its message, in the
page's language, for the page to show.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import streamlit as st

from dlplay.errors import UserError
from dlplay.figures import gan as fg
from dlplay.gan import grade as gg
from dlplay.gan import images as gi
from dlplay.gan import lab as gan2d
from dlplay.gan import mnist as gm
from dlplay.gan.lab import LabFrame, Minimax
from dlplay.i18n import join_list, translate
from dlplay.nn.spec import dense_spec
from dlplay.run.device import choose_device
from dlplay.run.status import ACTIVE, FINISHED, MOVING, Status
from dlplay.server.admin import heartbeat_timeout
from dlplay.ui import server
from dlplay.ui.canvas_widget import decode_png_data_url, draw_canvas
from dlplay.ui.charts import chart
from dlplay.ui.data import dataset_on, guarded_by
from dlplay.ui.drawing import digit_from_png
from dlplay.ui.i18n import current_language, error_text, t
from dlplay.ui.state import current_session
from dlplay.ui.training import FULL_SPEED, PACE_CHOICES, await_status, nearest

MODE_KEY = "gen_mode"
SHAPE_KEY, LAYERS_KEY = "gen_shape", "gen_layers"
PRESET_KEY, CONDITIONAL_KEY, DIGIT_KEY = "gen_preset", "gen_conditional", "gen_digit"
MODES = ("lab", "digits")
LAB_RUN, DIGITS_RUN = "gen_lab_run", "gen_digits_run"  # the two runs, one per mode
ERROR_KEY = "gen_error"  # the last refusal, as text in the page's language
DRAWN_ERROR_KEY = "gen_drawn_error"  # what is wrong with the drawing now, shown under the canvas
DRAWN_REFUSED_KEY = "gen_drawn_refused"  # a Start or Step was refused for it: the message is an error, not a hint
CANVAS_KEY = "gen_canvas"
CANVAS_PX = 280
CANVAS_STROKE = 14
MIN_DRAWN_POINTS = 20  # fewer distinct places than this is no distribution to learn
MAX_DRAWN_POINTS = 1000
POLL_S = 0.5
STEP_WAIT_KEY = "gen_step_wait"  # (run, its step count before a Step click): polled until the step is taken
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
# The page's choices survive a visit to another page (Streamlit forgets a widget's value
# when a script run does not draw it: back on Generate the mode was the 2-D lab again, hiding a digits GAN)
PERSIST: Final[Literal["session"]] = "session"


def init_generate_state() -> None:
    """At the top of the page: no GAN run until the learner starts one."""
    for key in (LAB_RUN, DIGITS_RUN):
        st.session_state.setdefault(key, None)


def run_of(key: str) -> Any | None:
    """The session's GAN run for one mode (LAB_RUN or DIGITS_RUN), if there is one."""
    return st.session_state.get(key)


def is_active(run: Any | None) -> bool:
    return run is not None and run.status in ACTIVE


def _step_pending(run: Any) -> bool:
    """A Step clicked on this page that the run has not taken yet (a paused run takes it without
    changing its status: only its step count tells)."""
    wait = st.session_state.get(STEP_WAIT_KEY)
    if wait is None or wait[0] is not run:
        return False
    if run.status in FINISHED or run.snapshot().progress.global_step > wait[1]:
        st.session_state.pop(STEP_WAIT_KEY, None)
        return False
    return True


def is_training(run: Any | None) -> bool:
    """Whether the page polls the run (the fragment's ``run_every``): while it trains or waits for a slot,
    or a Step is on its way. Paused, ended or not started it is drawn once: nothing moves, and a paused
    run's heartbeat comes from the connection keeper (dlplay/ui/server.py) while the tab is open."""
    return run is not None and (run.status in MOVING or _step_pending(run))


def poll_every(run: Any | None) -> float | None:
    """The live fragment's ``run_every`` for this run, fixed at each full rerun (as on the Train page)."""
    return POLL_S if is_training(run) else None


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


guarded = guarded_by(ERROR_KEY)  # a UserError in a callback becomes a message on the page


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


def check_drawn_points(points: np.ndarray | None) -> np.ndarray:
    """Raise UserError (the page shows it) when the drawing is no distribution to learn; else the points."""
    if points is None or len(points) == 0:
        raise UserError("generate.drawn_empty")
    if len(points) < MIN_DRAWN_POINTS:
        raise UserError("generate.drawn_too_few", n=len(points), min=MIN_DRAWN_POINTS)
    return points


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
        await_status(run, (Status.RUNNING,))  # the rerun after the click draws it paused, and stops polling


@guarded
def on_resume(key: str) -> None:
    run = run_of(key)
    if run is not None:
        run.resume()
        await_status(run, (Status.PAUSED,))  # the rerun after the click sees it train, and polls


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
        checked = check_drawn_points(points)
    except UserError as exc:
        st.session_state[DRAWN_ERROR_KEY] = error_text(exc)
    else:
        st.session_state[DRAWN_ERROR_KEY] = None
        st.session_state[DRAWN_REFUSED_KEY] = False
        st.caption(t("generate.drawn_count", n=len(checked)))
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
    total: int = 0  # the contest's step limit (it stops by itself there)

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total) if self.total else 0.0

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
            "d_steps": cfg.d_steps, "optimizer": t(f"train.opt_{cfg.optimizer_d}"), "lr_d": f"{cfg.lr_d:g}",
            "lr_g": f"{cfg.lr_g:g}"}


LAB_STEPS_KEY = "gen_lab_steps"  # the learner's step limit for the next contest
LAB_STEP_CHOICES = (1_000, 3_000, 10_000, 30_000)
LAB_STEPS_DEFAULT = gan2d.LAB_CONFIG.total_steps


def chosen_lab_steps() -> int:
    """The step limit of the next lab run (the sidebar's choice; the lab's default before one)."""
    value = st.session_state.get(LAB_STEPS_KEY)
    return value if value in LAB_STEP_CHOICES else LAB_STEPS_DEFAULT


class DrawingRefused(Exception):
    """A Start or Step refused because of the drawing: its message stays under the canvas, where it follows the
    drawing (in the page's error box above, it outlived the drawing it was about: "Nothing is drawn yet" beside
    "Only 12 points are drawn")."""


def _drawn_or_none(shape: str) -> np.ndarray | None:
    if shape != DRAWN:
        return None
    points = st.session_state.get(DRAWN_POINTS_KEY)
    try:
        check_drawn_points(points)
    except UserError:
        st.session_state[DRAWN_REFUSED_KEY] = True
        raise DrawingRefused() from None
    return points


def drawn_problem() -> tuple[str | None, bool]:
    """The drawing's current problem (or None), and whether a Start or Step was refused for it."""
    return st.session_state.get(DRAWN_ERROR_KEY), bool(st.session_state.get(DRAWN_REFUSED_KEY))


def _check_limits(run: Any) -> None:
    """The server's per-run limits that apply to a GAN: the weights of both networks, and their memory."""
    limits = server.limits()
    params = sum(v.numel() for v in run.state_dict().values())
    if params > limits.max_params:
        raise UserError("admin.limit_params", params=f"{params:,}", limit=f"{limits.max_params:,}")


def _new_lab_run() -> Any:
    """A lab run (not started) on the chosen shape replaces the current one; its points for the page."""
    shape = st.session_state.get(SHAPE_KEY) or DEFAULT_SHAPE
    points = _drawn_or_none(shape)
    config = gan2d.LAB_CONFIG.with_changes(total_steps=chosen_lab_steps())
    run = gan2d.lab_session(shape, points, config, slot_pool=server.local_slot_pool(), heartbeat_timeout=heartbeat_timeout())
    _check_limits(run)
    run.set_pace(chosen_pace(LAB_PACE_KEY))
    _make_current(LAB_RUN, _register(run))
    st.session_state[LAB_CONTEXT] = LabContext(run, shape, gan2d.real_points(shape, LAB_POINTS, seed=7, points=points),
                                               run.noise(LAB_POINTS, seed=1))
    return run


@guarded
def on_lab_start() -> None:
    try:
        run = _new_lab_run()
    except DrawingRefused:
        return
    run.start()
    await_status(run, (Status.READY,))


@guarded
def on_lab_step(which: str) -> None:
    """One step of D, of G, or of both; without a run (or after one ended) a new one starts paused."""
    run = run_of(LAB_RUN)
    if run is None or run.status in FINISHED:
        try:
            run = _new_lab_run()
        except DrawingRefused:
            return
    st.session_state[STEP_WAIT_KEY] = (run, run.snapshot().progress.global_step)
    {"d": run.step_d, "g": run.step_g, "both": run.step}[which](1)
    end = time.monotonic() + 1.0  # a lab step takes milliseconds: the rerun after the click shows it taken
    while _step_pending(run) and time.monotonic() < end:
        time.sleep(0.01)


def _lab_context(run: Any | None) -> LabContext | None:
    ctx = st.session_state.get(LAB_CONTEXT)
    return ctx if ctx is not None and ctx.run is run else None


def _preview_points(shape: str) -> np.ndarray:
    """The chosen shape's real points before any run (nothing drawn yet: none)."""
    try:
        points = st.session_state.get(DRAWN_POINTS_KEY) if shape == DRAWN else None
        if shape == DRAWN:
            check_drawn_points(points)
        return gan2d.real_points(shape, LAB_POINTS, seed=7, points=points)
    except UserError:
        return np.zeros((0, 2), dtype=np.float32)


def lab_view(run: Any | None) -> LabView:
    """The lab's picture now: the run's curves and a frame of its networks (recomputed only when the
    run has moved on), or the chosen real data alone before a run."""
    xs, ys = gan2d.plane_grid(LAB_RESOLUTION)
    ctx = _lab_context(run)
    empty = np.zeros(0)
    if run is None or ctx is None:
        real = _preview_points(st.session_state.get(SHAPE_KEY) or DEFAULT_SHAPE)
        return LabView("ready", "", {}, 0, empty, empty, empty, empty, empty, empty, empty, xs, ys, None, real,
                       np.zeros((0, 2)), None, None, None, total=chosen_lab_steps())
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
                   f.real, f.fake, f.manifold, f.arrows, f.minimax, total=run.total_steps)


# ---------------------------------------------------------------- MNIST digits
DIGITS_CONTEXT = "gen_digits_context"
DIGITS_STEPS = 20_000  # a page run's length; Stop ends it whenever the digits look good enough
FILM_EVERY = 25  # steps between two filmstrip frames at first (the strip thins itself as it grows)
GRADE_SAMPLES = 1000
MEMO_SAMPLES = 8
INTERP_STEPS = 11
QUICK_CLASSIFIER = "gen_quick_classifier"  # the grader trained on the spot, kept for the next grading
TYPICAL_KEY = "gen_typical_distance"
QUICK_SPEC = dense_spec([128])  # the tutorial's 784-128-10


@dataclass
class DigitsContext:
    """Beside a digits run: its networks' spec and settings, the filmstrip, and what was measured."""

    run: Any
    preset: str
    spec: gm.GanSpec
    config: gm.GanConfig
    film: gi.Filmstrip  # a GanSession callback: the fixed 8×8 noise grid every so often
    pair: tuple[Any, Any] | None = None  # noise vectors A and B of the interpolation
    grade: Any = None  # (step, Grade, requested digit) of the last grading
    memo: Any = None  # (step, Memorisation) of the last check
    loaded_steps: int | None = None  # steps the networks had trained, when loaded from a checkpoint


def digit_presets() -> tuple[str, ...]:
    return tuple(gm.GAN_PRESETS)


def preset_text(preset: str) -> str:
    """The preset's description for the sidebar: what it does and how good it gets (docs/GENERATE.md has the figures)."""
    return t(f"gan_mnist.preset.{preset}.text")


def is_conditional() -> bool:
    return bool(st.session_state.get(CONDITIONAL_KEY, False))


def chosen_digit() -> int:
    return int(st.session_state.get(DIGIT_KEY, 0) or 0)


def _new_digits_run(preset: str | None = None, spec: gm.GanSpec | None = None) -> Any:
    """A digits run (not started) of the chosen preset replaces the current one."""
    preset = preset or st.session_state.get(PRESET_KEY) or digit_presets()[0]
    base = gm.GAN_PRESETS[preset]
    spec = spec or base.spec.with_changes(conditional=is_conditional())
    dataset = dataset_on("mnist", str(choose_device("auto")))
    film = gi.Filmstrip(spec, every=FILM_EVERY)
    # the recipe bench/gan_mnist.py measured (dlplay.gan.mnist.session_config), on the run machinery
    run = gm.mnist_session(spec, base.config, dataset, total_steps=DIGITS_STEPS, device=str(dataset.train_images.device),
                           callbacks=[film], slot_pool=server.local_slot_pool(), heartbeat_timeout=heartbeat_timeout())
    run.title = f"GAN {spec.arch}{' (conditional)' if spec.conditional else ''}"
    _check_limits(run)
    run.set_pace(chosen_pace(DIGITS_PACE_KEY))
    _make_current(DIGITS_RUN, _register(run))
    for key in ("gen_frame", FRAME_COUNT_KEY):
        st.session_state.pop(key, None)
    st.session_state[DIGITS_CONTEXT] = DigitsContext(run, preset, spec, base.config, film)
    return run


@guarded
def on_digits_start() -> None:
    run = _new_digits_run()
    run.start()
    await_status(run, (Status.READY,))


def digits_context(run: Any | None) -> DigitsContext | None:
    ctx = st.session_state.get(DIGITS_CONTEXT)
    return ctx if ctx is not None and ctx.run is run else None


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
    loaded_steps: int | None = None

    @property
    def fraction(self) -> float:
        return self.step / self.total if self.total else 0.0

    def last(self, name: str) -> float | None:
        values = getattr(self, name)
        return float(values[-1]) if len(values) else None


def digits_view(run: Any | None) -> DigitsView:
    empty = np.zeros(0)
    ctx = digits_context(run)
    if run is None or ctx is None:
        return DigitsView("ready", "", {}, 0, 0, empty, empty, empty, empty, empty, [])
    snap = run.snapshot()
    p = snap.progress
    frames = [(f.step, f.grid) for f in ctx.film.frames()]
    return DigitsView(p.status, p.message, dict(p.message_params), p.global_step, run.total_steps, snap.steps,
                      snap.d_loss, snap.g_loss, snap.d_real, snap.d_fake, frames, ctx.loaded_steps)


def has_generator(run: Any | None) -> bool:
    """The tools below the live view work on any generator the page holds, trained or not (a full rerun
    draws them once, when the run is made: the live view alone reruns while it trains)."""
    return digits_context(run) is not None


def _requested(n: int, ctx: DigitsContext) -> Any:
    return gi.digit_labels(n, chosen_digit()) if ctx.spec.conditional else None


def current_samples(run: Any, n: int, seed: int) -> Any:
    """``n`` digits from the generator as it is now (uint8 [n, 28, 28]); a conditional one draws the chosen digit."""
    ctx = digits_context(run)
    assert ctx is not None
    return gm.to_uint8(run.sample(run.noise(n, seed=seed), _requested(n, ctx))).squeeze(1)


def grid_png(run: Any, ctx: DigitsContext) -> bytes:
    """The fixed 8×8 noise grid drawn by the generator now, as a 224×224 PNG (row-major, no gaps).
    (No session state here: a download's data is made outside the script run.)"""
    images = gm.to_uint8(run.sample(ctx.film.noise, ctx.film.labels)).squeeze(1)
    return gi.grid_png(gi.tile_grid(images))


# ----- interpolation
def interpolation(run: Any, position: float) -> tuple[np.ndarray, int]:
    """Images along the path from noise A to noise B, and the one nearest ``position`` (0..1)."""
    ctx = digits_context(run)
    assert ctx is not None
    if ctx.pair is None:
        ctx.pair = _pair(run, 0)
    z0, z1 = ctx.pair
    path = gi.interpolation_path(z0, z1, INTERP_STEPS)
    labels = _requested(INTERP_STEPS, ctx)
    images = gm.to_uint8(run.sample(path, labels)).squeeze(1).numpy()
    return images, round(position * (INTERP_STEPS - 1))


def _pair(run: Any, seed: int) -> tuple[Any, Any]:
    z = run.noise(2, seed=1000 + seed)
    return z[0], z[1]


def on_new_pair() -> None:
    ctx = digits_context(run_of(DIGITS_RUN))
    if ctx is not None:
        st.session_state["gen_pair_seed"] = st.session_state.get("gen_pair_seed", 0) + 1
        ctx.pair = _pair(ctx.run, st.session_state["gen_pair_seed"])


# ----- grading by a classifier
def _learners_classifier() -> tuple[Any, str] | None:
    """The session's classifier run, if it has learned MNIST (at least one epoch, or finished): a copy
    of its network and how the page names it."""
    session = current_session()
    if session is None or session.config.dataset != "mnist":
        return None
    p = session.snapshot().progress
    if p.epoch < 1 and p.status != "done":
        return None
    return session.model_copy("cpu"), session.spec.describe()


def _quick_classifier() -> Any:
    """The grader trained on the spot (once per browser session): the tutorial's dense network, two
    epochs (seconds on a CPU, where the small CNN takes minutes on a busy machine)."""
    quick = st.session_state.get(QUICK_CLASSIFIER)
    if quick is None:
        dataset = dataset_on("mnist", "cpu")
        quick = gg.train_quick_classifier(dataset, spec=QUICK_SPEC, epochs=2, seed=0)
        st.session_state[QUICK_CLASSIFIER] = quick
    return quick


@guarded
def on_grade() -> None:
    """1,000 generated digits labelled by the learner's classifier (or one trained now, saying so)."""
    run = run_of(DIGITS_RUN)
    ctx = digits_context(run)
    if run is None or ctx is None:
        return
    own = _learners_classifier()
    if own is not None:
        model, name, quick_acc = own[0], own[1], None
    else:
        quick = _quick_classifier()
        model, name, quick_acc = quick.model, None, quick.test_accuracy
    images = current_samples(run, GRADE_SAMPLES, seed=2024)
    requested = _requested(GRADE_SAMPLES, ctx)
    info = dataset_on("mnist", "cpu").info
    grade = gg.grade(images, model, requested=requested, mean=info.mean, std=info.std, quick_classifier=own is None)
    ctx.grade = GradeResult(run.snapshot().progress.global_step, grade, name, quick_acc,
                            chosen_digit() if ctx.spec.conditional else None)


@dataclass(frozen=True)
class GradeResult:
    step: int
    grade: Any  # dlplay.gan.grade.Grade
    classifier: str | None  # the learner's network, described; None: the quick classifier
    quick_accuracy: float | None  # the quick classifier's test accuracy
    digit: int | None  # the digit a conditional generator was asked for


def last_grade(run: Any) -> GradeResult | None:
    ctx = digits_context(run)
    return ctx.grade if ctx is not None else None


def show_grade(result: GradeResult, lang: str) -> None:
    g = result.grade
    if result.classifier is not None:
        st.caption(t("generate.grade_by_yours", model=result.classifier, step=f"{result.step:,}"))
    else:
        st.info(t("generate.grade_by_quick", acc=f"{(result.quick_accuracy or 0) * 100:.1f}", step=f"{result.step:,}"),
                icon=":material/bolt:")
    cols = st.columns(3)
    cols[0].metric(t("generate.m_confident"), f"{g.confident_share:.0%}", help=t("generate.m_confident_help"))
    cols[1].metric(t("generate.m_classes"), f"{len(g.present)}/10")
    if result.digit is not None and g.requested_share is not None:
        cols[2].metric(t("generate.m_requested", digit=result.digit), f"{g.requested_share:.0%}")
    else:
        cols[2].metric(t("generate.m_mean_conf"), f"{g.mean_confidence:.0%}")
    if g.collapse and result.digit is None:
        with st.container(key="gen_collapse_alarm"):
            st.error(t("generate.collapse", digits=join_list(g.missing, lang)), icon=":material/warning:")
    elif result.digit is None:
        st.success(t("generate.no_collapse"), icon=":material/check_circle:")
    chart(st, fg.class_histogram_figure(g.histogram, lang, missing=g.missing if result.digit is None else ()),
                    key="gen_grade_fig", config={"displayModeBar": False})


# ----- memorisation
@dataclass(frozen=True)
class Memorisation:
    step: int
    samples: np.ndarray  # uint8 [n, 28, 28]
    nearest: np.ndarray  # the nearest training image of each
    distances: tuple[float, ...]
    typical: float  # median distance of a new real digit (a test image) to its nearest training image
    low: float  # 5th percentile of that: closer than this looks like a copy

    @property
    def mean_distance(self) -> float:
        return float(np.mean(self.distances)) if self.distances else 0.0


@guarded
def on_memorisation() -> None:
    run = run_of(DIGITS_RUN)
    ctx = digits_context(run)
    if run is None or ctx is None:
        return
    dataset = dataset_on("mnist", "cpu")
    samples = current_samples(run, MEMO_SAMPLES, seed=77)
    found = gg.nearest_training(samples, dataset.train_images)
    typical = st.session_state.get(TYPICAL_KEY)
    if typical is None:
        typical = st.session_state[TYPICAL_KEY] = gg.typical_nearest_distance(dataset, n=300)
    nearest = dataset.train_images[list(found.indices)].numpy()
    ctx.memo = Memorisation(run.snapshot().progress.global_step, samples.numpy(), nearest, found.distances,
                            typical.median, typical.low)


def last_memorisation(run: Any) -> Memorisation | None:
    ctx = digits_context(run)
    return ctx.memo if ctx is not None else None


# ----- Draw → D
D_CANVAS_KEY = "gen_d_canvas"


def draw_for_d(run: Any) -> None:
    """The learner draws a digit; the discriminator says how real it finds it."""
    ctx = digits_context(run)
    if ctx is None:
        return
    st.caption(t("generate.draw_d_help"))
    row = st.container(horizontal=True, gap="medium")
    with row.container(width=CANVAS_PX + 4):
        png = draw_canvas(D_CANVAS_KEY, size=CANVAS_PX, stroke=18, undo=t("draw.undo"), clear=t("draw.clear"),
                          label=t("generate.tab_draw"))
    image28 = digit_from_png(png)
    with row.container(width="stretch"):
        if image28 is None:
            st.info(t("generate.draw_d_empty"), icon=":material/draw:")
            return
        labels = gi.digit_labels(1, chosen_digit()) if ctx.spec.conditional else None
        x = gi.signed_batch(image28)
        score = float(run.discriminate(x, labels)[0])
        with st.container(key="gen_d_score"):
            st.metric(t("generate.d_score"), f"{score:.1%}")
        st.progress(min(1.0, max(0.0, score)))
        st.caption(t("generate.d_score_real") if score >= 0.5 else t("generate.d_score_fake"))
        if ctx.spec.conditional:
            st.caption(t("generate.d_score_digit", digit=chosen_digit()))
        st.image(image28, caption=t("generate.d_seen"), width=112, clamp=True)


# ----- download, checkpoints, ONNX
CKPT_UPLOAD = "gen_ckpt_upload"
CKPT_SEEN = "gen_ckpt_seen"
CKPT_ERROR = "gen_ckpt_error"  # why the uploaded file was refused, shown under the uploader
EXPORT_ERROR = "gen_export_error"


def _file_stem(ctx: DigitsContext) -> str:
    return f"dlplay-gan-{ctx.spec.arch}{'-conditional' if ctx.spec.conditional else ''}"


def save_section(run: Any) -> None:
    ctx = digits_context(run)
    if ctx is None:
        return
    stem = _file_stem(ctx)
    lang = current_language()
    errors = st.session_state.setdefault(EXPORT_ERROR, {})

    def guarded_bytes(kind: str, make: Callable[[], bytes]) -> Callable[[], bytes]:
        def data() -> bytes:  # runs when clicked, outside the script: a failure is written for the next run
            try:
                out = make()
            except Exception as exc:
                errors[kind] = translate("generate.export_failed", lang, error=f"{type(exc).__name__}: {exc}")
                raise
            errors.pop(kind, None)
            return out
        return data

    def checkpoint() -> bytes:
        g, d = run.copies()
        return gm.save_gan_checkpoint(g, d, ctx.config, steps=run.snapshot().progress.global_step)

    st.caption(t("generate.save_help"))
    c1, c2, c3 = st.columns(3)
    c1.download_button(t("generate.download_grid"), guarded_bytes("png", lambda: grid_png(run, ctx)), f"{stem}-grid.png",
                       "image/png", key="gen_grid_png", on_click="ignore", icon=":material/grid_on:",
                       help=t("generate.download_grid_help"))
    c2.download_button(t("generate.download_ckpt"), guarded_bytes("ckpt", checkpoint), f"{stem}.pt",
                       "application/octet-stream", key="gen_ckpt_download", on_click="ignore",
                       icon=":material/download:")
    c3.download_button(t("generate.download_onnx"),
                       guarded_bytes("onnx", lambda: gm.export_generator_onnx(run.generator_copy())), f"{stem}-generator.onnx",
                       "application/octet-stream", key="gen_onnx_download", on_click="ignore",
                       icon=":material/download:", help=t("generate.download_onnx_help"))
    for message in errors.values():
        st.error(message)
    upload = st.file_uploader(t("generate.upload_ckpt"), type=["pt"], key=CKPT_UPLOAD, help=t("generate.upload_ckpt_help"))
    if upload is None:
        st.session_state.pop(CKPT_ERROR, None)  # the file it was about is gone
    elif st.session_state.get(CKPT_SEEN) != upload.file_id:
        st.session_state[CKPT_SEEN] = upload.file_id
        try:
            ckpt = gm.load_gan_checkpoint(upload.getvalue())
            adopt_gan_checkpoint(ckpt)
        except UserError as exc:
            st.session_state[CKPT_ERROR] = error_text(exc)
        else:
            st.session_state.pop(CKPT_ERROR, None)
        st.rerun()
    problem = st.session_state.get(CKPT_ERROR)
    if problem:  # right under the uploader (the page's error box is ~900 px above it, out of sight)
        with st.container(key="gen_ckpt_error"):
            st.error(problem, icon=":material/error:")


def adopt_gan_checkpoint(ckpt: Any) -> Any:
    """A loaded GAN checkpoint becomes the digits run: both networks' weights, not started (Start trains a new one)."""
    preset = ckpt.spec.arch if ckpt.spec.arch in gm.GAN_PRESETS else digit_presets()[0]
    run = _new_digits_run(preset, ckpt.spec)
    state = {f"generator.{k}": v for k, v in ckpt.generator_state.items()}
    state.update({f"discriminator.{k}": v for k, v in ckpt.discriminator_state.items()})
    run.load_state_dict(state)
    ctx = digits_context(run)
    assert ctx is not None
    ctx.film.record_output(run.sample(ctx.film.noise, ctx.film.labels), ckpt.steps)  # its frame: the steps it had
    ctx.loaded_steps = ckpt.steps
    st.session_state[ERROR_KEY] = None
    return run
