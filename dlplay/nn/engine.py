"""The dense engine: trains a network of dense layers with the tutorial's own equations, no autograd.

For each layer l (rows are examples, so W a becomes a Wᵀ):

    forward   z_l = W_l a_{l-1} + b_l  (addmm)     a_l = f(z_l)     a_l ← a_l ⊙ m_l / (1 − p)  (dropout)
    loss      J = −mean log softmax(z_L)[y]
    backward  δ_L = (softmax(z_L) − onehot(y)) / batch
              δ_l = (W_{l+1}ᵀ δ_{l+1}) ⊙ m_l / (1 − p) ⊙ f′(z_l)
              ∂J/∂W_l = δ_l a_{l-1}ᵀ     ∂J/∂b_l = Σ_batch δ_l
    update    the run's own optimiser: its fused kernel (Adam, AdamW, SGD) on the same tensors, or its step()

f and f′ are the activation registry's (:mod:`dlplay.nn.activations`); where the registry names PyTorch's
own kernel for δ ⊙ f′(z) (ReLU, leaky ReLU, GELU, tanh, sigmoid) the engine calls it, as autograd does. The engine works on the
:class:`~dlplay.nn.model.Net`'s own parameter tensors (updated in place) and leaves the optimiser's
state in the optimiser, so copies, state dicts, checkpoints and probes see what trains; ∂J/∂W is
written into each parameter's ``.grad``. Buffers are allocated once per batch size (at most two
per run: the last batch of an epoch can be smaller); no autograd graph is built.
Dropout draws its masks as PyTorch's CPU dropout does (``bernoulli_(1 − p)`` then ``div_(1 − p)``),
so on the CPU a run with the same seed draws the same masks as the autograd path.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from dlplay.nn.activations import ACTIVATIONS, IDENTITY, Activation
from dlplay.nn.layers import DENSE
from dlplay.nn.optimizers import make_update

DeltaWatcher = Callable[[int, torch.Tensor], None]  # (index of the block in net.blocks, δ of that block)


def supports(net: nn.Module) -> bool:
    """Can the dense engine train ``net``? Only dense layers (the output layer is one too) with a
    registered activation; anything else (convolutions, pooling, batch norm) trains with autograd."""
    blocks = getattr(net, "blocks", None)
    if not blocks:
        return False
    for block in blocks:
        if block.kind != DENSE or type(block.op) is not nn.Linear or block.activation_name not in ACTIVATIONS:
            return False
        if not isinstance(block.drop, (nn.Dropout, nn.Identity)):
            return False
    return all(p.dtype == torch.float32 for p in net.parameters())


@dataclass
class _Layer:
    weight: torch.Tensor  # W [out, in], a detached view of the module's parameter (same storage)
    bias: torch.Tensor | None
    grad_w: torch.Tensor  # ∂J/∂W, also the parameter's .grad
    grad_b: torch.Tensor | None
    act: Activation
    fn: nn.Module  # f, the registry's module
    dropout: float  # p

    def __post_init__(self) -> None:
        self.weight_t = self.weight.t()  # Wᵀ, a view: z = a Wᵀ + b for a batch of rows a


class _Buffers:
    """Per batch size: z and a of every hidden layer, dropout masks, δ of every layer, log softmax."""

    def __init__(self, layers: list[_Layer], batch: int, device: torch.device):
        def empty(n: int) -> torch.Tensor:
            return torch.empty(batch, n, device=device)

        hidden = layers[:-1]
        self.z = [empty(layer.weight.shape[0]) for layer in hidden]
        self.a = [empty(layer.weight.shape[0]) for layer in hidden]  # after dropout
        self.mask = [empty(layer.weight.shape[0]) if layer.dropout > 0 else None for layer in hidden]
        self.delta = [empty(layer.weight.shape[0]) for layer in layers]
        self.log_p = empty(layers[-1].weight.shape[0])
        self.minus_one = torch.full((batch, 1), -1.0, device=device)


class DenseEngine:
    """Forward, backward and update of a dense :class:`~dlplay.nn.model.Net` (see the module doc).

    ``forward_backward(x, y)`` leaves ∂J/∂W in the parameters' ``.grad`` and returns the batch's
    mean loss and its logits (fresh tensors, kept by the caller); ``update()`` applies the
    optimiser with its current learning rate (schedules and ``set_lr`` write ``param_groups``).
    """

    name = "dense"

    def __init__(self, net: nn.Module, optimizer: torch.optim.Optimizer):
        if not supports(net):
            raise ValueError("the dense engine trains networks of dense layers only")
        self.net = net
        self.optimizer = optimizer
        self.layers: list[_Layer] = []
        for block in net.blocks:  # type: ignore[union-attr]
            w, b = block.op.weight, block.op.bias
            w.grad = torch.zeros_like(w)
            if b is not None:
                b.grad = torch.zeros_like(b)
            p = block.drop.p if isinstance(block.drop, nn.Dropout) else 0.0
            act = ACTIVATIONS[block.activation_name]
            self.layers.append(_Layer(w.detach(), None if b is None else b.detach(), w.grad,
                                      None if b is None else b.grad, act, act.module(), float(p)))
        self.device = self.layers[0].weight.device
        self._buffers: dict[int, _Buffers] = {}
        self._watch: DeltaWatcher | None = None
        self._update = make_update(optimizer, [p for p in net.parameters()])

    # ----- the probe's window on δ ------------------------------------------------------------------
    def watch_delta(self, fn: DeltaWatcher | None) -> None:
        """During the next backward pass call ``fn(block index, δ)`` for every layer (None: stop)."""
        self._watch = fn

    @property
    def watching(self) -> bool:
        """A δ watcher is set for the next backward pass (a step the probe measures)."""
        return self._watch is not None

    # ----- one training step ------------------------------------------------------------------------
    def buffers(self, batch: int) -> _Buffers:
        buf = self._buffers.get(batch)
        if buf is None:
            buf = self._buffers[batch] = _Buffers(self.layers, batch, self.device)
        return buf

    def forward_backward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch: the loss J and logits z_L, and ∂J/∂W, ∂J/∂b in every parameter's ``.grad``."""
        batch = x.shape[0]
        buf = self.buffers(batch)
        layers = self.layers
        a = x.reshape(batch, -1)
        inputs = [a]  # a_{l-1}, the input of layer l (after dropout)
        acts = []  # f(z_l) before dropout
        for i, layer in enumerate(layers[:-1]):
            _z, a = layer_forward(a, layer.weight_t, layer.bias, layer.fn, out=buf.z[i])
            acts.append(a)
            if layer.dropout > 0:
                mask = buf.mask[i].bernoulli_(1.0 - layer.dropout).div_(1.0 - layer.dropout)  # type: ignore[union-attr]
                a = torch.mul(a, mask, out=buf.a[i])
            inputs.append(a)
        out = layers[-1]
        logits = affine(a, out.weight_t, out.bias)
        log_p = torch._log_softmax(logits, 1, False, out=buf.log_p)
        loss = torch.nn.functional.nll_loss(log_p, y)
        delta = output_delta(log_p, y, out=buf.delta[-1], minus_one=buf.minus_one)
        watch = self._watch
        for i in range(len(layers) - 1, -1, -1):
            layer = layers[i]
            if watch is not None:
                watch(i, delta)
            weight_grad(delta, inputs[i], out=layer.grad_w)
            if layer.grad_b is not None:
                bias_grad(delta, out=layer.grad_b)
            if i == 0:
                break
            below = layers[i - 1]
            back = back_project(delta, layer.weight, out=buf.delta[i - 1])
            if below.dropout > 0:
                back.mul_(buf.mask[i - 1])  # type: ignore[arg-type]
            delta = times_fprime(back, below.act, buf.z[i - 1], acts[i - 1])
        self._watch = None
        return loss, logits

    def update(self) -> None:
        """W ← the optimiser's step with ∂J/∂W (in place, with its current learning rate)."""
        self._update()


