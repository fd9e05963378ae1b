"""The Dynamics page in Streamlit's AppTest, with sessions trained briefly with a probe attached."""
from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from dlplay.classify.probe import Probe
from dlplay.classify.train import TrainingSession
from dlplay.nn.spec import TrainConfig, dense_spec
from helpers import stop_and_join, train_to_end, wait_for_status

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def trained(mnist, spec, probe: bool = True, steps: int = 60) -> TrainingSession:
    config = TrainConfig(optimizer="adam", lr=1e-3, batch_size=32, epochs=1, train_size=32 * steps, seed=0)
    return train_to_end(mnist, spec, config, callbacks=[Probe(every=10)] if probe else [], timeout=120)


def open_dynamics(session, lang: str = "en") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["lang"] = lang
    at.session_state["train_session"] = session
    at.run()
    at.switch_page("views/dynamics.py")
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture(scope="module")
def tutorial_run(mnist):
    return trained(mnist, dense_spec([128], "relu"))


def charts(at) -> list:
    return list(at.get("plotly_chart"))


def find_block(node, key: str):
    """The element or container with this key, anywhere below ``node``."""
    if getattr(node, "key", None) == key:
        return node
    for child in getattr(node, "children", {}).values():
        found = find_block(child, key)
        if found is not None:
            return found
    return None


def figure(element) -> dict:
    """The chart's figure as sent to the browser (plotly's JSON, typed arrays decoded)."""
    return decode(json.loads(element.proto.spec))


