"""The 2-D GAN lab's core (GAN Lab's lesson): real shapes in the plane, small G and D, and what to draw.

Everything lives in the plane ``EXTENT`` = [-1, 1] × [-1, 1]. Real data (:data:`SHAPES`): ``line``
(a segment), ``mixture`` (a ring of 8 Gaussians), ``ring``, ``blobs`` (two disjoint Gaussian blobs),
or ``drawn``: the learner's own points (:func:`validate_points`), sampled with a little jitter.
:func:`real_sampler` returns the sampler a :class:`~dlplay.gan.session.GanSession` draws from (on its
device, no host sync); :func:`sample_shape` a batch of it.

:func:`lab_session` makes a run with the defaults (:data:`LAB_CONFIG`, :func:`lab_generator`,
:func:`lab_discriminator`); the UI keeps it as a :class:`~dlplay.gan.handle.GanHandle`.

What the page draws, as plain NumPy arrays, from CPU copies of the networks (``handle.copies()``),
or all at once from a handle with :func:`lab_frame`:

- :func:`heatmap`: D's probability that a point is real on a grid over the plane;
- :func:`manifold`: G's image of a grid of lines in noise space (how G folds the noise plane);
- :func:`gradient_arrows`: on generated points, −∂(G's loss)/∂x, the direction G's update moves each;
- :func:`minimax`: the min-max value V(D, G) = E[log D(x)] + E[log(1 − D(G(z)))] with its two terms,
  and the two losses that are actually minimised, with the current numbers;
- :func:`js_divergence` / :func:`kl_divergence` between real and generated points on a binned grid (as
  GAN Lab shows), and :func:`energy_distance`, the measure the convergence test uses: zero only for
  equal distributions, no bins to choose, and a sampling floor measured by :func:`real_floor` (two
  independent real samples of the same size).

Why these defaults (:data:`LAB_CONFIG`): GAN Lab's batch of 150, two D updates per G update and a
2-D uniform noise; G and D with two hidden layers of 32 ReLU units. GAN Lab's plain SGD at 0.1 did
not settle here: on the ring it ended far from it (binned JS at its maximum, log 2; energy
distance 1,800× the sampling floor at step 3,000). Unregularised GAN training need not converge even locally (Mescheder
et al. 2018, "Which training methods for GANs do actually converge?"): the two players circle the
equilibrium. So both nets use Adam with β₁ = 0.5 (DCGAN's; PyTorch's 0.9 kept the circling going), and D
has the R1 penalty γ/2·E‖∇ₓD(x)‖² on real points.

The lab must also *show* the contest, and the first settings that converged hid it: Adam at 0.0005 for
both nets with R1 γ = 5 kept D's verdict within 0.49–0.50 over the whole plane for all 3,000 steps (D loss
1.386 = 2·ln 2, G loss 0.693, D(real) = D(fake) = 0.500 at every reading, a white heatmap). Two causes:
R1 at γ = 5 is strong on a plane only 2 wide — the penalised optimum of D is nearly flat (γ = 1 and 0.2
still kept it within 0.45–0.55) — and G, whose Adam normalises the size of its gradient, followed that
almost flat D as fast as D formed. Measured (bench-style sweep on the ring and the two blobs, seeds 0–2):
D at 0.002 and G at 0.0002 (D learns ten times faster, the two time-scale rule of Heusel et al. 2017) with
γ = 0.05 makes D tell them apart first (after 50 steps D(real) − D(fake) ≈ 0.3, the heatmap spans about
0.27–0.93), then G catches up and D's verdict returns towards ½ around the data (D loss back near 1.386
by step ~400). The energy distance still settles: ring 2.8× the floor at step 1,000, two blobs 4.7× at
step 1,600 (seed 0). tests/test_gan2d.py measures both: the contest is visible, and the lab converges on
the ring and the two blobs in these settings.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlplay.errors import UserError
from dlplay.gan.session import GanConfig, GanSession, RealSampler, mlp
from dlplay.i18n import Listed, Term
from dlplay.run.device import choose_device

if TYPE_CHECKING:
    from dlplay.gan.handle import GanHandle

EXTENT = (-1.0, 1.0)  # the plane: x and y in [-1, 1]
SHAPES = ("line", "mixture", "ring", "blobs", "drawn")
MIN_DRAWN = 3  # fewer drawn points make no distribution worth learning
MAX_DRAWN = 2000  # more are thinned evenly to this many (the sampler stays small)
DRAWN_JITTER = 0.02  # std of the noise around each drawn point (as GAN Lab draws around the strokes)
NOISE_EXTENT = {"uniform": 1.0, "gaussian": 2.0}  # the noise grid of the manifold: ±1, or ±2 standard deviations

RING_RADIUS, RING_WIDTH = 0.6, 0.04
MIXTURE_MODES, MIXTURE_STD = 8, 0.05
BLOB_CENTERS, BLOB_STD = ((-0.5, -0.35), (0.5, 0.35)), 0.08
LINE_FROM, LINE_TO, LINE_WIDTH = (-0.6, -0.4), (0.6, 0.5), 0.01

LAB_CONFIG = GanConfig(noise_dim=2, noise="uniform", batch_size=150, d_steps=2, optimizer_d="adam",
                       optimizer_g="adam", lr_d=0.002, lr_g=0.0002, beta1=0.5, r1=0.05, total_steps=3000, seed=0,
                       device="auto")
LAB_HIDDEN = (32, 32)  # G and D: two hidden layers of 32 ReLU units (GAN Lab: up to 2-3 layers of ~14)


# ----- real data ------------------------------------------------------------------------------

def validate_points(points: Any) -> np.ndarray:
    """The learner's drawn points as a float32 array [n, 2] inside the plane, at most MAX_DRAWN
    (thinned evenly); UserError (``gan.points_*``) for anything that is not such a list."""
    try:
        arr = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError("gan.points_not_numbers") from None
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise UserError("gan.points_shape", shape=" × ".join(str(s) for s in arr.shape) or "0")
    if not np.isfinite(arr).all():
        raise UserError("gan.points_not_finite")
    if len(arr) < MIN_DRAWN:
        raise UserError("gan.points_too_few", n=len(arr), low=MIN_DRAWN)
    low, high = EXTENT
    if (arr < low).any() or (arr > high).any():
        raise UserError("gan.points_outside", low=low, high=high)
    if len(arr) > MAX_DRAWN:
        arr = arr[np.linspace(0, len(arr) - 1, MAX_DRAWN).round().astype(int)]
    return arr.astype(np.float32)


def sample_shape(shape: str, n: int, generator: torch.Generator, device: torch.device | str = "cpu",
                 points: torch.Tensor | None = None) -> torch.Tensor:
    """``n`` points [n, 2] of a real shape (``drawn``: around ``points``, a validated [m, 2] tensor on ``device``)."""
    def rand(*size: int) -> torch.Tensor:
        return torch.rand(*size, generator=generator, device=device)

    def randn(*size: int) -> torch.Tensor:
        return torch.randn(*size, generator=generator, device=device)

    if shape == "ring":
        angle = rand(n) * (2 * math.pi)
        radius = RING_RADIUS + RING_WIDTH * randn(n)
        return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1)
    if shape == "mixture":
        mode = torch.randint(MIXTURE_MODES, (n,), generator=generator, device=device)
        angle = mode.float() * (2 * math.pi / MIXTURE_MODES)
        centers = RING_RADIUS * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
        return centers + MIXTURE_STD * randn(n, 2)
    if shape == "blobs":
        centers = torch.tensor(BLOB_CENTERS, device=device)
        which = torch.randint(len(BLOB_CENTERS), (n,), generator=generator, device=device)
        return centers[which] + BLOB_STD * randn(n, 2)
    if shape == "line":
        start, end = torch.tensor(LINE_FROM, device=device), torch.tensor(LINE_TO, device=device)
        return start + rand(n, 1) * (end - start) + LINE_WIDTH * randn(n, 2)
    if shape == "drawn":
        if points is None:
            raise UserError("gan.points_too_few", n=0, low=MIN_DRAWN)
        which = torch.randint(len(points), (n,), generator=generator, device=device)
        return points[which] + DRAWN_JITTER * randn(n, 2)
    raise UserError("gan.bad_choice", name=Term("gan.setting_shape"), value=shape, choices=Listed(SHAPES))


def real_sampler(shape: str, points: Any = None, device: torch.device | str = "cpu") -> RealSampler:
    """The sampler of a real shape for a GanSession on ``device`` (``drawn``: ``points`` are validated)."""
    if shape not in SHAPES:
        raise UserError("gan.bad_choice", name=Term("gan.setting_shape"), value=shape, choices=Listed(SHAPES))
    drawn = torch.from_numpy(validate_points(points)).to(device) if shape == "drawn" else None

    def sample(n: int, generator: torch.Generator) -> torch.Tensor:
        return sample_shape(shape, n, generator, generator.device, drawn)

    return sample


def real_points(shape: str, n: int, seed: int = 0, points: Any = None) -> np.ndarray:
    """``n`` real points [n, 2] as NumPy (CPU), reproducible by ``seed``: the dots the page draws."""
    drawn = torch.from_numpy(validate_points(points)) if shape == "drawn" else None
    return sample_shape(shape, n, torch.Generator().manual_seed(seed), "cpu", drawn).numpy()


# ----- the networks and the run ---------------------------------------------------------------

def lab_generator(noise_dim: int = 2, hidden: Sequence[int] = LAB_HIDDEN, seed: int = 0) -> nn.Module:
    """G: noise [n, noise_dim] -> points [n, 2] (ReLU hidden layers, linear output)."""
    return mlp(noise_dim, hidden, 2, "relu", "identity", seed=seed)


def lab_discriminator(hidden: Sequence[int] = LAB_HIDDEN, seed: int = 1) -> nn.Module:
    """D: points [n, 2] -> one logit each (the probability of "real" is its sigmoid)."""
    return mlp(2, hidden, 1, "relu", "identity", seed=seed)


def lab_session(shape: str = "ring", points: Any = None, config: GanConfig = LAB_CONFIG,
                device: torch.device | str | None = None, hidden_g: Sequence[int] = LAB_HIDDEN,
                hidden_d: Sequence[int] = LAB_HIDDEN, **session_kwargs: Any) -> GanSession:
    """A 2-D lab run on a real shape (``drawn``: the learner's ``points``), not started. ``session_kwargs``
    go to GanSession (sync_every, callbacks, heartbeat_timeout, slot_pool)."""
    config = config.validated()
    g = lab_generator(config.noise_dim, hidden_g, seed=config.seed)
    d = lab_discriminator(hidden_d, seed=config.seed + 1)
    device = torch.device(device) if device is not None else choose_device(config.device)
    return GanSession(g, d, real_sampler(shape, points, device), config, device, **session_kwargs)


# ----- what the page draws --------------------------------------------------------------------

def plane_grid(resolution: int, extent: tuple[float, float] = EXTENT) -> tuple[np.ndarray, np.ndarray]:
    """The grid's coordinates along each axis (``xs``, ``ys``; the same here)."""
    axis = np.linspace(extent[0], extent[1], resolution, dtype=np.float32)
    return axis, axis


@torch.no_grad()
def heatmap(discriminator: nn.Module, resolution: int = 48, extent: tuple[float, float] = EXTENT) -> np.ndarray:
    """D's probability of "real" at each grid point: [resolution (y), resolution (x)], row 0 at the bottom."""
    xs, ys = plane_grid(resolution, extent)
    gx, gy = np.meshgrid(xs, ys)
    pts = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1))
    return torch.sigmoid(_on(discriminator, pts).reshape(-1)).reshape(resolution, resolution).numpy()


