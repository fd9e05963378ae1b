"""The tutorial's formulas with a trace's real numbers.

:func:`tutorial_deltas` recomputes every delta with the tutorial's formulas (output: softmax -
onehot; hidden: (W^T delta) * f'(z)) so they can be compared with autograd's; the ``unit_*``
helpers give the numbers of the forward and backward formulas for one neuron of a dense layer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .activations import ACTIVATIONS
from .trace import LayerTrace, Trace


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
