"""Fork a run (Train page): pick a step of a paused or finished run and one change, start the fork,
and watch the two runs side by side from the fork point on. The core is dlplay/classify/fork.py."""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from dlplay.classify.fork import CHANGES, Change, ResumeState, RunCurves, curves, epochs_at, plan_fork
from dlplay.classify.handle import RunHandle
from dlplay.classify.probe import ProbeSnapshot
from dlplay.classify.runs import RunRecord
from dlplay.errors import UserError
from dlplay.nn.optimizers import OPTIMIZERS, SCHEDULES
from dlplay.run.metrics import MetricsSnapshot
from dlplay.run.status import Status
from dlplay.ui.i18n import error_text, t
from dlplay.ui.state import current_session, fork_run, get_config, get_spec, set_config, set_spec
from dlplay.ui.training import BATCH_CHOICES, LR_CHOICES, chosen_pace, nearest

VIEW = "fork_view"  # the latest fork: the parent's curves, kept when the fork replaced it
ERROR = "fork_error"
DROPOUT_CHOICES = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


@dataclass(frozen=True)
class ForkView:
    """What the overlay needs of a fork and of its parent (whose run is no longer current)."""

    fork_id: str
    origin: tuple[str, int, str, str, str]
    parent: MetricsSnapshot
    parent_probe: ProbeSnapshot | None
    parent_batch: int
    parent_start: ResumeState | None  # the parent's own start, when it was a fork too
    start: ResumeState
    train_size: int


def origin_text(origin: tuple[str, int, str, str, str] | None) -> str:
    """ "Forked from run X at step S, changed: learning rate 0.01 → 0.1" in the page's language."""
    if not origin:
        return ""
    parent, step, kind, old, new = origin
    if kind == "none":
        return t("fork.origin_same", run=parent, step=step)
    return t("fork.origin", run=parent, step=step, change=t(f"fork.change_{kind}"),
             old=value_text(kind, old), new=value_text(kind, new))


def value_text(kind: str, value: str) -> str:
    """A changed value as the learner reads it (an optimiser's or schedule's name, a number)."""
    if kind == "optimizer" and value in OPTIMIZERS:
        return t(f"train.opt_{value}")
    if kind == "schedule" and value in SCHEDULES:
        return t(f"train.sched_{value}")
    return value


def fork_note(session: RunHandle | None) -> str | None:
    """When the current run is a fork whose settings are not the sidebar's: what the fork changed, so the
    learner sees that the sidebar kept their own settings for the next Start (None otherwise)."""
    origin = session.forked_from if session is not None else None
    if not origin or origin[2] == "none":
        return None
    if session is None or (session.spec == get_spec() and session.config == get_config()):
        return None
    _, _, kind, _, new = origin
    return t("settings.fork_note", change=t(f"fork.change_{kind}"), value=value_text(kind, new))


def record_note(record: RunRecord) -> str:
    """The Runs page's line for a forked run ("" for any other)."""
    return origin_text(record.fork)


# ----------------------------------------------------------------------------- the fork panel
def _value_widget(kind: str, session: RunHandle) -> None:
    """The widget for the new value of what the fork changes (key ``fork_value_<kind>``)."""
    config = session.config
    key = f"fork_value_{kind}"
    if kind == "lr":
        if key not in st.session_state:
            st.session_state[key] = nearest(LR_CHOICES, config.lr * 10)
        st.select_slider(t("fork.new_lr"), LR_CHOICES, key=key, format_func=lambda v: f"{v:g}")
    elif kind == "optimizer":
        st.session_state.setdefault(key, next(o for o in OPTIMIZERS if o != config.optimizer))
        names = {k: t(f"train.opt_{k}") for k in OPTIMIZERS}
        st.selectbox(t("fork.new_optimizer"), list(names), key=key, format_func=names.__getitem__,
                     help=t("fork.optimizer_help"))
    elif kind == "batch_size":
        st.session_state.setdefault(key, next(b for b in BATCH_CHOICES if b > config.batch_size)
                                    if config.batch_size < BATCH_CHOICES[-1] else BATCH_CHOICES[0])
        st.select_slider(t("fork.new_batch"), BATCH_CHOICES, key=key, help=t("fork.batch_help"))
    elif kind == "dropout":
        st.session_state.setdefault(key, 0.5)
        st.select_slider(t("fork.new_dropout"), DROPOUT_CHOICES, key=key, format_func=lambda v: f"{v:g}")
    elif kind == "schedule":
        st.session_state.setdefault(key, next(s for s in SCHEDULES if s != config.schedule))
        names = {k: t(f"train.sched_{k}") for k in SCHEDULES}
        st.selectbox(t("fork.new_schedule"), list(names), key=key, format_func=names.__getitem__)