def noise_lines(noise: str = "uniform", lines: int = 11, points_per_line: int = 41) -> np.ndarray:
    """A grid in a 2-D noise plane as polylines [2 * lines, points_per_line, 2]: ``lines`` lines of
    constant z₁, then ``lines`` of constant z₂, over ±NOISE_EXTENT[noise]."""
    r = NOISE_EXTENT.get(noise, 1.0)
    fixed = np.linspace(-r, r, lines, dtype=np.float32)
    along = np.linspace(-r, r, points_per_line, dtype=np.float32)
    first = np.stack([np.broadcast_to(fixed[:, None], (lines, points_per_line)),
                      np.broadcast_to(along[None, :], (lines, points_per_line))], -1)
    return np.concatenate([first, first[..., ::-1]], 0)


@torch.no_grad()
def manifold(generator: nn.Module, noise: str = "uniform", lines: int = 11, points_per_line: int = 41) -> np.ndarray:
    """G's image of :func:`noise_lines`: polylines [2 * lines, points_per_line, 2] in the plane
    (a 2-D noise only; a larger noise varies its first two numbers, the others at 0)."""
    grid = noise_lines(noise, lines, points_per_line)
    z = torch.from_numpy(grid.reshape(-1, 2).copy())
    dim = _in_features(generator)
    if dim > 2:
        z = torch.cat([z, torch.zeros(len(z), dim - 2)], 1)
    return _on(generator, z).reshape(grid.shape[0], points_per_line, 2).numpy()


