"""ModelSpec / TrainConfig: shape inference, validation of good and bad stacks, JSON round trips."""
from __future__ import annotations

import itertools

import pytest

from dlplay.errors import UserError
from dlplay.nn.presets import small_cnn_spec
from dlplay.nn.spec import LayerSpec, ModelSpec, TrainConfig, dense_spec, lr_curve, lr_factor, validate_lr

conv = lambda units, k=3, s=1, p=0, act="relu": LayerSpec("conv2d", units, act, kernel=k, stride=s, padding=p)  # noqa: E731
pool = lambda k=2, s=2, kind="maxpool": LayerSpec(kind, 1, "identity", kernel=k, stride=s)  # noqa: E731
dense = lambda units, act="relu", drop=0.0: LayerSpec("dense", units, act, drop)  # noqa: E731


def test_tutorial_mlp_shapes():
    assert dense_spec([128]).shapes() == [(128,)]
    assert dense_spec([256, 64], "tanh").shapes() == [(256,), (64,)]


def test_cnn_shapes_through_the_stack():
    assert small_cnn_spec().shapes() == [(32, 28, 28), (32, 28, 28), (32, 14, 14), (64, 14, 14), (64, 14, 14),
                                         (64, 7, 7), (128,)]


@pytest.mark.parametrize(("layer", "expected"), [
    (conv(8, k=5), (8, 24, 24)),            # no padding: 28 - 5 + 1
    (conv(8, k=5, p=2), (8, 28, 28)),       # 'same' padding
    (conv(8, k=3, s=2, p=1), (8, 14, 14)),  # stride 2 halves
    (conv(8, k=28), (8, 1, 1)),             # kernel as large as the image is allowed
    (pool(3, 3), (1, 9, 9)),                # floor((28 - 3) / 3) + 1
    (pool(2, 2, "avgpool"), (1, 14, 14)),
    (LayerSpec("batchnorm", activation="relu"), (1, 28, 28)),
])
def test_single_layer_output_shapes(layer, expected):
    assert ModelSpec(layers=(layer,)).shapes() == [expected]


def test_batchnorm_after_dense_keeps_the_vector_shape():
    assert ModelSpec(layers=(dense(32), LayerSpec("batchnorm", activation="relu"))).shapes() == [(32,), (32,)]


def test_no_hidden_layers_is_softmax_regression():
    assert ModelSpec(layers=()).shapes() == []


def test_kernel_larger_than_feature_map_names_layer_and_sizes():
    # 28 -> pool 14 -> pool 7 -> pool 3; a 5x5 conv cannot fit on 3x3
    layers = (pool(), pool(), pool(), conv(8, k=5))
    with pytest.raises(UserError) as info:
        ModelSpec(layers=layers)
    err = info.value
    assert err.key == "spec.kernel_too_large"
    assert err.params["layer"] == 4
    assert err.params["kernel"] == 5
    assert (err.params["height"], err.params["width"]) == (3, 3)
    text = err.message("en")
    assert "Layer 4" in text
    assert "5×5" in text
    assert "3×3" in text
    assert "第 4 层" in err.message("zh")


def test_padding_makes_a_large_kernel_fit():
    layers = (pool(), pool(), pool(), conv(8, k=5, p=1))
    assert ModelSpec(layers=layers).shapes()[-1] == (8, 1, 1)


def test_conv_after_dense_is_an_error_naming_the_layer():
    with pytest.raises(UserError) as info:
        ModelSpec(layers=(dense(64), conv(8)))
    assert info.value.key == "spec.spatial_after_dense"
    assert info.value.params["layer"] == 2


@pytest.mark.parametrize(("layer", "key"), [
    (LayerSpec("dense", 0), "spec.layer_int_range"),
    (LayerSpec("dense", 5000), "spec.layer_too_many"),
    (LayerSpec("conv2d", 600), "spec.layer_too_many"),
    (LayerSpec("dense", 64, "swish"), "spec.unknown_activation"),
    (LayerSpec("transformer", 64), "spec.unknown_kind"),
    (LayerSpec("dense", 64, dropout=1.0), "spec.dropout_range"),
    (LayerSpec("dense", 64, dropout=-0.1), "spec.dropout_range"),
    (LayerSpec("conv2d", 16, kernel=0), "spec.layer_int_range"),
    (LayerSpec("conv2d", 16, stride=0), "spec.layer_int_range"),
    (LayerSpec("maxpool", kernel=2, stride=2, padding=-1), "spec.layer_int_range"),
    (LayerSpec("dense", 64.5), "spec.layer_int_range"),
    (LayerSpec("dense", True), "spec.layer_int_range"),
])
def test_bad_layers_are_rejected_with_their_key(layer, key):
    with pytest.raises(UserError) as info:
        ModelSpec(layers=(dense(32), layer) if layer.kind not in ("conv2d", "maxpool") else (layer,))
    assert info.value.key == key


