"""The layer kinds dlplay offers: one entry each, in the spirit of ConvNetJS's uniform layers.

A :class:`LayerKind` knows everything the rest of dlplay asks about a kind of layer: which settings
it uses and their limits (spec validation, the Build page's layer editor), how to build its PyTorch
module and the shape it outputs (model, spec), its parameters and multiply-adds (the summary
table), how to describe and draw it (the diagram), and its code in a share link. Adding a layer kind
is one entry here plus its ``build.kind_<name>`` translation; tests/test_registries.py walks every
entry through every consumer.

Every layer is a :class:`~dlplay.spec.LayerSpec` with the same fields (units, activation, dropout,
kernel, stride, padding); a kind uses some of them and leaves the others at their defaults.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torch import nn

from .activations import DEFAULT_ACTIVATION, IDENTITY
from .errors import UserError
from .i18n import Term

if TYPE_CHECKING:
    from .spec import LayerSpec

Shape = tuple[int, ...]

DENSE = "dense"  # the output layer is a dense layer too
DEFAULT_KIND = DENSE
MAX_UNITS = 4096
MAX_FILTERS = 512


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

    @property
    def key(self) -> str:
        """Translation key of the kind's name in the layer editor."""
        return f"build.kind_{self.name}"

    @property
    def uses(self) -> tuple[str, ...]:
        """The LayerSpec fields a learner sets for this kind (the editor's widgets, in order)."""
        return (*(f.name for f in self.numbers if f.edit), *(("activation",) if self.activation else ()), "dropout")

    def field(self, name: str) -> Field | None:
        return next((f for f in self.numbers if f.name == name), None)

    def block_activation(self, layer: LayerSpec) -> str:
        """The activation the model applies after this layer's op."""
        return layer.activation if self.activation else IDENTITY

    def flattens(self, in_shape: Shape) -> bool:
        """Does an input of ``in_shape`` get flattened before this layer?"""
        return self.fully_connected and len(in_shape) > 1


# ----- the settings, with their limits and editor texts -----------------------------------------

UNITS = Field("units", 1, MAX_UNITS, "build.units", "build.units_help", count_key="spec.count_units")
FILTERS = Field("units", 1, MAX_FILTERS, "build.filters", "build.units_help", count_key="spec.count_filters")
KERNEL = Field("kernel", 1, 28, "build.kernel", "build.kernel_help")
WINDOW = Field("kernel", 1, 28, "build.window", "build.window_help")
STRIDE = Field("stride", 1, 28, "build.stride", "build.stride_help")
PADDING = Field("padding", 0, 14, "build.padding", "build.padding_help")
UNUSED_PADDING = Field("padding", 0, 14, "build.padding", "build.padding_help", edit=False)


# ----- shapes and their text ---------------------------------------------------------------------

def shape_text(shape: Shape) -> str:
    """(32, 14, 14) -> '32×14×14'."""
    return "×".join(str(s) for s in shape)


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


# ----- the entries -------------------------------------------------------------------------------

def _pool(name: str, code: str, label: str, short: str, module: Callable[[int, int], nn.Module]) -> LayerKind:
    return LayerKind(
        name=name, code=code, head="kernel", numbers=(WINDOW, STRIDE, UNUSED_PADDING), activation=False,
        weights=False, learns=False, fully_connected=False, spatial=True,
        defaults=dict(units=1, activation=IDENTITY, dropout=0.0, kernel=2, stride=2, padding=0), color="#fbe3c8",
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
        defaults=dict(units=64, activation=DEFAULT_ACTIVATION, dropout=0.0, kernel=3, stride=1, padding=0),
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
        defaults=dict(units=32, activation=DEFAULT_ACTIVATION, dropout=0.0, kernel=3, stride=1, padding=1),
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
        defaults=dict(units=1, activation=IDENTITY, dropout=0.0, kernel=3, stride=1, padding=0), color="#eadcf5",
        build=lambda layer, shape: nn.BatchNorm2d(shape[0]) if len(shape) == 3 else nn.BatchNorm1d(shape[0]),
        output_shape=lambda layer, shape, index: shape,
        count=lambda layer, in_shape, out_shape: (2 * in_shape[0], 0),
        describe=lambda layer: "BatchNorm", title=lambda layer: "BatchNorm", short=lambda layer: "BN",
    ),
)
LAYER_KINDS: dict[str, LayerKind] = {kind.name: kind for kind in _ENTRIES}
WEIGHT_KINDS = tuple(kind.name for kind in _ENTRIES if kind.weights)


def layer_kind(name: str) -> LayerKind:
    """The entry of ``name`` (KeyError for a kind that is not in the registry)."""
    return LAYER_KINDS[name]
