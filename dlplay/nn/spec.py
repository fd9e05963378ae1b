"""ModelSpec and TrainConfig: what to build and how to train it, validated, JSON round-trippable."""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from dlplay.data.augment import Augment
from dlplay.errors import UserError
from dlplay.i18n import Term
from dlplay.nn import activations as _activations
from dlplay.nn import layers as _layers
from dlplay.nn import optimizers as _optimizers
from dlplay.nn.layers import DEFAULT_ORDER, MAX_UNITS, ORDERS, WEIGHT_KINDS, LayerSpec  # noqa: F401 - MAX_UNITS and LayerSpec re-exported (they were defined here)
from dlplay.nn.optimizers import lr_factor  # lr_curve uses it; the training loop imports it from here

# The names of the registries' entries, in their order: the choices the pages offer.
ACTIVATIONS = tuple(_activations.ACTIVATIONS)
LAYER_KINDS = tuple(_layers.LAYER_KINDS)
OPTIMIZERS = tuple(_optimizers.OPTIMIZERS)
SCHEDULES = tuple(_optimizers.SCHEDULES)  # learning-rate schedules, see optimizers.lr_factor
INITS = ("default", "he", "xavier", "normal", "zeros")
DEVICES = ("auto", "cpu", "cuda")

MAX_WEIGHT_LAYERS = 8
MAX_LAYERS = 16
MAX_EPOCHS = 200
MAX_BATCH = 8192
MAX_VAL_SHARE = 0.5  # at most half of the training set held out for validation
DEFAULT_VAL_SHARE = 0.1  # a new run watches validation by default; absent from old records and links: 0
MAX_LABEL_EDITS = 200  # relabelled or dropped training images one run may carry
DROP = -1  # a label edit's new label that drops the image from the run's data

# what a message calls each number: the label of the widget where it is typed (same words as the page)
FIELD_LABELS = {
    "batch_size": "train.batch", "epochs": "train.epochs", "seed": "train.seed",
    "train_size": "spec.field_train_size", "num_classes": "spec.field_num_classes",
    "patience": "validation.patience",
}  # a layer's settings are named by their own entries in dlplay/nn/layers.py


_RECURRENT_FIELDS = {"stack": 1, "read": "last"}


def _layer_dict(layer: LayerSpec) -> dict[str, Any]:
    return {k: v for k, v in asdict(layer).items() if k not in _RECURRENT_FIELDS or v != _RECURRENT_FIELDS[k]}


