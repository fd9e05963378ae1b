"""The registry walk: every activation, layer kind, optimiser and schedule through every consumer.

Each test is parametrised over a registry, so an entry added to dlplay/nn/activations.py,
dlplay/nn/layers.py or dlplay/nn/optimizers.py is checked by all of them at once: spec validation, the
model's forward pass against the inferred shapes, parameter and multiply-add counts against PyTorch,
the trace and the tutorial's formulas against autograd, the probe's and the hints' rules, the share
link, the Build page's layer editor, the diagram, the summary table and the translations.
"""
from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest
from torch.utils.flop_counter import FlopCounterMode

from dlplay.classify.probe import METRICS, LayerMeta, M, Probe, ProbeSnapshot, activation_stats
from dlplay.classify.runs import architecture_label
from dlplay.classify.train import TrainingSession
from dlplay.errors import UserError
from dlplay.figures.network import KIND_COLORS, diagram_columns, network_figure, summary_rows
from dlplay.i18n import catalog, translate
from dlplay.learn import hints as H
from dlplay.learn.formulas import activation_derivative, tutorial_deltas, unit_backward, unit_forward
from dlplay.learn.latex import backward_latex, forward_latex
from dlplay.learn.trace import trace
from dlplay.nn.activations import ACTIVATIONS, IDENTITY
from dlplay.nn.layers import DENSE, LAYER_KINDS, WEIGHT_KINDS, shape_text
from dlplay.nn.model import build_model, count_parameters, layer_summary, make_activation
from dlplay.nn.optimizers import OPTIMIZERS, SCHEDULES, lr_factor, make_optimizer
from dlplay.nn.spec import ACTIVATIONS as ACTIVATION_NAMES
from dlplay.nn.spec import LAYER_KINDS as KIND_NAMES
from dlplay.nn.spec import OPTIMIZERS as OPTIMIZER_NAMES
from dlplay.nn.spec import SCHEDULES as SCHEDULE_NAMES
from dlplay.nn.spec import LayerSpec, ModelSpec, TrainConfig
from dlplay.server.guardrails import OPTIMIZER_STATES
from dlplay.server.share import from_params, to_params

REPO = Path(__file__).resolve().parents[1]
ACTS = list(ACTIVATIONS)
KINDS = list(LAYER_KINDS)
LANGS = ("en", "zh")


def kind_layer(name: str, **changes) -> LayerSpec:
    """A layer of kind ``name`` with the editor's defaults for a new layer of that kind."""
    return LayerSpec(kind=name, **{**LAYER_KINDS[name].defaults, **changes})


def spec_with(name: str, **changes) -> ModelSpec:
    """A small valid network around one layer of kind ``name``: it sees the 28×28 image, a dense layer
    of 12 units follows (so the formula view has a dense layer after it)."""
    return ModelSpec(layers=(kind_layer(name, **changes), LayerSpec(DENSE, 12, "relu")))


def act_spec(name: str) -> ModelSpec:
    """Every kind with an activation uses ``name``; two dense layers so a hidden layer has a dense layer above it."""
    layers = [kind_layer(kind, activation=name) if LAYER_KINDS[kind].activation else kind_layer(kind)
              for kind in KINDS if LAYER_KINDS[kind].spatial and not LAYER_KINDS[kind].sequence]
    layers += [LayerSpec(DENSE, 9, name), LayerSpec(DENSE, 7, name)]
    return ModelSpec(layers=tuple(layers))


@pytest.fixture(scope="module")
def image(mnist):
    return mnist.test_images[3], int(mnist.test_labels[3])


def test_the_spec_names_are_the_registries():
    assert tuple(ACTIVATIONS) == ACTIVATION_NAMES
    assert tuple(LAYER_KINDS) == KIND_NAMES
    assert tuple(OPTIMIZERS) == OPTIMIZER_NAMES
    assert tuple(SCHEDULES) == SCHEDULE_NAMES
    assert tuple(k for k, kind in LAYER_KINDS.items() if kind.weights) == WEIGHT_KINDS
    assert all(name == entry.name for reg in (ACTIVATIONS, LAYER_KINDS, OPTIMIZERS, SCHEDULES)
               for name, entry in reg.items())


# ====================================================================== activations

