"""Train page helpers: the run's commands (Start, Pause, Step...), the live learning rate and pace, and the
texts of the live view. The sidebar's settings are drawn from the settings table (dlplay/ui/settings.py)."""
from __future__ import annotations

import math
import time

from dlplay import settings as settings_table
from dlplay.classify.handle import RunHandle
from dlplay.classify.split import make_split
from dlplay.errors import UserError
from dlplay.nn.activations import DEFAULT_ACTIVATION
from dlplay.nn.layers import DENSE
from dlplay.nn.spec import MAX_EPOCHS, LayerSpec, ModelSpec, TrainConfig, lr_curve
from dlplay.run.control import RunControl
from dlplay.run.metrics import MetricsSnapshot, Progress
from dlplay.run.status import FINISHED
from dlplay.settings import SETTINGS
from dlplay.ui import settings as ui_settings
from dlplay.ui.data import dataset_on, guarded_by
from dlplay.ui.i18n import t
from dlplay.ui.nav import ROOT
from dlplay.ui.state import current_session, get_config, get_spec, new_session, reset_session

ERROR_KEY = "train_error"
LR_CHOICES = list(SETTINGS["lr"].stops)  # (the fork panel offers the same rates)
BATCH_CHOICES = list(SETTINGS["batch_size"].stops)
FULL_SPEED = settings_table.FULL_SPEED  # the pace slider's value for "as fast as it goes" (the run's pace None)
PACE_CHOICES = list(SETTINGS["pace"].choices)  # steps per second
PACE_KEY = ui_settings.PACE_KEY  # the learner's pace for the next runs (steps/s, FULL_SPEED: None)


def nearest(choices: list, value: float) -> float:
    return min(choices, key=lambda c: abs(c - value) / max(abs(c), 1e-12))


def build_page_exists() -> bool:
    return (ROOT / "views" / "build.py").exists()


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


_guard = guarded_by(ERROR_KEY)  # a UserError in a callback becomes a message on the page


def max_epochs() -> int:
    """Epochs one run may have here: the model's limit or the server's guardrail, whichever is lower."""
    from dlplay.ui import server

    return min(MAX_EPOCHS, server.limits().max_epochs)


@_guard
def on_all_data() -> None:
    ui_settings.set_value("train_size", None)


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


def on_lr() -> None:
    """After the learning-rate widget set the rate: it also applies to the running model, from its next step."""
    session = current_session()
    if session is not None and session.status not in FINISHED:
        session.set_lr(get_config().lr)


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
    value = ui_settings.get("pace")
    return None if value == FULL_SPEED else float(value)


def pace_label(value: int) -> str:
    if value == FULL_SPEED:
        return t("train.pace_full")
    return t("train.pace_one") if value == 1 else t("train.pace_value", n=value)


def sync_pace(session: RunHandle | None) -> None:
    """Before the pace slider is drawn: the pace lives in the run, so a change from another page becomes
    the learner's pace here too (the slider shows the run's pace, else the learner's for the next run)."""
    if session is None or session.status in FINISHED:
        return
    pace = session.pace
    value = FULL_SPEED if pace is None else nearest(PACE_CHOICES[:-1], pace)
    if ui_settings.get("pace") != value:
        ui_settings.set_value("pace", value)


def on_pace() -> None:
    """After the pace slider set the learner's pace: the current run takes it from its next step."""
    session = current_session()
    if session is not None and session.status not in FINISHED:
        session.set_pace(chosen_pace())


def await_status(session: RunControl, leaving: tuple[str, ...], timeout_s: float = 0.3) -> None:
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