def _check_int(value: Any, field: str, low: int, high: int) -> None:
    """A whole number in [low, high]; the message names the field by its label in the page's language."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UserError("spec.int_range", name=Term(FIELD_LABELS[field]), low=low, high=high, value=value)


def layer_output_shape(layer: LayerSpec, shape: tuple[int, ...], index: int,
                       order: str = DEFAULT_ORDER) -> tuple[int, ...]:
    """Shape after ``layer`` given the input ``shape`` (without batch; a recurrent layer reads an image
    in the model's reading ``order``); raises UserError naming the layer."""
    kind = _layers.LAYER_KINDS[layer.kind]
    return kind.output_shape(layer, kind.input_view(shape, order), index)


def validate_layer(layer: LayerSpec, index: int) -> None:
    n = index + 1
    if layer.kind not in LAYER_KINDS:
        raise UserError("spec.unknown_kind", layer=n, kind=layer.kind, choices=", ".join(LAYER_KINDS))
    if layer.activation not in ACTIVATIONS:
        raise UserError("spec.unknown_activation", layer=n, activation=layer.activation, choices=", ".join(ACTIVATIONS))
    kind = _layers.LAYER_KINDS[layer.kind]
    for field in kind.numbers:
        field.check(getattr(layer, field.name), n)
    for choice in kind.choices:
        choice.check(getattr(layer, choice.name), n)
    if kind.activations is not None and layer.activation not in kind.activations:
        raise UserError("spec.kind_activation", layer=n, kind=layer.kind, activation=layer.activation,
                        choices=", ".join(kind.activations))
    if not isinstance(layer.dropout, (int, float)) or not 0.0 <= layer.dropout < 1.0:
        raise UserError("spec.dropout_range", layer=n, value=layer.dropout)


@dataclass(frozen=True)
class ModelSpec:
    """The network: input shape, hidden layers in order, the number of classes, weight initialisation,
    and how a recurrent layer reads the image (``order``: rows, columns or pixels one by one)."""

    layers: tuple[LayerSpec, ...] = (LayerSpec(),)
    input_shape: tuple[int, int, int] = (1, 28, 28)
    num_classes: int = 10
    init: str = "default"
    order: str = DEFAULT_ORDER

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "input_shape", tuple(self.input_shape))
        if len(self.layers) > MAX_LAYERS:
            raise UserError("spec.too_many_layers", count=len(self.layers), limit=MAX_LAYERS)
        weight_layers = sum(layer.kind in WEIGHT_KINDS for layer in self.layers)
        if weight_layers > MAX_WEIGHT_LAYERS:
            raise UserError("spec.too_many_hidden", count=weight_layers, limit=MAX_WEIGHT_LAYERS)
        if self.init not in INITS:
            raise UserError("spec.unknown_init", init=self.init, choices=", ".join(INITS))
        if self.order not in ORDERS:
            raise UserError("spec.unknown_order", order=self.order, choices=", ".join(ORDERS))
        _check_int(self.num_classes, "num_classes", 2, 1000)
        for i, layer in enumerate(self.layers):
            validate_layer(layer, i)
        self.shapes()  # shape inference raises on impossible stacks

    def shapes(self) -> list[tuple[int, ...]]:
        """Output shape of every hidden layer (without batch dimension)."""
        shape: tuple[int, ...] = self.input_shape
        out = []
        for i, layer in enumerate(self.layers):
            shape = layer_output_shape(layer, shape, i, self.order)
            out.append(shape)
        return out

    def is_recurrent(self) -> bool:
        """Does a layer read the input as a sequence?"""
        return any(layer.kind in _layers.SEQUENCE_KINDS for layer in self.layers)

    def flat_input_size(self) -> int:
        return math.prod(self.input_shape)

    def describe(self, image_input: bool = False) -> str:
        """The network in one line: ``784 → Dense 128 relu → 10``. With ``image_input`` a network whose
        first layer takes the image as an image (not flattened) starts at its shape: ``1×28×28 → Conv ...``."""
        spatial = image_input and bool(self.layers) and not _layers.LAYER_KINDS[self.layers[0].kind].flattens(self.input_shape)
        first = _layers.shape_text(self.input_shape) if spatial else str(self.flat_input_size())
        return " → ".join([first, *(layer.describe() for layer in self.layers), str(self.num_classes)])

    def to_dict(self) -> dict[str, Any]:
        """Plain data; the recurrent-only fields (stack, read, order) appear when they differ from their
        defaults, so a model without recurrent layers writes what it always wrote."""
        data = {
            "layers": [_layer_dict(layer) for layer in self.layers],
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "init": self.init,
        }
        if self.order != DEFAULT_ORDER:
            data["order"] = self.order
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        if not isinstance(data, dict) or not isinstance(data.get("layers"), list):
            raise UserError("spec.bad_json")
        allowed = {f.name for f in fields(LayerSpec)}
        layers = []
        for item in data["layers"]:
            if not isinstance(item, dict) or set(item) - allowed:
                raise UserError("spec.bad_json")
            layers.append(LayerSpec(**item))
        extra = set(data) - {"layers", "input_shape", "num_classes", "init", "order"}
        if extra:
            raise UserError("spec.bad_json")
        return cls(
            layers=tuple(layers),
            input_shape=tuple(data.get("input_shape", (1, 28, 28))),
            num_classes=data.get("num_classes", 10),
            init=data.get("init", "default"),
            order=data.get("order", DEFAULT_ORDER),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError) as exc:
            raise UserError("spec.bad_json") from exc
        return cls.from_dict(data)