def can_fork(session: RunHandle | None, snap: MetricsSnapshot | None) -> bool:
    """A run that is paused or ended, with at least one step behind it and one ahead of its first."""
    return (session is not None and snap is not None and session.status not in (Status.RUNNING, Status.QUEUED,
                                                                                Status.READY)
            and snap.progress.global_step > 0 and session.total_steps > 1)


def fork_panel(session: RunHandle | None, snap: MetricsSnapshot | None) -> None:
    """The expander where a learner forks the current run (nothing while it trains)."""
    if not can_fork(session, snap):
        return
    assert session is not None
    assert snap is not None
    last = min(int(snap.progress.global_step), session.total_steps - 1)
    first = _first_step(session)
    if last <= first:
        return
    with st.expander(t("fork.title"), icon=":material/call_split:", expanded=VIEW not in st.session_state):
        st.caption(t("fork.intro"))
        if not (first <= st.session_state.get("fork_step", -1) <= last):
            st.session_state["fork_step"] = (first + last) // 2
        st.slider(t("fork.step"), first, last, key="fork_step", help=t("fork.step_help"))
        changes = {k: t(f"fork.change_{k}") for k in CHANGES}  # texts fixed now (AppTest formats them later)
        kind = st.selectbox(t("fork.change"), list(changes), key="fork_kind", format_func=changes.__getitem__)
        _value_widget(kind, session)
        st.button(t("fork.start"), key="fork_go", type="primary", icon=":material/call_split:", on_click=on_fork)
        problem = st.session_state.get(ERROR)
        if problem:
            st.error(problem)


def _first_step(session: RunHandle) -> int:
    """A fork's own steps start after its fork point: it can be forked from there on."""
    return int(session.forked_from[1]) if session.forked_from else 0


def on_fork() -> None:
    """Button callback: plan the fork (replaying to the chosen step), make it the current run, start it."""
    st.session_state[ERROR] = None
    parent = current_session()
    if parent is None:
        return
    kind = st.session_state.get("fork_kind", "none")
    value = st.session_state.get(f"fork_value_{kind}")
    if kind == "batch_size" and value is not None:
        value = int(value)
    try:
        step = int(st.session_state["fork_step"])
        previous = st.session_state.get(VIEW)
        parent_start = previous.start if previous is not None and previous.fork_id == parent.run_id else None
        snap, probe = parent.snapshot(), parent.probe_snapshot()
        with st.spinner(t("fork.replaying", step=step)):
            plan = plan_fork(parent, step, Change(kind, value))
        own = get_spec(), get_config()
        child = fork_run(plan)
        set_spec(own[0])  # the sidebar keeps the learner's settings (fork_note says the fork's)
        set_config(own[1])
    except UserError as exc:
        st.session_state[ERROR] = error_text(exc)
        return
    st.session_state[VIEW] = ForkView(child.run_id, plan.origin, snap, probe, parent.config.batch_size,
                                      parent_start, plan.start, plan.start.train_size)
    child.set_pace(chosen_pace())
    child.start()


# ----------------------------------------------------------------------------- the overlay
def overlay_curves(session: RunHandle, snap: MetricsSnapshot) -> tuple[ForkView, RunCurves, RunCurves, float] | None:
    """(view, the parent's curves, the fork's, the fork point on the epochs axis) when ``session`` is the
    latest fork, else None."""
    view = st.session_state.get(VIEW)
    if view is None or view.fork_id != session.run_id:
        return None
    step = view.origin[1]
    n = view.train_size
    parent = curves(view.parent, view.parent_probe, n, view.parent_batch, view.parent_start, from_step=step)
    child = curves(snap, session.probe_snapshot(), n, session.config.batch_size, view.start, from_step=step)
    fork_x = float(epochs_at([step], n, view.parent_batch, view.parent_start)[0])
    return view, parent, child, fork_x
