"""A run's network and training in the tutorial's Keras (``keras.Sequential``, ``compile``, ``fit``).

Plain string building from the run's ModelSpec and TrainConfig. Every layer kind dlplay offers has a
Keras layer (dense, convolution, pooling, batch norm, dropout, RNN/LSTM/GRU); settings Keras spells
differently are mapped (PyTorch's padding by ZeroPadding2D or ``"same"``, batch norm's momentum 0.1 as
Keras' 0.9, Adam's and RMSprop's ε and ρ, PyTorch's L2 weight decay as a kernel regulariser, the
default initialisation as a VarianceScaling). Keras draws its own random numbers, so the start
weights, the validation split and the batch order differ from the run's: its accuracy is close, not
equal (the script's notes say so). A layer kind without a Keras counterpart would get a NOTE comment
instead of a layer (:data:`KERAS_LAYERS` lists those that have one). TensorFlow is not a dlplay
dependency: tests compile the script; run it where Keras is installed (bench/requirements-keras.txt).
"""
from __future__ import annotations

from dlplay.data.datasets import get_info
from dlplay.export.script import data_loader_code, is_own, wrap
from dlplay.i18n import translate
from dlplay.nn.activations import IDENTITY
from dlplay.nn.layers import DENSE, LAYER_KINDS, sequence_shape
from dlplay.nn.spec import ModelSpec, TrainConfig

KERAS_LAYERS = ("dense", "conv2d", "maxpool", "avgpool", "batchnorm", "rnn", "lstm", "gru")
KERAS_ACTIVATIONS = {"relu": "relu", "elu": "elu", "gelu": "gelu", "tanh": "tanh", "sigmoid": "sigmoid",
                     "softplus": "softplus", IDENTITY: None}  # leaky_relu: a LeakyReLU layer (slope 0.01)
INITIALIZERS = {
    "default": "keras.initializers.VarianceScaling(1 / 3, \"fan_in\", \"uniform\")",  # PyTorch's ±1/√fan_in
    "he": "\"he_normal\"",
    "xavier": "\"glorot_uniform\"",
    "normal": "keras.initializers.RandomNormal(0.0, 0.01)",
    "zeros": "\"zeros\"",
}
OPTIMIZERS = {
    "sgd": "keras.optimizers.SGD(learning_rate=lr)",
    "momentum": "keras.optimizers.SGD(learning_rate=lr, momentum=0.9)",
    "adam": "keras.optimizers.Adam(learning_rate=lr, epsilon=1e-8)",
    "adamw": "keras.optimizers.AdamW(learning_rate=lr, weight_decay=WEIGHT_DECAY, epsilon=1e-8)",
    "rmsprop": "keras.optimizers.RMSprop(learning_rate=lr, rho=0.99, epsilon=1e-8)",
}


def _c(key: str, lang: str, **params: object) -> str:
    return translate(f"export.c_{key}", lang, **params)


def _kernel_args(l2: bool) -> str:
    args = "kernel_initializer=INIT"
    return args + (", kernel_regularizer=keras.regularizers.L2(WEIGHT_DECAY / 2)" if l2 else "")


def _activation(name: str) -> tuple[str, list[str]]:
    """(the ``activation=`` argument, extra layers after it) for activation ``name``."""
    if name == "leaky_relu":
        return "None", ["layers.LeakyReLU(negative_slope=0.01)"]
    keras_name = KERAS_ACTIVATIONS[name]
    return (f"\"{keras_name}\"" if keras_name else "None"), []


