"""Build a plain PyTorch module from a ModelSpec; parameter and multiply-add counts per layer."""
from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from dlplay.nn.activations import ACTIVATIONS, IDENTITY
from dlplay.nn.layers import DENSE, LAYER_KINDS, to_sequence
from dlplay.nn.spec import LayerSpec, ModelSpec


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode (dropout off, batchnorm's running statistics) for the block; its
    training flag is restored afterwards, also when the block raises."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def make_activation(name: str) -> nn.Module:
    return ACTIVATIONS[name].module()


class Block(nn.Module):
    """One layer of the tutorial's picture: z = op(a_prev), a = f(z) (then optional dropout).

    ``op`` is a Linear, Conv2d, pooling, BatchNorm or recurrent module; a flatten happens first where
    a dense layer follows an image-shaped input, and an image becomes a sequence (``order``: rows,
    columns, pixels) where a recurrent layer reads it.
    """

    # declared so that mypy reads them as these types, not nn.Module.__getattr__'s `Tensor | Module`
    name: str
    kind: str
    activation_name: str
    flatten: bool
    order: str | None
    op: nn.Module
    act: nn.Module
    drop: nn.Module

    def __init__(self, name: str, kind: str, op: nn.Module, activation: str, dropout: float, flatten: bool,
                 order: str | None = None):
        super().__init__()
        self.name = name
        self.kind = kind
        self.activation_name = activation
        self.flatten = flatten
        self.order = order
        self.op = op
        self.act = make_activation(activation)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, record: list | None = None) -> torch.Tensor:
        if self.flatten:
            if x.requires_grad and _channels_last_only(x):
                # flatten's backward hands back a gradient in the usual layout; in the format of the
                # layers below it their backward stays on oneDNN's fast path (the small CNN preset's
                # step 7 % faster on the CPU, bench/cnn_throughput.py)
                x.register_hook(_to_channels_last)
            x = x.flatten(1)
        elif self.order is not None:
            x = to_sequence(x, self.order)
        z = self.op(x)
        a = self.act(z)
        if record is not None:
            record.append((z, a))
        return self.drop(a)


def _channels_last_only(x: torch.Tensor) -> bool:
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def _to_channels_last(grad: torch.Tensor) -> torch.Tensor:
    return grad.contiguous(memory_format=torch.channels_last)


class Net(nn.Module):
    """Hidden blocks followed by an output block (a dense layer to the classes, logits out)."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        blocks = []
        shape: tuple[int, ...] = spec.input_shape
        counters: dict[str, int] = {}
        for layer, out_shape in zip(spec.layers, spec.shapes()):
            counters[layer.kind] = counters.get(layer.kind, 0) + 1
            name = f"{layer.kind}{counters[layer.kind]}"
            blocks.append(_make_block(name, layer, shape, spec.order))
            shape = out_shape
        blocks.append(Block("output", DENSE, nn.Linear(math.prod(shape), spec.num_classes), IDENTITY, 0.0, len(shape) > 1))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor, record: list | None = None) -> torch.Tensor:
        """Logits for a batch ``x`` [B, C, H, W] (or [B, H, W]); ``record`` collects (z, a) per block."""
        if x.dim() == 3:
            x = x.unsqueeze(1)
        for block in self.blocks:
            x = block(x, record)
        return x

    def weight_blocks(self) -> list[Block]:
        return [b for b in cast("list[Block]", list(self.blocks)) if LAYER_KINDS[b.kind].weights]


def _make_block(name: str, layer: LayerSpec, in_shape: tuple[int, ...], order: str) -> Block:
    kind = LAYER_KINDS[layer.kind]
    return Block(name, layer.kind, kind.build(layer, kind.input_view(in_shape, order)), kind.block_activation(layer),
                 layer.dropout, kind.flattens(in_shape), order if kind.reads_image(in_shape) else None)


def init_weights(net: Net, scheme: str) -> None:
    """Apply a weight initialisation to every dense and conv layer (``default`` keeps PyTorch's)."""
    if scheme == "default":
        return
    with torch.no_grad():
        for block in net.weight_blocks():
            op: Any = block.op  # Linear/Conv2d (.weight, .bias) or a recurrent module (.matrices())
            # a recurrent block: every input and recurrent matrix and every bias
            matrices = op.matrices() if hasattr(op, "matrices") else [op.weight]
            biases = [p for n, p in op.named_parameters() if "bias" in n] if hasattr(op, "matrices") else [op.bias]
            for w in matrices:
                if scheme == "he":
                    nn.init.kaiming_normal_(w, nonlinearity="relu")
                elif scheme == "xavier":
                    nn.init.xavier_uniform_(w)
                elif scheme == "normal":
                    nn.init.normal_(w, 0.0, 0.01)
                elif scheme == "zeros":
                    nn.init.zeros_(w)
            for b in biases:
                if b is not None:
                    nn.init.zeros_(b)


def build_model(spec: ModelSpec, seed: int | None = None) -> Net:
    """A fresh network; with ``seed`` its initial weights are reproducible (the global RNG is untouched)."""
    if seed is None:
        net = Net(spec)
        init_weights(net, spec.init)
        return net
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = Net(spec)
        init_weights(net, spec.init)
    return net


@dataclass(frozen=True)
class LayerInfo:
    name: str
    kind: str
    description: str
    output_shape: tuple[int, ...]
    params: int
    macs: int  # multiply-adds for one input


def layer_summary(spec: ModelSpec) -> list[LayerInfo]:
    """Per layer: output shape, trainable parameters, multiply-adds per example; the output layer last."""
    rows = []
    shape: tuple[int, ...] = spec.input_shape
    for layer, out in zip(spec.layers, spec.shapes()):
        kind = LAYER_KINDS[layer.kind]
        params, macs = kind.count(layer, kind.input_view(shape, spec.order), out)
        rows.append(LayerInfo("", layer.kind, layer.describe(), out, params, macs))
        shape = out
    n_in = math.prod(shape)
    rows.append(LayerInfo("output", DENSE, f"Dense {spec.num_classes} softmax", (spec.num_classes,),
                          n_in * spec.num_classes + spec.num_classes, n_in * spec.num_classes))
    counters: dict[str, int] = {}
    named = []
    for row in rows[:-1]:
        counters[row.kind] = counters.get(row.kind, 0) + 1
        named.append(LayerInfo(f"{row.kind}{counters[row.kind]}", row.kind, row.description, row.output_shape, row.params, row.macs))
    return [*named, rows[-1]]


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
