"""Configurations as URL query parameters: exact round trips, readable links, clear errors for bad ones."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from dlplay.errors import UserError
from dlplay.nn.presets import PRESETS
from dlplay.nn.spec import LayerSpec, ModelSpec, TrainConfig, dense_spec
from dlplay.server.share import from_params, has_config, layer_token, parse_layer, share_url, to_params

SPECS = [
    dense_spec([128]),
    dense_spec([]),  # logistic regression
    dense_spec([512, 256, 128], "tanh", dropout=0.25, init="he"),
    ModelSpec(
        layers=(
            LayerSpec("conv2d", 8, "relu", kernel=5, padding=2),
            LayerSpec("maxpool", kernel=2, stride=2),
            LayerSpec("conv2d", 16, "leaky_relu", dropout=0.1, kernel=3, stride=2),
            LayerSpec("batchnorm", activation="identity"),
            LayerSpec("avgpool", kernel=3, stride=1),
            LayerSpec("dense", 64, "gelu", dropout=0.5),
        ),
        init="xavier",
    ),
    ModelSpec(layers=(LayerSpec("dense", 10, "sigmoid", kernel=5, stride=2, padding=1),)),
    ModelSpec(layers=(LayerSpec("maxpool", units=7, activation="tanh", kernel=2, stride=1),)),
]
CONFIGS = [
    TrainConfig(),
    TrainConfig(optimizer="sgd", lr=0.1, batch_size=128, epochs=3, seed=42),
    TrainConfig(optimizer="adamw", lr=0.00012345678901234, weight_decay=1e-5, train_size=5000, device="cpu",
                dataset="fashion-mnist"),
    TrainConfig(optimizer="rmsprop", lr=3e-4, batch_size=1, epochs=200, seed=2**31 - 1),
    TrainConfig(lr=3e-3, schedule="cosine", epochs=5),
    TrainConfig(optimizer="momentum", lr=0.05, schedule="step"),
]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("config", CONFIGS)
def test_round_trip_is_exact(spec, config):
    params = to_params(spec, config)
    assert all(isinstance(v, str) for v in params.values())
    assert from_params(params) == (spec, config)


@pytest.mark.parametrize("spec", SPECS)
def test_url_round_trip(spec):
    config = CONFIGS[2]
    url = share_url("http://127.0.0.1:8501/evaluate?lang=en&net=d1#frag", spec, config, {"lang": "zh"})
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("http", "127.0.0.1:8501", "/evaluate")
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    assert query["lang"] == "zh"
    assert from_params(query) == (spec, config)
    # st.query_params.to_dict() may also hand over lists
    assert from_params({k: [v] for k, v in query.items()}) == (spec, config)


def test_links_are_short_and_readable():
    preset = PRESETS["tutorial"]
    params = to_params(preset.spec, preset.config)
    assert params == {"v": "1", "net": "d128", "o": "adam", "lr": "0.001", "bs": "32", "ep": "10", "s": "0", "ds": "mnist", "val": "0.1"}
    assert to_params(SPECS[3], TrainConfig())["net"] == "c8-k5-p2,mp2-s2,c16-leaky_relu-s2-do0.1,bn-identity,ap3,d64-gelu-do0.5"
    assert layer_token(LayerSpec("dense", 32, "tanh", 0.5)) == "d32-tanh-do0.5"


def test_missing_config_keys_take_defaults():
    spec, config = from_params({"net": "d64"})
    assert spec == dense_spec([64])
    assert config == TrainConfig(val_share=0.0)  # no "val": a link from before validation
    spec, config = from_params({"net": ""})
    assert spec == dense_spec([])


def test_no_configuration_in_the_url():
    assert not has_config({"lang": "zh"})
    assert not has_config({"v": "1"})
    assert from_params({"lang": "zh"}) is None


def test_a_link_without_net_applies_its_settings_to_the_current_layers():
    current = ModelSpec(layers=(LayerSpec("conv2d", 8), LayerSpec("dense", 32)), init="he")
    spec, config = from_params({"lang": "zh", "lr": "0.1", "ep": "3"}, current=current)
    assert spec == current
    assert config == TrainConfig(lr=0.1, epochs=3, val_share=0.0)
    spec, _ = from_params({"o": "sgd"})  # no current model: the tutorial's
    assert spec == ModelSpec()


def test_the_number_of_classes_must_be_the_datasets():
    assert from_params({"net": "d8", "nc": "10", "ds": "fashion-mnist"})[0].num_classes == 10
    with pytest.raises(UserError) as exc_info:
        from_params({"net": "d8", "nc": "3"})  # accepted before, then Start failed with an IndexError
    assert exc_info.value.key == "eval.share_bad_classes"
    assert "3 classes" in str(exc_info.value)
    assert "MNIST has 10" in str(exc_info.value)


def test_too_many_neurons_says_so_with_the_limit():
    for net in ("d999999", "d99999", "c8,d5000"):
        with pytest.raises(UserError) as exc_info:
            from_params({"net": net})
        assert exc_info.value.key == "spec.layer_too_many"
        assert "too many" in str(exc_info.value)
        assert "at most 4096" in str(exc_info.value)
        assert "4096" in exc_info.value.message("zh")
        assert "神经元" in exc_info.value.message("zh")


@pytest.mark.parametrize(("params", "en", "zh", "field"), [
    ({"net": "d8", "bs": "0"}, "Batch size", "批大小", "batch_size"),
    ({"net": "d8", "ep": "0"}, "Epochs", "训练轮数", "epochs"),
    ({"net": "d8", "bs": "-1"}, "Batch size", "批大小", "bs"),
    ({"net": "d8", "lr": "fast"}, "Learning rate", "学习率", "lr"),
    ({"net": "c8-s0"}, "Stride", "步幅", "stride"),
])
def test_link_messages_use_the_pages_words_not_field_names(params, en, zh, field):
    with pytest.raises(UserError) as exc_info:
        from_params(params)
    english, chinese = exc_info.value.message("en"), exc_info.value.message("zh")
    assert en in english
    assert field not in english
    assert zh in chinese
    assert field not in chinese


@pytest.mark.parametrize(("params", "key"), [
    ({"net": "x12"}, "eval.share_bad_layer"),
    ({"net": "d"}, "eval.share_bad_layer"),
    ({"net": "d12-k"}, "eval.share_bad_layer"),
    ({"net": "d12-relu-relu"}, "eval.share_bad_layer"),
    ({"net": "d12-u5"}, "eval.share_bad_layer"),
    ({"net": "mp2-k3"}, "eval.share_bad_layer"),
    ({"net": "bn4"}, "eval.share_bad_layer"),
    ({"net": "d12-swish"}, "eval.share_bad_layer"),
    ({"net": "d12-do1e999"}, "spec.dropout_range"),
    ({"net": "d99999"}, "spec.layer_too_many"),
    ({"net": "d0"}, "spec.layer_int_range"),
    ({"net": "d8", "nc": "3"}, "eval.share_bad_classes"),
    ({"net": "c8-k29"}, "spec.layer_int_range"),
    ({"net": "d128", "lr": "abc"}, "eval.share_bad_link"),
    ({"net": "d128", "lr": "nan"}, "spec.lr_range"),
    ({"net": "d128", "lr": "50"}, "spec.lr_range"),
    ({"net": "d128", "bs": "-1"}, "eval.share_bad_link"),
    ({"net": "d128", "bs": "1" * 400}, "eval.share_bad_link"),
    ({"net": "d128", "ep": "0"}, "spec.int_range"),
    ({"net": "d128", "o": "magic"}, "spec.unknown_optimizer"),
    ({"net": "d128", "ds": "cifar"}, "data.unknown_dataset"),
    ({"net": "d128", "v": "2"}, "eval.share_bad_link"),
    ({"net": "d128", "init": "random"}, "spec.unknown_init"),
    ({"net": ",".join(["d8"] * 40)}, "eval.share_bad_link"),
    ({"net": "d8," * 300}, "eval.share_bad_link"),
    ({"net": ",".join(["d8"] * 9)}, "spec.too_many_hidden"),
])
def test_bad_links_raise_clear_errors(params, key):
    with pytest.raises(UserError) as exc_info:
        from_params(params)
    assert exc_info.value.key == key
    assert exc_info.value.message("zh") != key  # a translated message exists


def test_parse_layer_is_the_inverse_of_layer_token():
    for spec in SPECS:
        for i, layer in enumerate(spec.layers):
            assert parse_layer(layer_token(layer), i) == layer


def test_every_preset_survives_a_share_link():
    from dlplay.nn.presets import PRESETS
    for preset in PRESETS.values():
        assert from_params(to_params(preset.spec, preset.config)) == (preset.spec, preset.config)