def layer_lines(spec: ModelSpec, config: TrainConfig, lang: str) -> list[str]:
    """The Sequential's layers, one Python expression (or comment) per line."""
    l2 = bool(config.weight_decay) and config.optimizer != "adamw"
    kernel = _kernel_args(l2)
    c, h, w = spec.input_shape
    lines = [f"keras.Input(shape=({h}, {w}, {c})),  # {_c('keras_input', lang)}"]
    shape: tuple[int, ...] = spec.input_shape
    for layer, out_shape in zip(spec.layers, spec.shapes()):
        kind = LAYER_KINDS[layer.kind]
        lines.append(f"# {layer.describe()} → {'×'.join(map(str, out_shape))}")
        if layer.kind not in KERAS_LAYERS:
            lines.append(f"# NOTE: {_c('keras_missing', lang, kind=layer.kind)}")
            shape = out_shape
            continue
        if kind.flattens(shape):
            lines.append("layers.Flatten(),")
        act, extra = _activation(kind.block_activation(layer) if not kind.sequence else IDENTITY)
        if layer.kind == DENSE:
            lines.append(f"layers.Dense({layer.units}, activation={act}, {kernel}),")
        elif layer.kind == "conv2d":
            k, s, p = layer.kernel, layer.stride, layer.padding
            if p and s == 1 and k % 2 == 1 and p == (k - 1) // 2:
                padding = "\"same\""
            else:
                padding = "\"valid\""
                if p:
                    lines.append(f"layers.ZeroPadding2D({p}),  # {_c('keras_padding', lang, p=p)}")
            lines.append(f"layers.Conv2D({layer.units}, {k}, strides={s}, padding={padding}, activation={act}, {kernel}),")
        elif layer.kind in ("maxpool", "avgpool"):
            cls = "MaxPooling2D" if layer.kind == "maxpool" else "AveragePooling2D"
            lines.append(f"layers.{cls}(pool_size={layer.kernel}, strides={layer.stride}),")
        elif layer.kind == "batchnorm":
            lines.append(f"layers.BatchNormalization(momentum=0.9, epsilon=1e-5),  # {_c('keras_bn', lang)}")
            if act != "None":
                lines.append(f"layers.Activation({act}),")
        else:  # recurrent
            if kind.reads_image(shape):
                steps, features = sequence_shape(shape, spec.order)
                if spec.order == "columns":
                    lines.append("layers.Permute((2, 1, 3)),  # " + _c("keras_columns", lang))
                lines.append(f"layers.Reshape(({steps}, {features})),  # {_c(f'seq_{spec.order}', lang, steps=steps, features=features)}")
            cls = {"rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}[layer.kind]
            for i in range(layer.stack):
                sequences = i < layer.stack - 1 or layer.read == "all"
                rnn_act = f", activation=\"{layer.activation}\"" if layer.kind == "rnn" else ""
                lines.append(f"layers.{cls}({layer.units}{rnn_act}, return_sequences={sequences}, "
                             f"{kernel}, recurrent_initializer=INIT),")
        lines += [f"{e}," for e in extra]
        if layer.dropout > 0:
            lines.append(f"layers.Dropout({layer.dropout}),")
        shape = out_shape
    if len(shape) > 1:
        lines.append("layers.Flatten(),")
    lines.append(f"layers.Dense({spec.num_classes}, {kernel}),  # {_c('logits', lang)}")
    return lines


def keras_script(spec: ModelSpec, config: TrainConfig, lang: str = "en") -> str:
    """The whole Keras script (needs keras/tensorflow and numpy)."""
    info = get_info(config.dataset)
    json_import = "import json\n" if is_own(config.dataset) else ""  # the own dataset's class names
    schedule = {
        "constant": "lr = LEARNING_RATE",
        "cosine": "lr = keras.optimizers.schedules.CosineDecay(LEARNING_RATE, decay_steps=total_steps)",
        "step": ("lr = keras.optimizers.schedules.PiecewiseConstantDecay(\n"
                 "    [total_steps // 2, 3 * total_steps // 4], [LEARNING_RATE, LEARNING_RATE * 0.1, LEARNING_RATE * 0.01])"),
    }[config.schedule]
    layers_code = "\n".join(f"    {line}" for line in layer_lines(spec, config, lang))
    augment = f"# {_c('augment_note', lang)}\n" if not config.augment.is_off else ""
    edits = [list(e) for e in config.label_edits]
    return f'''"""{wrap(_c('title', lang, model=spec.describe(image_input=True), dataset=info.title))}

{wrap(_c('keras_intro', lang))}
    pip install tensorflow numpy   # {_c('keras_or', lang)}
    python dlplay_run_keras.py

{wrap(_c('keras_differs', lang))}
"""
import gzip
{json_import}import math
import os
import sys
from pathlib import Path

import keras
import numpy as np
from keras import layers

# {_c('settings', lang)}
DATASET = "{config.dataset}"
SEED = {config.seed}
EPOCHS = {config.epochs}
BATCH_SIZE = {config.batch_size}
LEARNING_RATE = {config.lr!r}
WEIGHT_DECAY = {config.weight_decay!r}
VAL_SHARE = {config.val_share!r}
TRAIN_SIZE = {config.train_size!r}
PATIENCE = {config.patience}
LABEL_EDITS = {edits!r}
MEAN, STD = {info.mean}, {info.std}
INIT = {INITIALIZERS[spec.init]}  # {_c('keras_init', lang, scheme=spec.init)}
{augment}
{data_loader_code(config, lang)}

x_all, y_all, x_test, y_test = load_data()
y_all = y_all.copy()
for i, label in LABEL_EDITS:  # {_c('edits_doc', lang)}
    if label != -1:
        y_all[i] = label
# {_c('keras_normalize', lang)}
x_all = ((x_all.astype("float32") / 255.0 - MEAN) / STD)[..., None]
x_test = ((x_test.astype("float32") / 255.0 - MEAN) / STD)[..., None]

# {_c('keras_split', lang)}
rng = np.random.default_rng(SEED)
n = len(y_all)
k = min(n - 1, max(1, round(VAL_SHARE * n))) if VAL_SHARE > 0 else 0
val_idx = np.sort(rng.permutation(n)[:k])
train_idx = np.setdiff1d(np.arange(n), val_idx)[: TRAIN_SIZE or n]
dropped = [i for i, label in LABEL_EDITS if label == -1]
train_idx, val_idx = np.setdiff1d(train_idx, dropped), np.setdiff1d(val_idx, dropped)
x_train, y_train, x_val, y_val = x_all[train_idx], y_all[train_idx], x_all[val_idx], y_all[val_idx]

keras.utils.set_random_seed(SEED)
model = keras.Sequential([
{layers_code}
])
total_steps = math.ceil(len(y_train) / BATCH_SIZE) * EPOCHS
{schedule}
model.compile(
    optimizer={OPTIMIZERS[config.optimizer]},
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),  # softmax + cross-entropy
    metrics=["accuracy"],
)
model.summary()

callbacks = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=PATIENCE, restore_best_weights=True)] if PATIENCE else []
model.fit(x_train, y_train, batch_size=BATCH_SIZE, epochs=EPOCHS, shuffle=True, callbacks=callbacks,
          validation_data=(x_val, y_val) if len(y_val) else None)
test_loss, test_acc = model.evaluate(x_test, y_test, batch_size=256)
print(f"TEST ACCURACY {{test_acc:.6f}}")
model.save("model.keras")
'''
