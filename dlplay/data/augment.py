"""Data augmentation: random shifts, rotations, scaling, elastic distortion and noise, per batch on the device.

Every image of a batch gets its own random transform, but the batch is transformed at once (no loop
over images): one 2×3 affine matrix per image (``affine_grid``), plus, for elastic distortion, a
smoothed random displacement field added to the sampling grid (Simard et al. 2003), then one
``grid_sample``; noise is added last. Randomness comes from a generator on the batch's device seeded
from the run's seed, so a run with the same settings sees the same augmented batches.

The transforms work in pixel units on ``[B, H, W]`` images (uint8 or float, 0..255) and return float
pixels, which the training loop then normalises like any batch. The plain functions
(:func:`affine_matrices`, :func:`warp`, :func:`smooth_field`) are shared with :mod:`dlplay.learn.robustness`.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dlplay.errors import UserError
from dlplay.i18n import Term

ELASTIC_SIGMA = 4.0  # px: smoothing of the elastic displacement field (Simard et al. used 4 on 28×28 digits)
FIELD_STEP = 2  # the elastic field is drawn on a grid this much coarser, then interpolated (it is smooth)
SEED_SALT = 0x5EED  # the augmentation generator's seed is the run's seed plus this (its own stream)
# the limits a learner may set: beyond these a digit leaves the frame or stops looking like one
LIMITS = {"shift": 8.0, "rotate": 90.0, "scale": 0.5, "elastic": 4.0, "noise": 1.0}


@dataclass(frozen=True)
class Augment:
    """How strongly training images are changed; every field 0 means no augmentation.

    ``shift``: up to this many pixels in x and in y; ``rotate``: up to ± this many degrees;
    ``scale``: zoom by a factor in [1 - scale, 1 + scale]; ``elastic``: displacement field with this
    standard deviation in pixels (smoothed over ELASTIC_SIGMA px); ``noise``: Gaussian noise with this
    standard deviation as a share of full brightness (0.1 = 25.5 grey levels).
    """

    shift: float = 0.0
    rotate: float = 0.0
    scale: float = 0.0
    elastic: float = 0.0
    noise: float = 0.0

    def __post_init__(self) -> None:
        for name, high in LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not 0.0 <= value <= high:
                raise UserError("augment.range", name=Term(f"augment.{name}"), value=value, high=high)
            object.__setattr__(self, name, float(value))

    @property
    def is_off(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self))

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Augment:
        if isinstance(data, Augment):
            return data
        if not isinstance(data, dict) or set(data) - {f.name for f in fields(cls)}:
            raise UserError("spec.bad_json")
        return cls(**data)


OFF = Augment()
# named strengths for the Train page (the numbers stay editable one by one)
LEVELS: dict[str, Augment] = {
    "off": OFF,
    "light": Augment(shift=1.5, rotate=8.0, scale=0.05, elastic=0.5, noise=0.0),
    "medium": Augment(shift=2.5, rotate=12.0, scale=0.1, elastic=1.0, noise=0.05),
    "strong": Augment(shift=3.5, rotate=20.0, scale=0.15, elastic=1.5, noise=0.1),
}


def level_of(augment: Augment) -> str:
    """The name of the level ``augment`` is, or ``custom``."""
    return next((name for name, a in LEVELS.items() if a == augment), "custom")


# ---------------------------------------------------------------- the plain transforms
def affine_matrices(angle_deg: torch.Tensor, scale: torch.Tensor, shift_x: torch.Tensor, shift_y: torch.Tensor,
                    size: tuple[int, int]) -> torch.Tensor:
    """[B, 2, 3] matrices for ``affine_grid`` that rotate each image's content by ``angle_deg``
    (counter-clockwise on screen), zoom it by ``scale`` about the centre, then move it by
    (``shift_x``, ``shift_y``) pixels (right, down).

    ``affine_grid`` maps output positions to input positions in coordinates from -1 to 1, so the
    matrix is the inverse of the content's motion: ``in = A·(out - t)`` with ``A = R(-angle)/scale``.
    """
    h, w = size
    a = torch.deg2rad(angle_deg)
    cos, sin = torch.cos(a) / scale, torch.sin(a) / scale
    tx, ty = 2.0 * shift_x / w, 2.0 * shift_y / h  # pixels -> normalised units (align_corners=False)
    # screen y points down: the content turning counter-clockwise on screen reads from R(-angle)
    # (entries scaled by the aspect ratio, since x and y are normalised by different sizes)
    a00, a01, a10, a11 = cos, -sin * (h / w), sin * (w / h), cos
    theta = torch.stack([
        torch.stack([a00, a01, -(a00 * tx + a01 * ty)], dim=-1),
        torch.stack([a10, a11, -(a10 * tx + a11 * ty)], dim=-1),
    ], dim=-2)
    return theta


def gaussian_kernel(sigma: float, device: torch.device) -> torch.Tensor:
    """A normalised 1-D Gaussian kernel of radius 2·sigma."""
    radius = max(1, math.ceil(2 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def smooth_field(batch: int, size: tuple[int, int], sigma: float, generator: torch.Generator | None,
                 device: torch.device) -> torch.Tensor:
    """[B, H, W, 2] random displacement fields in pixels with a standard deviation of about 1 at every
    pixel: white Gaussian noise smoothed by a Gaussian of ``sigma`` px and rescaled by 1/Σk² to unit
    variance (the variance of smoothed white noise is Σ(k⊗k)² = (Σk²)²).

    A field this smooth is computed on a grid FIELD_STEP times coarser (with sigma / FIELD_STEP) and
    interpolated up; the noise has a margin of 2·sigma on each side (the borders are as random as the
    middle), and the separable smoothing is two banded matrix products (``Kh · N · Kwᵀ``). On a CPU this
    is about 10x cheaper than smoothing at full resolution with convolutions (bench/augment_cost.py).
    """
    h, w = size
    ch, cw = -(-h // FIELD_STEP), -(-w // FIELD_STEP)
    k = gaussian_kernel(sigma / FIELD_STEP, device)
    r = (len(k) - 1) // 2
    noise = torch.randn(batch * 2, ch + 2 * r, cw + 2 * r, generator=generator, device=device)
    # each pass is one large matrix product over all rows of the batch (batched small ones are slower)
    rows = (noise.reshape(-1, cw + 2 * r) @ _band(k, cw).T).view(batch * 2, ch + 2 * r, cw)
    smooth = (rows.transpose(1, 2).reshape(-1, ch + 2 * r) @ _band(k, ch).T).view(batch * 2, cw, ch).transpose(1, 2)
    smooth = smooth / k.pow(2).sum()
    field = F.interpolate(smooth.reshape(batch, 2, ch, cw), size=(h, w), mode="bilinear", align_corners=False)
    return field.permute(0, 2, 3, 1)


def _band(kernel: torch.Tensor, n: int) -> torch.Tensor:
    """[n, n + len(kernel) - 1]: row i holds ``kernel`` from column i (a 'valid' convolution as a matrix)."""
    m = len(kernel)
    band = torch.zeros(n, n + m - 1, dtype=kernel.dtype, device=kernel.device)
    rows = torch.arange(n, device=kernel.device).unsqueeze(1)
    band[rows, rows + torch.arange(m, device=kernel.device)] = kernel
    return band


def warp(images: torch.Tensor, theta: torch.Tensor, displacement: torch.Tensor | None = None) -> torch.Tensor:
    """Resample [B, H, W] images (float pixels) through per-image affine matrices, plus an optional
    [B, H, W, 2] displacement in pixels (x, y) added to where each output pixel reads; bilinear,
    black outside the frame."""
    b, h, w = images.shape
    grid = F.affine_grid(theta.to(images.dtype), [b, 1, h, w], align_corners=False)
    if displacement is not None:
        grid = grid + displacement * torch.tensor([2.0 / w, 2.0 / h], device=images.device, dtype=images.dtype)
    out = F.grid_sample(images.unsqueeze(1), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.squeeze(1)


def _uniform(n: int, high: float, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """``n`` numbers uniform in [-high, high]."""
    return (torch.rand(n, generator=generator, device=device) * 2.0 - 1.0) * high


# ---------------------------------------------------------------- random augmentation of a batch
def augment_batch(images: torch.Tensor, augment: Augment, generator: torch.Generator | None = None) -> torch.Tensor:
    """A batch of [B, H, W] images (0..255, any dtype) -> float32 pixels, each image randomly changed
    as ``augment`` says. With every setting 0 the images come back unchanged (as float)."""
    x = images.to(torch.float32)
    if augment.is_off or x.shape[0] == 0:
        return x
    b, h, w = x.shape
    device = x.device
    geometric = augment.shift or augment.rotate or augment.scale or augment.elastic
    if geometric:
        angle = _uniform(b, augment.rotate, generator, device)
        scale = 1.0 + _uniform(b, augment.scale, generator, device)
        dx = _uniform(b, augment.shift, generator, device)
        dy = _uniform(b, augment.shift, generator, device)
        field = smooth_field(b, (h, w), ELASTIC_SIGMA, generator, device) * augment.elastic if augment.elastic else None
        x = warp(x, affine_matrices(angle, scale, dx, dy, (h, w)), field)
    if augment.noise:
        x = x + torch.randn(x.shape, generator=generator, device=device) * (augment.noise * 255.0)
    return x.clamp_(0.0, 255.0)


def batch_augmenter(augment: Augment, seed: int, device: torch.device | str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The training loop's function from a uint8 batch to the pixels it trains on: the batch itself
    when ``augment`` is off, else :func:`augment_batch` with a generator on ``device`` seeded from
    the run's ``seed`` (the same run settings give the same augmented batches)."""
    if augment.is_off:
        return lambda images: images
    generator = torch.Generator(device=torch.device(device)).manual_seed(seed + SEED_SALT)
    return lambda images: augment_batch(images, augment, generator)


