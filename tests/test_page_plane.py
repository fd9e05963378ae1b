"""The 2-D playground page in Streamlit's AppTest: it renders in English and Chinese with the untrained
network's pictures, a step trains one epoch, Play trains, a setting makes a fresh network, the learning
rate reaches the running one, and clicked points too few to learn get a message."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dlplay.i18n import translate
from helpers import click, wait_for

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def open_page(lang: str = "en", **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["lang"] = lang
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    at.switch_page("views/plane.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest, kinds: tuple[str, ...] = ("markdown", "caption", "info", "warning", "error")) -> str:
    return " ".join(str(e.value) for kind in kinds for e in at.get(kind))


def run_of(at: AppTest):
    return at.session_state.get("plane_run", None)


def stop(at: AppTest) -> None:
    run = run_of(at)
    if run is not None:
        run.stop()
        run.join(10)


def metric(at: AppTest, label_key: str, lang: str = "en") -> str:
    label = translate(label_key, lang)
    return next(m.value for m in at.metric if m.label == label)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_renders_in_both_languages_with_the_untrained_network(lang):
    at = open_page(lang)
    assert at.title[0].value == translate("plane.title", lang)
    assert at.button(key="plane_play").label == translate("plane.play", lang)
    assert "{" not in texts(at)
    charts = at.get("plotly_chart")
    assert len(charts) >= 3, "the diagram, the enlarged node and the output over the plane"
    run = run_of(at)
    assert run is not None
    assert run.status == "ready"
    assert metric(at, "plane.m_epoch", lang) == "0"
    stop(at)


def test_step_play_pause_and_the_learning_rate():
    at = open_page("en")
    run = run_of(at)
    click(at, "plane_step")
    assert not at.exception, [e.value for e in at.exception]
    assert wait_for(lambda: run.snapshot().progress.global_step >= 1, 10)
    at.run()
    assert run_of(at) is run
    assert metric(at, "plane.m_epoch") == "1"
    assert metric(at, "plane.m_test_acc").endswith("%")
    click(at, "plane_play")
    assert wait_for(lambda: run.snapshot().progress.global_step >= 5, 30)
    at.select_slider(key="plane_lr").set_value(0.1).run()  # the learning rate: the same network, from its next epoch
    assert run_of(at) is run
    assert wait_for(lambda: abs(run.lr - 0.1) < 1e-12, 10)
    click(at, "plane_pause")
    assert wait_for(lambda: run.status == "paused", 10)
    at.selectbox(key="plane_activation").set_value("relu").run()  # any other setting: a fresh network
    fresh = run_of(at)
    assert fresh is not run
    assert fresh.status == "ready"
    assert fresh.config.activation == "relu"
    assert run.status == "stopped"
    stop(at)


def test_too_few_clicked_points_get_a_message_and_no_network():
    at = open_page("en", plane_dataset="drawn", plane_points=[(1.0, 1.0, 0), (2.0, 2.0, 0)])
    assert run_of(at) is None
    assert translate("plane.too_few", "en", n=2, min=4) in texts(at)
    assert at.button(key="plane_play").disabled
    at.session_state["plane_points"] = [(x, y, k) for k in (0, 1, 2) for x, y in ((k - 1.0, 2.0), (k - 1.0, -2.0),
                                                                                 (k * 2.0, 0.5), (k * 2.0, -0.5))]
    at.run()
    run = run_of(at)
    assert run is not None
    assert run.data.classes == 3
    stop(at)
