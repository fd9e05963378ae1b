"""The Inside page (AppTest): a trained session's forward/backward numbers for a test image or a drawing."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dlplay.classify.train import TrainingSession
from dlplay.i18n import translate
from dlplay.learn.formulas import unit_forward
from dlplay.learn.latex import num
from dlplay.learn.trace import trace
from dlplay.nn.spec import LayerSpec, ModelSpec, TrainConfig, dense_spec
from helpers import train_to_end

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 90


def trained(mnist, spec: ModelSpec) -> TrainingSession:
    return train_to_end(mnist, spec, TrainConfig(epochs=1, batch_size=128, train_size=3000, seed=0), timeout=120)


@pytest.fixture(scope="module")
def session(mnist) -> TrainingSession:
    return trained(mnist, dense_spec([32], "relu"))


def open_page(session: TrainingSession | None, **state) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT)
    at.session_state["train_session"] = session
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page("views/inside.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at: AppTest, label: str) -> str:
    values = [m.value for m in at.metric if m.label == label]
    assert len(values) == 1, [m.label for m in at.metric]
    return values[0]


def test_test_image_by_index(mnist, session):
    at = open_page(session, inside_index=4)
    image, label = mnist.test_images[4], int(mnist.test_labels[4])
    tr = trace(session.model_copy(), image, mnist.info, label=label)
    assert metric(at, "Prediction") == str(tr.prediction)
    assert metric(at, "True label") == str(label)
    assert metric(at, f"Loss J (target {label})") == f"{tr.loss:.4f}"
    # the unit view opens on the most active neuron of the first layer, with the real numbers in the formula
    unit = int(np.argmax(np.abs(tr.layers[0].a)))
    assert at.number_input(key="inside_unit_0").value == unit
    uf = unit_forward(tr, 0, unit)
    latex = [x.value for x in at.latex]
    assert any(f"= {num(uf.z)}" in x and num(uf.bias) in x for x in latex)
    assert any(rf"\mathrm{{relu}}({num(uf.z)}) = {num(uf.a)}" in x for x in latex)
    assert any(rf"J = -\log p_{{{label}}}" in x for x in latex)
    assert len(at.get("plotly_chart")) == 11  # input, probs, 2 z/a + 2 delta heatmaps, weights, grad, saliency, after x2
    check = [c.value for c in at.caption if c.value.startswith("Check:")]
    assert check
    assert "in 2 layers" in check[0]


def test_choices_change_the_numbers(mnist, session):
    at = open_page(session, inside_index=0)
    at.selectbox(key="inside_target").set_value(3).run()
    tr = trace(session.model_copy(), mnist.test_images[0], mnist.info, target=3)
    assert metric(at, "Loss J (target 3)") == f"{tr.loss:.4f}"
    at.selectbox(key="inside_layer").set_value(1).run()  # the output layer: the neuron defaults to the target
    assert at.number_input(key="inside_unit_1").value == 3
    latex = [x.value for x in at.latex]
    assert any(rf"p_{{3}} - y_{{3}} = {num(float(tr.probs[3]))} - 1 = {num(float(tr.layers[1].delta[3]))}" in x for x in latex)
    at.radio(key="inside_quantity").set_value("a").run()
    assert not at.exception
    at.slider(key="inside_step_size").set_value(6.0).run()
    tr = trace(session.model_copy(), mnist.test_images[0], mnist.info, target=3, saliency_class=tr.prediction,
               step_class=at.selectbox(key="inside_step_class").value, step_size=6.0)
    after = int(np.argmax(tr.probs_after_step))
    assert metric(at, "Guess after the step") == str(after)


def test_misclassified_and_random_digit(mnist, session):
    at = open_page(session)
    at.radio(key="inside_pick").set_value("wrong").run()
    assert not at.exception
    caption = next(c.value for c in at.caption if "test image #" in c.value)
    index = int(caption.split("#")[1].split(":")[0])
    label = int(mnist.test_labels[index])
    assert f"true label {label}," in caption
    assert metric(at, "True label") == str(label) != metric(at, "Prediction")
    at.radio(key="inside_pick").set_value("digit").run()
    at.selectbox(key="inside_digit").set_value(6).run()
    digit, index = at.session_state["inside_random"]
    assert digit == 6
    assert int(mnist.test_labels[index]) == 6
    assert metric(at, "True label") == "6"


def test_drawing(mnist, session):
    drawing = mnist.test_images[2].numpy()
    at = open_page(session, drawing28=drawing)
    at.radio(key="inside_source").set_value("drawing").run()
    assert not at.exception
    tr = trace(session.model_copy(), drawing, mnist.info)
    assert metric(at, "Prediction") == str(tr.prediction)
    assert not [m for m in at.metric if m.label == "True label"]
    assert at.selectbox(key="inside_target").value == tr.prediction  # no label: the target is the guess


def test_no_drawing_yet(session):
    at = open_page(session)
    at.radio(key="inside_source").set_value("drawing").run()
    assert translate("inside.no_drawing") in [i.value for i in at.info]


def test_conv_network_and_chinese(mnist):
    spec = ModelSpec(layers=(LayerSpec("conv2d", 4, "relu", kernel=5, stride=2), LayerSpec("maxpool", kernel=2, stride=2),
                             LayerSpec("dense", 16, "tanh")))
    at = open_page(trained(mnist, spec), lang="zh", inside_index=1)
    assert at.title[0].value == translate("inside.title", "zh")
    assert translate("inside.dense_only", "zh") in [c.value for c in at.caption]
    assert at.selectbox(key="inside_layer").options == ["dense1 · tanh · 16", "输出层 · 10（logits）"]
    assert [m.label for m in at.metric][:2] == ["预测", "真实标签"]


def test_no_run_quick_train():
    at = open_page(None)
    assert translate("inside.no_run") in [i.value for i in at.info]
    at.button(key="inside_quick_train").click().run()
    session = at.session_state["train_session"]
    assert session is not None
    try:
        for _ in range(600):
            if session.status == "paused":
                break
            session.join(0.1)
        assert session.status == "paused"
        assert len(session.snapshot().epochs) == 1  # one epoch, then it waits
        at.run()
        assert not at.exception
        assert any("epoch 1 of" in c.value for c in at.caption)
        assert session.snapshot().epochs[0].test_acc > 0.8
    finally:
        session.stop()
        session.join(10)


def test_follows_a_running_session_then_settles(mnist):
    run = TrainingSession(dense_spec([16]), TrainConfig(epochs=200, batch_size=64, train_size=2000, seed=1), mnist, "cpu")
    run.start()
    try:
        at = open_page(run, inside_index=3)
        assert any(i.value.startswith("Training is running") for i in at.info)
    finally:
        run.stop()
        assert run.join(30)
    at.run()
    assert not at.exception
    step = run.snapshot().progress.global_step
    assert f"Weights after step {step} (epoch" in " ".join(c.value for c in at.caption)
    assert not any(i.value.startswith("Training is running") for i in at.info)
    tr = trace(run.model_copy(), mnist.test_images[3], mnist.info, label=int(mnist.test_labels[3]))
    assert metric(at, "Prediction") == str(tr.prediction)
