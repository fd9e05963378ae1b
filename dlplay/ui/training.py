"""Train page helpers: widget callbacks that turn controls into ModelSpec/TrainConfig and commands."""
from __future__ import annotations

import math
import time

import streamlit as st

from dlplay.activations import DEFAULT_ACTIVATION
from dlplay.datasplit import make_split
from dlplay.errors import UserError
from dlplay.handle import RunHandle
from dlplay.layers import DENSE
from dlplay.metrics import MetricsSnapshot, Progress
from dlplay.presets import PRESETS
from dlplay.spec import MAX_EPOCHS, MAX_WEIGHT_LAYERS, LayerSpec, ModelSpec, TrainConfig, lr_curve
from dlplay.status import FINISHED
from dlplay.ui.data import dataset_on, guarded_by
from dlplay.ui.i18n import t
from dlplay.ui.nav import ROOT
from dlplay.ui.state import current_session, get_config, get_spec, new_session, reset_session, set_config, set_spec

ERROR_KEY = "train_error"
CLAMPED = "train_clamped"  # widget key -> the message for a value above its limit that was brought back to it
LR_CHOICES = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]
BATCH_CHOICES = [1, 8, 16, 32, 64, 128, 256, 512, 1024]
UNIT_CHOICES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
FULL_SPEED = 0  # the pace slider's value for "as fast as it goes" (the run's pace None)
PACE_CHOICES = [1, 2, 3, 5, 10, 20, 50, 100, 200, FULL_SPEED]  # steps per second
PACE_KEY = "train_pace_choice"  # the learner's pace for the next runs (steps/s, FULL_SPEED: None)


def nearest(choices: list, value: float) -> float:
    return min(choices, key=lambda c: abs(c - value) / max(abs(c), 1e-12))


def build_page_exists() -> bool:
    return (ROOT / "pages" / "build.py").exists()


def spec_text(spec: ModelSpec) -> str:
    """``784 → 128 relu → 10`` style summary of a network; a convolutional one starts at ``1×28×28``."""
    return spec.describe(image_input=True)


def uniform_dense(spec: ModelSpec) -> tuple[int, int, str] | None:
    """(count, units, activation) when every hidden layer is the same dense layer without dropout."""
    layers = spec.layers
    if spec.init != "default" or any(layer.kind != DENSE or layer.dropout for layer in layers):
        return None
    if len({(layer.units, layer.activation) for layer in layers}) > 1:
        return None
    if not layers:
        return 0, LayerSpec().units, DEFAULT_ACTIVATION
    return len(layers), layers[0].units, layers[0].activation


def matching_preset(spec: ModelSpec, config: TrainConfig) -> str:
    """The preset whose model and settings are the current ones, else ``custom``."""
    for key, preset in PRESETS.items():
        if preset.spec == spec and preset.config.with_changes(dataset=config.dataset) == config:
            return key
    return "custom"


_guard = guarded_by(ERROR_KEY)  # a UserError in a callback becomes a message on the page


def widget_values(spec: ModelSpec, config: TrainConfig) -> dict[str, object]:
    """What each sidebar widget of the Train page shows for this model and these settings."""
    values: dict[str, object] = {
        "tw_dataset": config.dataset,
        "tw_preset": matching_preset(spec, config),
        "tw_opt": config.optimizer,
        "tw_lr": nearest(LR_CHOICES, config.lr),
        "tw_sched": config.schedule,
        "tw_batch": nearest(BATCH_CHOICES, config.batch_size),
        "tw_epochs": config.epochs,
        "tw_seed": config.seed,
    }
    uniform = uniform_dense(spec)
    if uniform is not None:
        count, units, activation = uniform
        values.update(tw_layers=count, tw_units=nearest(UNIT_CHOICES, units), tw_act=activation)
    return values


def sync_widgets(spec: ModelSpec, config: TrainConfig) -> None:
    """Before the widgets are drawn: make them show the current model and settings.

    The settings live in get_spec()/get_config() (widget callbacks write there first); a preset, the
    Build page or a share link change them too. A widget's own default applies only when it is first
    created and the browser keeps its old value, so without this a preset's optimizer did not show.
    """
    state = st.session_state
    for key, value in widget_values(spec, config).items():
        if state.get(key) != value:
            state[key] = value


