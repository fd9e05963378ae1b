"""The Sequences page in Streamlit's AppTest: no run, a run without recurrent layers, and trained
recurrent runs (plain RNN, LSTM reading all states, GRU), for a test image and for a drawing."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dlplay.classify.probe import Probe
from dlplay.classify.train import TrainingSession
from dlplay.i18n import translate
from dlplay.nn.sequences import onset_steps
from dlplay.nn.spec import LayerSpec, ModelSpec, TrainConfig, dense_spec

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def trained(mnist, spec, steps: int = 20) -> TrainingSession:
    config = TrainConfig(optimizer="adam", lr=2e-3, batch_size=32, epochs=1, train_size=32 * steps, seed=0)
    session = TrainingSession(spec, config, mnist, "cpu", callbacks=[Probe(every=5)])
    session.start()
    assert session.join(120)
    assert session.status == "done"
    return session


def open_page(session, lang: str = "en", drawing=None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["lang"] = lang
    at.session_state["train_session"] = session
    if drawing is not None:
        at.session_state["drawing28"] = drawing
    at.run()
    at.switch_page("views/sequences.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def text_of(at) -> str:
    return " ".join(str(e.value) for kind in ("markdown", "caption", "info", "warning", "success", "error", "latex")
                    for e in at.get(kind))


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_without_a_recurrent_run_it_says_what_to_do(mnist, lang):
    at = open_page(None, lang)
    assert at.info
    assert "LSTM" in at.info[0].value
    at = open_page(trained(mnist, dense_spec([16]), steps=2), lang)
    assert at.info
    assert "{" not in at.info[0].value


@pytest.mark.parametrize(("cell", "read", "lang"), [("rnn", "last", "zh"), ("lstm", "all", "en"), ("gru", "last", "en")])
def test_recurrent_run_sections(mnist, cell, read, lang):
    spec = ModelSpec(layers=(LayerSpec(cell, 16, "tanh" if cell == "rnn" else "identity", read=read),))
    at = open_page(trained(mnist, spec), lang)
    keys = [c.proto.id for c in at.get("plotly_chart")]
    assert len(keys) >= 6, keys  # gradient through time, revealed image, early curve, memory, connectivity ×2, δ
    assert any(s.key == "seq_step" for s in at.slider)
    assert "{label}" not in text_of(at)
    assert "{step}" not in text_of(at)
    assert at.success or at.error  # the BPTT check is shown
    assert not at.error, [e.value for e in at.error]  # and it agrees with autograd
    gates = translate("sequences.cap_gates", lang)
    assert (gates in text_of(at)) == (cell != "rnn")  # a plain RNN has no gates to speak of
    if lang != "en":
        return  # AppTest formats widget options on the test side in English: interact in English only
    at.slider(key="seq_step").set_value(5).run()
    assert not at.exception
    if cell != "rnn":
        options = at.radio(key="seq_memory_show").options
        assert len(options) > 1  # gates
        at.radio(key="seq_memory_show").set_value("i" if cell == "lstm" else "r").run()
        assert not at.exception


def test_reads_the_drawing(mnist):
    spec = ModelSpec(layers=(LayerSpec("lstm", 16, "identity"),))
    drawing = np.zeros((28, 28), dtype=np.uint8)
    drawing[4:24, 13:16] = 255  # a "1"
    at = open_page(trained(mnist, spec), "en", drawing=drawing)
    at.radio(key="seq_source").set_value("drawing").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "drawing" in text_of(at)


SPEC_ALL = ModelSpec(layers=(LayerSpec("lstm", 16, "identity", read="all"), LayerSpec("dense", 8)), order="columns")


@pytest.fixture(scope="module")
def lstm_run(mnist):
    return trained(mnist, SPEC_ALL, steps=100)  # one (short) epoch: the Draw and Inside pages use the trained model


@pytest.mark.parametrize("page", ["build", "train", "dynamics", "draw", "inside", "evaluate", "runs"])
def test_the_other_pages_take_a_recurrent_run(lstm_run, page):
    """Every page that reads the run or its model shows an LSTM run without an exception."""
    spec, session = SPEC_ALL, lstm_run
    drawing = np.zeros((28, 28), dtype=np.uint8)
    drawing[4:24, 13:16] = 255
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["train_session"] = session
    at.session_state["spec"] = spec
    at.session_state["drawing28"] = drawing
    at.run()
    at.switch_page(f"views/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def memory_chart(at) -> dict:
    """The memory heatmap as the browser gets it (its Plotly JSON)."""
    charts = [c for c in at.get("plotly_chart") if c.proto.id.endswith("seq_memory")]
    assert len(charts) == 1, [c.proto.id for c in at.get("plotly_chart")]
    return json.loads(charts[0].proto.spec)


def test_the_memory_rows_are_in_the_order_the_caption_gives(lstm_run):
    """The heatmap the page sends: its rows (units) go by the step where each first becomes strongly
    active, as the caption says; a gate's view keeps the same rows."""
    at = open_page(lstm_run, "en")
    h = memory_chart(at)["data"][0]
    z = np.array(h["z"])
    assert z.shape == (16, 28)
    assert sorted(map(int, h["y"])) == list(range(16))
    onsets = onset_steps(z)
    assert np.all(np.diff(onsets) >= 0), onsets
    assert "first become strongly active" in text_of(at)
    assert "50%" in text_of(at)
    at.radio(key="seq_memory_show").set_value("f").run()
    assert not at.exception
    assert memory_chart(at)["data"][0]["y"] == h["y"]  # the same unit on the same row