def decode(obj):
    if isinstance(obj, dict) and set(obj) >= {"dtype", "bdata"}:
        arr = np.frombuffer(base64.b64decode(obj["bdata"]), dtype=obj["dtype"])
        shape = obj.get("shape")
        return arr.reshape([int(n) for n in str(shape).split(",")]) if shape else arr
    if isinstance(obj, dict):
        return {k: decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    return obj


def test_views_render_for_a_trained_run(tutorial_run):
    at = open_dynamics(tutorial_run)
    assert at.title[0].value == "Watch it learn"
    assert len(charts(at)) == 7  # gradients, updates, activations, dead, heatmap, histograms, first layer
    probe = tutorial_run.snapshot().extras["probe"]
    box = find_block(at.main, "dyn_grad_chart")  # the browser test looks for this container
    chart = next(iter(box.children.values()))  # the chart, then its data (dlplay/ui/charts.py)
    fig = figure(chart)
    assert [t["name"] for t in fig["data"]] == ["dense1", "output"]
    assert list(fig["data"][0]["x"]) == list(probe.steps) == [1, 10, 20, 30, 40, 50, 60]
    assert fig["layout"]["yaxis"]["type"] == "log"
    first = figure(find_block(at.main, "dyn_first_fig"))
    png = base64.b64decode(first["data"][0]["source"].split(",", 1)[1])
    assert Image.open(io.BytesIO(png)).size == (8 * 29 - 1, 8 * 29 - 1)  # 64 units as 28x28 tiles with gaps
    assert at.success
    assert "Nothing unusual" in at.success[0].value
    assert not at.warning
    caption = " ".join(c.value for c in at.caption)
    assert "step 60 of 60" in caption
    assert "last measurement at step 60" in caption
    # switch the gradient kind and the heatmap layer
    at.radio(key="dyn_grad_kind").set_value("delta")
    at.run()
    assert not at.exception
    fig = figure(find_block(at.main, "dyn_grad_fig"))
    assert fig["layout"]["title"]["text"] == "Gradient δ of each layer's output"
    assert list(fig["data"][0]["y"]) == pytest.approx(list(probe.series("delta", 0)[1]))
    at.selectbox(key="dyn_heat_layer").set_value(1)
    at.run()
    assert not at.exception
    assert len(charts(at)) == 7
    heat = figure(find_block(at.main, "dyn_heat_fig"))
    assert np.asarray(heat["data"][0]["z"]).shape == (10, 64)  # output units x probe images


def test_views_in_chinese(tutorial_run):
    at = open_dynamics(tutorial_run, "zh")
    assert at.title[0].value == "观察学习过程"
    assert "一切正常" in at.success[0].value
    assert len(charts(at)) == 7


def test_deep_sigmoid_run_shows_the_vanishing_gradient_hint(mnist):
    session = trained(mnist, dense_spec([64] * 6, "sigmoid"), steps=80)
    at = open_dynamics(session)
    texts = [w.value for w in at.warning]
    assert any(text.startswith("Vanishing gradients") for text in texts), texts


def test_without_a_session_or_without_a_probe(mnist):
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["lang"] = "en"
    at.run()
    at.switch_page("views/dynamics.py")
    at.run()
    assert not at.exception
    assert "No training run yet" in at.info[0].value
    assert not charts(at)
    at = open_dynamics(trained(mnist, dense_spec([16]), probe=False, steps=5))
    assert "without measurements" in at.info[0].value


def test_the_measurement_interval_applies_to_the_run_and_the_next_ones(mnist):
    probe = Probe(every=100)
    config = TrainConfig(optimizer="adam", lr=1e-3, batch_size=32, epochs=1, train_size=32 * 50, seed=0)
    session = TrainingSession(dense_spec([32]), config, mnist, "cpu", callbacks=[probe])
    runs = [session]
    try:
        at = open_dynamics(session)
        slider = at.select_slider(key="dyn_every")
        assert slider.value == 100
        assert slider.label.startswith("Measure the layers every")
        slider.set_value(20).run()
        assert not at.exception
        assert probe.every == 20
        assert at.session_state["probe_every"] == 20
        session.step(1)
        wait_for_status(session, "paused")
        at.run()
        assert "one every 20 steps" in " ".join(c.value for c in at.caption)
        assert at.select_slider(key="dyn_every").value == 20  # kept across reruns
        at.switch_page("views/train.py")
        at.run()
        at.button(key="train_reset").click().run()
        at.button(key="train_start").click().run()  # a new run measures at the chosen interval
        new = at.session_state["train_session"]
        runs.append(new)
        assert new is not session
        assert new.status in ("queued", "running", "done")
        assert [cb.every for cb in new.callbacks if isinstance(cb, Probe)] == [20]
    finally:
        stop_and_join(*runs)


def test_a_paused_run_updates_on_the_next_rerun(mnist):
    config = TrainConfig(optimizer="adam", lr=1e-3, batch_size=32, epochs=1, train_size=32 * 50, seed=0)
    session = TrainingSession(dense_spec([32]), config, mnist, "cpu", callbacks=[Probe(every=10)])
    try:
        at = open_dynamics(session)
        assert "Waiting for the first measurement" in at.info[0].value
        session.step(1)
        wait_for_status(session, "paused")
        at.run()
        assert not at.exception
        assert "last measurement at step 1" in " ".join(c.value for c in at.caption)
        assert len(charts(at)) == 7
    finally:
        stop_and_join(session)


# ----- the figures behind the views (core, no Streamlit) ------------------------------------------

def test_figures_from_a_real_snapshot(tutorial_run):
    from dlplay.figures import dynamics as fd
    from dlplay.learn.hints import HEALTHY_UPDATE_BAND, HEALTHY_UPDATE_RATIO

    probe = tutorial_run.snapshot().extras["probe"]
    fig = fd.update_ratio_figure(probe, "zh")
    band, line = fig.layout.shapes
    assert (band.y0, band.y1) == HEALTHY_UPDATE_BAND
    assert line.y0 == HEALTHY_UPDATE_RATIO
    # plotly places annotations on a log axis at log10 of the value
    assert fig.layout.annotations[0].y == pytest.approx(-3.0)
    assert "0.001" in fig.layout.annotations[0].text
    assert fig.layout.yaxis.type == "log"
    assert fig.layout.title.text == "更新幅度与权重大小之比"
    act = fd.activation_figure(probe)
    assert [t.name for t in act.data if t.showlegend is not False] == ["dense1"]  # hidden layers only
    band = act.data[0]
    steps, mean = probe.series("act_mean", 0)
    _, std = probe.series("act_std", 0)
    np.testing.assert_allclose(band.y[: len(steps)], mean + std)
    hist = fd.histogram_figure(probe)
    assert len(hist.data) == 4
    assert hist.layout.xaxis4.anchor == "y4"
    assert sum(hist.data[0].y) == pytest.approx(100.0)  # shares in percent
    dead = fd.dead_saturated_figure(probe)
    assert [t.name for t in dead.data] == ["dense1 dead"]


def test_weight_mosaic_and_its_colours():
    from dlplay.figures.dynamics import diverging_png, weight_mosaic

    tiles = np.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3)
    mosaic = weight_mosaic(tiles)  # 3 columns, 2 rows of 2x3 tiles, one-pixel gaps
    assert mosaic.shape == (2 * 3 - 1, 3 * 4 - 1)
    np.testing.assert_array_equal(mosaic[3:5, 4:7], tiles[4])
    assert np.isnan(mosaic[2]).all()
    assert np.isnan(mosaic[:, 3]).all()
    assert np.isnan(mosaic[3:, 8:]).all()
    image = Image.open(io.BytesIO(diverging_png(np.array([[-1.0, 0.0, 2.0, np.nan]]), bound=1.0))).convert("RGB")
    assert [image.getpixel((x, 0)) for x in range(4)] == [(33, 102, 172), (255, 255, 255), (178, 24, 43), (235, 235, 235)]


def test_dead_figure_without_relu_or_sigmoid_layers(mnist):
    from dlplay.figures import dynamics as fd

    session = trained(mnist, dense_spec([8], "gelu"), steps=3)
    probe = session.snapshot().extras["probe"]
    assert [t.name for t in fd.dead_saturated_figure(probe).data] == ["dense1 dead"]  # GELU counts as ReLU family
    session = trained(mnist, dense_spec([8], "softplus"), steps=3)
    fig = fd.dead_saturated_figure(session.snapshot().extras["probe"])
    assert not fig.data
    assert fig.layout.annotations[0].text == "no ReLU, sigmoid or tanh layers"
