"""Issue 15: a run that blows up says so (#2), a pace a learner can watch (#10), the end-of-epoch
evaluation reports its progress and the progress line agrees with the epoch metric (#9).
Real runs on the real MNIST sample."""
from __future__ import annotations

import time

import numpy as np
import pytest

from dlplay.classify.probe import Probe
from dlplay.classify.train import TrainingSession
from dlplay.errors import UserError
from dlplay.figures.training import loss_figure
from dlplay.i18n import translate
from dlplay.nn.presets import PRESETS
from dlplay.nn.spec import TrainConfig, dense_spec
from dlplay.run.metrics import Progress


def wait_for(predicate, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.005)
    return False


@pytest.fixture(scope="module")
def lr10_run(mnist):
    """The tutorial's model with Adam at learning rate 10, probed like a run started on Train."""
    preset = PRESETS["tutorial"]
    session = TrainingSession(preset.spec, preset.config.with_changes(lr=10.0, epochs=2), mnist, "cpu",
                              callbacks=[Probe()])
    session.start()
    assert session.join(120)
    return session


def test_adam_at_learning_rate_10_warns_that_training_broke_down(lr10_run):
    p = lr10_run.snapshot().progress
    assert p.status == "done"  # a warning, not a crash: the run went on to its end
    assert p.warning == "train.warn_chance_broken"
    params = dict(p.warning_params)
    assert params["acc"] <= 0.15
    assert params["chance"] == 0.1
    assert params["epoch"] == 2
    assert params["lr"] == 10.0
    losses = dict(zip(lr10_run.snapshot().steps.tolist(), lr10_run.snapshot().losses.tolist()))
    assert params["peak"] == losses[params["step"]] > 1000 * losses[1]  # the step where the loss exploded
    assert params["dead"] >= 0.5  # the probe saw the ReLU units die
    for lang in ("en", "zh"):
        text = translate(p.warning, lang, **params)
        assert "10" in text
        assert "10%" in text


def test_the_explosion_is_reported_as_soon_as_it_is_synced(mnist):
    preset = PRESETS["tutorial"]
    session = TrainingSession(preset.spec, preset.config.with_changes(lr=10.0, epochs=5), mnist, "cpu", sync_every=10)
    session.step(20)
    assert wait_for(lambda: session.snapshot().progress.global_step == 20)
    p = session.snapshot().progress
    assert p.warning == "train.warn_exploded"
    assert not p.epoch  # within the first epoch, before any evaluation
    assert dict(p.warning_params)["peak"] > 100 * dict(p.warning_params)["start"]
    session.stop()
    assert session.join(10)


def test_a_healthy_run_gets_no_warning(mnist):
    session = TrainingSession(dense_spec([32]), TrainConfig(epochs=1, train_size=3000), mnist, "cpu")
    session.start()
    assert session.join(60)
    assert session.snapshot().progress.warning == ""
    assert session.snapshot().epochs[-1].test_acc > 0.8


def test_the_loss_chart_stays_readable_after_the_spike(lr10_run):
    snap = lr10_run.snapshot()
    assert snap.losses.max() > 1e5
    fig = loss_figure(snap, "en")
    top = fig.layout.yaxis.range[1]
    assert top < 100  # not 10^6: the loss after the spike (about 2-4) fills the chart
    assert np.median(snap.losses[-100:]) < top
    assert any("off the chart" in a.text and "step" in a.text for a in fig.layout.annotations)
    marked = next(tr for tr in fig.data if tr.name == "off the chart")
    assert len(marked.x) > 0
    assert max(marked.customdata) == snap.losses.max()
    zh = loss_figure(snap, "zh")
    assert any("超出图表" in a.text for a in zh.layout.annotations)


def test_a_normal_loss_curve_is_not_clipped(mnist):
    session = TrainingSession(dense_spec([32]), TrainConfig(epochs=1, train_size=3000), mnist, "cpu")
    session.start()
    assert session.join(60)
    fig = loss_figure(session.snapshot(), "en")
    assert fig.layout.yaxis.range is None
    assert not fig.layout.annotations


