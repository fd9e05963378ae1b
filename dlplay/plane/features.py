"""The network's inputs, computed from a point (x₁, x₂): one entry per feature, switchable on the page.

As in TensorFlow Playground, the learner picks which of x₁, x₂, x₁², x₂², x₁x₂, sin x₁, sin x₂ feed the
network; :func:`feature_matrix` turns points [n, 2] into the chosen inputs [n, F] in one tensor op per
feature (the grid of the plane goes through the same function).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from dlplay.errors import UserError


@dataclass(frozen=True)
class Feature:
    """One input: its name, its label on the page and the diagram, f(x₁, x₂)."""

    name: str
    label: str  # as drawn on the network diagram
    latex: str  # as written on the page (LaTeX: maths, not words of a language)
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


_ENTRIES = (
    Feature("x1", "x₁", "x_1", lambda a, b: a),
    Feature("x2", "x₂", "x_2", lambda a, b: b),
    Feature("x1sq", "x₁²", "x_1^2", lambda a, b: a * a),
    Feature("x2sq", "x₂²", "x_2^2", lambda a, b: b * b),
    Feature("x1x2", "x₁x₂", "x_1 x_2", lambda a, b: a * b),
    Feature("sin1", "sin x₁", r"\sin x_1", lambda a, b: torch.sin(a)),
    Feature("sin2", "sin x₂", r"\sin x_2", lambda a, b: torch.sin(b)),
)
FEATURES: dict[str, Feature] = {f.name: f for f in _ENTRIES}
DEFAULT_FEATURES = ("x1", "x2")


def check_features(names: Sequence[str]) -> tuple[str, ...]:
    """The chosen features in the registry's order (UserError for none or an unknown name)."""
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise UserError("plane.bad_feature", value=", ".join(map(str, unknown)), choices=", ".join(FEATURES))
    if not names:
        raise UserError("plane.no_features")
    return tuple(n for n in FEATURES if n in names)


def feature_matrix(xy: torch.Tensor, names: Sequence[str]) -> torch.Tensor:
    """Points [n, 2] -> the chosen features [n, F] (F = len(names), in the given order)."""
    a, b = xy[:, 0], xy[:, 1]
    return torch.stack([FEATURES[n].fn(a, b) for n in names], 1)
