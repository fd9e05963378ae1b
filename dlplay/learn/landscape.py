"""The landscape a run walks on: a 2-D slice of the loss around the current weights.

As in Li et al. 2018 ("Visualizing the Loss Landscape of Neural Nets"): two random directions d₁, d₂
in weight space, each *filter-normalised* — for every filter (a row of a dense layer's W: one neuron's
incoming weights; an output channel of a convolution) the random row is scaled to the norm of the
weights' row, so that the slice is comparable across networks and layers; biases and other 1-D
parameters get 0, as in their ``ignore biasbn`` setting — and the loss J(θ + α d₁ + β d₂) on a grid
of (α, β), on a fixed subset of the training images, within a time budget, with progress and cancel.

Random directions in a space of 100,000 weights are almost orthogonal to any path, so a run's path
projected onto them stays near the centre; Li et al. draw paths on the plane of the path's own two
principal directions instead (:func:`pca_plane`), offered beside the random one. Weights along the
path come from the run's fork snapshots (``handle.resume_state(step)``, dlplay/classify/fork.py); they are
projected onto the plane by least squares.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

from dlplay.data.datasets import normalize_with
from dlplay.nn.engine import supports
from dlplay.nn.model import Block, Net

State = dict[str, torch.Tensor]
GRID = 25  # points per side
SUBSET = 1000  # training images the loss is measured on
BUDGET_S = 60.0
PATH_POINTS = 16


# ----- directions ---------------------------------------------------------------------------------
def filter_normalized(state: State, seed: int = 0) -> State:
    """A random direction like ``state``: Gaussian, each filter (a slice along dim 0 of a ≥2-D weight)
    scaled to that filter's norm in ``state``; 1-D parameters (biases) 0."""
    gen = torch.Generator().manual_seed(seed)
    out: State = {}
    for key, w in state.items():
        w = w.detach().float()
        if w.dim() <= 1 or not w.is_floating_point():
            out[key] = torch.zeros_like(w)
            continue
        d = torch.randn(w.shape, generator=gen)
        rows_w = w.reshape(w.shape[0], -1).norm(dim=1)
        rows_d = d.reshape(d.shape[0], -1).norm(dim=1)
        scale = rows_w / (rows_d + 1e-10)
        out[key] = d * scale.reshape(-1, *([1] * (w.dim() - 1)))
    return out


@dataclass(frozen=True)
class Plane:
    """The centre θ, two directions and the grid's extent along each (units of the direction)."""

    center: State
    d1: State
    d2: State
    kind: str  # "random" or "pca"
    span1: float = 1.0
    span2: float = 1.0

    def point(self, alpha: float, beta: float) -> State:
        return {k: c + alpha * self.d1[k] + beta * self.d2[k] for k, c in self.center.items()}


def _params(state: State) -> State:
    return {k: v.detach().float() for k, v in state.items() if v.is_floating_point()}


def random_plane(center: State, seed: int = 0) -> Plane:
    """Li et al.'s plane: two filter-normalised random directions around ``center``, α, β in [−1, 1]."""
    center = _params(center)
    return Plane(center, filter_normalized(center, seed), filter_normalized(center, seed + 1), "random")


def _flat(state: State, keys: Sequence[str]) -> torch.Tensor:
    return torch.cat([state[k].reshape(-1).double() for k in keys])


def _unflat(vec: torch.Tensor, like: State) -> State:
    out, i = {}, 0
    for k, v in like.items():
        out[k] = vec[i: i + v.numel()].reshape(v.shape).float()
        i += v.numel()
    return out


def pca_plane(center: State, path: Sequence[State], margin: float = 1.3) -> Plane:
    """The plane of the path's two principal directions (unit vectors in weight space) through
    ``center``, wide enough for the path (Li et al. §7)."""
    center = _params(center)
    keys = list(center)
    c = _flat(center, keys)
    m = torch.stack([_flat(_params(s), keys) - c for s in path]) if path else torch.zeros(0, len(c), dtype=torch.float64)
    if len(m) < 2 or float(m.abs().max()) == 0.0:
        return random_plane(center)
    _, _, vh = torch.linalg.svd(m, full_matrices=False)
    d1, d2 = vh[0], vh[1] if len(vh) > 1 else torch.zeros_like(vh[0])
    coords = m @ torch.stack([d1, d2]).T
    span1 = max(float(coords[:, 0].abs().max()) * margin, 1e-6)
    span2 = max(float(coords[:, 1].abs().max()) * margin, 1e-6)
    return Plane(center, _unflat(d1, center), _unflat(d2, center), "pca", span1, span2)