def gradient_arrows(discriminator: nn.Module, points: np.ndarray | torch.Tensor) -> np.ndarray:
    """−∂(G's loss)/∂x at each generated point x [n, 2]: G's loss is −log D(x) (non-saturating), so the
    arrow points where D finds x more real — where G's update moves it. Same shape as ``points``."""
    x = torch.as_tensor(np.asarray(points, dtype=np.float32)).clone().requires_grad_(True)
    loss = F.softplus(-_on(discriminator, x, grad=True).reshape(-1)).sum()  # per-point −log D(x), summed
    (grad,) = torch.autograd.grad(loss, x)
    return (-grad).numpy()


@dataclass(frozen=True)
class Minimax:
    """The min-max game with the current numbers: V(D, G) = real_term + fake_term, which D maximises
    and G (in the original game) minimises; and the two losses actually minimised."""

    real_term: float  # E[log D(x)] over real points
    fake_term: float  # E[log(1 − D(G(z)))] over generated points
    value: float  # V(D, G) = real_term + fake_term (at the equilibrium: 2·log ½ = −1.386)
    d_loss: float  # −V: D's cross-entropy loss
    g_loss: float  # −E[log D(G(z))]: G's non-saturating loss
    d_real: float  # mean D(x)
    d_fake: float  # mean D(G(z))


