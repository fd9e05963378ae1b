"""Issue #33 section 2, the smaller items: the fork overlay's loss axis after a spike, the pinned digits'
log step axis, the Dynamics hint at the end of a cosine schedule, a quick offline failure of the download,
the queued run's reason, share links checked value by value, and the LSTM's link without its activation."""
from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dlplay import hints as H
from dlplay.figures.fork import fork_figure
from dlplay.figures.pins import pin_figure
from dlplay.fork import RunCurves
from dlplay.pins import PinsSnapshot
from dlplay.probe import M, Probe
from dlplay.spec import TrainConfig, dense_spec
from helpers import train_to_end
from test_hints import healthy, snapshot

APP = str(Path(__file__).resolve().parents[1] / "app.py")


# ----------------------------------------------------------------------------------- the fork overlay
def _curves(losses: np.ndarray, start: float = 1.0) -> RunCurves:
    x = start + np.arange(1, len(losses) + 1) / 300.0
    empty = np.zeros(0)
    return RunCurves(x, np.asarray(losses, dtype=float), empty, empty, empty, empty)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_forks_spike_does_not_flatten_the_original_run(lang):
    rng = np.random.default_rng(0)
    parent = 0.3 + 0.05 * rng.random(600)  # the original run: about 0.3
    fork = 0.3 + 0.05 * rng.random(600)
    fork[20:40] = np.linspace(5, 45, 20)  # the fork's spike (a learning rate of 10), then it recovers
    fig = fork_figure(_curves(parent), _curves(fork), "loss", 1.0, lang)
    top = fig.layout.yaxis.range[1]
    assert top < 1.0 and parent.max() / top > 0.5, top  # the original run fills the chart, not a line at 0
    marks = [t for t in fig.data if t.customdata is not None]
    assert len(marks) == 1 and max(marks[0].customdata) == pytest.approx(45)  # the spike, on the top edge
    assert set(marks[0].y) == {top}
    notes = " ".join(a.text for a in fig.layout.annotations)
    assert "45" in notes and ("off the chart" if lang == "en" else "超出图表") in notes
    calm = fork_figure(_curves(parent), _curves(parent[::-1]), "loss", 1.0, lang)
    assert calm.layout.yaxis.range is None  # no spike: plotly's own range, nothing marked


# ----------------------------------------------------------------------------------- pinned digits
def test_the_pinned_digits_log_step_axis_reads_as_plain_numbers():
    steps = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3000])
    probs = np.full((len(steps), 1, 10), 0.1)
    snap = PinsSnapshot(np.zeros((1, 28, 28), np.uint8), np.array([7]), steps, probs, 1)
    axis = pin_figure(snap, 0, [str(d) for d in range(10)]).layout.xaxis
    assert axis.type == "log"
    assert list(axis.ticktext) == ["1", "10", "100", "1,000"]  # not plotly's "3 4 5 … 9 1000 2 3"
    assert list(axis.tickvals) == [1, 10, 100, 1000]
    short = PinsSnapshot(snap.images, snap.labels, steps[:9], probs[:9], 1)  # up to step 256
    axis = pin_figure(short, 0, [str(d) for d in range(10)]).layout.xaxis
    assert list(axis.ticktext) == ["1", "2", "5", "10", "20", "50", "100", "200"]


# ----------------------------------------------------------------------------------- the Dynamics hint
def test_small_steps_at_the_end_of_a_cosine_schedule_are_not_called_a_low_learning_rate():
    v = healthy()
    v[:, :, M["update_ratio"]] = 5e-5  # tiny steps
    snap = snapshot(v)
    assert [h.key for h in H.find_hints(snap)] == ["dynamics.hint_update_low"]  # no schedule known: as before
    assert [h.key for h in H.find_hints(snap, lr_share=1.0)] == ["dynamics.hint_update_low"]  # a constant rate
    (hint,) = H.find_hints(snap, lr_share=0.01)  # the schedule has lowered the rate to 1 %
    assert hint.key == "dynamics.hint_update_annealed" and hint.level == "info"
    assert "1.0%" in hint.text("en") and "too low" not in hint.text("en").split(".")[0]
    assert "1.0%" in hint.text("zh")
    v[:, :, M["update_ratio"]] = 5e-8  # tiny even at the chosen rate: the rate is too low after all
    assert [h.key for h in H.find_hints(snapshot(v), lr_share=0.01)] == ["dynamics.hint_update_low"]
    total = 300
    assert H.schedule_share("constant", snap, total) == 1.0
    assert H.schedule_share("cosine", snap, total) > 0.9  # steps 10..50 of 300: the start of the schedule
    late = snapshot(v)
    late = type(late)(**{**late.__dict__, "steps": np.arange(281, 301, 4)})
    assert H.schedule_share("cosine", late, total) < H.ANNEALED_SHARE


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_dynamics_page_does_not_warn_at_the_end_of_a_cosine_schedule(mnist, lang):
    """A real run: Adam at 0.001 with a cosine schedule, trained to its end, probed every 10 steps."""
    config = TrainConfig(optimizer="adam", lr=1e-3, batch_size=32, epochs=1, train_size=32 * 300, seed=0,
                         schedule="cosine")
    session = train_to_end(mnist, dense_spec([128], "relu"), config, callbacks=[Probe(every=10)], timeout=120)
    probe = session.probe_snapshot()
    assert H.find_hints(probe)[-1].key == "dynamics.hint_update_low"  # the steps are tiny at the end: it did warn
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["lang"] = lang
    at.session_state["train_session"] = session
    at.run()
    at.switch_page("pages/dynamics.py")
    at.run()
    assert not at.exception, at.exception
    low = H.Hint("dynamics.hint_update_low", (("ratio", "x"),)).text(lang).split("x")[-1]
    assert not any(low in w.value for w in at.warning)
    annealed = H.Hint("dynamics.hint_update_annealed", (("ratio", "x"), ("share", "y"))).text(lang).split("y")[-1]
    assert any(annealed in i.value for i in at.info), [i.value for i in at.info]