# ----- pace ------------------------------------------------------------------------------------
def test_pace_slows_the_run_and_syncs_every_step(mnist):
    session = TrainingSession(dense_spec([16]), TrainConfig(epochs=50), mnist, "cpu")
    assert session.pace is None  # full speed is the default
    session.set_pace(20)
    assert session.pace == 20.0
    session.start()
    assert wait_for(lambda: session.snapshot().progress.global_step >= 3)
    seen = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.0:
        seen.append(len(session.snapshot().losses))
        time.sleep(0.01)
    steps = seen[-1] - seen[0]
    assert 12 <= steps <= 24  # about 20 steps in a second
    assert len(set(seen)) >= 10  # every step or so reaches the host: the chart moves smoothly
    # changed while it runs: back to full speed
    session.set_pace(None)
    before = session.snapshot().progress.global_step
    time.sleep(0.5)
    assert session.snapshot().progress.global_step - before > 100
    session.stop()
    assert session.join(10)


def test_pause_and_stop_answer_at_once_at_a_slow_pace(mnist):
    session = TrainingSession(dense_spec([16]), TrainConfig(epochs=50), mnist, "cpu")
    session.set_pace(1)
    session.start()
    assert wait_for(lambda: session.snapshot().progress.global_step >= 1)
    t0 = time.monotonic()
    session.pause()
    assert wait_for(lambda: session.status == "paused", timeout=2)
    assert time.monotonic() - t0 < 0.3  # not at the next due step, a second later
    session.step(1)  # a single step is not held to the pace
    step = session.snapshot().progress.global_step
    assert wait_for(lambda: session.snapshot().progress.global_step == step + 1, timeout=0.5)
    session.resume()
    time.sleep(0.1)
    t0 = time.monotonic()
    session.stop()
    assert session.join(2)
    assert time.monotonic() - t0 < 0.3
    assert session.status == "stopped"


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), 1e6, "fast", True])
def test_a_bad_pace_is_refused_with_a_message(mnist, bad):
    session = TrainingSession(dense_spec([8]), TrainConfig(epochs=1), mnist, "cpu")
    with pytest.raises(UserError) as err:
        session.set_pace(bad)
    assert err.value.key == "train.pace_range"
    assert session.pace is None


# ----- evaluation progress and the progress line -----------------------------------------------


def test_the_progress_reports_the_end_of_epoch_evaluation(mnist):
    preset = PRESETS["small_cnn"]  # its test evaluation takes seconds on a CPU
    session = TrainingSession(preset.spec, preset.config.with_changes(epochs=1, train_size=64, batch_size=32),
                              mnist, "cpu")
    seen: list[float] = []
    session.start()
    while session.is_alive:
        value = session.snapshot().progress.evaluating
        if value is not None and (not seen or seen[-1] != value):
            seen.append(value)
        time.sleep(0.002)
    assert session.status == "done"
    assert len(seen) >= 3
    assert seen == sorted(seen)
    assert 0 < seen[-1] <= 1.0  # it moves as chunks are done
    assert session.snapshot().progress.evaluating is None  # over once the epoch's record is in


def test_progress_line_and_epoch_metric_agree_at_an_epoch_boundary():
    from dlplay.ui.training import current_epoch, progress_text

    # the last step of epoch 1 of 20 is synced and evaluated: "Epochs done" shows 1/20
    p = Progress(status="paused", epoch=1, epochs=20, step_in_epoch=313, steps_per_epoch=313, global_step=313,
                 total_steps=6260)
    assert current_epoch(p) == (1, 313)
    assert progress_text(p).startswith("Epoch 1/20 · step 313/313")
    p = Progress(status="running", epoch=1, epochs=20, step_in_epoch=5, steps_per_epoch=313, global_step=318,
                 total_steps=6260)
    assert progress_text(p).startswith("Epoch 2/20 · step 5/313")
    p = Progress(status="running", epoch=0, epochs=20, step_in_epoch=313, steps_per_epoch=313, global_step=313,
                 total_steps=6260, evaluating=0.4)
    assert progress_text(p).startswith("Epoch 1/20 · step 313/313")
    assert "evaluating on the test set… 40%" in progress_text(p)
    assert progress_text(Progress(status="ready", epochs=20, steps_per_epoch=313)).startswith("Epoch 1/20 · step 0/313")