@torch.no_grad()
def minimax(discriminator: nn.Module, real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor) -> Minimax:
    """:class:`Minimax` of D on ``real`` and generated ``fake`` points."""
    lr = _on(discriminator, torch.as_tensor(np.asarray(real, dtype=np.float32))).reshape(-1)
    lf = _on(discriminator, torch.as_tensor(np.asarray(fake, dtype=np.float32))).reshape(-1)
    real_term = float(F.logsigmoid(lr).mean())  # log D(x)
    fake_term = float(F.logsigmoid(-lf).mean())  # log(1 − D(G(z)))
    return Minimax(real_term, fake_term, real_term + fake_term, -(real_term + fake_term),
                   float(F.softplus(-lf).mean()), float(torch.sigmoid(lr).mean()), float(torch.sigmoid(lf).mean()))


def histogram2d(points: np.ndarray, bins: int = 20, extent: tuple[float, float] = EXTENT) -> np.ndarray:
    """Shares of ``points`` per cell of a bins × bins grid over the plane (points outside count in the border cells)."""
    clipped = np.clip(np.asarray(points, dtype=np.float64), extent[0], extent[1])
    h, _, _ = np.histogram2d(clipped[:, 0], clipped[:, 1], bins=bins, range=[extent, extent])
    return h / max(1.0, h.sum())