def test_too_many_layers_and_unknown_init():
    with pytest.raises(UserError) as info:
        dense_spec([16] * 9)
    assert info.value.key == "spec.too_many_hidden"
    with pytest.raises(UserError) as info:
        ModelSpec(layers=tuple(LayerSpec("batchnorm") for _ in range(17)))
    assert info.value.key == "spec.too_many_layers"
    with pytest.raises(UserError) as info:
        dense_spec([16], init="orthogonal")
    assert info.value.key == "spec.unknown_init"


def test_model_spec_json_round_trip():
    spec = ModelSpec(layers=(*small_cnn_spec().layers, LayerSpec("batchnorm", activation="tanh")), init="he")
    again = ModelSpec.from_json(spec.to_json())
    assert again == spec
    assert again.shapes() == spec.shapes()


@pytest.mark.parametrize("text", [
    "not json",
    "[]",
    '{"layers": "dense"}',
    '{"layers": [{"kind": "dense", "neurons": 4}]}',
    '{"layers": [], "extra": 1}',
    '{"layers": [{"kind": "conv2d", "units": 8, "kernel": 40}]}',
])
def test_model_spec_bad_json_is_a_user_error(text):
    with pytest.raises(UserError):
        ModelSpec.from_json(text)


def test_train_config_json_round_trip_and_changes():
    cfg = TrainConfig(optimizer="momentum", lr=0.05, batch_size=128, epochs=3, weight_decay=1e-4, seed=7,
                      train_size=2000, schedule="cosine")
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    # a config saved before schedules existed (runs, checkpoints, share links) still loads
    assert TrainConfig.from_json('{"optimizer": "adam", "lr": 0.001}').schedule == "constant"
    assert cfg.with_changes(lr=0.1).lr == 0.1
    with pytest.raises(UserError):
        TrainConfig.from_json('{"optimizer": "adam", "momentum": 0.9}')


@pytest.mark.parametrize(("changes", "key"), [
    (dict(optimizer="lbfgs"), "spec.unknown_optimizer"),
    (dict(lr=0.0), "spec.lr_range"),
    (dict(lr=11.0), "spec.lr_range"),
    (dict(lr=float("nan")), "spec.lr_range"),
    (dict(batch_size=0), "spec.int_range"),
    (dict(epochs=1000), "spec.int_range"),
    (dict(weight_decay=1.5), "spec.weight_decay_range"),
    (dict(device="tpu"), "spec.unknown_device"),
    (dict(train_size=0), "spec.int_range"),
    (dict(schedule="warmup"), "spec.unknown_schedule"),
])
def test_train_config_validation(changes, key):
    with pytest.raises(UserError) as info:
        TrainConfig(**changes)
    assert info.value.key == key


def test_validate_lr_accepts_the_allowed_range():
    assert validate_lr(10) == 10.0
    assert validate_lr(1e-5) == 1e-5
    with pytest.raises(UserError):
        validate_lr("0.1")


def test_lr_factor_constant_cosine_and_step():
    total = 1000
    assert all(lr_factor("constant", s, total) == 1.0 for s in (1, 500, 1000))
    cosine = [lr_factor("cosine", s, total) for s in range(1, total + 1)]
    assert cosine[0] == 1.0
    assert abs(cosine[500] - 0.5) < 1e-9  # step 501: half way through
    assert 0 < cosine[-1] < 1e-4
    assert all(a > b for a, b in itertools.pairwise(cosine))  # strictly decreasing
    steps = [lr_factor("step", s, total) for s in (1, 500, 501, 750, 751, 1000)]
    assert steps == [1.0, 1.0, 0.1, 0.1, 0.01, 0.01]
    assert lr_factor("cosine", 1, 1) == 1.0  # a one-step run keeps its learning rate


def test_lr_curve_follows_the_schedule_and_the_live_changes():
    cfg = TrainConfig(lr=0.01, schedule="cosine")
    steps, rates = lr_curve(cfg, 1000)
    assert steps[0] == 1
    assert steps[-1] == 1000
    assert len(steps) == 200
    assert rates[0] == 0.01
    assert rates[-1] < 1e-6
    assert rates == sorted(rates, reverse=True)
    # the learner raised the rate at step 400: the schedule scales the new rate from there on
    steps, rates = lr_curve(cfg, 1000, [(400, 0.1)])
    at = dict(zip(steps, rates))
    assert at[399] == pytest.approx(0.01 * lr_factor("cosine", 399, 1000))
    assert at[400] == pytest.approx(0.1 * lr_factor("cosine", 400, 1000))
    # two changes while paused at the same step: the later one is in effect
    steps, rates = lr_curve(TrainConfig(lr=0.1), 10, [(5, 0.01), (5, 0.001)])
    assert dict(zip(steps, rates))[5] == 0.001
    steps, rates = lr_curve(TrainConfig(lr=0.1, schedule="step"), 8)
    assert steps == list(range(1, 9))
    assert rates == pytest.approx([0.1] * 4 + [0.01] * 2 + [0.001] * 2)
