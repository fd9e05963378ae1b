"""Train page: choose a model and hyperparameters, then train live and watch the curves."""
import streamlit as st

from dlplay.data.datasets import get_info
from dlplay.figures.fork import METRICS as FORK_METRICS
from dlplay.figures.fork import fork_figure
from dlplay.figures.pins import pin_figure
from dlplay.figures.training import epoch_figure, loss_figure
from dlplay.run.status import ACTIVE, PROBLEM, Status
from dlplay.ui import fork as fk
from dlplay.ui import owndata as own
from dlplay.ui import pins as pn
from dlplay.ui import settings as ui_settings
from dlplay.ui import training as tr
from dlplay.ui import validation as vd
from dlplay.ui.a11y import announce, training_announcement
from dlplay.ui.augment import augment_panel
from dlplay.ui.charts import chart
from dlplay.ui.data import show_data_problem
from dlplay.ui.i18n import current_language, t
from dlplay.ui.state import current_session, get_config, get_spec, heartbeat, init_state, is_active

init_state()
lang = current_language()
spec, config = get_spec(), get_config()


def setting(name: str, **kw) -> None:
    """A sidebar widget drawn from the settings table (a refused value: the message above the buttons)."""
    ui_settings.widget(name, error_key=tr.ERROR_KEY, **kw)


st.title(t("train.title"))
st.caption(t("train.intro"))

# ---------------------------------------------------------------- settings (sidebar)
with st.sidebar:
    st.subheader(t("train.settings"))
    fork_note = fk.fork_note(current_session())  # the current run is a fork: the sidebar kept the learner's settings
    if fork_note:
        st.caption(fork_note)
    setting("dataset", format_func=lambda k: get_info(k).title, options=own.dataset_choices())
    setting("preset")
    st.markdown(f"**{t('train.model')}:** `{tr.spec_text(spec)}`")
    uniform = tr.uniform_dense(spec)
    if uniform is not None:
        setting("hidden_layers")  # a number above the limit is brought back to it, with a message
        setting("units", disabled=uniform[0] == 0)
        setting("activation", disabled=uniform[0] == 0)
    else:
        st.info(t("train.custom_model"))
    if tr.build_page_exists():
        st.page_link("views/build.py", label=t("train.edit_layers"), icon=":material/account_tree:")
    setting("optimizer")
    setting("lr", on_change=tr.on_lr)
    setting("schedule")
    setting("batch_size")
    setting("epochs", high=tr.max_epochs())
    setting("seed")
    vd.settings(config)  # validation share, early stopping, the run's label edits
    augment_panel()  # augmentation: a level or each transform's strength, and a preview (dlplay/ui/augment.py)
    if config.train_size is not None:  # e.g. from a shared link: say so, it changes what the run learns
        st.info(tr.subset_text(spec, config), icon=":material/filter_alt:")
        st.button(t("train.subset_all"), key="tw_all_data", on_click=tr.on_all_data)

show_data_problem("train")  # a dataset this machine lacks: where to put it, and "Check again"

session = current_session()
active = is_active(session)  # the polling interval is fixed when the fragment is defined: see live_view's end


def controls(session, status: str) -> None:
    """The button row and the pace: drawn on every tick of live_view, so they follow the run's state
    whoever changed it (a click here, the run finishing, the Admin stopping it)."""
    problem = st.session_state.get(tr.ERROR_KEY)
    if problem:
        st.error(problem)
    cols = st.columns(5)
    cols[0].button(t("train.start"), key="train_start", type="primary", icon=":material/play_arrow:",
                   on_click=tr.on_start, disabled=status in (Status.RUNNING, Status.QUEUED), width="stretch")
    if status == Status.PAUSED:
        cols[1].button(t("train.resume"), key="train_resume", icon=":material/resume:", on_click=tr.on_resume,
                       width="stretch")
    else:
        cols[1].button(t("train.pause"), key="train_pause", icon=":material/pause:", on_click=tr.on_pause,
                       disabled=status != Status.RUNNING, width="stretch")
    cols[2].button(t("train.step"), key="train_step", icon=":material/skip_next:", on_click=tr.on_step,
                   disabled=status in (Status.RUNNING, Status.QUEUED), help=t("train.step_help"), width="stretch")
    cols[3].button(t("train.stop"), key="train_stop", icon=":material/stop:", on_click=tr.on_stop,
                   disabled=status not in ACTIVE, width="stretch")
    cols[4].button(t("train.reset"), key="train_reset", icon=":material/restart_alt:", on_click=tr.on_reset,
                   disabled=session is None, width="stretch")
    tr.sync_pace(session)
    setting("pace", on_change=tr.on_pace, format_func=tr.pace_label)
    if session is not None and tr.settings_differ(session):
        st.warning(t("train.settings_changed"))


