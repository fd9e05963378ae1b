"""One input through the network, forward and backward, as plain numbers the pages can draw.

:func:`trace` runs a single image through a model (eval mode, the dataset's normalisation) and
returns z, a and delta = dJ/dz per layer, dJ/dW and dJ/db per weight layer, the probabilities, the
loss, a saliency map and the probabilities after one gradient step on the input. The deltas come
from autograd; :func:`tutorial_deltas` recomputes them with the tutorial's formulas
(output: softmax - onehot; hidden: (W^T delta) * f'(z)) so the two can be compared. The
``unit_*`` helpers and ``*_latex`` builders give the numbers of the formulas for one neuron.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .activations import ACTIVATIONS
from .layers import LAYER_KINDS
from .model import Net

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
        """A fully connected layer (the formula view works for these)."""
        return self.weight is not None and self.weight.ndim == 2

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


def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _pixels(image: Any, input_shape: Sequence[int], device: torch.device) -> torch.Tensor:
    """A uint8 image ([H, W] or [C, H, W]) -> float pixels in [0, 1], shape [1, C, H, W]."""
    arr = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    arr = arr.astype(np.float32) / 255.0
    return torch.as_tensor(arr, device=device).reshape(1, *input_shape)


def _normalise(pixels: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    return (pixels - mean) / std


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
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            return _trace(model, image, float(info.mean), float(info.std), target, label, saliency_class, step_class, step_size)
    finally:
        model.train(was_training)


def _trace(model: Net, image: Any, mean: float, std: float, target: int | None, label: int | None,
           saliency_class: int | None, step_class: int | None, step_size: float) -> Trace:
    device = _model_device(model)
    pixels = _pixels(image, model.spec.input_shape, device).requires_grad_(True)
    record: list[tuple[torch.Tensor, torch.Tensor]] = []
    logits = model(_normalise(pixels, mean, std), record)
    probs = torch.softmax(logits.detach(), dim=1)[0]
    prediction = int(probs.argmax())
    if target is None:
        target = label if label is not None else prediction
    saliency_class = target if saliency_class is None else saliency_class
    (saliency,) = torch.autograd.grad(logits[0, saliency_class], pixels, retain_graph=True)

    loss = F.cross_entropy(logits, torch.tensor([target], device=device))
    blocks = list(model.blocks)
    params: list[torch.Tensor] = []
    for block in blocks:
        if LAYER_KINDS[block.kind].weights:
            params.append(block.op.weight)
            if block.op.bias is not None:
                params.append(block.op.bias)
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
        weight = bias = gw = gb = None
        if LAYER_KINDS[block.kind].weights:
            weight, gw = block.op.weight, next(param_grads)
            if block.op.bias is not None:
                bias, gb = block.op.bias, next(param_grads)
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
        probs_after = torch.softmax(model(_normalise(after_pixels, mean, std)), dim=1)[0]

    return Trace(
        image=pixels.detach()[0, 0].cpu().numpy().copy(),
        x=_normalise(pixels.detach(), mean, std)[0].cpu().numpy(),
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
    loss = F.cross_entropy(model(_normalise(p, mean, std)), torch.tensor([towards], device=p.device))
    (grad,) = torch.autograd.grad(loss, p)
    norm = grad.norm()
    if not torch.isfinite(norm) or norm == 0 or size <= 0:
        return p.detach()
    return (p.detach() - size * grad / norm).clamp_(0.0, 1.0)


@torch.no_grad()
def probabilities(model: Net, image: Any, info: Any) -> np.ndarray:
    """Class probabilities of one uint8 image (eval mode) - a cheap forward pass without the trace."""
    was_training = model.training
    model.eval()
    try:
        pixels = _pixels(image, model.spec.input_shape, _model_device(model))
        out = torch.softmax(model(_normalise(pixels, float(info.mean), float(info.std))), dim=1)[0]
    finally:
        model.train(was_training)
    return out.cpu().numpy().astype(np.float64)


@torch.no_grad()
def predictions(model: Net, images: torch.Tensor, info: Any, batch_size: int = 2000) -> np.ndarray:
    """Predicted classes of many uint8 images (eval mode, on the model's device)."""
    was_training = model.training
    model.eval()
    device = _model_device(model)
    out = []
    try:
        for i in range(0, len(images), batch_size):
            x = _normalise(images[i : i + batch_size].to(device, torch.float32) / 255.0, float(info.mean), float(info.std))
            out.append(model(x).argmax(1).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)


# ----------------------------------------------------------------------- the tutorial's formulas

def activation_derivative(name: str, z: np.ndarray) -> np.ndarray:
    """f'(z) for the activations dlplay offers (the same one-sided choices at 0 as PyTorch), in float64."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}")
    t = torch.as_tensor(np.asarray(z, dtype=np.float64))
    return ACTIVATIONS[name].derivative(t).numpy()


def onehot(index: int, n: int) -> np.ndarray:
    out = np.zeros(n)
    out[index] = 1.0
    return out


def tutorial_deltas(tr: Trace) -> list[np.ndarray | None]:
    """delta per block by the tutorial's formulas, from the output back while the next block is dense.

    Output: delta^(L) = softmax(z^(L)) - onehot(target). Hidden: delta^(l) = (W^(l+1)^T delta^(l+1)) * f'(z^(l)).
    Blocks below a conv / pool / batchnorm block get None (autograd's values are in the trace).
    """
    layers = tr.layers
    out: list[np.ndarray | None] = [None] * len(layers)
    out[-1] = tr.probs - onehot(tr.target, len(tr.probs))
    for i in range(len(layers) - 2, -1, -1):
        nxt, below = layers[i + 1], out[i + 1]
        if below is None or not nxt.is_dense:
            break
        upstream = nxt.weight.astype(np.float64).T @ below
        out[i] = upstream.reshape(layers[i].z.shape) * activation_derivative(layers[i].activation, layers[i].z)
    return out


# ----------------------------------------------------------------------- one neuron

@dataclass(frozen=True)
class Term:
    """One term w * v of a weighted sum (forward: w_ji * a_i; backward: w_kj * delta_k)."""

    index: int
    weight: float
    value: float
    product: float


@dataclass(frozen=True)
class UnitForward:
    """The numbers of z_j = sum_i w_ji a_i + b_j and a_j = f(z_j) for one neuron of a dense layer."""

    layer: int  # block index (0-based); the formulas call it l = layer + 1
    name: str
    unit: int
    activation: str
    terms: tuple[Term, ...]  # the largest |w_ji a_i|, largest first
    rest: float  # the sum of all other terms
    n_inputs: int
    bias: float
    z: float
    a: float
    is_output: bool
    prob: float | None  # softmax probability (output layer only)

    @property
    def n_rest(self) -> int:
        return self.n_inputs - len(self.terms)


@dataclass(frozen=True)
class GradTerm:
    """dJ/dw_ji = delta_j * a_i for one incoming weight."""

    index: int
    activation: float  # a_i of the layer below
    grad: float


@dataclass(frozen=True)
class UnitBackward:
    """The numbers of delta_j, dJ/db_j and dJ/dw_ji for one neuron of a dense layer."""

    layer: int
    name: str
    unit: int
    activation: str
    is_output: bool
    delta: float  # autograd's dJ/dz_j
    prob: float | None  # output layer: p_j
    target_value: float | None  # output layer: y_j (1 for the target class, else 0)
    upstream: float | None  # hidden layer whose next block is dense: (W^(l+1)^T delta^(l+1))_j
    upstream_terms: tuple[Term, ...]  # the largest |w_kj delta_k|
    upstream_rest: float
    n_upstream: int
    fprime: float | None  # f'(z_j)
    z: float
    grad_bias: float
    grad_terms: tuple[GradTerm, ...]  # the weights with the largest |dJ/dw_ji| (the inputs with the largest |a_i|)
    n_inputs: int


def _check_dense(tr: Trace, layer: int, unit: int) -> LayerTrace:
    lt = tr.layers[layer]
    if not lt.is_dense:
        raise ValueError(f"layer {lt.name} is not a dense layer; the formula view covers dense layers")
    if not 0 <= unit < lt.units:
        raise ValueError(f"unit {unit} out of range 0..{lt.units - 1}")
    return lt


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest |values|, largest first (stable for ties)."""
    return np.argsort(-np.abs(values), kind="stable")[:k]


def unit_forward(tr: Trace, layer: int, unit: int, k: int = 5) -> UnitForward:
    """The forward formula's numbers for neuron ``unit`` of dense block ``layer`` (top ``k`` terms)."""
    lt = _check_dense(tr, layer, unit)
    w = lt.weight[unit].astype(np.float64)
    a_prev = tr.layer_input(layer).astype(np.float64)
    products = w * a_prev
    top = _top(products, k)
    terms = tuple(Term(int(i), float(w[i]), float(a_prev[i]), float(products[i])) for i in top)
    mask = np.ones(len(products), dtype=bool)
    mask[top] = False
    is_output = layer == len(tr.layers) - 1
    return UnitForward(
        layer=layer, name=lt.name, unit=unit, activation=lt.activation, terms=terms,
        rest=float(products[mask].sum()), n_inputs=len(products),
        bias=float(lt.bias[unit]) if lt.bias is not None else 0.0,
        z=float(lt.z[unit]), a=float(lt.a[unit]), is_output=is_output,
        prob=float(tr.probs[unit]) if is_output else None,
    )


def unit_backward(tr: Trace, layer: int, unit: int, k: int = 5) -> UnitBackward:
    """The back-propagation numbers for neuron ``unit`` of dense block ``layer`` (top ``k`` terms)."""
    lt = _check_dense(tr, layer, unit)
    is_output = layer == len(tr.layers) - 1
    upstream = fprime = None
    upstream_terms: tuple[Term, ...] = ()
    upstream_rest, n_upstream = 0.0, 0
    prob = target_value = None
    if is_output:
        prob, target_value = float(tr.probs[unit]), float(unit == tr.target)
    else:
        fprime = float(activation_derivative(lt.activation, np.array([lt.z[unit]]))[0])
        nxt = tr.layers[layer + 1]
        if nxt.is_dense:
            w_col = nxt.weight[:, unit].astype(np.float64)
            d_next = nxt.delta.astype(np.float64)
            products = w_col * d_next
            top = _top(products, k)
            upstream_terms = tuple(Term(int(i), float(w_col[i]), float(d_next[i]), float(products[i])) for i in top)
            mask = np.ones(len(products), dtype=bool)
            mask[top] = False
            upstream_rest, n_upstream = float(products[mask].sum()), len(products)
            upstream = float(products.sum())
    delta = float(lt.delta[unit])
    a_prev = tr.layer_input(layer).astype(np.float64)
    grads = lt.grad_weight[unit].astype(np.float64)
    top = _top(a_prev, k)  # the largest |a_i| give the largest |dJ/dw_ji| = |delta_j| |a_i|
    grad_terms = tuple(GradTerm(int(i), float(a_prev[i]), float(grads[i])) for i in top)
    return UnitBackward(
        layer=layer, name=lt.name, unit=unit, activation=lt.activation, is_output=is_output, delta=delta,
        prob=prob, target_value=target_value, upstream=upstream, upstream_terms=upstream_terms,
        upstream_rest=upstream_rest, n_upstream=n_upstream, fprime=fprime, z=float(lt.z[unit]),
        grad_bias=float(lt.grad_bias[unit]) if lt.grad_bias is not None else delta,
        grad_terms=grad_terms, n_inputs=len(a_prev),
    )


# ----------------------------------------------------------------------- LaTeX with the numbers

def num(value: float, digits: int = 4) -> str:
    """A number for LaTeX: ``digits`` significant digits, scientific notation as a x 10^{e}."""
    if not math.isfinite(value):
        return r"\infty" if value > 0 else (r"-\infty" if value < 0 else r"\mathrm{NaN}")
    if value == 0:
        return "0"  # also for -0.0
    text = f"{value:.{digits}g}"
    if "e" in text:
        mantissa, exp = text.split("e")
        text = rf"{mantissa}\times 10^{{{int(exp)}}}"
    return text


def _par(value: float) -> str:
    """A number as a factor: negative ones in parentheses."""
    text = num(value)
    return f"({text})" if text.startswith("-") else text


def _signed(value: float) -> str:
    """`` + v`` or `` - |v|`` for a term after the first."""
    text = num(value)
    return f" - {text[1:]}" if text.startswith("-") else f" + {text}"


def _act(name: str) -> str:
    return ACTIVATIONS[name].latex


def _aligned(lhs: str, parts: list[str], total: str, per_line: int = 3) -> str:
    """``lhs = p1 + p2 + ... = total`` broken after every ``per_line`` terms, so long sums fit the page."""
    rows = [" + ".join(parts[i : i + per_line]) for i in range(0, len(parts), per_line)]
    body = r" \\ &\quad + ".join(rows)
    return rf"\begin{{aligned}} {lhs} &= {body} \\ &= {total} \end{{aligned}}"


def forward_latex(uf: UnitForward) -> list[str]:
    """The forward formulas of one neuron: the general form, then with the real numbers.

    T is the set of the ``len(uf.terms)`` largest terms |w_ji a_i|; the rest is summed into one number.
    """
    l, j = uf.layer + 1, uf.unit
    lines = [
        rf"z^{{({l})}}_{{{j}}} = \sum_{{i}} w^{{({l})}}_{{{j},i}}\, a^{{({l - 1})}}_{{i}} + b^{{({l})}}_{{{j}}}",
    ]
    parts = [rf"\underbrace{{{_par(t.weight)}\cdot{_par(t.value)}}}_{{i={t.index}}}" for t in uf.terms]
    if uf.n_rest > 0:
        parts.append(rf"\underbrace{{{_par(uf.rest)}}}_{{\sum_{{i\notin T}}\,({uf.n_rest})}}")
    parts.append(rf"\underbrace{{{_par(uf.bias)}}}_{{b}}")
    lines.append(_aligned(rf"z^{{({l})}}_{{{j}}}", parts, num(uf.z)))
    if uf.is_output:
        lines.append(rf"p_{{{j}}} = \mathrm{{softmax}}(z^{{({l})}})_{{{j}}} = \frac{{e^{{z_{{{j}}}}}}}{{\sum_k e^{{z_k}}}} = {num(uf.prob)}")
    else:
        lines.append(rf"a^{{({l})}}_{{{j}}} = f(z^{{({l})}}_{{{j}}}) = {_act(uf.activation)}({num(uf.z)}) = {num(uf.a)}")
    return lines


def loss_latex(tr: Trace) -> str:
    """J = -log p_target with the numbers."""
    return rf"J = -\log p_{{{tr.target}}} = -\log({num(float(tr.probs[tr.target]))}) = {num(tr.loss)}"


def backward_latex(ub: UnitBackward) -> list[str]:
    """The back-propagation formulas of one neuron with the real numbers (delta, dJ/db, dJ/dw)."""
    l, j = ub.layer + 1, ub.unit
    d = rf"\delta^{{({l})}}_{{{j}}}"
    lines = []
    if ub.is_output:
        lines.append(rf"{d} = \frac{{\partial J}}{{\partial z^{{({l})}}_{{{j}}}}} = p_{{{j}}} - y_{{{j}}} = "
                     rf"{num(ub.prob)} - {num(ub.target_value)} = {num(ub.delta)}")
    elif ub.upstream is not None:
        lines.append(rf"{d} = \Big(\sum_k w^{{({l + 1})}}_{{k,{j}}}\, \delta^{{({l + 1})}}_k\Big)\, f'(z^{{({l})}}_{{{j}}})")
        parts = [rf"\underbrace{{{_par(t.weight)}\cdot{_par(t.value)}}}_{{k={t.index}}}" for t in ub.upstream_terms]
        rest = ub.n_upstream - len(ub.upstream_terms)
        if rest > 0:
            parts.append(rf"\underbrace{{{_par(ub.upstream_rest)}}}_{{\sum_{{k\notin T}}\,({rest})}}")
        lines.append(_aligned(rf"\textstyle\sum_k w^{{({l + 1})}}_{{k,{j}}}\, \delta^{{({l + 1})}}_k", parts, num(ub.upstream)))
        lines.append(rf"{d} = {_par(ub.upstream)}\cdot {_act(ub.activation)}'({num(ub.z)}) = "
                     rf"{_par(ub.upstream)}\cdot {_par(ub.fprime)} = {num(ub.delta)}")
    else:
        lines.append(rf"{d} = \frac{{\partial J}}{{\partial z^{{({l})}}_{{{j}}}}} = {num(ub.delta)}")
    lines.append(rf"\frac{{\partial J}}{{\partial b^{{({l})}}_{{{j}}}}} = {d} = {num(ub.grad_bias)}")
    lines.append(rf"\frac{{\partial J}}{{\partial w^{{({l})}}_{{{j},i}}}} = {d}\, a^{{({l - 1})}}_{{i}}")
    if ub.grad_terms:
        rows = [rf"\frac{{\partial J}}{{\partial w^{{({l})}}_{{{j},{g.index}}}}} &= {_par(ub.delta)}\cdot {_par(g.activation)} = {num(g.grad)}"
                for g in ub.grad_terms]
        lines.append(r"\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}")
    return lines