def preview(images: torch.Tensor, augment: Augment, copies: int, seed: int = 0) -> torch.Tensor:
    """[N, copies, H, W] float pixels: ``copies`` random augmentations of each of the N images (the
    Train page's preview grid; a new ``seed`` shows new ones)."""
    n = images.shape[0]
    repeated = images.repeat_interleave(copies, dim=0)
    generator = torch.Generator(device=images.device).manual_seed(seed)
    return augment_batch(repeated, augment, generator).view(n, copies, *images.shape[1:])


def preview_grid(images: torch.Tensor, labels: torch.Tensor, augment: Augment, classes: tuple[int, ...],
                 copies: int, seed: int = 0, gap: int = 2, gap_grey: int = 90) -> np.ndarray:
    """One uint8 picture for the Train page: a row per class in ``classes`` (its first image in
    ``images``), the digit as stored first, then ``copies`` augmented versions, ``gap`` grey pixels apart."""
    picks = [int(torch.nonzero(labels == c)[0]) for c in classes if bool((labels == c).any())]
    originals = images[picks]
    rows = torch.cat([originals.float().unsqueeze(1), preview(originals, augment, copies, seed)], dim=1)
    n, k, h, w = rows.shape
    grid = np.full((n * (h + gap) - gap, k * (w + gap) - gap), float(gap_grey))
    for r in range(n):
        for c in range(k):
            grid[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = rows[r, c].numpy()
    return grid.round().clip(0, 255).astype(np.uint8)
