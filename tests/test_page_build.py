"""The Build page (AppTest): add, remove, move, edit layers; validation keeps the last valid model;
presets; the reset prompt. Also the diagram and summary builders behind it."""
from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

from dlplay.classify.train import TrainingSession
from dlplay.figures.network import NEGATIVE, POSITIVE, diagram_columns, network_figure, summary_rows, totals
from dlplay.nn.presets import PRESETS, small_cnn_spec
from dlplay.nn.spec import LayerSpec, ModelSpec, TrainConfig, dense_spec
from helpers import click, wait_for_status, wait_for_step

REPO = Path(__file__).resolve().parents[1]


def _build_page() -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("views/build.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _ids(at: AppTest) -> list[int]:
    return [layer["id"] for layer in at.session_state["build_draft"]]


def _kinds(spec: ModelSpec) -> list[str]:
    return [layer.kind for layer in spec.layers]


def test_page_shows_the_tutorial_model_with_counts():
    at = _build_page()
    assert at.session_state["spec"] == PRESETS["tutorial"].spec
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Parameters"] == "101,770"
    assert metrics["Weight memory"] == "397.5 KiB"
    table = at.dataframe[0].value
    assert list(table["Parameters"]) == [0, 100480, 1290, 101770]
    assert len(at.get("plotly_chart")) == 1
    assert not at.error


def test_add_remove_and_move_layers():
    at = _build_page()
    (first,) = _ids(at)
    click(at, "build_add")  # a dense layer goes last
    assert _kinds(at.session_state["spec"]) == ["dense", "dense"]
    assert at.session_state["spec"].layers[1].units == 64
    at.selectbox(key="build_new_kind").set_value("conv2d").run()
    click(at, "build_add")  # a conv layer goes before the first dense layer
    spec = at.session_state["spec"]
    assert _kinds(spec) == ["conv2d", "dense", "dense"]
    assert spec.shapes()[0] == (32, 28, 28)
    conv_id, _, second = _ids(at)
    assert at.button(key=f"build_down_{second}").disabled  # nothing below the last layer
    assert at.button(key=f"build_up_{conv_id}").disabled
    click(at, f"build_up_{second}")
    assert _ids(at) == [conv_id, second, first]
    assert [layer.units for layer in at.session_state["spec"].layers] == [32, 64, 128]
    click(at, f"build_del_{conv_id}")
    assert _ids(at) == [second, first]
    assert at.session_state["spec"] == dense_spec([64, 128])
    click(at, f"build_del_{second}")
    click(at, f"build_del_{first}")
    assert at.session_state["spec"].layers == ()
    assert at.info  # "no hidden layers" explains softmax regression
    assert not at.error


def test_invalid_order_shows_error_and_keeps_last_valid_spec():
    at = _build_page()
    (dense_id,) = _ids(at)
    at.selectbox(key="build_new_kind").set_value("conv2d").run()
    click(at, "build_add")
    conv_id = _ids(at)[0]
    valid = at.session_state["spec"]
    click(at, f"build_down_{conv_id}")  # conv after dense: not an image any more
    assert _ids(at) == [dense_id, conv_id]
    assert len(at.error) == 2
    assert all("Layer 2" in e.value for e in at.error)  # at the top and in the layer
    assert at.session_state["spec"] == valid  # nothing lost, training would use the valid model
    click(at, f"build_up_{conv_id}")
    assert not at.error
    assert at.session_state["spec"] == valid


def test_kernel_too_large_names_the_layer_and_sizes():
    at = _build_page()
    for _ in range(2):
        at.selectbox(key="build_new_kind").set_value("maxpool").run()
        click(at, "build_add")
    at.selectbox(key="build_new_kind").set_value("conv2d").run()
    click(at, "build_add")
    spec = at.session_state["spec"]
    assert _kinds(spec) == ["maxpool", "maxpool", "conv2d", "dense"]
    assert spec.layers[0].kernel == 2
    assert spec.layers[0].stride == 2  # pool defaults
    assert spec.shapes()[2] == (32, 7, 7)
    conv_id = _ids(at)[2]
    at.number_input(key=f"build_l{conv_id}_padding").set_value(0).run()
    at.number_input(key=f"build_l{conv_id}_kernel").set_value(9).run()
    assert len(at.error) == 2  # at the top of the page and in the layer's box
    text = at.error[0].value
    assert "Layer 3" in text
    assert "9×9" in text
    assert "7×7" in text
    assert at.session_state["spec"].layers[2].padding == 0
    assert at.session_state["spec"].layers[2].kernel == 3
    at.number_input(key=f"build_l{conv_id}_kernel").set_value(7).run()
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["spec"].shapes()[2] == (32, 1, 1)


def test_units_buttons_kind_change_and_init():
    at = _build_page()
    (lid,) = _ids(at)
    units = at.number_input(key=f"build_l{lid}_units")
    units.increment().run()
    units.increment().run()
    units.decrement().run()
    assert at.session_state["spec"].layers[0].units == 129
    at.selectbox(key=f"build_l{lid}_activation").set_value("tanh").run()
    at.number_input(key=f"build_l{lid}_dropout").set_value(0.25).run()
    layer = at.session_state["spec"].layers[0]
    assert (layer.activation, layer.dropout) == ("tanh", 0.25)
    at.selectbox(key=f"build_l{lid}_kind").set_value("conv2d").run()
    layer = at.session_state["spec"].layers[0]
    assert (layer.kind, layer.units, layer.kernel, layer.padding, layer.activation) == ("conv2d", 129, 3, 1, "relu")
    at.selectbox(key=f"build_l{lid}_kind").set_value("avgpool").run()
    layer = at.session_state["spec"].layers[0]
    assert (layer.kind, layer.kernel, layer.stride, layer.activation) == ("avgpool", 2, 2, "identity")
    at.selectbox(key="build_init").set_value("zeros").run()
    assert at.session_state["spec"].init == "zeros"
    assert not at.error


def test_loading_a_preset_sets_model_and_training_settings():
    at = _build_page()
    at.selectbox(key="build_preset").set_value("small_cnn").run()
    click(at, "build_load_preset")
    assert at.session_state["spec"] == PRESETS["small_cnn"].spec
    assert at.session_state["config"] == PRESETS["small_cnn"].config
    assert len(at.session_state["build_draft"]) == len(PRESETS["small_cnn"].spec.layers)
    assert at.success
    # the editor shows the preset's layers: edit one and the spec follows
    pool_id = _ids(at)[2]
    at.number_input(key=f"build_l{pool_id}_kernel").set_value(3).run()
    assert at.session_state["spec"].layers[2].kernel == 3


def test_changing_the_model_while_a_run_exists_asks_to_reset(mnist):
    at = _build_page()
    spec = at.session_state["spec"]
    session = TrainingSession(spec, TrainConfig(epochs=1, train_size=64), mnist, "cpu")
    at.session_state["train_session"] = session
    at.run()
    assert not at.warning  # same architecture: nothing to ask
    click(at, "build_add")
    assert len(at.warning) == 1
    click(at, "build_reset_run")
    assert at.session_state["train_session"] is None
    assert not at.warning


def test_trained_small_network_colours_its_connections(mnist):
    at = _build_page()
    at.selectbox(key="build_preset").set_value("tutorial").run()
    (lid,) = _ids(at)
    at.number_input(key=f"build_l{lid}_units").set_value(8).run()
    spec = at.session_state["spec"]
    assert spec == dense_spec([8])
    session = TrainingSession(spec, TrainConfig(epochs=1, train_size=320), mnist, "cpu")
    session.start()
    assert session.join(60)
    assert session.status == "done"
    at.session_state["train_session"] = session
    at.run()
    assert not at.exception
    assert any("blue positive" in c.value for c in at.caption)


# ----- the figure and table builders --------------------------------------------------------------
def test_diagram_columns_add_flatten_and_mark_neuron_layers():
    cols = diagram_columns(small_cnn_spec())
    assert [c.kind for c in cols] == ["input", "conv2d", "batchnorm", "maxpool", "conv2d", "batchnorm", "maxpool",
                                      "flatten", "dense", "output"]
    assert cols[7].shape == (3136,)
    assert [c.neurons for c in cols] == [False] * 9 + [True]  # 128 units: a block; 10 outputs: neurons
    cols = diagram_columns(dense_spec([16, 17]), "zh")
    assert [c.neurons for c in cols] == [False, False, True, False, True]
    assert cols[0].title == "输入"


def test_network_figure_colours_weights_by_sign(mnist):
    spec = dense_spec([6, 4])
    blank = network_figure(spec)
    assert isinstance(blank, go.Figure)
    colours = {t.line.color for t in blank.data if t.mode == "lines"}
    assert POSITIVE not in colours
    assert NEGATIVE not in colours
    from dlplay.nn.model import build_model

    net = build_model(spec, seed=0)
    fig = network_figure(spec, model=net)
    colours = {t.line.color for t in fig.data if t.mode == "lines" and t.x and t.x[0] is not None}
    assert {POSITIVE, NEGATIVE} <= colours
    # 6 -> 4 and 4 -> 10 connections are drawn one by one
    segments = sum(sum(1 for x in t.x if x is None) for t in fig.data
                   if t.mode == "lines" and t.line.color in (POSITIVE, NEGATIVE) and not t.name)
    assert segments == 6 * 4 + 4 * 10
    texts = " ".join(a.text for a in fig.layout.annotations)
    assert "6 → 4" not in texts
    assert "1. Dense<br>6" in texts
    assert "relu" in texts
    assert "softmax" in texts


@pytest.mark.parametrize("spec", [small_cnn_spec(), dense_spec([128]), ModelSpec(layers=()),
                                  ModelSpec(layers=(LayerSpec("conv2d", 4, kernel=5), LayerSpec("batchnorm")))])
def test_summary_rows_and_totals_agree(spec):
    rows = summary_rows(spec)
    total = totals(spec)
    assert rows[0]["Layer"] == "Input"
    assert rows[-1]["Layer"] == "Total"
    assert rows[-1]["Parameters"] == total.params == sum(r["Parameters"] for r in rows[1:-1])
    assert rows[-1]["Multiply-adds"] == total.macs
    assert rows[-2]["Output shape"] == "10"
    assert len(network_figure(spec).layout.shapes) >= len(spec.layers) + 2


def test_cnn_from_the_build_page_trains_on_the_train_page():

    at = _build_page()
    at.selectbox(key="build_preset").set_value("small_cnn").run()
    click(at, "build_load_preset")
    at.switch_page("views/train.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    click(at, "train_step")
    session = at.session_state["train_session"]
    assert session is not None
    assert session.spec == PRESETS["small_cnn"].spec
    wait_for_step(session, 1, timeout=60)
    snap = session.snapshot()
    assert snap.progress.global_step == 1
    assert len(snap.losses) == 1
    assert 0 < snap.losses[0] < 10
    at.switch_page("views/build.py")
    at.run()
    assert not at.exception
    assert not at.warning  # same architecture: no reset needed
    session.stop()
    wait_for_status(session, "stopped", timeout=30)
    assert session.status == "stopped"
    session.join(180)  # the run history evaluates a stopped run once more before the thread ends


def test_building_the_cnn_by_hand_gives_the_preset():
    at = _build_page()
    for kind in ("conv2d", "maxpool", "conv2d", "maxpool"):  # spatial layers go in before the dense one
        at.selectbox(key="build_new_kind").set_value(kind).run()
        click(at, "build_add")
    for moves in (2, 5):  # a batch norm goes last; move it up behind its convolution
        at.selectbox(key="build_new_kind").set_value("batchnorm").run()
        click(at, "build_add")
        bn = _ids(at)[-1]
        for _ in range(moves):
            click(at, f"build_up_{bn}")
    _conv1, _bn1, _pool1, conv2, _bn2, pool2, dense1 = _ids(at)
    at.number_input(key=f"build_l{conv2}_units").set_value(64).run()
    at.number_input(key=f"build_l{dense1}_dropout").set_value(0.3).run()
    assert at.session_state["spec"] == PRESETS["small_cnn"].spec
    # pooling layers take a dropout too (no activation)
    at.number_input(key=f"build_l{pool2}_dropout").set_value(0.25).run()
    assert at.session_state["spec"].layers[5].dropout == 0.25
    assert not at.error


def test_output_neuron_labels_sit_where_their_connections_end():
    from dlplay.nn.model import build_model

    spec = dense_spec([3])
    net = build_model(spec, seed=0)
    w = net.blocks[1].op.weight.detach()  # [10 digits, 3 hidden]
    fig = network_figure(spec, model=net)
    neuron_traces = [t for t in fig.data if t.mode == "markers+text"]
    hidden, output = neuron_traces
    digit_at = {round(y, 6): int(text) for text, y in zip(output.text, output.y)}
    unit_at = {round(y, 6): i for i, y in enumerate(hidden.y)}
    checked = 0
    for trace in fig.data:
        if trace.mode != "lines" or trace.name or trace.line.color not in (POSITIVE, NEGATIVE):
            continue
        for k in range(0, len(trace.x), 3):
            j, i = digit_at[round(trace.y[k + 1], 6)], unit_at[round(trace.y[k], 6)]
            assert (w[j, i] >= 0) == (trace.line.color == POSITIVE)
            checked += 1
    assert checked == 30
    assert digit_at[max(digit_at)] == 0  # digit 0 at the top, as read


def test_the_limits_are_said_where_the_values_are_typed():
    at = _build_page()
    (lid,) = _ids(at)
    units = at.number_input(key=f"build_l{lid}_units")
    assert "1 to 4096" in units.help
    units.set_value(5000).run()  # the browser only turned the field red
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("5000 neurons are too many; at most 4096" in e for e in errors), errors
    assert at.session_state["spec"].layers[0].units == 128  # the last valid model stays
    at.number_input(key=f"build_l{lid}_units").set_value(4096).run()
    assert not at.error
    assert at.session_state["spec"].layers[0].units == 4096


def test_add_stops_at_the_weighted_layer_limit_and_says_why():
    at = _build_page()
    for _ in range(7):  # the tutorial's dense layer plus 7: the limit of 8
        click(at, "build_add")
    assert len(at.session_state["spec"].layers) == 8
    assert not at.error
    assert at.button(key="build_add").disabled  # the old page accepted cards up to 16 while an error said 8
    assert any("8 dense or convolutional layers" in c.value for c in at.caption)
    at.selectbox(key="build_new_kind").set_value("batchnorm").run()
    assert not at.button(key="build_add").disabled  # a BatchNorm layer has no weights to count
    click(at, "build_add")
    assert len(at.session_state["spec"].layers) == 9
