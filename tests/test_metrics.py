"""Metric history: bounded memory, exact averages after compaction, consistent snapshots."""
import threading

import numpy as np
import pytest

from dlplay.figures.training import ema, epoch_figure, loss_figure
from dlplay.run.metrics import EpochRecord, MetricsHistory, StepSeries, downsample


def test_step_series_keeps_everything_until_full():
    s = StepSeries(capacity=8)
    for i in range(1, 9):
        s.append(i, float(i))
    steps, values = s.arrays()
    assert steps.tolist() == list(range(1, 9))
    assert values.tolist() == [float(i) for i in range(1, 9)]
    assert s.stride == 1


def test_step_series_compacts_by_averaging_pairs_and_stays_bounded():
    s = StepSeries(capacity=8)
    for i in range(1, 1001):
        s.append(i, float(i))
    steps, values = s.arrays()
    assert len(values) <= 8
    assert s.stride >= 128
    # each stored value is the mean of the steps it covers, so the overall mean is preserved
    width = np.diff(np.concatenate([[0], steps]))
    assert np.allclose(values, steps - (width - 1) / 2)
    with pytest.raises(ValueError, match="capacity must be an even number"):
        StepSeries(capacity=3)


def test_history_snapshot_is_a_copy_and_versions_increase():
    h = MetricsHistory(capacity=16)
    v0 = h.version
    h.append_losses(1, [2.0, 1.5])
    snap = h.snapshot()
    h.append_losses(3, [1.0])
    assert snap.losses.tolist() == [2.0, 1.5]
    assert h.snapshot().losses.tolist() == [2.0, 1.5, 1.0]
    assert h.version > snap.version > v0
    h.update_progress(status="running", epoch=1)
    assert h.progress.status == "running"
    h.set_extra("probe", (1, 2))
    assert h.snapshot().extras["probe"] == (1, 2)


def test_history_concurrent_writers_and_readers():
    h = MetricsHistory(capacity=64)

    def write():
        for i in range(2000):
            h.append_losses(i, [float(i)])

    threads = [threading.Thread(target=write) for _ in range(2)]
    for t in threads:
        t.start()
    for _ in range(200):
        snap = h.snapshot()
        assert len(snap.steps) == len(snap.losses) <= 64
    for t in threads:
        t.join()


def test_downsample_and_ema():
    x = np.arange(10_000)
    y = np.ones(10_000)
    xs, ys = downsample(x, y, 2000)
    assert len(xs) <= 2001
    assert np.allclose(ys, 1.0)
    assert xs[-1] == 9999
    assert ema(np.array([4.0, 4.0, 4.0])) == pytest.approx([4.0, 4.0, 4.0])  # bias-corrected: no ramp from 0
    assert ema(np.array([1.0, 3.0]), alpha=0.5)[-1] == pytest.approx((0.25 * 1 + 0.5 * 3) / 0.75)


def ema_reference(values, alpha):
    out, acc, weight = [], 0.0, 0.0
    for v in values:
        acc = (1 - alpha) * acc + alpha * v
        weight = (1 - alpha) * weight + alpha
        out.append(acc / weight)
    return np.array(out)


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.4, 0.9, 1.0])
def test_blocked_ema_matches_the_step_by_step_definition(alpha):
    rng = np.random.default_rng(0)
    values = np.abs(rng.normal(1.0, 0.5, 3000)) * np.linspace(3, 0.01, 3000)  # a loss curve with noise
    assert np.allclose(ema(values, alpha), ema_reference(values, alpha), rtol=1e-9, atol=1e-12)
    assert len(ema(np.array([]), alpha)) == 0


def test_accuracy_axis_stays_within_0_and_100_percent():
    from dlplay.figures.training import accuracy_range
    lo, hi = accuracy_range([0.99])
    assert 0.9 < lo < 0.99
    assert 0.99 < hi <= 1.005
    assert accuracy_range([0.02, 0.995]) == [0.0, 1.005]
    assert accuracy_range([]) is None


def test_figures_from_snapshot_in_both_languages():
    h = MetricsHistory()
    h.append_losses(1, list(np.linspace(2.3, 0.3, 5000)))
    h.add_lr_change(100, 0.01)
    h.add_epoch(EpochRecord(1, 0.5, 0.85, 0.4, 0.88, 1.0, 10000.0))
    h.update_progress(epochs=10)
    snap = h.snapshot()
    fig = loss_figure(snap, "en")
    assert len(fig.data) == 2
    assert len(fig.data[0].x) <= 2001
    assert fig.layout.title.text == "Training loss"
    assert loss_figure(snap, "zh").layout.title.text == "训练损失"
    acc = epoch_figure(snap, "acc", "en")
    assert list(acc.data[1].y) == [0.88]
    assert acc.layout.yaxis.range[1] <= 1.005  # one point must not stretch the axis past 100%
    assert all(t.yaxis in (None, "y") for t in fig.data)  # no learning-rate axis unless asked for
    with_lr = loss_figure(snap, "zh", lr_curve=([1, 2500, 5000], [0.01, 0.005, 0.0]))
    assert with_lr.data[0].yaxis == "y2"
    assert with_lr.layout.yaxis2.overlaying == "y"
    assert with_lr.data[0].name == "学习率（计划）"
    assert with_lr.layout.yaxis2.tickmode == "auto"  # ticks of its own, not the loss axis's places (0.00059 ...)
    empty = MetricsHistory().snapshot()
    assert tuple(epoch_figure(empty, "acc").layout.yaxis.range) == (0.0, 1.005)
    assert epoch_figure(empty, "loss").layout.yaxis.range[0] == 0.0
    assert fig.layout.shapes[0].x0 == 100
    assert "0.01" in fig.layout.annotations[0].text  # the lr change