@_guard
def on_preset() -> None:
    key = st.session_state.get("tw_preset")
    if key in PRESETS:
        preset = PRESETS[key]
        set_spec(preset.spec)
        set_config(preset.config.with_changes(dataset=get_config().dataset))


def max_epochs() -> int:
    """Epochs one run may have here: the model's limit or the server's guardrail, whichever is lower."""
    from dlplay.ui import server

    return min(MAX_EPOCHS, server.limits().max_epochs)


def _clamp(key: str, high: int, label_key: str) -> int:
    """The widget's value, at most ``high``; a larger one is set back to ``high`` with a message beside it."""
    value = int(st.session_state[key])
    clamped = st.session_state.setdefault(CLAMPED, {})
    clamped.pop(key, None)
    if value > high:
        clamped[key] = t("train.clamped", value=value, name=t(label_key), high=high)
        st.session_state[key] = value = high
    return value


def show_clamped(key: str) -> None:
    """Under a number field: why the value typed there was brought back to the limit."""
    message = st.session_state.get(CLAMPED, {}).get(key)
    if message:
        st.warning(message, icon=":material/block:")


@_guard
def on_layers() -> None:
    count = _clamp("tw_layers", MAX_WEIGHT_LAYERS, "train.hidden_layers")
    units = int(st.session_state.get("tw_units", 128))
    act = st.session_state.get("tw_act", DEFAULT_ACTIVATION)
    set_spec(ModelSpec(layers=tuple(LayerSpec(DENSE, units, act) for _ in range(count))))
    st.session_state["tw_preset"] = "custom"


@_guard
def on_dataset() -> None:
    set_config(get_config().with_changes(dataset=st.session_state["tw_dataset"]))


@_guard
def on_config() -> None:
    s = st.session_state
    epochs = _clamp("tw_epochs", max_epochs(), "train.epochs")
    set_config(get_config().with_changes(
        optimizer=s["tw_opt"], batch_size=int(s["tw_batch"]), epochs=epochs, seed=int(s["tw_seed"]),
        schedule=s.get("tw_sched", get_config().schedule),
    ))
    s["tw_preset"] = "custom"


@_guard
def on_all_data() -> None:
    set_config(get_config().with_changes(train_size=None))


def subset_text(spec: ModelSpec, config: TrainConfig) -> str:
    """The sidebar's note on a run limited to part of the training set (``config.train_size``): how many
    images it trains on and, with a validation share, how many are held out. The numbers come from the
    run's own split (``datasplit.make_split``, as TrainingSession makes it), not recounted here."""
    try:
        split = make_split(config, dataset_on(config.dataset, "cpu").train_labels, spec.num_classes)
    except UserError:  # no dataset here, or an edit that does not fit it: Start says why; the limit is still true
        return t("train.subset", n=f"{config.train_size:,}")
    if not len(split.val):
        return t("train.subset", n=f"{len(split.train):,}")
    return t("polish.subset_val", n=f"{len(split.train):,}", val=f"{len(split.val):,}",
             share=f"{config.val_share:.0%}")


@_guard
def on_lr() -> None:
    lr = float(st.session_state["tw_lr"])
    set_config(get_config().with_changes(lr=lr))
    session = current_session()
    if session is not None and session.status not in FINISHED:
        session.set_lr(lr)  # takes effect at the next step of the running model


def settings_differ(session: RunHandle) -> bool:
    """Settings that need a new run changed (the learning rate does not: it applies live)."""
    return session.spec != get_spec() or session.config.with_changes(lr=get_config().lr) != get_config()


def _fresh_or_current() -> RunHandle:
    session = current_session()
    if session is None or session.status in FINISHED or settings_differ(session):
        session = new_session()
    return session


def chosen_pace() -> float | None:
    """The pace the learner chose (steps per second), None at full speed."""
    value = st.session_state.get(PACE_KEY, FULL_SPEED)
    return None if value == FULL_SPEED else float(value)


