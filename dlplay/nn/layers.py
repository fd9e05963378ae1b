"""The layer kinds dlplay offers: one entry each, in the spirit of ConvNetJS's uniform layers.

A :class:`LayerKind` knows everything the rest of dlplay asks about a kind of layer: which settings
it uses and their limits (spec validation, the Build page's layer editor), how to build its PyTorch
module and the shape it outputs (model, spec), its parameters and multiply-adds (the summary
table), how to describe and draw it (the diagram), and its code in a share link. Adding a layer kind
is one entry here plus its ``build.kind_<name>`` translation; tests/test_registries.py walks every
entry through every consumer.

Every layer is a :class:`~dlplay.nn.spec.LayerSpec` with the same fields (units, activation, dropout,
kernel, stride, padding, stack, read); a kind uses some of them and leaves the others at their defaults.

Recurrent kinds (``sequence=True``) read a sequence: an image-shaped input becomes one by the
model's reading order (:data:`ORDERS`: rows, columns or pixels, see :func:`sequence_shape`), a
sequence (T, F) stays one. They apply their activation inside the recurrence.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from torch import nn

from dlplay.errors import UserError
from dlplay.i18n import Term
from dlplay.nn.activations import DEFAULT_ACTIVATION, IDENTITY
from dlplay.nn.cells import CELLS

Shape = tuple[int, ...]

DENSE = "dense"  # the output layer is a dense layer too
DEFAULT_KIND = DENSE
MAX_UNITS = 4096
MAX_FILTERS = 512
MAX_HIDDEN = 1024  # a recurrent layer's hidden size
MAX_STACK = 4  # recurrent layers stacked in one block
ORDERS = ("rows", "columns", "pixels")  # how an image becomes a sequence (ModelSpec.order)
DEFAULT_ORDER = "rows"
READS = ("last", "all")  # the classifier reads the last hidden state, or all of them


@dataclass(frozen=True)
class LayerSpec:
    """One hidden layer. ``units`` is the number of neurons (dense), filters (conv2d) or the hidden
    size (recurrent); ``stack`` and ``read`` are recurrent layers' only (layers stacked in the block;
    the classifier reads the ``last`` hidden state or ``all`` of them)."""

    kind: str = DEFAULT_KIND
    units: int = 128
    activation: str = DEFAULT_ACTIVATION
    dropout: float = 0.0
    kernel: int = 3
    stride: int = 1
    padding: int = 0
    stack: int = 1
    read: str = "last"

    def describe(self) -> str:
        """"Dense 128 relu", "Conv 32×3×3 relu", "MaxPool 2×2", "BatchNorm"."""
        return LAYER_KINDS[self.kind].describe(self)



@dataclass(frozen=True)
class Field:
    """A whole-number setting of a layer kind: its limits and the texts of its editor widget."""

    name: str  # the LayerSpec field
    low: int
    high: int
    label_key: str
    help_key: str
    count_key: str = ""  # what the number counts ("neurons"): a too-large value says "N neurons are too many"
    edit: bool = True  # shown in the layer editor (pooling checks a padding it does not use)

    def check(self, value: Any, layer: int) -> None:
        """Raise UserError unless ``value`` is an int in [low, high]; the message names the setting by its
        label on the page (``Term``), and a count that is too large says so ("999999 neurons are too many")."""
        if isinstance(value, bool) or not isinstance(value, int) or not self.low <= value <= self.high:
            if self.count_key and isinstance(value, int) and not isinstance(value, bool) and value > self.high:
                raise UserError("spec.layer_too_many", layer=layer, value=value, what=Term(self.count_key),
                                high=self.high)
            raise UserError("spec.layer_int_range", layer=layer, name=Term(self.label_key),
                            low=self.low, high=self.high, value=value)


@dataclass(frozen=True)
class Choice:
    """A setting of a layer kind with named options (a recurrent layer's ``read``): its editor texts."""

    name: str  # the LayerSpec field
    options: tuple[str, ...]
    label_key: str
    help_key: str

    def option_key(self, option: str) -> str:
        return f"{self.label_key}_{option}"

    def check(self, value: Any, layer: int) -> None:
        """Raise UserError("spec.layer_choice") unless ``value`` is one of the options."""
        if value not in self.options:
            raise UserError("spec.layer_choice", layer=layer, name=self.name, value=value,
                            choices=", ".join(self.options))


@dataclass(frozen=True)
class LayerKind:
    """One kind of hidden layer and everything dlplay needs to know about it."""

    name: str
    code: str  # share-link code: ``d`` in ``d128``
    head: str | None  # the field written right after the code (``d128``: units; ``mp2``: kernel), None: none
    numbers: tuple[Field, ...]  # its whole-number settings, in the order they are validated
    activation: bool  # applies an activation of its own (pooling does not)
    weights: bool  # a weight matrix or kernels: counts towards MAX_WEIGHT_LAYERS, takes the weight init
    learns: bool  # has trainable parameters (the probe watches it)
    fully_connected: bool  # flattens an image-shaped input; small ones are drawn neuron by neuron
    spatial: bool  # needs an image-shaped input (the editor puts new ones before the first dense layer)
    defaults: Mapping[str, Any]  # a new layer's settings in the layer editor
    color: str  # its blocks in the diagram
    build: Callable[[LayerSpec, Shape], nn.Module]  # the module computing z from the block's input
    output_shape: Callable[[LayerSpec, Shape, int], Shape]  # (layer, input shape, index): raises UserError
    count: Callable[[LayerSpec, Shape, Shape], tuple[int, int]]  # (params, multiply-adds) for (in, out) shapes
    describe: Callable[[LayerSpec], str]  # "Conv 32×3×3 relu"
    title: Callable[[LayerSpec], str]  # the diagram's two-line title without its number: "Conv<br>32×3×3"
    short: Callable[[LayerSpec], str]  # its part of an architecture label: "C32k3"
    choices: tuple[Choice, ...] = ()  # its settings with named options
    activations: tuple[str, ...] | None = None  # the activations it allows (None: all)
    sequence: bool = False  # reads a sequence (recurrent); its activation is applied inside the op

    @property
    def key(self) -> str:
        """Translation key of the kind's name in the layer editor."""
        return f"build.kind_{self.name}"

    @property
    def uses(self) -> tuple[str, ...]:
        """The LayerSpec fields a learner sets for this kind (the editor's widgets, in order)."""
        return (*(f.name for f in self.numbers if f.edit), *(c.name for c in self.choices),
                *(("activation",) if self.activation else ()), "dropout")

    def field(self, name: str) -> Field | None:
        return next((f for f in self.numbers if f.name == name), None)

    def block_activation(self, layer: LayerSpec) -> str:
        """The activation the model applies after this layer's op."""
        return layer.activation if self.activation and not self.sequence else IDENTITY

    def flattens(self, in_shape: Shape) -> bool:
        """Does an input of ``in_shape`` get flattened before this layer?"""
        return self.fully_connected and len(in_shape) > 1

    def reads_image(self, in_shape: Shape) -> bool:
        """Does an image-shaped input become a sequence (by the model's reading order) before this layer?"""
        return self.sequence and len(in_shape) == 3

    def input_view(self, in_shape: Shape, order: str) -> Shape:
        """The shape this layer's op sees: a recurrent layer sees an image as a sequence (T, F)."""
        return sequence_shape(in_shape, order) if self.reads_image(in_shape) else in_shape


# ----- the settings, with their limits and editor texts -----------------------------------------

UNITS = Field("units", 1, MAX_UNITS, "build.units", "build.units_help", count_key="spec.count_units")
FILTERS = Field("units", 1, MAX_FILTERS, "build.filters", "build.units_help", count_key="spec.count_filters")
KERNEL = Field("kernel", 1, 28, "build.kernel", "build.kernel_help")
WINDOW = Field("kernel", 1, 28, "build.window", "build.window_help")
STRIDE = Field("stride", 1, 28, "build.stride", "build.stride_help")
PADDING = Field("padding", 0, 14, "build.padding", "build.padding_help")
UNUSED_PADDING = Field("padding", 0, 14, "build.padding", "build.padding_help", edit=False)


HIDDEN = Field("units", 1, MAX_HIDDEN, "build.hidden", "build.hidden_help", count_key="spec.count_hidden")
STACK = Field("stack", 1, MAX_STACK, "build.stack", "build.stack_help")
READ = Choice("read", READS, "build.read", "build.read_help")


# ----- shapes and their text ---------------------------------------------------------------------

def shape_text(shape: Shape) -> str:
    """(32, 14, 14) -> '32×14×14'."""
    return "×".join(str(s) for s in shape)


def sequence_shape(shape: Shape, order: str) -> Shape:
    """An image (C, H, W) read as a sequence (steps, features): rows (H, C·W), columns (W, C·H) or
    pixels one by one (H·W, C)."""
    c, h, w = shape
    return {"rows": (h, c * w), "columns": (w, c * h), "pixels": (h * w, c)}[order]


def to_sequence(x: Any, order: str) -> Any:
    """A batch of images [B, C, H, W] as sequences [B, steps, features] (see :func:`sequence_shape`)."""
    b, c, h, w = x.shape
    if order == "rows":
        return x.permute(0, 2, 1, 3).reshape(b, h, c * w)
    if order == "columns":
        return x.permute(0, 3, 1, 2).reshape(b, w, c * h)
    return x.permute(0, 2, 3, 1).reshape(b, h * w, c)


def _window_shape(layer: LayerSpec, shape: Shape, index: int, channels: int | None, padding: int) -> Shape:
    """Output shape of a window (kernel × kernel, stride) sliding over an image-shaped input;
    ``channels`` None keeps the input's channels."""
    n = index + 1
    if len(shape) != 3:
        raise UserError("spec.spatial_after_dense", layer=n, kind=layer.kind)
    c, h, w = shape
    k, s, p = layer.kernel, layer.stride, padding
    if k > h + 2 * p or k > w + 2 * p:
        raise UserError("spec.kernel_too_large", layer=n, kernel=k, height=h, width=w, padding=p)
    return (c if channels is None else channels, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)


def _conv_shape(layer: LayerSpec, shape: Shape, index: int) -> Shape:
    return _window_shape(layer, shape, index, layer.units, layer.padding)


def _pool_shape(layer: LayerSpec, shape: Shape, index: int) -> Shape:
    return _window_shape(layer, shape, index, None, 0)


# ----- parameters and multiply-adds per example ------------------------------------------------

def _dense_count(layer: LayerSpec, in_shape: Shape, out_shape: Shape) -> tuple[int, int]:
    n_in = math.prod(in_shape)
    return n_in * layer.units + layer.units, n_in * layer.units


def _conv_count(layer: LayerSpec, in_shape: Shape, out_shape: Shape) -> tuple[int, int]:
    per = in_shape[0] * layer.kernel * layer.kernel
    return per * layer.units + layer.units, per * math.prod(out_shape)


def _no_count(layer: LayerSpec, in_shape: Shape, out_shape: Shape) -> tuple[int, int]:
    return 0, 0


# ----- recurrent layers --------------------------------------------------------------------------

class Recurrent(nn.Module):
    """PyTorch's RNN/LSTM/GRU over a sequence [B, T, F]: the last hidden state [B, H] or all [B, T, H].

    ``weight`` and ``bias`` are the first layer's input weights W_xh and bias (what the probe and
    the formula views watch); ``init_weights`` applies the model's initialisation to every matrix.
    """

    def __init__(self, cell: str, input_size: int, hidden: int, stack: int, nonlinearity: str, read: str):
        super().__init__()
        self.cell, self.read = cell, read
        self.out_features = hidden
        self.rnn: nn.RNNBase = CELLS[cell].module(input_size, hidden, stack, nonlinearity)

    @property
    def weight(self) -> nn.Parameter:
        return cast(nn.Parameter, self.rnn.weight_ih_l0)

    @property
    def bias(self) -> nn.Parameter:
        return cast(nn.Parameter, self.rnn.bias_ih_l0)

    def matrices(self) -> list[nn.Parameter]:
        """Every weight matrix (input and recurrent, every stacked layer)."""
        return [p for name, p in self.rnn.named_parameters() if name.startswith("weight")]

    def forward(self, x: Any) -> Any:
        out, _ = self.rnn(x)
        return out if self.read == "all" else out[:, -1]


def _recurrent_shape(layer: LayerSpec, shape: Shape, index: int) -> Shape:
    if len(shape) != 2:  # after a dense layer there is no sequence left to read
        raise UserError("spec.sequence_after_dense", layer=index + 1, kind=layer.kind)
    return (shape[0], layer.units) if layer.read == "all" else (layer.units,)


def _recurrent_count(cell: str) -> Callable[[LayerSpec, Shape, Shape], tuple[int, int]]:
    def count(layer: LayerSpec, in_shape: Shape, out_shape: Shape) -> tuple[int, int]:
        steps, features = in_shape
        g, h = CELLS[cell].blocks, layer.units
        params = macs = 0
        for i in range(layer.stack):
            n_in = features if i == 0 else h
            params += g * h * (n_in + h) + 2 * g * h
            macs += steps * g * h * (n_in + h)
        return params, macs
    return count


def _recurrent(cell: str, code: str, label: str, color: str) -> LayerKind:
    activations = CELLS[cell].activations  # None: the cell fixes its own (LSTM, GRU)

    def suffix(layer: LayerSpec) -> str:
        return (f" ×{layer.stack}" if layer.stack > 1 else "") + (" all" if layer.read == "all" else "")

    def describe(layer: LayerSpec) -> str:
        return f"{label} {layer.units}" + (f" {layer.activation}" if activations else "") + suffix(layer)

    return LayerKind(
        name=cell, code=code, head="units", numbers=(HIDDEN, STACK), activation=activations is not None, weights=True,
        learns=True, fully_connected=False, spatial=True,
        defaults=dict(units=128, activation=activations[0] if activations else IDENTITY, dropout=0.0, kernel=3, stride=1,
                      padding=0, stack=1, read="last"),
        color=color,
        build=lambda layer, shape: Recurrent(cell, shape[1], layer.units, layer.stack,
                                             layer.activation, layer.read),
        output_shape=_recurrent_shape, count=_recurrent_count(cell), describe=describe,
        title=lambda layer: f"{label}<br>{layer.units}{suffix(layer)}",
        short=lambda layer: f"{label}{layer.units}" + (f"x{layer.stack}" if layer.stack > 1 else ""),
        choices=(READ,), activations=activations, sequence=True,
    )


# ----- the entries -------------------------------------------------------------------------------

def _pool(name: str, code: str, label: str, short: str, module: Callable[[int, int], nn.Module]) -> LayerKind:
    return LayerKind(
        name=name, code=code, head="kernel", numbers=(WINDOW, STRIDE, UNUSED_PADDING), activation=False,
        weights=False, learns=False, fully_connected=False, spatial=True,
        defaults=dict(units=1, activation=IDENTITY, dropout=0.0, kernel=2, stride=2, padding=0, stack=1, read="last"), color="#fbe3c8",
        build=lambda layer, shape: module(layer.kernel, layer.stride),
        output_shape=_pool_shape, count=_no_count,
        describe=lambda layer: f"{label} {layer.kernel}×{layer.kernel}",
        title=lambda layer: f"{label}<br>{layer.kernel}×{layer.kernel}",
        short=lambda layer: f"{short}{layer.kernel}",
    )


_ENTRIES = (
    LayerKind(
        name=DENSE, code="d", head="units", numbers=(UNITS,), activation=True, weights=True, learns=True,
        fully_connected=True, spatial=False,
        defaults=dict(units=64, activation=DEFAULT_ACTIVATION, dropout=0.0, kernel=3, stride=1, padding=0, stack=1,
                      read="last"),
        color="#cfe3f7",
        build=lambda layer, shape: nn.Linear(math.prod(shape), layer.units),
        output_shape=lambda layer, shape, index: (layer.units,), count=_dense_count,
        describe=lambda layer: f"Dense {layer.units} {layer.activation}",
        title=lambda layer: f"Dense<br>{layer.units}",
        short=lambda layer: str(layer.units),
    ),
    LayerKind(
        name="conv2d", code="c", head="units", numbers=(FILTERS, KERNEL, STRIDE, PADDING), activation=True,
        weights=True, learns=True, fully_connected=False, spatial=True,
        defaults=dict(units=32, activation=DEFAULT_ACTIVATION, dropout=0.0, kernel=3, stride=1, padding=1, stack=1,
                      read="last"),
        color="#d5f0d5",
        build=lambda layer, shape: nn.Conv2d(shape[0], layer.units, layer.kernel, layer.stride, layer.padding),
        output_shape=_conv_shape, count=_conv_count,
        describe=lambda layer: f"Conv {layer.units}×{layer.kernel}×{layer.kernel} {layer.activation}",
        title=lambda layer: (f"Conv<br>{layer.units}×{layer.kernel}×{layer.kernel}"
                             + (f" /{layer.stride}" if layer.stride > 1 else "")),
        short=lambda layer: f"C{layer.units}k{layer.kernel}",
    ),
    _pool("maxpool", "mp", "MaxPool", "MP", nn.MaxPool2d),
    _pool("avgpool", "ap", "AvgPool", "AP", nn.AvgPool2d),
    LayerKind(
        name="batchnorm", code="bn", head=None, numbers=(), activation=True, weights=False, learns=True,
        fully_connected=False, spatial=False,
        defaults=dict(units=1, activation=IDENTITY, dropout=0.0, kernel=3, stride=1, padding=0, stack=1,
                      read="last"), color="#eadcf5",
        build=lambda layer, shape: nn.BatchNorm2d(shape[0]) if len(shape) == 3 else nn.BatchNorm1d(shape[0]),
        output_shape=lambda layer, shape, index: shape,
        count=lambda layer, in_shape, out_shape: (2 * in_shape[0], 0),
        describe=lambda layer: "BatchNorm", title=lambda layer: "BatchNorm", short=lambda layer: "BN",
    ),
    _recurrent("rnn", "r", "RNN", "#f7d6de"),
    _recurrent("lstm", "lstm", "LSTM", "#f3c6d3"),
    _recurrent("gru", "gru", "GRU", "#f9e0c0"),
)
LAYER_KINDS: dict[str, LayerKind] = {kind.name: kind for kind in _ENTRIES}
WEIGHT_KINDS = tuple(kind.name for kind in _ENTRIES if kind.weights)
SEQUENCE_KINDS = tuple(kind.name for kind in _ENTRIES if kind.sequence)


def layer_kind(name: str) -> LayerKind:
    """The entry of ``name`` (KeyError for a kind that is not in the registry)."""
    return LAYER_KINDS[name]
