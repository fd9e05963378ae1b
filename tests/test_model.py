"""build_model and layer_summary: real forward passes, counts that match PyTorch's, initialisations."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dlplay.figures.network import totals
from dlplay.nn.model import build_model, count_parameters, layer_summary
from dlplay.nn.presets import PRESETS, small_cnn_spec
from dlplay.nn.spec import LayerSpec, ModelSpec, dense_spec

STACKS = {
    "mlp": dense_spec([128]),
    "deep": dense_spec([64, 32, 16], "tanh", dropout=0.2),
    "cnn": small_cnn_spec(),
    "bn_cnn": ModelSpec(layers=(
        LayerSpec("conv2d", 8, "identity", kernel=5, stride=2, padding=2),
        LayerSpec("batchnorm", activation="relu"),
        LayerSpec("avgpool", kernel=2, stride=2, activation="identity"),
        LayerSpec("dense", 32, "gelu"),
        LayerSpec("batchnorm", activation="identity"),
    )),
    "softmax_regression": ModelSpec(layers=()),
}


@pytest.mark.parametrize("name", list(STACKS))
def test_forward_shapes_match_inference(name):
    spec = STACKS[name]
    net = build_model(spec, seed=0).eval()
    record: list = []
    out = net(torch.randn(5, 1, 28, 28), record)
    assert out.shape == (5, 10)
    assert len(record) == len(spec.layers) + 1  # every hidden block plus the output block
    for (z, a), shape in zip(record, spec.shapes()):
        assert tuple(a.shape[1:]) == shape
        assert z.shape == a.shape
    assert net.blocks[-1].name == "output"


def test_input_without_channel_dimension_is_accepted():
    net = build_model(small_cnn_spec(), seed=0).eval()
    assert net(torch.randn(3, 28, 28)).shape == (3, 10)


@pytest.mark.parametrize("name", list(STACKS))
def test_summary_parameters_match_pytorch(name):
    spec = STACKS[name]
    net = build_model(spec)
    rows = layer_summary(spec)
    assert [r.params for r in rows] == [count_parameters(b) for b in net.blocks]
    assert sum(r.params for r in rows) == count_parameters(net)
    assert [r.output_shape for r in rows[:-1]] == spec.shapes()
    assert rows[-1].name == "output"
    assert rows[-1].output_shape == (10,)


def test_summary_counts_for_the_tutorial_and_the_cnn():
    rows = layer_summary(dense_spec([128]))
    assert [r.params for r in rows] == [784 * 128 + 128, 128 * 10 + 10]
    assert [r.macs for r in rows] == [784 * 128, 1280]
    rows = layer_summary(small_cnn_spec())
    assert [r.name for r in rows] == ["conv2d1", "batchnorm1", "maxpool1", "conv2d2", "batchnorm2", "maxpool2",
                                      "dense1", "output"]
    assert rows[0].macs == 1 * 9 * 32 * 28 * 28
    assert rows[3].macs == 32 * 9 * 64 * 14 * 14
    assert rows[6].params == 64 * 7 * 7 * 128 + 128
    assert rows[1].params == 2 * 32
    assert rows[4].params == 2 * 64  # batch norm: a scale and a shift per channel
    assert rows[2].params == 0
    assert rows[2].macs == 0
    t = totals(small_cnn_spec())
    assert t.params == sum(r.params for r in rows)
    assert t.weight_bytes == 4 * t.params


def test_flatten_happens_only_where_a_dense_layer_meets_an_image():
    net = build_model(small_cnn_spec())
    assert [b.flatten for b in net.blocks] == [False] * 6 + [True, False]
    net = build_model(dense_spec([32, 16]))
    assert [b.flatten for b in net.blocks] == [True, False, False]


def test_pool_layers_have_no_activation_and_dense_dropout_is_built():
    net = build_model(ModelSpec(layers=(LayerSpec("maxpool", activation="relu", kernel=2, stride=2),
                                        LayerSpec("dense", 16, "relu", dropout=0.5))))
    assert net.blocks[0].activation_name == "identity"
    assert isinstance(net.blocks[1].drop, nn.Dropout)
    assert net.blocks[1].drop.p == 0.5


def test_batchnorm_is_2d_after_conv_and_1d_after_dense():
    net = build_model(STACKS["bn_cnn"])
    assert isinstance(net.blocks[1].op, nn.BatchNorm2d)
    assert net.blocks[1].op.num_features == 8
    assert isinstance(net.blocks[4].op, nn.BatchNorm1d)
    assert net.blocks[4].op.num_features == 32


def test_seed_makes_weights_reproducible_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a = build_model(small_cnn_spec(), seed=4)
    after = torch.rand(1)
    b = build_model(small_cnn_spec(), seed=4)
    c = build_model(small_cnn_spec(), seed=5)
    assert torch.equal(expected, after)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.blocks[0].op.weight, c.blocks[0].op.weight)


def test_initialisations():
    spec = dense_spec([512, 512])
    zeros = build_model(ModelSpec(layers=spec.layers, init="zeros"), seed=0)
    assert all(float(p.detach().abs().sum()) == 0.0 for p in zeros.parameters())
    he = build_model(ModelSpec(layers=spec.layers, init="he"), seed=0)
    w = he.blocks[1].op.weight  # 512 inputs: std sqrt(2/512)
    assert w.std().item() == pytest.approx(math.sqrt(2 / 512), rel=0.05)
    assert float(he.blocks[1].op.bias.detach().abs().sum()) == 0.0
    xavier = build_model(ModelSpec(layers=spec.layers, init="xavier"), seed=0)
    assert xavier.blocks[1].op.weight.std().item() == pytest.approx(math.sqrt(2 / 1024), rel=0.05)
    normal = build_model(ModelSpec(layers=spec.layers, init="normal"), seed=0)
    assert normal.blocks[0].op.weight.std().item() == pytest.approx(0.01, rel=0.05)
    default = build_model(spec, seed=0)
    bound = 1 / math.sqrt(784)
    assert default.blocks[0].op.weight.abs().max().item() <= bound
    assert float(default.blocks[0].op.bias.detach().abs().sum()) > 0.0


def test_every_preset_builds_and_runs_forward():
    x = torch.randn(2, 1, 28, 28)
    for preset in PRESETS.values():
        net = build_model(preset.spec, seed=preset.config.seed).eval()
        assert net(x).shape == (2, 10)
