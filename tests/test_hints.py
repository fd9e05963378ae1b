"""dlplay.learn.hints: each hint fires on a constructed case at its threshold and not on healthy values;
real short training: a deep sigmoid network shows vanishing gradients, the tutorial model does not."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from dlplay.classify.probe import METRICS, LayerMeta, M, Probe, ProbeSnapshot
from dlplay.learn import hints as H
from dlplay.nn.spec import TrainConfig, dense_spec
from helpers import train_to_end

LOCALES = Path(__file__).resolve().parents[1] / "dlplay" / "locales"
RELU = (LayerMeta("dense1", "dense", "relu", 128, True), LayerMeta("dense2", "dense", "relu", 64, True),
        LayerMeta("output", "dense", "identity", 10, True))
SIGMOID = (LayerMeta("dense1", "dense", "sigmoid", 64, True), LayerMeta("dense2", "dense", "tanh", 64, True),
           LayerMeta("output", "dense", "identity", 10, True))


def healthy(layers=RELU, probes: int = 5) -> np.ndarray:
    """[probes, layers, metrics] of a network that learns well."""
    v = np.full((probes, len(layers), len(METRICS)), np.nan)
    for i, meta in enumerate(layers):
        v[:, i, M["act_mean"]], v[:, i, M["act_std"]] = 0.5, 0.8
        v[:, i, M["dead"]] = 0.05 if meta.relu_family else np.nan
        v[:, i, M["saturated"]] = 0.05 if meta.saturating else np.nan
        v[:, i, M["grad_w"]], v[:, i, M["grad_b"]] = 0.5, 0.05
        v[:, i, M["delta"]] = 0.05 * (1.5 ** i)  # grows a little toward the output, as in the tutorial
        v[:, i, M["update_ratio"]] = 2e-3
        v[:, i, M["weight_norm"]] = 5.0
    return v


def snapshot(values: np.ndarray, layers=RELU) -> ProbeSnapshot:
    n = len(layers)
    return ProbeSnapshot(
        layers=layers, every=10, steps=np.arange(1, len(values) + 1) * 10, values=values, stride=1,
        probes=len(values), last_step=10 * len(values), weight_hist=np.zeros((n, 4)), weight_edges=np.zeros((n, 5)),
        grad_hist=np.zeros((n, 4)), grad_edges=np.zeros((n, 5)), heatmaps=tuple(np.zeros((2, 0)) for _ in layers),
        probe_labels=np.zeros(2), first_layer=None, first_weights=None)


def keys(hints) -> list[str]:
    return [h.key for h in hints]


def test_healthy_values_give_no_hint():
    assert H.find_hints(snapshot(healthy())) == []
    assert H.find_hints(snapshot(healthy(SIGMOID), SIGMOID)) == []
    assert H.find_hints(None) == []
    assert H.find_hints(snapshot(healthy(probes=0))) == []


def test_dead_units_at_the_threshold():
    v = healthy()
    v[:, 1, M["dead"]] = H.DEAD_FRACTION - 0.01
    assert H.find_hints(snapshot(v)) == []
    v[:, 1, M["dead"]] = 0.6
    (hint,) = H.find_hints(snapshot(v))
    assert hint.key == "dynamics.hint_dead"
    assert hint.layer == "dense2"
    assert dict(hint.params) == {"layer": "dense2", "pct": 60, "activation": "ReLU"}
    assert "dense2: 60% of the ReLU units are dead" in hint.text("en")
    assert "60%" in hint.text("zh")
    assert "失活" in hint.text("zh")


def test_saturation_only_for_sigmoid_and_tanh():
    v = healthy(SIGMOID)
    v[:, 0, M["saturated"]] = 0.7
    v[:, 1, M["saturated"]] = H.SATURATED_FRACTION
    found = H.find_hints(snapshot(v, SIGMOID))
    assert keys(found) == ["dynamics.hint_saturated"] * 2
    assert [h.layer for h in found] == ["dense1", "dense2"]
    assert "70% of the sigmoid activations are saturated" in found[0].text("en")
    v[:, 1, M["saturated"]] = 0.3
    assert [h.layer for h in H.find_hints(snapshot(v, SIGMOID))] == ["dense1"]


def test_vanishing_and_exploding_gradients():
    v = healthy()
    v[:, 0, M["delta"]] = 1e-5
    v[:, 2, M["delta"]] = 1e-5 * (H.VANISHING_FACTOR - 1)
    assert H.gradient_flow_hint(snapshot(v)) is None  # 99x: not yet
    v[:, 2, M["delta"]] = 1e-2
    hint = H.gradient_flow_hint(snapshot(v))
    assert hint.key == "dynamics.hint_vanishing"
    assert dict(hint.params) == {"factor": "1,000", "first": "dense1", "last": "output"}
    assert "shrinks 1,000×" in hint.text("en")
    assert "1,000" in hint.text("zh")
    assert keys(H.find_hints(snapshot(v))) == ["dynamics.hint_vanishing"]
    v = healthy()
    v[:, 0, M["delta"]], v[:, 2, M["delta"]] = 0.5, 1e-3
    hint = H.gradient_flow_hint(snapshot(v))
    assert hint.key == "dynamics.hint_exploding"
    assert dict(hint.params)["factor"] == "500"
    v[:, 0, M["delta"]] = 0.0  # nothing reaches the first layer at all
    v[:, 2, M["delta"]] = 0.1
    assert H.gradient_flow_hint(snapshot(v)).params[0] == ("factor", "∞")


def test_update_ratio_too_large_or_too_small():
    v = healthy()
    v[:, 0, M["update_ratio"]] = H.UPDATE_RATIO_HIGH
    found = H.find_hints(snapshot(v))
    assert keys(found) == ["dynamics.hint_update_high"]
    assert found[0].layer == "dense1"
    assert "0.1 of their size" in found[0].text("en")
    v = healthy()
    v[:, :, M["update_ratio"]] = 5e-5
    (hint,) = H.find_hints(snapshot(v))
    assert hint.key == "dynamics.hint_update_low"
    assert dict(hint.params)["ratio"] == "5.0e-05"
    v[:, 2, M["update_ratio"]] = 2 * H.UPDATE_RATIO_LOW  # one layer still moves: no hint
    assert H.find_hints(snapshot(v)) == []


def test_hints_look_at_the_median_of_recent_probes():
    v = healthy(probes=8)
    v[-1, 1, M["dead"]] = 0.9  # one odd probe
    v[-2, :, M["update_ratio"]] = 0.5
    assert H.find_hints(snapshot(v)) == []
    v[-3:, 1, M["dead"]] = 0.9  # three of the last five
    assert keys(H.find_hints(snapshot(v))) == ["dynamics.hint_dead"]
    v = healthy(probes=8)
    v[:3, 1, M["dead"]] = 0.9  # long ago, recovered since
    assert H.find_hints(snapshot(v)) == []


def test_dead_units_take_precedence_over_vanishing_and_tiny_steps():
    v = healthy()
    v[:, 0, M["dead"]] = 1.0
    v[:, 0, M["delta"]] = 0.0  # nothing flows back through a dead layer
    v[:, :, M["update_ratio"]] = 0.0
    assert keys(H.find_hints(snapshot(v))) == ["dynamics.hint_dead"]
    v[:, 0, M["dead"]] = 0.0  # the same without dead units: vanishing and tiny steps
    assert keys(H.find_hints(snapshot(v))) == ["dynamics.hint_vanishing", "dynamics.hint_update_low"]


def test_non_finite_values_replace_all_other_hints():
    v = healthy()
    v[:, 1, M["dead"]] = 0.9
    v[-1, 0, M["grad_w"]] = np.inf
    assert keys(H.find_hints(snapshot(v))) == ["dynamics.hint_not_finite"]
    v[-1, 0, M["grad_w"]] = 0.5
    v[-1, 2, M["weight_norm"]] = np.nan
    assert keys(H.find_hints(snapshot(v))) == ["dynamics.hint_not_finite"]


def test_every_hint_key_is_translated_with_its_parameters():
    en = json.loads((LOCALES / "en" / "dynamics.json").read_text(encoding="utf-8"))
    zh = json.loads((LOCALES / "zh" / "dynamics.json").read_text(encoding="utf-8"))
    assert en.keys() == zh.keys()
    source = Path(H.__file__).read_text(encoding="utf-8")
    used = {k for k in en if k.startswith("dynamics.hint_")}
    assert used == {f"dynamics.{name}" for name in
                    ("hint_dead", "hint_saturated", "hint_vanishing", "hint_exploding", "hint_update_high",
                     "hint_update_low", "hint_update_annealed", "hint_not_finite", "hint_vanishing_time", "hint_time_ok")}
    for key in used:
        assert f'"{key}"' in source
        placeholders = sorted(set(p.split("}")[0] for p in en[key].split("{")[1:]))
        assert placeholders == sorted(set(p.split("}")[0] for p in zh[key].split("{")[1:])), key


def test_format_factor():
    assert H.format_factor(81712.4) == "82,000"
    assert H.format_factor(123.4) == "120"
    assert H.format_factor(2.34) == "2.3"
    assert H.format_factor(math.inf) == "∞"


# ----- real training on the MNIST sample ---------------------------------------------------------

def short_run(mnist, spec, steps: int = 100, every: int = 10, optimizer: str = "adam", lr: float = 1e-3):
    probe = Probe(every=every)
    config = TrainConfig(optimizer=optimizer, lr=lr, batch_size=32, epochs=1, train_size=32 * steps, seed=0)
    session = train_to_end(mnist, spec, config, callbacks=[probe], timeout=120)
    return session.snapshot().extras["probe"]


@pytest.mark.parametrize(("optimizer", "lr"), [("adam", 1e-3), ("sgd", 0.1)])
def test_deep_sigmoid_network_shows_vanishing_gradients(mnist, optimizer, lr):
    snap = short_run(mnist, dense_spec([64] * 6, "sigmoid"), optimizer=optimizer, lr=lr)
    delta = snap.recent("delta")
    grad_w = snap.recent("grad_w")
    # δ shrinks layer by layer on its way back, by far more than 100x in total
    assert np.all(np.diff(delta) > 0), delta
    assert delta[-1] / delta[0] > 1000
    assert grad_w[-1] / grad_w[0] > 100  # the weights' gradients too
    found = H.find_hints(snap)
    assert found
    assert found[0].key == "dynamics.hint_vanishing"
    assert dict(found[0].params)["first"] == "dense1"
    assert dict(found[0].params)["last"] == "output"


def test_tutorial_relu_model_is_healthy(mnist):
    snap = short_run(mnist, dense_spec([128], "relu"))
    delta = snap.recent("delta")
    assert delta[-1] / delta[0] < 10
    assert snap.recent("dead")[0] < H.DEAD_FRACTION
    assert H.find_hints(snap) == []


@pytest.mark.parametrize("lr", [1.0, 10.0])
def test_too_high_learning_rate_kills_relu_units(mnist, lr):
    """lr 10 kills every unit: no gradient reaches dense1 and the steps are zero, yet the one hint
    is the dead units (not "vanishing gradients" or "learning rate too low")."""
    probe = Probe(every=5)
    config = TrainConfig(optimizer="sgd", lr=lr, batch_size=32, epochs=1, train_size=32 * 40, seed=0)
    train_to_end(mnist, dense_spec([128], "relu"), config, callbacks=[probe], timeout=60)
    snap = probe.snapshot()
    assert snap.recent("dead")[0] > 0.8
    (hint,) = H.find_hints(snap)
    assert hint.key == "dynamics.hint_dead"
    assert hint.layer == "dense1"


def test_below_the_threshold_the_page_names_the_share_and_the_threshold():
    """38% of a layer dead gave no hint and "few units are dead" while the chart showed 38%."""
    v = healthy()
    v[:, 0, M["dead"]] = 0.38
    snap = snapshot(v)
    assert H.find_hints(snap) == []
    (note,) = H.share_notes(snap)
    assert dict(note.params) == {"layer": "dense1", "pct": 38, "limit": round(100 * H.DEAD_FRACTION)}
    assert "at most 38% of a layer (dense1)" in note.text("en")
    assert f"{round(100 * H.DEAD_FRACTION)}%" in note.text("en")
    assert "38%" in note.text("zh")
    assert "失活" in note.text("zh")
    from dlplay.i18n import translate

    assert "few" not in translate("dynamics.no_hints")
    assert "很少" not in translate("dynamics.no_hints", "zh")
    v[:, 0, M["dead"]] = H.DEAD_FRACTION  # from the threshold on: the hint, no note
    assert keys(H.find_hints(snapshot(v))) == ["dynamics.hint_dead"]
    assert H.share_notes(snapshot(v)) == []
    (note,) = H.share_notes(snapshot(healthy(SIGMOID), SIGMOID))
    assert note.key == "dynamics.note_saturated"
    assert dict(note.params)["pct"] == 5


def test_the_dead_units_chart_marks_where_the_hint_starts():
    from dlplay.figures.dynamics import dead_saturated_figure

    fig = dead_saturated_figure(snapshot(healthy()))
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert [line.y0 for line in lines] == [100 * H.DEAD_FRACTION]
    assert any(a.text == f"hint from {round(100 * H.DEAD_FRACTION)}%" for a in fig.layout.annotations)