# ----- the tutorial's equations, one layer at a time --------------------------------------------------
# Plain functions on a batch of rows (one example is a batch of one): the engine trains with them and
# the Inside page's formulas (dlplay.learn.formulas) compute their numbers with them.

def affine(a: torch.Tensor, weight_t: torch.Tensor, bias: torch.Tensor | None,
           out: torch.Tensor | None = None) -> torch.Tensor:
    """z = W a + b for a batch of rows ``a`` [batch, in], given Wᵀ [in, out] (one addmm)."""
    if bias is None:
        return torch.mm(a, weight_t, out=out)
    return torch.addmm(bias, a, weight_t, out=out)


def layer_forward(a: torch.Tensor, weight_t: torch.Tensor, bias: torch.Tensor | None, fn: nn.Module,
                  out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """z = W a + b and a = f(z) of a dense layer (``fn``: the activation registry's module for f)."""
    z = affine(a, weight_t, bias, out)
    return z, fn.forward(z)


def output_delta(log_p: torch.Tensor, y: torch.Tensor, out: torch.Tensor | None = None,
                 minus_one: torch.Tensor | None = None) -> torch.Tensor:
    """δ_L = (softmax(z_L) − onehot(y)) / batch, from the log softmax ``log_p`` [batch, classes]."""
    batch = log_p.shape[0]
    if minus_one is None:
        minus_one = torch.full((batch, 1), -1.0, dtype=log_p.dtype, device=log_p.device)
    delta = torch.exp(log_p, out=out)
    return delta.scatter_add_(1, y.view(-1, 1), minus_one).mul_(1.0 / batch)


def back_project(delta: torch.Tensor, weight: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Wᵀδ: the error of the layer above, carried back through its weights W [out, in]."""
    return torch.mm(delta, weight, out=out)


def times_fprime(g: torch.Tensor, act: Activation, z: torch.Tensor, fz: torch.Tensor) -> torch.Tensor:
    """g ⊙ f′(z) (``fz`` = f(z)): PyTorch's one kernel for it where the registry names one, as autograd
    does, else the registry's f′ (in place in ``g``)."""
    if act.backward is not None:
        return act.backward(g, z, fz)
    if act.name != IDENTITY:
        g.mul_(act.derivative(z))
    return g


def weight_grad(delta: torch.Tensor, a_prev: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """∂J/∂W = δ a_{l-1}ᵀ, summed over the batch: [out, in]."""
    return torch.mm(delta.t(), a_prev, out=out)


def bias_grad(delta: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """∂J/∂b = Σ_batch δ."""
    return torch.sum(delta, 0, out=out)
