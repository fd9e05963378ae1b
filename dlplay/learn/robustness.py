"""Robustness curves: test accuracy as the test images are changed more and more.

Four perturbations, each with its levels: Gaussian ``noise`` (standard deviation as a share of full
brightness), ``rotate`` (degrees, counter-clockwise), ``shift`` (pixels; each image moves that far
right, left, down or up, in turn) and ``thickness`` (strokes grown by max-pooling 3×3, or thinned by
min-pooling, that many times). Level 0 leaves the images as they are, so the curve's value at 0 is
the plain test accuracy. The noise is drawn from a fixed seed, so every model is measured on the same
noisy images and curves can be overlaid. The learner's drawing goes through the same transforms.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dlplay.classify.predict import model_device, normalise
from dlplay.data.augment import affine_matrices, warp
from dlplay.nn.model import Net, eval_mode

PERTURBATIONS: dict[str, tuple[float, ...]] = {
    "noise": (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8),
    "rotate": (-90.0, -60.0, -45.0, -30.0, -15.0, 0.0, 15.0, 30.0, 45.0, 60.0, 90.0),
    "shift": (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0),
    "thickness": (-2.0, -1.0, 0.0, 1.0, 2.0, 3.0),
}
NOISE_SEED = 1234  # the same noisy images for every model
BATCH = 256  # the training loop's evaluation batch (dlplay.classify.train.EVAL_BATCH): the same numbers at level 0


def perturb(images: torch.Tensor, kind: str, level: float, seed: int = NOISE_SEED) -> torch.Tensor:
    """[N, H, W] uint8 images changed by one perturbation at one level, as uint8 (level 0: unchanged)."""
    if kind not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {kind!r}")
    if level == 0 or len(images) == 0:
        return images
    x = images.to(torch.float32)
    n, h, w = x.shape
    if kind == "noise":
        generator = torch.Generator(device=x.device).manual_seed(seed)
        x = x + torch.randn(x.shape, generator=generator, device=x.device) * (level * 255.0)
    elif kind == "rotate":
        ones = torch.ones(n, device=x.device)
        x = warp(x, affine_matrices(ones * level, ones, ones * 0.0, ones * 0.0, (h, w)))
    elif kind == "shift":
        way = torch.arange(n, device=x.device) % 4  # right, left, down, up, in turn
        dx = torch.where(way == 0, level, torch.where(way == 1, -level, 0.0))
        dy = torch.where(way == 2, level, torch.where(way == 3, -level, 0.0))
        x = warp(x, affine_matrices(torch.zeros(n, device=x.device), torch.ones(n, device=x.device), dx, dy, (h, w)))
    else:  # thickness: dilation (max over 3×3) or erosion (min over 3×3), |level| times
        x = x.unsqueeze(1)
        for _ in range(int(abs(level))):
            x = F.max_pool2d(x, 3, 1, 1) if level > 0 else -F.max_pool2d(-x, 3, 1, 1)
        x = x.squeeze(1)
    return x.round_().clamp_(0, 255).to(torch.uint8)


@torch.no_grad()
def predicted(model: Net, images: torch.Tensor, mean: float, std: float, batch_size: int = BATCH) -> torch.Tensor:
    """Predicted classes of uint8 images on the model's device (eval mode, restored after)."""
    device = model_device(model)
    out = []
    with eval_mode(model):
        for i in range(0, len(images), batch_size):
            pixels = images[i : i + batch_size].to(device, torch.float32) / 255.0
            out.append(model(normalise(pixels, mean, std)).argmax(1).cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64)


@dataclass(frozen=True)
class Curve:
    """Accuracy at each level of one perturbation, for one model."""

    kind: str
    levels: tuple[float, ...]
    accuracy: tuple[float, ...]
    n: int  # test images measured

    def at(self, level: float) -> float:
        return self.accuracy[self.levels.index(level)]


def robustness_curve(model: Net, images: torch.Tensor, labels: torch.Tensor, mean: float, std: float, kind: str,
                     levels: tuple[float, ...] | None = None,
                     report: Callable[[float], None] | None = None) -> Curve:
    """Accuracy of ``model`` on ``images`` perturbed by ``kind`` at each level (``report(share done)``
    after each level, for a progress bar)."""
    levels = PERTURBATIONS[kind] if levels is None else tuple(levels)
    device = model_device(model)
    images, labels = images.to(device), labels.to(device)
    accuracy = []
    for i, level in enumerate(levels):
        guess = predicted(model, perturb(images, kind, level), mean, std)
        accuracy.append(int((guess == labels.cpu()).sum()) / max(1, len(labels)))  # as the training loop counts
        if report is not None:
            report((i + 1) / len(levels))
    return Curve(kind, levels, tuple(accuracy), len(labels))


def all_curves(model: Net, images: torch.Tensor, labels: torch.Tensor, mean: float, std: float,
               report: Callable[[float], None] | None = None) -> dict[str, Curve]:
    """Every perturbation's curve (``report`` gets the share of all levels done)."""
    total = sum(len(levels) for levels in PERTURBATIONS.values())
    done = 0
    curves = {}
    for kind, levels in PERTURBATIONS.items():
        def step(share: float, before: int = done, count: int = len(levels)) -> None:
            if report is not None:
                report((before + share * count) / total)
        curves[kind] = robustness_curve(model, images, labels, mean, std, kind, levels, step)
        done += len(levels)
    return curves


@dataclass(frozen=True)
class DrawingUnder:
    """The learner's drawing at each level of one perturbation, with the model's guess."""

    kind: str
    levels: tuple[float, ...]
    images: np.ndarray  # [levels, 28, 28] uint8
    guesses: tuple[int, ...]
    confidence: tuple[float, ...]


@torch.no_grad()
def drawing_under(model: Net, image28: Any, mean: float, std: float, kind: str,
                  levels: tuple[float, ...] | None = None) -> DrawingUnder:
    """One drawing (28×28 uint8) through every level of ``kind``, and what the model guesses for each."""
    levels = PERTURBATIONS[kind] if levels is None else tuple(levels)
    one = torch.as_tensor(np.asarray(image28, dtype=np.uint8)).unsqueeze(0)
    # the shift goes right for a single image (the first of the four directions)
    changed = torch.cat([perturb(one, kind, level) for level in levels])
    device = model_device(model)
    with eval_mode(model):
        probs = torch.softmax(model(normalise(changed.to(device, torch.float32) / 255.0, mean, std)).float(), 1).cpu()
    top = probs.argmax(1)
    return DrawingUnder(kind, levels, changed.numpy(), tuple(int(g) for g in top),
                        tuple(float(probs[i, g]) for i, g in enumerate(top)))