def project(plane: Plane, state: State) -> tuple[float, float]:
    """(α, β) of ``state`` on the plane: least squares of θ − centre on (d₁, d₂)."""
    keys = list(plane.center)
    diff = _flat(_params(state), keys) - _flat(plane.center, keys)
    a = torch.stack([_flat(plane.d1, keys), _flat(plane.d2, keys)], 1)
    sol = torch.linalg.lstsq(a, diff.reshape(-1, 1)).solution.reshape(-1)
    return float(sol[0]), float(sol[1])


# ----- the data ------------------------------------------------------------------------------------
def subset(handle: Any, n: int = SUBSET, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` training images of the run (a seeded random choice), normalised, and their labels."""
    images, labels, _ = handle.split_data("train")
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(labels), generator=gen)[: min(n, len(labels))]
    info = handle.dataset_info
    x = normalize_with(images[idx], torch.tensor(-info.mean / info.std, dtype=torch.float32), 1.0 / (255.0 * info.std))
    return x, labels[idx]


# ----- the slice -----------------------------------------------------------------------------------
@dataclass
class Landscape:
    """J on a grid: ``loss[j, i]`` at (alphas[i], betas[j]); NaN where the budget or a cancel left it."""

    plane: Plane
    alphas: np.ndarray
    betas: np.ndarray
    loss: np.ndarray
    done: int  # points measured
    seconds: float
    cancelled: bool = False
    out_of_time: bool = False
    n_images: int = 0

    @property
    def complete(self) -> bool:
        return self.done == self.loss.size

    @property
    def center_loss(self) -> float:
        """The loss at (0, 0) when the grid has that point (an odd number per side)."""
        i, j = int(np.argmin(np.abs(self.alphas))), int(np.argmin(np.abs(self.betas)))
        return float(self.loss[j, i])


Cancel = Callable[[], bool]
Progress = Callable[[float], None]


def loss_at(net: Net, state: State, x: torch.Tensor, y: torch.Tensor, chunk: int = 2048) -> float:
    """Mean cross-entropy of ``net`` with weights ``state`` on (x, y), eval mode."""
    total = 0.0
    with torch.inference_mode():
        for lo in range(0, len(y), chunk):
            out = functional_call(net, state, (x[lo: lo + chunk],))
            total += float(F.cross_entropy(out, y[lo: lo + chunk], reduction="sum"))
    return total / max(1, len(y))


def compute(spec: Any, plane: Plane, x: torch.Tensor, y: torch.Tensor, n: int = GRID, budget_s: float = BUDGET_S,
            progress: Progress | None = None, cancel: Cancel | None = None, shortcut: bool = True) -> Landscape:
    """J(θ + α d₁ + β d₂) on an n × n grid, row by row, until done, out of time or cancelled.

    A network of dense layers takes a short cut: its first layer is linear in the weights, so
    x(W + αD₁ + βD₂)ᵀ = xWᵀ + α xD₁ᵀ + β xD₂ᵀ is three products computed once, and each point costs only
    the layers above it (the tutorial model: ~30× less arithmetic a point). Any other network runs whole
    (``shortcut=False``: always, bench/slowmo.py's baseline)."""
    with torch.device("meta"):
        net = Net(spec)
    net = net.to_empty(device="cpu").eval()
    buffers = {k: v for k, v in net.state_dict().items() if k not in plane.center}
    loss_of = _dense_loss(net, plane, x, y) if shortcut and supports(net) else None
    alphas = np.linspace(-plane.span1, plane.span1, n)
    betas = np.linspace(-plane.span2, plane.span2, n)
    loss = np.full((n, n), np.nan)
    t0 = time.perf_counter()
    done, cancelled, late = 0, False, False
    for j, beta in enumerate(betas):
        for i, alpha in enumerate(alphas):
            if cancel is not None and cancel():
                cancelled = True
                break
            if time.perf_counter() - t0 > budget_s:
                late = True
                break
            if loss_of is not None:
                loss[j, i] = loss_of(float(alpha), float(beta))
            else:
                loss[j, i] = loss_at(net, {**plane.point(float(alpha), float(beta)), **buffers}, x, y)
            done += 1
        if progress is not None:
            progress(done / loss.size)
        if cancelled or late:
            break
    return Landscape(plane, alphas, betas, loss, done, time.perf_counter() - t0, cancelled, late, len(y))


def _dense_loss(net: Net, plane: Plane, x: torch.Tensor, y: torch.Tensor) -> Callable[[float, float], float]:
    """The loss at (α, β) of a dense network, its first layer from three products computed once."""
    blocks = cast("list[Block]", list(net.blocks))
    keys = [(f"blocks.{i}.op.weight", f"blocks.{i}.op.bias") for i in range(len(blocks))]
    acts = [b.act for b in blocks]
    xf = x.reshape(len(x), -1).float()
    w0, b0 = keys[0]
    with torch.inference_mode():
        base = xf @ plane.center[w0].T
        g1, g2 = xf @ plane.d1[w0].T, xf @ plane.d2[w0].T

    def loss_of(alpha: float, beta: float) -> float:
        with torch.inference_mode():
            z = base + alpha * g1 + beta * g2
            if b0 in plane.center:
                z = z + (plane.center[b0] + alpha * plane.d1[b0] + beta * plane.d2[b0])
            a = acts[0](z)
            for i in range(1, len(blocks)):
                wk, bk = keys[i]
                w = plane.center[wk] + alpha * plane.d1[wk] + beta * plane.d2[wk]
                b = plane.center[bk] + alpha * plane.d1[bk] + beta * plane.d2[bk] if bk in plane.center else None
                a = acts[i](F.linear(a, w, b))
            return float(F.cross_entropy(a, y))

    return loss_of


# ----- a run's path, and the background job ------------------------------------------------------
def path_steps(handle: Any, k: int = PATH_POINTS) -> list[int]:
    """Up to ``k`` steps of the run, evenly spread from its first (a fork's fork point) to now."""
    first = int(handle.forked_from[1]) if getattr(handle, "forked_from", None) else 0
    last = int(handle.snapshot().progress.global_step)
    return sorted({round(s) for s in np.linspace(first, last, k)}) if last > first else [last]


@dataclass
class Path:
    """A run's path on the plane."""

    label: str
    run_id: str
    steps: list[int]
    coords: np.ndarray  # [k, 2]
    fork_step: int | None = None  # where it was forked from its parent (its first point)


@dataclass
class LandscapeJob:
    """The landscape and the paths of one or more runs, computed in a background thread.

    ``runs``: (label, handle) pairs; the first one's current weights are the centre. ``kind``: "random"
    or "pca" (the plane of the first run's path)."""

    runs: list[tuple[str, Any]]
    kind: str = "random"
    n: int = GRID
    n_images: int = SUBSET
    budget_s: float = BUDGET_S
    seed: int = 0
    progress: float = 0.0
    stage: str = "path"  # "path", then "grid", then "done"
    result: Landscape | None = None
    paths: list[Path] = field(default_factory=list)
    error: BaseException | None = None
    _cancel: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dlplay-landscape", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def _run(self) -> None:
        try:
            self._compute()
        except BaseException as exc:  # noqa: BLE001 - the page shows it
            self.error = exc
        finally:
            self.stage = "done"

    def _compute(self) -> None:
        main = self.runs[0][1]
        center = main.state_dict()
        raw: list[tuple[str, Any, list[int], list[State]]] = []
        total = sum(len(path_steps(h)) for _, h in self.runs)
        got = 0
        for label, handle in self.runs:
            steps = path_steps(handle)
            states = []
            for s in steps:
                if self._cancel.is_set():
                    return
                states.append(handle.resume_state(s).model_state)
                got += 1
                self.progress = 0.3 * got / max(1, total)
            raw.append((label, handle, steps, states))
        plane = pca_plane(center, [s for r in raw for s in r[3]]) if self.kind == "pca" else random_plane(center, self.seed)
        for label, handle, steps, states in raw:
            origin = getattr(handle, "forked_from", None)
            coords = np.array([project(plane, s) for s in states]) if states else np.zeros((0, 2))
            self.paths.append(Path(label, handle.run_id, steps, coords, int(origin[1]) if origin else None))
        self.stage = "grid"
        x, y = subset(main, self.n_images, self.seed)

        def report(p: float) -> None:
            self.progress = 0.3 + 0.7 * p

        self.result = compute(main.spec, plane, x, y, self.n, self.budget_s, report, self._cancel.is_set)
        self.progress = 1.0