@dataclass(frozen=True)
class TrainConfig:
    """How to train: optimiser and its hyperparameters, batching, epochs, seed, device, data."""

    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 32
    epochs: int = 10
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "auto"
    dataset: str = "mnist"
    train_size: int | None = None  # None: the whole training set
    schedule: str = _optimizers.CONSTANT  # how the learning rate changes over the run (SCHEDULES)
    # --- validation and data edits (dlplay/classify/split.py, dlplay/classify/earlystop.py) ---
    val_share: float = DEFAULT_VAL_SHARE  # share of the training set held out (seeded) to validate on
    patience: int = 0  # early stopping: epochs without a better validation loss before it stops (0: off)
    label_edits: tuple[tuple[int, int], ...] = ()  # (training-set index, new label or DROP), sorted
    augment: Augment = Augment()  # random changes to each training batch (dlplay/data/augment.py); all 0: none

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise UserError("spec.unknown_optimizer", optimizer=self.optimizer, choices=", ".join(OPTIMIZERS))
        if self.schedule not in SCHEDULES:
            raise UserError("spec.unknown_schedule", schedule=self.schedule, choices=", ".join(SCHEDULES))
        validate_lr(self.lr)
        _check_int(self.batch_size, "batch_size", 1, MAX_BATCH)
        _check_int(self.epochs, "epochs", 1, MAX_EPOCHS)
        _check_int(self.seed, "seed", 0, 2**31 - 1)
        if not isinstance(self.weight_decay, (int, float)) or not 0.0 <= self.weight_decay < 1.0:
            raise UserError("spec.weight_decay_range", value=self.weight_decay)
        if self.device not in DEVICES:
            raise UserError("spec.unknown_device", device=self.device, choices=", ".join(DEVICES))
        if self.train_size is not None:
            _check_int(self.train_size, "train_size", 1, 10_000_000)
        _check_validation(self)
        object.__setattr__(self, "label_edits", _label_edits(self.label_edits))
        object.__setattr__(self, "augment", Augment.from_dict(self.augment))  # a dict from JSON, validated

    def with_changes(self, **changes: Any) -> TrainConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.augment.is_off:  # without augmentation a config writes what it always wrote
            del data["augment"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Settings saved before validation existed (no ``val_share``) trained without one: 0."""
        allowed = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) - allowed:
            raise UserError("spec.bad_json")
        return cls(**{"val_share": 0.0, **data})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError) as exc:
            raise UserError("spec.bad_json") from exc
        return cls.from_dict(data)


def _check_validation(config: TrainConfig) -> None:
    """The validation share, early stopping's patience (it watches the validation loss: needs a share)."""
    share = config.val_share
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not math.isfinite(share) \
            or not 0.0 <= share <= MAX_VAL_SHARE:
        raise UserError("validation.share_range", value=share, high=MAX_VAL_SHARE)
    object.__setattr__(config, "val_share", float(share))
    _check_int(config.patience, "patience", 0, MAX_EPOCHS)
    if config.patience and not share:
        raise UserError("validation.patience_needs_val")


def _label_edits(edits: Any) -> tuple[tuple[int, int], ...]:
    """Label edits as sorted (index, label) pairs: whole numbers, one edit per image, at most
    MAX_LABEL_EDITS; a label is a class number or DROP (the image leaves the run's data)."""
    if isinstance(edits, (str, bytes, dict)) or not isinstance(edits, (list, tuple)):
        raise UserError("fixdata.bad_edits")
    if len(edits) > MAX_LABEL_EDITS:
        raise UserError("fixdata.too_many", count=len(edits), limit=MAX_LABEL_EDITS)
    out = []
    for edit in edits:
        if not isinstance(edit, (list, tuple)) or len(edit) != 2 or any(
                isinstance(v, bool) or not isinstance(v, int) for v in edit):
            raise UserError("fixdata.bad_edits")
        index, label = edit
        if not 0 <= index < 10_000_000 or not DROP <= label < 1000:
            raise UserError("fixdata.bad_edit", index=index, label=label)
        out.append((index, label))
    out.sort()
    if len({index for index, _ in out}) != len(out):
        raise UserError("fixdata.duplicate_edit")
    return tuple(out)


def validate_lr(lr: Any) -> float:
    """A learning rate must be a finite number in (0, 10]."""
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or not 0 < lr <= 10:
        raise UserError("spec.lr_range", value=lr)
    return float(lr)


def dense_spec(hidden: list[int] | tuple[int, ...], activation: str = _activations.DEFAULT_ACTIVATION,
               dropout: float = 0.0, init: str = "default") -> ModelSpec:
    """Shorthand for a multilayer perceptron: ``dense_spec([128])`` is the tutorial's 784-128-10."""
    return ModelSpec(layers=tuple(LayerSpec(_layers.DENSE, u, activation, dropout) for u in hidden), init=init)


def lr_curve(config: TrainConfig, total_steps: int, lr_changes: Sequence[tuple[int, float]] = (),
             points: int = 200) -> tuple[list[int], list[float]]:
    """(steps, learning rates) over a whole run: the schedule applied to the chosen rate and to the
    learner's live changes (``(step, new rate)``, in effect from that step), at about ``points`` steps
    plus both sides of every change."""
    total = max(1, int(total_steps))
    n = max(2, min(points, total))
    steps = {1 + round(i * (total - 1) / (n - 1)) for i in range(n)}
    for step, _ in lr_changes:
        steps.update(s for s in (step - 1, step) if 1 <= s <= total)
    ordered = sorted(steps)
    changes = sorted(lr_changes, key=lambda change: change[0])  # stable: same-step changes keep their order
    rates = []
    for step in ordered:
        base = config.lr
        for at, lr in changes:
            if at <= step:
                base = lr
        rates.append(base * lr_factor(config.schedule, step, total))
    return ordered, rates