def pace_label(value: int) -> str:
    if value == FULL_SPEED:
        return t("train.pace_full")
    return t("train.pace_one") if value == 1 else t("train.pace_value", n=value)


def sync_pace_widget(session: RunHandle | None) -> None:
    """Before the pace slider is drawn: it shows the run's pace (the pace lives in the run, so a change
    from another page shows here), else the learner's choice for the next run."""
    pace = session.pace if session is not None and session.status not in FINISHED else chosen_pace()
    value = FULL_SPEED if pace is None else nearest(PACE_CHOICES[:-1], pace)
    if st.session_state.get("train_pace") != value:
        st.session_state["train_pace"] = value


@_guard
def on_pace() -> None:
    value = st.session_state["train_pace"]
    st.session_state[PACE_KEY] = value
    session = current_session()
    if session is not None and session.status not in FINISHED:
        session.set_pace(chosen_pace())  # from the next step, also while it runs


def await_status(session: RunHandle, leaving: tuple[str, ...], timeout_s: float = 0.3) -> None:
    """Wait briefly until the run has left ``leaving`` (it applies commands between steps), so the
    buttons drawn right after a click already show the new state; the polling fragment covers the rest."""
    end = time.monotonic() + timeout_s
    while session.status in leaving and session.is_alive and time.monotonic() < end:
        time.sleep(0.01)


@_guard
def on_start() -> None:
    session = _fresh_or_current()
    session.set_pace(chosen_pace())
    if session.status == "paused":
        session.resume()
        await_status(session, ("paused",))
    else:
        session.start()
        await_status(session, ("ready",))


@_guard
def on_pause() -> None:
    session = current_session()
    if session is not None:
        session.pause()
        await_status(session, ("running",))


@_guard
def on_resume() -> None:
    session = current_session()
    if session is not None:
        session.resume()
        await_status(session, ("paused",))


@_guard
def on_step() -> None:
    session = _fresh_or_current()
    session.set_pace(chosen_pace())
    session.step(1)
    await_status(session, ("ready", "running"))


@_guard
def on_stop() -> None:
    session = current_session()
    if session is not None:
        session.stop()


@_guard
def on_reset() -> None:
    reset_session()


def planned_lr(session: RunHandle, snap: MetricsSnapshot) -> tuple[list[int], list[float]] | None:
    """The run's learning rate over all its steps, when it changes at all (a schedule or live changes)."""
    if session.config.schedule == "constant" and not snap.lr_changes:
        return None
    return lr_curve(session.config, session.total_steps, snap.lr_changes)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


def current_epoch(p: Progress) -> tuple[int, int]:
    """(epoch, step in it) of the latest step, 1-based: at an epoch's last step this is still that
    epoch (step n/n), as the "Epochs done" metric counts it once its test evaluation is in."""
    if p.global_step <= 0 or p.steps_per_epoch <= 0:
        return min(p.epoch + 1, max(p.epochs, 1)), p.step_in_epoch
    epoch = math.ceil(p.global_step / p.steps_per_epoch)
    return epoch, p.global_step - (epoch - 1) * p.steps_per_epoch


def progress_text(p: Progress) -> str:
    epoch, step = current_epoch(p)
    text = t("train.progress", epoch=epoch, epochs=p.epochs, step=step, steps=p.steps_per_epoch,
             speed=f"{p.samples_per_s:,.0f}", eta=_duration(p.eta_s if p.status == "running" else None))
    if p.evaluating is not None and p.status not in FINISHED:
        text += " · " + t("train.evaluating", share=p.evaluating)
    return text


def warning_text(p: Progress) -> str:
    """The run's warning (it goes on, but something is wrong) with what is known about why, or ""."""
    if not p.warning:
        return ""
    params = dict(p.warning_params)
    parts = [t(p.warning, **params)]
    if "peak" in params and p.warning != "train.warn_exploded":
        parts.append(t("train.warn_peak", peak=params["peak"], step=params["step"]))
    if "dead" in params:
        parts.append(t("train.warn_dead", dead=params["dead"]))
    return "".join(part if i == 0 or parts[i - 1].endswith(("。", "！", "？")) else " " + part
                   for i, part in enumerate(parts))  # no space after a Chinese full stop