@pytest.mark.parametrize("name", ACTS)
def test_activation_in_spec_model_and_diagram(name):
    spec = act_spec(name)
    model = build_model(spec, seed=0)
    record = []
    model.eval()
    with torch.no_grad():
        model(torch.randn(2, 1, 28, 28), record)
    for block, layer, (z, a) in zip(model.blocks, spec.layers, record):
        expected = layer.activation if LAYER_KINDS[layer.kind].activation else IDENTITY
        assert block.activation_name == expected
        torch.testing.assert_close(a, make_activation(expected)(z))
    columns = diagram_columns(spec)
    written = [c.activation for c in columns if c.layer_index is not None and c.layer_index >= 0]
    assert written.count(name) == sum(LAYER_KINDS[layer.kind].activation for layer in spec.layers)
    figure_text = str(network_figure(spec).to_dict()["layout"]["annotations"])
    assert (name in figure_text) == (name != IDENTITY)  # the diagram writes the activation under its blocks
    rows = summary_rows(spec)
    assert any(name in str(row) for row in rows[1:-2])  # dense/conv descriptions name their activation


@pytest.mark.parametrize("name", ACTS)
def test_derivative_is_autograds(name):
    gen = torch.Generator().manual_seed(0)
    z = torch.cat([torch.randn(500, generator=gen, dtype=torch.float64) * 4, torch.tensor([25.0, -25.0, 1e-3, -1e-3],
                                                                                      dtype=torch.float64)])
    z = z.requires_grad_(True)
    (grad,) = torch.autograd.grad(ACTIVATIONS[name].module()(z).sum(), z)
    torch.testing.assert_close(ACTIVATIONS[name].derivative(z.detach()), grad, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(activation_derivative(name, z.detach().numpy()), grad.numpy(), rtol=1e-6, atol=1e-9)
    at_zero = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    (grad0,) = torch.autograd.grad(ACTIVATIONS[name].module()(at_zero).sum(), at_zero)
    assert ACTIVATIONS[name].derivative(at_zero.detach()).item() == pytest.approx(grad0.item())  # PyTorch's choice at 0


@pytest.mark.parametrize("name", ACTS)
def test_trace_and_formulas(name, mnist, image):
    spec = act_spec(name)
    model = build_model(spec, seed=1)
    img, label = image
    tr = trace(model, img, mnist.info, label=label)
    explicit = tutorial_deltas(tr)
    dense = [i for i, lt in enumerate(tr.layers[:-1]) if lt.is_dense]
    assert dense
    assert all(explicit[i] is not None for i in dense)
    for i in dense:  # δ = (Wᵀδ) ⊙ f′(z) with the registry's f′ is autograd's δ
        np.testing.assert_allclose(explicit[i], tr.layers[i].delta, rtol=1e-4, atol=1e-7)
        assert tr.layers[i].activation == name
        unit = int(np.argmax(np.abs(tr.layers[i].z)))
        forward = forward_latex(unit_forward(tr, i, unit))
        backward = backward_latex(unit_backward(tr, i, unit))
        assert ACTIVATIONS[name].latex + "(" in forward[-1]
        assert ACTIVATIONS[name].latex + "'(" in "".join(backward)


@pytest.mark.parametrize("name", ACTS)
def test_probe_and_hint_rules(name):
    entry = ACTIVATIONS[name]
    f = entry.module()
    z = torch.cat([torch.full((8, 1), -3.0), torch.linspace(-5, 5, 8).reshape(8, 1), torch.full((8, 1), 4.0)], dim=1)
    mean, _std, dead, saturated = activation_stats(z, f(z), name).tolist()
    assert mean == pytest.approx(f(z).mean().item(), abs=1e-6)
    assert math.isnan(dead) != entry.can_die
    assert math.isnan(saturated) != entry.saturates
    if entry.can_die:
        assert dead == pytest.approx(1 / 3)  # the first column never > 0
    ends = entry.derivative(torch.tensor([-30.0, 30.0], dtype=torch.float64))
    if float(ends.abs().max()) < 1e-3:  # flat on both sides: the probe must be able to call it saturated
        assert entry.saturates, f"{name} flattens out on both sides but has no saturation bounds"
    if entry.saturates:  # at its bounds the slope is below ~10% of the largest slope: learning there is slow
        low, high = entry.bounds
        grid = torch.linspace(-30, 30, 600001, dtype=torch.float64)
        out, slope = f(grid), entry.derivative(grid)
        assert float(slope[(out <= low) | (out >= high)].max()) <= 0.1 * float(slope.max())
        assert saturated == pytest.approx(float(((f(z) < low) | (f(z) > high)).float().mean()))
    meta = (LayerMeta("dense1", DENSE, name, 16, True), LayerMeta("output", DENSE, IDENTITY, 10, True))
    assert meta[0].relu_family == entry.can_die
    assert meta[0].saturating == entry.saturates
    values = np.full((5, 2, len(METRICS)), np.nan)
    values[:, :, M["delta"]], values[:, :, M["update_ratio"]] = 0.05, 2e-3
    values[:, :, M["grad_w"]], values[:, :, M["weight_norm"]] = 0.5, 5.0
    values[:, 0, M["dead"]] = 0.9 if entry.can_die else np.nan
    values[:, 0, M["saturated"]] = 0.9 if entry.saturates else np.nan
    snap = ProbeSnapshot(layers=meta, every=10, steps=np.arange(1, 6) * 10, values=values, stride=1, probes=5,
                         last_step=50, weight_hist=np.zeros((2, 4)), weight_edges=np.zeros((2, 5)),
                         grad_hist=np.zeros((2, 4)), grad_edges=np.zeros((2, 5)), heatmaps=(np.zeros((2, 0)),) * 2,
                         probe_labels=np.zeros(2), first_layer=None, first_weights=None)
    found = H.find_hints(snap)
    assert ("dynamics.hint_dead" in [h.key for h in found]) == entry.can_die
    assert ("dynamics.hint_saturated" in [h.key for h in found]) == entry.saturates
    for hint in found:
        for lang in LANGS:
            assert "{" not in hint.text(lang)
        if hint.key in ("dynamics.hint_dead", "dynamics.hint_saturated"):
            assert translate(entry.key) in hint.text("en")


@pytest.mark.parametrize("name", ACTS)
def test_activation_share_link_editor_choices_and_translations(name):
    spec = act_spec(name)
    config = TrainConfig()
    assert from_params(to_params(spec, config)) == (spec, config)
    for lang in LANGS:
        assert entry_key_in(lang, ACTIVATIONS[name].key)
    assert name in ACTIVATION_NAMES  # the editor's and the Train page's choices


def entry_key_in(lang: str, key: str) -> bool:
    return key in catalog(lang) and catalog(lang)[key].strip() != ""


# ====================================================================== layer kinds

@pytest.mark.parametrize("name", KINDS)
def test_kind_validates_with_its_limits(name):
    kind = LAYER_KINDS[name]
    spec = spec_with(name)
    assert spec.layers[0].kind == name
    for field in kind.numbers:
        for bad in (field.low - 1, field.high + 1, 2.5):
            with pytest.raises(UserError) as info:
                spec_with(name, **{field.name: bad})
            assert info.value.params["layer"] == 1
            if field.count_key and bad == field.high + 1:  # "4097 neurons are too many; at most 4096"
                assert info.value.key == "spec.layer_too_many"
                assert info.value.params["what"] == field.count_key
                assert info.value.params["high"] == field.high
            else:  # named by the label the page shows for it
                assert info.value.key == "spec.layer_int_range"
                assert info.value.params["name"] == field.label_key
    for choice in kind.choices:
        with pytest.raises(UserError) as info:
            spec_with(name, **{choice.name: "nonsense"})
        assert info.value.key == "spec.layer_choice"
        assert info.value.params["name"] == choice.name
    if kind.activations is not None:
        bad_act = next(a for a in ACTS if a not in kind.activations)
        with pytest.raises(UserError) as info:
            spec_with(name, activation=bad_act)
        assert info.value.key == "spec.kind_activation"
    if kind.spatial:  # after a dense layer there is no image (or sequence) left to read
        with pytest.raises(UserError) as info:
            ModelSpec(layers=(LayerSpec(DENSE, 16), kind_layer(name)))
        assert info.value.key == ("spec.sequence_after_dense" if kind.sequence else "spec.spatial_after_dense")
    else:
        ModelSpec(layers=(LayerSpec(DENSE, 16), kind_layer(name)))
    # nine of them: too many weight layers for a kind with weights (MAX_WEIGHT_LAYERS), fine for others
    nine = (kind_layer(name, **({"stride": 1} if kind.field("stride") else {})),) * 9
    if kind.weights:
        with pytest.raises(UserError) as info:
            ModelSpec(layers=nine)
        assert info.value.key == "spec.too_many_hidden"
    else:
        ModelSpec(layers=nine)


@pytest.mark.parametrize("name", KINDS)
@pytest.mark.parametrize("position", ["first", "after_conv"])
def test_kind_model_shapes_and_counts(name, position):
    layers = (kind_layer(name),) if position == "first" else (kind_layer("conv2d", units=6, stride=2), kind_layer(name))
    spec = ModelSpec(layers=(*layers, LayerSpec(DENSE, 12, "tanh")))
    model = build_model(spec, seed=0)
    model.eval()
    record = []
    # oneDNN's fused LSTM kernel is invisible to the flop counter: count the unfused ops
    with torch.no_grad(), torch.backends.mkldnn.flags(enabled=False), FlopCounterMode(display=False) as counter:
        logits = model(torch.randn(3, 1, 28, 28), record)
    assert logits.shape == (3, spec.num_classes)
    infos = layer_summary(spec)
    shapes = [*spec.shapes(), (spec.num_classes,)]
    for block, info, shape, (_z, a) in zip(model.blocks, infos, shapes, record):
        assert tuple(a.shape[1:]) == shape == info.output_shape  # the inferred shape is the module's
        assert info.params == count_parameters(block)  # the table's parameters are the module's
        assert info.kind == block.kind
    index = len(layers) - 1
    block = model.blocks[index]
    kind = LAYER_KINDS[name]
    assert kind.learns == (count_parameters(block) > 0)
    assert kind.weights == (getattr(block.op, "weight", None) is not None and block.op.weight.dim() >= 2)
    assert infos[index].description == layers[index].describe()
    # multiply-adds: PyTorch's flop counter (2 per multiply-add of matrix products and convolutions)
    assert counter.get_total_flops() == 2 * 3 * sum(info.macs for info in infos)  # batch of 3


@pytest.mark.parametrize("name", KINDS)
def test_kind_trace_formulas_and_probe(name, mnist, image):
    spec = spec_with(name)
    img, label = image
    model = build_model(spec, seed=2)
    tr = trace(model, img, mnist.info, label=label)
    assert [lt.kind for lt in tr.layers] == [name, DENSE, DENSE]
    assert tr.layers[0].z.shape == spec.shapes()[0]
    assert tr.layers[0].is_dense == LAYER_KINDS[name].fully_connected
    assert (tr.layers[0].weight is not None) == LAYER_KINDS[name].weights  # dJ/dW for every layer with weights
    if LAYER_KINDS[name].weights:
        assert tr.layers[0].grad_weight.shape == tr.layers[0].weight.shape
        assert np.abs(tr.layers[0].grad_weight).max() > 0
    zeros = build_model(ModelSpec(layers=spec.layers, init="zeros"), seed=2)  # the weight init reaches it
    weight = getattr(zeros.blocks[0].op, "weight", None)
    assert (weight is not None and not weight.detach().any()) == LAYER_KINDS[name].weights
    explicit = tutorial_deltas(tr)
    for i, d in enumerate(explicit):
        if d is not None:
            np.testing.assert_allclose(d, tr.layers[i].delta, rtol=1e-4, atol=1e-7)
    if LAYER_KINDS[name].fully_connected:
        assert explicit[0] is not None
        forward_latex(unit_forward(tr, 0, 0))
        backward_latex(unit_backward(tr, 0, 0))
    probe = Probe(every=1, probe_images=8)
    session = TrainingSession(spec, TrainConfig(epochs=1, train_size=64, batch_size=32), mnist, "cpu",
                              sync_every=1, callbacks=[probe])
    session.start()
    assert session.join(60)
    assert session.status == "done"
    snap = session.snapshot().extras["probe"]
    probed = [meta.kind for meta in snap.layers]
    assert (name in probed) == LAYER_KINDS[name].learns  # pooling has nothing to learn
    assert np.isfinite(snap.values[-1, :, M["grad_w"]]).all()
    for fn in (H.find_hints, H.gradient_flow_hint, H.update_ratio_hints):
        fn(snap)


@pytest.mark.parametrize("name", KINDS)
def test_kind_share_link_round_trip(name):
    kind = LAYER_KINDS[name]
    changes = {field.name: min(field.high, getattr(kind_layer(name), field.name) + 1) for field in kind.numbers}
    for layer in (kind_layer(name), kind_layer(name, dropout=0.25, **changes)):
        spec = ModelSpec(layers=(layer, LayerSpec(DENSE, 5)))
        assert from_params(to_params(spec, TrainConfig())) == (spec, TrainConfig())


@pytest.mark.parametrize("name", KINDS)
def test_kind_diagram_table_label_and_translations(name):
    kind = LAYER_KINDS[name]
    spec = spec_with(name)
    columns = diagram_columns(spec)
    layer_columns = [c for c in columns if c.layer_index == 0]
    assert [c.kind for c in layer_columns] == [name]
    assert layer_columns[0].title == f"1. {kind.title(spec.layers[0])}"
    assert kind.color == KIND_COLORS[name]
    assert (layer_columns[0].activation != "") == kind.activation
    network_figure(spec)
    rows = summary_rows(spec)
    assert list(rows[1].values())[1] == spec.layers[0].describe()
    assert list(rows[1].values())[2] == shape_text(spec.shapes()[0])
    assert architecture_label(spec).endswith(f"{kind.short(spec.layers[0])}-12-10")
    for lang in LANGS:
        assert entry_key_in(lang, kind.key)
        for field in kind.numbers:
            assert entry_key_in(lang, field.label_key)
            assert entry_key_in(lang, field.help_key)
        for choice in kind.choices:
            assert entry_key_in(lang, choice.label_key)
            assert entry_key_in(lang, choice.help_key)
            assert all(entry_key_in(lang, choice.option_key(o)) for o in choice.options)


def test_layer_editor_shows_each_kinds_fields():
    """The Build page's editor: a layer of every kind, each with the widgets of the fields it uses and no others."""
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("views/build.py")
    at.run()
    added = {}
    for name in KINDS:
        before = {layer["id"] for layer in at.session_state["build_draft"]}
        at.selectbox(key="build_new_kind").set_value(name).run()
        at.button(key="build_add").click().run()
        assert not at.exception, [e.value for e in at.exception]
        (added[name],) = [layer for layer in at.session_state["build_draft"] if layer["id"] not in before]
    widgets = {w.key: w for w in [*at.number_input, *at.selectbox] if w.key}
    for name, layer in added.items():
        kind = LAYER_KINDS[name]
        assert layer["kind"] == name
        shown = {field for field in ("units", "kernel", "stride", "padding", "stack", "read", "activation", "dropout")
                 if f"build_l{layer['id']}_{field}" in widgets}
        assert shown == set(kind.uses), name
        for field in kind.numbers:
            if field.edit:
                widget = widgets[f"build_l{layer['id']}_{field.name}"]
                assert widget.label == translate(field.label_key)
                # no maximum in the widget: a larger number reaches the draft, whose message says the limit
                assert (widget.min, widget.max) == (field.low, None)
                assert translate("build.range", low=field.low, high=field.high) in widget.help
        assert widgets[f"build_l{layer['id']}_kind"].value == name
        for choice in kind.choices:
            assert widgets[f"build_l{layer['id']}_{choice.name}"].options == [translate(choice.option_key(o))
                                                                          for o in choice.options]
        if kind.activations is not None:
            assert widgets[f"build_l{layer['id']}_activation"].options == list(kind.activations)


# ====================================================================== optimisers and schedules

@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_trains_and_its_state_is_what_the_memory_estimate_assumes(name):
    entry = OPTIMIZERS[name]
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    opt = make_optimizer(name, [w], 0.1, 0.0)
    before = w.detach().clone()
    (w ** 2).sum().backward()
    opt.step()
    assert ((w.detach() ** 2).sum() < (before ** 2).sum()).item()  # one step lowers the loss
    state = opt.state[w]
    assert sum(isinstance(v, torch.Tensor) and v.shape == w.shape for v in state.values()) == entry.states
    assert OPTIMIZER_STATES[name] == entry.states
    config = TrainConfig(optimizer=name)
    assert from_params(to_params(ModelSpec(layers=()), config))[1] == config
    for lang in LANGS:
        assert entry_key_in(lang, entry.key)
        assert entry_key_in(lang, entry.short_key)


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_factor_share_link_and_translation(name):
    factors = [lr_factor(name, step, 100) for step in range(1, 101)]
    assert factors[0] == 1.0
    assert all(0 < f <= 1 for f in factors)
    assert all(a >= b for a, b in itertools.pairwise(factors))  # a schedule only lowers the rate
    config = TrainConfig(schedule=name)
    assert from_params(to_params(ModelSpec(layers=()), config))[1] == config
    for lang in LANGS:
        assert entry_key_in(lang, SCHEDULES[name].key)
