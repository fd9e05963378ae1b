"""Ready-made models and training settings, each with an explanation of what it shows.

The explanations live in the ``presets`` catalog (``presets.<key>.name`` and ``presets.<key>.text``);
the numbers they quote were measured on the 10k MNIST sample (see tests/test_presets.py and
bench/cnn_preset.py, bench/rnn_presets.py, bench/augment_drawn.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from dlplay.data.augment import LEVELS as AUGMENT_LEVELS
from dlplay.nn.spec import LayerSpec, ModelSpec, TrainConfig, dense_spec


@dataclass(frozen=True)
class Preset:
    key: str  # translation keys: presets.<key>.name and presets.<key>.text
    spec: ModelSpec
    config: TrainConfig


def small_cnn_spec() -> ModelSpec:
    """Two convolution + batch-norm + max-pool blocks, then a dense layer with dropout:
    28×28 -> 14×14 -> 7×7 -> 128 -> 10."""
    return ModelSpec(layers=(
        LayerSpec("conv2d", 32, "relu", kernel=3, stride=1, padding=1),
        LayerSpec("batchnorm", 1, "identity"),
        LayerSpec("maxpool", 1, "identity", kernel=2, stride=2),
        LayerSpec("conv2d", 64, "relu", kernel=3, stride=1, padding=1),
        LayerSpec("batchnorm", 1, "identity"),
        LayerSpec("maxpool", 1, "identity", kernel=2, stride=2),
        LayerSpec("dense", 128, "relu", dropout=0.3),
    ))


def recurrent_spec(kind: str, hidden: int, order: str = "rows", activation: str = "tanh") -> ModelSpec:
    """One recurrent layer reading the image (rows, columns or pixels); the classifier reads its last state."""
    return ModelSpec(layers=(LayerSpec(kind, hidden, activation if kind == "rnn" else "identity"),), order=order)


PRESETS: dict[str, Preset] = {
    "tutorial": Preset("tutorial", dense_spec([128], "relu"),
                       TrainConfig(optimizer="adam", lr=1e-3, batch_size=32, epochs=10)),
    "deep_sigmoid": Preset("deep_sigmoid", dense_spec([64] * 6, "sigmoid"),
                           TrainConfig(optimizer="sgd", lr=0.1, batch_size=32, epochs=10)),
    "zero_init": Preset("zero_init", dense_spec([128], "sigmoid", init="zeros"),
                        TrainConfig(optimizer="adam", lr=1e-3, batch_size=32, epochs=5)),
    "wide_shallow": Preset("wide_shallow", dense_spec([512], "relu"),
                           TrainConfig(optimizer="adam", lr=1e-3, batch_size=32, epochs=10)),
    "narrow_deep": Preset("narrow_deep", dense_spec([256] * 4, "relu"),
                          TrainConfig(optimizer="adam", lr=1e-3, batch_size=32, epochs=10)),
    "small_cnn": Preset("small_cnn", small_cnn_spec(),
                        TrainConfig(optimizer="adam", lr=3e-3, batch_size=32, epochs=5, schedule="cosine")),
    # a small training subset, a big network, no dropout or weight decay: it learns the 500 images by
    # heart and the validation loss turns up after a few epochs (bench/overfit_preset.py measures the gap)
    "overfit": Preset("overfit", dense_spec([1024, 1024], "relu"),
                      TrainConfig(optimizer="adam", lr=1e-3, batch_size=32, epochs=25, train_size=500, val_share=0.1)),
    "high_lr": Preset("high_lr", dense_spec([128, 128], "relu"),
                      TrainConfig(optimizer="sgd", lr=3.0, batch_size=64, epochs=5)),
    "rnn_rows": Preset("rnn_rows", recurrent_spec("rnn", 128),  # the same settings as lstm_rows: a fair race
                       TrainConfig(optimizer="adam", lr=2e-3, batch_size=32, epochs=8, schedule="cosine")),
    "lstm_rows": Preset("lstm_rows", recurrent_spec("lstm", 128),
                        TrainConfig(optimizer="adam", lr=2e-3, batch_size=32, epochs=8, schedule="cosine")),
    "rnn_pixels": Preset("rnn_pixels", recurrent_spec("rnn", 64, "pixels"),
                         TrainConfig(optimizer="adam", lr=1e-3, batch_size=32, epochs=1)),
    "gru_rows": Preset("gru_rows", recurrent_spec("gru", 128),
                       TrainConfig(optimizer="adam", lr=2e-3, batch_size=32, epochs=8, schedule="cosine")),
    # the tutorial's run with light augmentation: drawn digits 96.1 % -> 98.1 % (bench/augment_drawn.py)
    "augmented": Preset("augmented", dense_spec([128], "relu"),
                        TrainConfig(optimizer="adam", lr=1e-3, batch_size=32, epochs=10,
                                    augment=AUGMENT_LEVELS["light"])),
}

DEFAULT_PRESET = "tutorial"
