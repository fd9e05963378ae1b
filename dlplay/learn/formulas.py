"""The tutorial's formulas with a trace's real numbers.

:func:`tutorial_deltas` recomputes every delta with the tutorial's formulas (output: softmax -
onehot; hidden: (W^T delta) * f'(z)) so they can be compared with autograd's; the ``unit_*``
helpers give the numbers of the forward and backward formulas for one neuron of a dense layer.
The numbers come from the dense engine's own functions (:mod:`dlplay.nn.engine`: ``layer_forward``,
``output_delta``, ``back_project``, ``times_fprime``, ``weight_grad``), applied to the trace's one
example as a batch of one: what the learner reads is what trains.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import torch

from dlplay.learn.trace import LayerTrace, Trace
from dlplay.nn import engine
from dlplay.nn.activations import ACTIVATIONS
from dlplay.nn.layers import DENSE


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


def _row(values: np.ndarray, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """One example as a batch of one: [1, n]."""
    return torch.as_tensor(np.asarray(values)).to(dtype).reshape(1, -1)


def _fprime_times(g: np.ndarray, activation: str, z: np.ndarray) -> np.ndarray:
    """g ⊙ f'(z) by the engine's :func:`~dlplay.nn.engine.times_fprime` (float64)."""
    act = ACTIVATIONS[activation]
    zt = torch.as_tensor(np.asarray(z, dtype=np.float64))
    gt = torch.as_tensor(np.array(g, dtype=np.float64)).reshape(zt.shape)
    return engine.times_fprime(gt, act, zt, act.module()(zt)).numpy()


def tutorial_deltas(tr: Trace) -> list[np.ndarray | None]:
    """delta per block by the tutorial's formulas, from the output back while the next block is dense.

    Output: delta^(L) = softmax(z^(L)) - onehot(target). Hidden: delta^(l) = (W^(l+1)^T delta^(l+1)) * f'(z^(l)).
    Blocks below a conv / pool / batchnorm block get None (autograd's values are in the trace).
    Computed with the dense engine's functions in float64.
    """
    layers = tr.layers
    out: list[np.ndarray | None] = [None] * len(layers)
    log_p = torch.log(_row(tr.probs))
    out[-1] = engine.output_delta(log_p, torch.tensor([tr.target])).reshape(-1).numpy()
    for i in range(len(layers) - 2, -1, -1):
        nxt, below = layers[i + 1], out[i + 1]
        if below is None or not nxt.is_dense or nxt.weight is None:  # (is_dense implies a weight; said for mypy)
            break
        upstream = engine.back_project(_row(below), torch.as_tensor(nxt.weight, dtype=torch.float64)).numpy()
        out[i] = _fprime_times(upstream.reshape(layers[i].z.shape), layers[i].activation, layers[i].z)
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
    w = cast(np.ndarray, lt.weight)[unit].astype(np.float64)  # a dense layer (_check_dense) has its weight
    a_prev = tr.layer_input(layer).astype(np.float64)
    products = w * a_prev
    top = _top(products, k)
    terms = tuple(Term(int(i), float(w[i]), float(a_prev[i]), float(products[i])) for i in top)
    mask = np.ones(len(products), dtype=bool)
    mask[top] = False
    is_output = layer == len(tr.layers) - 1
    z, a = float(lt.z[unit]), float(lt.a[unit])
    if lt.kind == DENSE:  # z = W a + b, a = f(z) by the engine, in the trace's float32 (a recurrent layer's
        # z also has W_hh h: the trace's own numbers)
        zs, as_ = engine.layer_forward(_row(tr.layer_input(layer), torch.float32),
                                       torch.as_tensor(lt.weight).t(),
                                       None if lt.bias is None else torch.as_tensor(lt.bias),
                                       ACTIVATIONS[lt.activation].module())
        z, a = float(zs[0, unit]), float(as_[0, unit])
    return UnitForward(
        layer=layer, name=lt.name, unit=unit, activation=lt.activation, terms=terms,
        rest=float(products[mask].sum()), n_inputs=len(products),
        bias=float(lt.bias[unit]) if lt.bias is not None else 0.0,
        z=z, a=a, is_output=is_output,
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
        fprime = float(_fprime_times(np.ones(1), lt.activation, np.array([lt.z[unit]], dtype=np.float64))[0])
        nxt = tr.layers[layer + 1]
        if nxt.is_dense:
            w_col = cast(np.ndarray, nxt.weight)[:, unit].astype(np.float64)  # is_dense: the weight is set
            d_next = nxt.delta.astype(np.float64)
            products = w_col * d_next
            top = _top(products, k)
            upstream_terms = tuple(Term(int(i), float(w_col[i]), float(d_next[i]), float(products[i])) for i in top)
            mask = np.ones(len(products), dtype=bool)
            mask[top] = False
            upstream_rest, n_upstream = float(products[mask].sum()), len(products)
            upstream = float(engine.back_project(_row(d_next), torch.as_tensor(nxt.weight, dtype=torch.float64))[0, unit])
    delta = float(lt.delta[unit])
    a_prev = tr.layer_input(layer).astype(np.float64)
    grads = cast(np.ndarray, lt.grad_weight)[unit].astype(np.float64)  # a dense layer's trace has its weight gradient
    if lt.kind == DENSE:  # ∂J/∂W = δ aᵀ by the engine, in the trace's float32 (a recurrent layer's sums over time)
        grads = engine.weight_grad(_row(lt.delta, torch.float32), _row(a_prev, torch.float32))[unit].double().numpy()
    top = _top(a_prev, k)  # the largest |a_i| give the largest |dJ/dw_ji| = |delta_j| |a_i|
    grad_terms = tuple(GradTerm(int(i), float(a_prev[i]), float(grads[i])) for i in top)
    return UnitBackward(
        layer=layer, name=lt.name, unit=unit, activation=lt.activation, is_output=is_output, delta=delta,
        prob=prob, target_value=target_value, upstream=upstream, upstream_terms=upstream_terms,
        upstream_rest=upstream_rest, n_upstream=n_upstream, fprime=fprime, z=float(lt.z[unit]),
        grad_bias=float(lt.grad_bias[unit]) if lt.grad_bias is not None else delta,
        grad_terms=grad_terms, n_inputs=len(a_prev),
    )
