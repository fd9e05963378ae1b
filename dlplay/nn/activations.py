"""The activation functions dlplay offers: one entry each, as TensorFlow Playground's ``nn.ts`` keeps them.

An :class:`Activation` carries everything the rest of dlplay asks about a function: the PyTorch
module a layer applies, its derivative f'(z) for the formula views (δ = (Wᵀδ) ⊙ f′(z)), the rule
the probe and the hints use to call a unit dead or an activation saturated, its name in LaTeX and
the translation key of its display name. Adding an activation is one entry here plus that key in
``dlplay/locales/*/act.json``; tests/test_registries.py walks every entry through every consumer.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

IDENTITY = "identity"  # no activation: pooling layers and the output layer (whose softmax is in the loss)
DEFAULT_ACTIVATION = "relu"  # a new layer's activation


@dataclass(frozen=True)
class Activation:
    """One activation function f, with what the model, the formulas, the probe and the hints need of it."""

    name: str
    module: Callable[[], nn.Module]  # a fresh module applying f
    derivative: Callable[[torch.Tensor], torch.Tensor]  # f'(z), with PyTorch's one-sided choice at kinks
    latex: str  # the function's name in a formula: \mathrm{relu}(z)
    can_die: bool = False  # ReLU family: a unit whose z is never > 0 is dead (no gradient reaches its weights)
    bounds: tuple[float, float] | None = None  # a ∉ [low, high] counts as saturated (f' below ~10% of its maximum)
    # g ⊙ f'(z) in one kernel, given g, z and a = f(z): PyTorch's own backward of f, which autograd calls
    # (the dense engine uses it where there is one; it equals g * derivative(z), tests/test_engine.py)
    backward: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None

    @property
    def key(self) -> str:
        """Translation key of the display name (``act.relu`` -> "ReLU")."""
        return f"act.{self.name}"

    @property
    def saturates(self) -> bool:
        return self.bounds is not None

    def dead_fraction(self, z: torch.Tensor) -> torch.Tensor | None:
        """The share of units (dim 1: neurons or channels) whose z is never > 0 on any example or position;
        None for a function whose units cannot die."""
        if not self.can_die:
            return None
        z = z.detach()
        peak = z.amax(dim=0) if z.dim() == 2 else z.transpose(0, 1).reshape(z.shape[1], -1).amax(dim=1)
        return (peak <= 0).float().mean()

    def saturated_fraction(self, a: torch.Tensor) -> torch.Tensor | None:
        """The share of activations ``a`` outside ``bounds`` (near the function's limits); None when it has none."""
        if self.bounds is None:
            return None
        low, high = self.bounds
        return ((a < low) | (a > high)).float().mean()


def _relu_d(z: torch.Tensor) -> torch.Tensor:
    return (z > 0).to(z.dtype)


def _leaky_relu_d(z: torch.Tensor) -> torch.Tensor:
    return torch.where(z > 0, torch.ones_like(z), torch.full_like(z, 0.01))


def _elu_d(z: torch.Tensor) -> torch.Tensor:
    return torch.where(z > 0, 1.0, torch.exp(torch.clamp(z, max=0.0)))


def _gelu_d(z: torch.Tensor) -> torch.Tensor:
    return torch.special.ndtr(z) + z * torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _tanh_d(z: torch.Tensor) -> torch.Tensor:
    return 1.0 - torch.tanh(z) ** 2


def _sigmoid_d(z: torch.Tensor) -> torch.Tensor:
    s = 1.0 / (1.0 + torch.exp(-z))
    return s * (1.0 - s)


def _softplus_d(z: torch.Tensor) -> torch.Tensor:
    # nn.Softplus is linear above its threshold 20, so its slope there is exactly 1
    return torch.where(z > 20, 1.0, 1.0 / (1.0 + torch.exp(-torch.clamp(z, max=20.0))))


_aten = torch.ops.aten

_ENTRIES = (
    Activation("relu", nn.ReLU, _relu_d, r"\mathrm{relu}", can_die=True,
               backward=lambda g, z, a: _aten.threshold_backward(g, z, 0)),
    Activation("leaky_relu", lambda: nn.LeakyReLU(0.01), _leaky_relu_d, r"\mathrm{leaky\_relu}", can_die=True,
               backward=lambda g, z, a: _aten.leaky_relu_backward(g, z, 0.01, False)),
    Activation("elu", nn.ELU, _elu_d, r"\mathrm{elu}", can_die=True),
    Activation("gelu", nn.GELU, _gelu_d, r"\mathrm{gelu}", can_die=True,
               backward=lambda g, z, a: _aten.gelu_backward(g, z)),
    Activation("tanh", nn.Tanh, _tanh_d, r"\mathrm{tanh}", bounds=(-0.95, 0.95),
               backward=lambda g, z, a: _aten.tanh_backward(g, a)),
    Activation("sigmoid", nn.Sigmoid, _sigmoid_d, r"\mathrm{sigmoid}", bounds=(0.025, 0.975),
               backward=lambda g, z, a: _aten.sigmoid_backward(g, a)),
    Activation("softplus", nn.Softplus, _softplus_d, r"\mathrm{softplus}"),
    Activation(IDENTITY, nn.Identity, torch.ones_like, r"\mathrm{id}"),
)
ACTIVATIONS: dict[str, Activation] = {a.name: a for a in _ENTRIES}


def activation(name: str) -> Activation:
    """The entry of ``name`` (KeyError for a name that is not in the registry)."""
    return ACTIVATIONS[name]


def derivative(name: str, z: torch.Tensor) -> torch.Tensor:
    """f'(z) of activation ``name``."""
    return ACTIVATIONS[name].derivative(z)
