"""One input through the network, forward and backward, as plain numbers the pages can draw.

:func:`trace` runs a single image through a model (eval mode, the dataset's normalisation) and
returns z, a and delta = dJ/dz per layer, dJ/dW and dJ/db per weight layer, the probabilities, the
loss, a saliency map and the probabilities after one gradient step on the input. The deltas come
from autograd; :mod:`dlplay.learn.formulas` recomputes them with the tutorial's formulas and gives the
numbers of the formulas for one neuron, and :mod:`dlplay.learn.latex` writes them out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F

from dlplay.classify.predict import model_device, normalise, to_pixels
from dlplay.nn.layers import LAYER_KINDS
from dlplay.nn.model import Block, Net, eval_mode

DEFAULT_STEP_SIZE = 2.0  # L2 norm of the input change of the "what would change the guess" step, pixels in [0, 1]


@dataclass(frozen=True, eq=False)
class LayerTrace:
    """One block for one input: z (pre-activation), a (post-activation), delta = dJ/dz, and its weights."""

    name: str
    kind: str  # dense | conv2d | maxpool | avgpool | batchnorm
    activation: str
    z: np.ndarray  # [units] or [channels, H, W]
    a: np.ndarray
    delta: np.ndarray  # dJ/dz, same shape as z (autograd)
    weight: np.ndarray | None  # Linear [out, in]; Conv2d [out, in, k, k]; None for pools / batchnorm
    bias: np.ndarray | None
    grad_weight: np.ndarray | None  # dJ/dW
    grad_bias: np.ndarray | None  # dJ/db
    input_shape: tuple[int, ...]  # shape of the block's input, before any flatten

    @property
    def is_dense(self) -> bool:
        """A fully connected layer (the formula view works for these; a recurrent layer's W_xh is a matrix too)."""
        return self.weight is not None and LAYER_KINDS[self.kind].fully_connected

    @property
    def units(self) -> int:
        """Neurons (dense) or channels (conv / pool)."""
        return int(self.z.shape[0])


@dataclass(frozen=True, eq=False)
class Trace:
    """The complete forward and backward pass of one input (numpy arrays, batch dimension removed)."""

    image: np.ndarray  # [H, W] pixels in [0, 1] (first channel)
    x: np.ndarray  # the normalised network input [C, H, W]
    layers: tuple[LayerTrace, ...]  # hidden blocks, then the output block
    logits: np.ndarray
    probs: np.ndarray
    prediction: int
    target: int  # the label the loss is computed for
    loss: float  # J = -log p_target
    label: int | None  # the true label when known
    saliency_class: int
    saliency: np.ndarray  # [H, W] d(logit of saliency_class)/d(pixel)
    step_class: int
    step_size: float
    image_after_step: np.ndarray  # [H, W] pixels in [0, 1] after one input-gradient step towards step_class
    probs_after_step: np.ndarray

    def layer_input(self, index: int) -> np.ndarray:
        """a^(l-1) of block ``index``: the normalised input for the first block, else the previous block's a."""
        prev = self.x if index == 0 else self.layers[index - 1].a
        return prev.reshape(-1) if self.layers[index].is_dense else prev

    @property
    def runner_up(self) -> int:
        """The most probable class other than the prediction."""
        return second_best(self.probs)


def second_best(probs: np.ndarray) -> int:
    order = np.argsort(-np.asarray(probs), kind="stable")
    return int(order[1])


def trace(
    model: Net,
    image: Any,
    info: Any,
    target: int | None = None,
    *,
    label: int | None = None,
    saliency_class: int | None = None,
    step_class: int | None = None,
    step_size: float = DEFAULT_STEP_SIZE,
) -> Trace:
    """Forward and backward pass of one uint8 image with ``model``'s current weights.

    ``info`` supplies the normalisation (``.mean``, ``.std``, e.g. a DatasetInfo). ``target`` is the
    label of the loss (default: ``label`` when given, else the prediction); ``saliency_class`` the
    class whose logit the saliency map differentiates (default: ``target``); ``step_class`` the
    class one input-gradient step of L2 size ``step_size`` (pixels in [0, 1]) moves towards
    (default: the runner-up class, i.e. the step tries to change the guess). The model is put in
    eval mode for the call; its ``.grad`` fields are not touched. Pass a copy while training runs.
    """
    with eval_mode(model), torch.enable_grad():
        return _trace(model, image, float(info.mean), float(info.std), target, label, saliency_class, step_class, step_size)


def _trace(model: Net, image: Any, mean: float, std: float, target: int | None, label: int | None,
           saliency_class: int | None, step_class: int | None, step_size: float) -> Trace:
    device = model_device(model)
    pixels = to_pixels(image, model.spec.input_shape, device).requires_grad_(True)
    record: list[tuple[torch.Tensor, torch.Tensor]] = []
    logits = model(normalise(pixels, mean, std), record)
    probs = torch.softmax(logits.detach(), dim=1)[0]
    prediction = int(probs.argmax())
    if target is None:
        target = label if label is not None else prediction
    saliency_class = target if saliency_class is None else saliency_class
    (saliency,) = torch.autograd.grad(logits[0, saliency_class], pixels, retain_graph=True)

    loss = F.cross_entropy(logits, torch.tensor([target], device=device))
    blocks = cast("list[Block]", list(model.blocks))
    params: list[torch.Tensor] = []
    op: Any  # a weight layer's module: .weight and .bias are tensors (bias may be None)
    for block in blocks:
        if LAYER_KINDS[block.kind].weights:
            op = block.op
            params.append(op.weight)
            if op.bias is not None:
                params.append(op.bias)
    zs = [z for z, _ in record]
    grads = torch.autograd.grad(loss, zs + params)
    deltas, param_grads = grads[: len(zs)], iter(grads[len(zs):])

    def np0(t: torch.Tensor) -> np.ndarray:
        return t.detach()[0].cpu().numpy().copy()

    def npp(t: torch.Tensor | None) -> np.ndarray | None:
        return None if t is None else t.detach().cpu().numpy().copy()

    layers = []
    shape: tuple[int, ...] = tuple(model.spec.input_shape)
    for block, (z, a), delta in zip(blocks, record, deltas):
        weight: torch.Tensor | None
        bias: torch.Tensor | None
        gw: torch.Tensor | None
        gb: torch.Tensor | None
        weight = bias = gw = gb = None
        if LAYER_KINDS[block.kind].weights:
            op = block.op
            weight, gw = op.weight, next(param_grads)
            if op.bias is not None:
                bias, gb = op.bias, next(param_grads)
        layers.append(LayerTrace(
            name=block.name, kind=block.kind, activation=block.activation_name, z=np0(z), a=np0(a),
            delta=np0(delta), weight=npp(weight), bias=npp(bias), grad_weight=npp(gw), grad_bias=npp(gb),
            input_shape=shape,
        ))
        shape = tuple(z.shape[1:])

    probs_np = probs.cpu().numpy().astype(np.float64)
    if step_class is None:
        step_class = second_best(probs_np)
    after_pixels = input_step(model, pixels.detach(), mean, std, step_class, step_size)
    with torch.no_grad():
        probs_after = torch.softmax(model(normalise(after_pixels, mean, std)), dim=1)[0]

    return Trace(
        image=pixels.detach()[0, 0].cpu().numpy().copy(),
        x=normalise(pixels.detach(), mean, std)[0].cpu().numpy(),
        layers=tuple(layers),
        logits=np0(logits),
        probs=probs_np,
        prediction=prediction,
        target=int(target),
        loss=float(loss.detach()),
        label=None if label is None else int(label),
        saliency_class=int(saliency_class),
        saliency=saliency[0, 0].cpu().numpy().copy(),
        step_class=int(step_class),
        step_size=float(step_size),
        image_after_step=after_pixels[0, 0].cpu().numpy().copy(),
        probs_after_step=probs_after.cpu().numpy().astype(np.float64),
    )


def input_step(model: Net, pixels: torch.Tensor, mean: float, std: float, towards: int, size: float) -> torch.Tensor:
    """One gradient-descent step on the input pixels that lowers the loss of class ``towards``.

    The step has L2 norm ``size`` (pixels in [0, 1]) before clipping back into [0, 1].
    """
    p = pixels.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(model(normalise(p, mean, std)), torch.tensor([towards], device=p.device))
    (grad,) = torch.autograd.grad(loss, p)
    norm = grad.norm()
    if not torch.isfinite(norm) or norm == 0 or size <= 0:
        return p.detach()
    return (p.detach() - size * grad / norm).clamp_(0.0, 1.0)