def fork_overlay(session, snap) -> None:
    """The run and its fork side by side, when the current run is the latest fork (dlplay/ui/fork.py)."""
    overlay = fk.overlay_curves(session, snap)
    if overlay is None:
        return
    view, parent, fork, fork_x = overlay
    st.subheader(t("fork.overlay_title"))
    st.caption(fk.origin_text(view.origin) + " · " + t("fork.overlay_caption"))
    with st.container(key="fork_overlay"):
        for col, metric in zip(st.columns(len(FORK_METRICS)), FORK_METRICS):
            chart(col, fork_figure(parent, fork, metric, fork_x, lang), width="stretch", key=f"fork_fig_{metric}",
                             config={"displayModeBar": False})


def pinned_digits(session) -> None:
    """Each pinned image's ten probabilities so far (dlplay/ui/pins.py)."""
    pins = pn.live_pins(session)
    if pins is None:
        return
    st.subheader(t("pins.live_title"))
    st.caption(t("pins.live_caption", every=session.probe_every() or "–"))
    names = pn.class_names(session.dataset_info)
    with st.container(key="pins_charts"):
        for i in range(len(pins)):
            c1, c2 = st.columns([1, 6], vertical_alignment="center")
            c1.image(pn.thumbnail(pins.images[i]), width=pn.THUMB_PX, alt=t("a11y.alt_pinned", n=i + 1))
            chart(c2, pin_figure(pins, i, names, lang), width="stretch", key=f"pin_fig_{i}",
                            config={"displayModeBar": False})


# ---------------------------------------------------------------- controls and live view
@st.fragment(run_every=0.5 if active else None)
def live_view() -> None:
    session = current_session()
    snap = session.snapshot() if session is not None else None  # one snapshot: buttons and metrics agree
    controls(session, snap.progress.status if snap is not None else "none")
    if session is None or snap is None:  # snap is None exactly when session is
        st.info(t("train.press_start"))
        return
    heartbeat()
    p = snap.progress
    st.progress(min(1.0, p.fraction), text=tr.progress_text(p))
    announce(training_announcement(p.status, snap.epochs, p.epochs))  # screen readers: per epoch, politely
    m = st.columns(5)
    m[0].metric(t("train.m_status"), t(f"train.status_{p.status}"))
    m[1].metric(t("train.m_epoch"), f"{p.epoch}/{p.epochs}")
    m[2].metric(t("train.m_loss"), f"{snap.losses[-1]:.4f}" if len(snap.losses) else "–")
    m[3].metric(t("train.m_test_acc"), f"{snap.epochs[-1].test_acc:.2%}" if snap.epochs else "–")
    m[4].metric(t("train.m_speed"), f"{p.samples_per_s:,.0f}" if p.samples_per_s and p.status == Status.RUNNING else "–")
    if p.engine:
        st.caption(t("train.engine_dense") if p.engine == "dense" else t("train.engine_autograd"))
    if p.cuda_graph:  # on a GPU: whether the steps replay CUDA graphs (dlplay/run/cudagraph.py)
        st.caption(t(f"cudagraph.{p.cuda_graph}"))
    if p.message:
        box = st.error if p.status in PROBLEM else st.info
        box(t(p.message, **dict(p.message_params)))
    warning = tr.warning_text(p)
    if warning:
        with st.container(key="train_warning"):
            st.warning(warning, icon=":material/warning:")
    vd.notes(snap)  # early stopping's outcome, "overfitting since epoch N"
    with st.container(key="train_loss_chart"):
        chart(st, loss_figure(snap, lang, lr_curve=tr.planned_lr(session, snap)), width="stretch", key="loss_fig")
    c1, c2 = st.columns(2)
    chart(c1, epoch_figure(snap, "acc", lang), width="stretch", key="acc_fig")
    chart(c2, epoch_figure(snap, "loss", lang), width="stretch", key="eloss_fig")
    fork_overlay(session, snap)
    pinned_digits(session)
    fk.fork_panel(session, snap)
    if is_active(session) != active:
        st.rerun()  # started or ended: a full rerun starts or stops the polling


live_view()
pn.pins_manager(session)  # pin test images (drawings: the Draw page)
