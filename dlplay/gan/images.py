"""Pictures of a generator: the 8x8 sample grid (and its PNG), a filmstrip of grids recorded while
it trains, a walk between two noise vectors, and the discriminator's verdict on a drawn digit."""
from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from dlplay.data.canvas import preprocess
from dlplay.gan.mnist import Discriminator, GanSpec, Generator, grid_labels, sample_noise, to_signed, to_uint8
from dlplay.nn.model import eval_mode

GRID = 8  # tiles per side
TILE = 28  # pixels per tile side
GRID_PIXELS = GRID * TILE  # 224
GRID_SEED = 1234  # the fixed noise of the grid, the same for every run of a spec


def grid_noise(spec: GanSpec, *, seed: int = GRID_SEED, device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor | None]:
    """The fixed 8x8 noise batch (64 vectors) and, for a conditional spec, the digits (0..9 repeating, row-major)."""
    noise = sample_noise(GRID * GRID, spec, seed=seed, device=device)
    return noise, grid_labels(GRID * GRID, device) if spec.conditional else None


def generate(g: Generator, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 images [B, 28, 28] (white ink on black) from noise, G in eval mode (its mode restored after)."""
    device = next(g.parameters()).device
    with torch.no_grad(), eval_mode(g):
        out = g(noise.to(device), None if labels is None else labels.to(device))
    return to_uint8(out).squeeze(1).cpu()


def tile_grid(images_u8: torch.Tensor | np.ndarray, side: int = GRID) -> np.ndarray:
    """``side``x``side`` uint8 images [side*side, 28, 28] -> one [side*28, side*28] array, row-major, no gaps."""
    array = images_u8.numpy() if isinstance(images_u8, torch.Tensor) else np.asarray(images_u8)
    if array.shape != (side * side, TILE, TILE) or array.dtype != np.uint8:
        raise ValueError(f"expected uint8 [{side * side}, {TILE}, {TILE}], got {array.dtype} {array.shape}")
    return array.reshape(side, side, TILE, TILE).transpose(0, 2, 1, 3).reshape(side * TILE, side * TILE).copy()


def sample_grid(g: Generator, noise: torch.Tensor, labels: torch.Tensor | None = None) -> np.ndarray:
    """The 8x8 grid of ``g``'s samples for this noise batch: uint8 [224, 224]."""
    return tile_grid(generate(g, noise, labels))


def grid_png(grid: np.ndarray) -> bytes:
    """PNG bytes of a uint8 grid (224x224 for 8x8): greyscale, white digits on black."""
    if grid.dtype != np.uint8 or grid.ndim != 2:
        raise ValueError(f"expected a uint8 [H, W] grid, got {grid.dtype} {grid.shape}")
    buf = io.BytesIO()
    Image.fromarray(grid, mode="L").save(buf, format="PNG")
    return buf.getvalue()


@dataclass(frozen=True)
class Frame:
    step: int
    grid: np.ndarray  # uint8 [224, 224]


class Filmstrip:
    """Grids of the fixed noise recorded every ``every`` steps, at most ``max_frames`` kept.

    When full, every other frame is dropped (the first and the latest always stay) and the interval
    doubles, so the strip always spans the whole run evenly. Thread-safe: the training thread
    records, the page reads :meth:`frames`.
    """

    def __init__(self, spec: GanSpec, *, every: int = 100, max_frames: int = 60, seed: int = GRID_SEED):
        if every < 1 or max_frames < 2:
            raise ValueError("every >= 1 and max_frames >= 2")
        self.noise, self.labels = grid_noise(spec, seed=seed)
        self.every = every
        self.max_frames = max_frames
        self._frames: list[Frame] = []
        self._lock = threading.Lock()
        self._last_step = 0

    def due(self, step: int) -> bool:
        return step % self.every == 0

    def record(self, g: Generator, step: int) -> Frame:
        """Render the grid now (in the caller's thread) and keep it."""
        return self.record_output(generate(g, self.noise, self.labels), step)

    def record_output(self, images: torch.Tensor, step: int) -> Frame:
        """Keep the grid of G's output for the fixed noise: [-1, 1] floats (``GanSession.sample``) or uint8."""
        if images.dtype != torch.uint8:
            images = to_uint8(images)
        frame = Frame(int(step), tile_grid(images.reshape(GRID * GRID, TILE, TILE).cpu()))
        with self._lock:
            if self._frames and self._frames[-1].step == frame.step:
                self._frames[-1] = frame
            else:
                self._frames.append(frame)
            if len(self._frames) > self.max_frames:
                kept = self._frames[:-1:2]
                self._frames = [*kept, self._frames[-1]]
                self.every *= 2
        return frame

    def maybe_record(self, g: Generator, step: int) -> Frame | None:
        """Record when ``step`` is on the interval (the hook to call after every step)."""
        return self.record(g, step) if self.due(step) else None

    def after_step(self, session: Any, step: int) -> None:
        """The training-thread hook of a GanSession (``GanHooks``): record on the interval via ``session.sample``."""
        self._last_step = step
        if self.due(step):
            self.record_output(session.sample(self.noise, self.labels), step)

    def on_start(self, session: Any) -> None:
        """Frame 0: the untrained generator."""
        self.record_output(session.sample(self.noise, self.labels), 0)

    def on_sync(self, session: Any) -> None:
        return None

    def on_end(self, session: Any) -> None:
        """The last step's grid, whatever the interval."""
        with self._lock:
            recorded = self._frames[-1].step if self._frames else -1
        if self._last_step > recorded:
            self.record_output(session.sample(self.noise, self.labels), self._last_step)

    def frames(self) -> list[Frame]:
        with self._lock:
            return list(self._frames)


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between two noise vectors for each t in ``t`` [T] -> [T, dim] (linear when parallel)."""
    a, b = z0.flatten().float(), z1.flatten().float()
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    t = t.float()[:, None]
    if float(omega.sin()) < 1e-6:
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / omega.sin()


def interpolate(g: Generator, z0: torch.Tensor, z1: torch.Tensor, steps: int = 9, *,
                digit: int | None = None, spherical: bool = True) -> torch.Tensor:
    """Images along the path from ``z0`` to ``z1``: uint8 [steps, 28, 28] (a conditional G draws ``digit``)."""
    if steps < 2:
        raise ValueError("steps >= 2")
    t = torch.linspace(0, 1, steps)
    path = slerp(z0, z1, t) if spherical else (1 - t[:, None]) * z0.flatten() + t[:, None] * z1.flatten()
    labels = None
    if g.spec.conditional:
        labels = torch.full((steps,), 0 if digit is None else int(digit), dtype=torch.long)
    return generate(g, path, labels)


@dataclass(frozen=True)
class DrawScore:
    """The discriminator on a drawn digit: ``real`` = D's probability that it is a real MNIST digit."""

    real: float
    logit: float
    image28: np.ndarray  # the 28x28 uint8 the discriminator saw (the canvas preprocessing's output)


def score_drawing(d: Discriminator, image: np.ndarray | Image.Image, digit: int | None = None) -> DrawScore | None:
    """D's score for a canvas drawing (RGBA array or image), prepared as the Draw page does; None when empty."""
    prepared = preprocess(image)
    if prepared.is_empty or prepared.image28 is None:
        return None
    return score_image28(d, prepared.image28, digit)


def score_image28(d: Discriminator, image28: np.ndarray, digit: int | None = None) -> DrawScore:
    """D's score for one uint8 28x28 image (white ink on black); ``digit`` is required by a conditional D."""
    if d.spec.conditional and digit is None:
        raise ValueError("a conditional discriminator needs the digit the drawing shows")
    device = next(d.parameters()).device
    x = to_signed(torch.from_numpy(np.ascontiguousarray(image28, dtype=np.uint8))[None].to(device))
    labels = torch.tensor([int(digit)], device=device) if digit is not None and d.spec.conditional else None
    with torch.no_grad(), eval_mode(d):
        logit = float(d(x, labels)[0])
    return DrawScore(float(torch.sigmoid(torch.tensor(logit))), logit, np.asarray(image28, dtype=np.uint8))


# ----- inputs the Generate page hands to a GAN run (so the page needs no torch of its own)
def digit_labels(n: int, digit: int) -> torch.Tensor:
    """``n`` copies of one digit, as a conditional generator's or discriminator's labels."""
    return torch.full((n,), int(digit), dtype=torch.long)


def interpolation_path(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """``steps`` noise vectors from ``z0`` to ``z1`` along the sphere (see :func:`slerp`)."""
    return slerp(z0, z1, torch.linspace(0, 1, steps))


def signed_batch(image28: np.ndarray) -> torch.Tensor:
    """One 28×28 uint8 image (as the canvas gives it) as the discriminator's input batch, in [-1, 1]."""
    return to_signed(torch.from_numpy(np.ascontiguousarray(image28, dtype=np.uint8))[None])