def kl_divergence(real: np.ndarray, fake: np.ndarray, bins: int = 20, eps: float = 1e-10) -> float:
    """KL(real ‖ fake) in nats on the binned grid (GAN Lab's measure; ``eps`` keeps empty cells finite)."""
    p, q = histogram2d(real, bins), histogram2d(fake, bins)
    return float(np.sum(p * (np.log(p + eps) - np.log(q + eps))))


def js_divergence(real: np.ndarray, fake: np.ndarray, bins: int = 20) -> float:
    """Jensen–Shannon divergence in nats on the binned grid: 0 for equal histograms, at most log 2."""
    p, q = histogram2d(real, bins), histogram2d(fake, bins)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log(a[nz] / m[nz])))

    return 0.5 * kl(p) + 0.5 * kl(q)


def energy_distance(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    """The energy distance 2·E|X−Y| − E|X−X′| − E|Y−Y′| between two point sets (Székely & Rizzo): zero
    exactly when the distributions are equal, no bins; its square root is a metric."""
    x = torch.as_tensor(np.asarray(a, dtype=np.float64))
    y = torch.as_tensor(np.asarray(b, dtype=np.float64))
    return float(2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean())


def real_floor(shape: str, n: int, repeats: int = 8, seed: int = 1000, points: Any = None) -> float:
    """The mean energy distance between two independent real samples of ``n`` points: what sampling alone
    gives, so a generator is as good as the data can tell when its distance comes near this floor."""
    values = [energy_distance(real_points(shape, n, seed + 2 * i, points), real_points(shape, n, seed + 2 * i + 1, points))
              for i in range(repeats)]
    return float(np.mean(values))


@dataclass(frozen=True)
class LabFrame:
    """Everything the 2-D page draws at one moment, from one copy of both networks."""

    step: int
    xs: np.ndarray  # heatmap axes
    ys: np.ndarray
    heat: np.ndarray  # [len(ys), len(xs)] D's probability of "real"
    real: np.ndarray  # [n, 2]
    fake: np.ndarray  # [n, 2] G(noise)
    arrows: np.ndarray  # [n, 2] −∂(G's loss)/∂x on the fake points
    manifold: np.ndarray  # [lines, points, 2]
    minimax: Minimax
    js: float  # binned Jensen–Shannon divergence, nats
    kl: float  # binned KL(real ‖ fake), nats
    energy: float  # energy distance


def lab_frame(handle: GanHandle, real: np.ndarray, noise: torch.Tensor, resolution: int = 48,
              lines: int = 11) -> LabFrame:
    """A :class:`LabFrame` of a 2-D run: ``real`` points [n, 2] and a fixed ``noise`` batch for the fakes."""
    step = handle.snapshot().progress.global_step
    g, d = handle.copies()
    with torch.no_grad():
        fake = _on(g, noise.float()).numpy()
    xs, ys = plane_grid(resolution)
    return LabFrame(
        step=step, xs=xs, ys=ys, heat=heatmap(d, resolution), real=np.asarray(real, dtype=np.float32), fake=fake,
        arrows=gradient_arrows(d, fake), manifold=manifold(g, handle.config.noise, lines),
        minimax=minimax(d, real, fake), js=js_divergence(real, fake), kl=kl_divergence(real, fake),
        energy=energy_distance(real, fake),
    )


def _on(net: nn.Module, x: torch.Tensor, grad: bool = False) -> torch.Tensor:
    """``net(x)`` on the network's device, back on the CPU (autograd kept with ``grad``)."""
    device = next(net.parameters()).device
    out = net(x.to(device))
    return out.cpu() if grad else out.detach().cpu()


def _in_features(net: nn.Module) -> int:
    first = next(m for m in net.modules() if isinstance(m, nn.Linear))
    return first.in_features

