"""Embeddings: what a layer makes of the test images, drawn as a 2-D map coloured by class.

Two maps of one layer's activations (flattened, one row per image):

* **PCA** (torch's SVD, a fraction of a second): the two directions along which the activations vary
  most. It is a linear projection, so a new input (the learner's drawing) is placed exactly with
  :meth:`Pca.project`; it is cheap enough to recompute every couple of seconds while a run trains.
  Consecutive maps keep their orientation (:func:`pca_2d` flips an axis to match the previous one).
* **t-SNE** (scikit-learn, on demand): neighbours in the layer stay neighbours on the map, so classes
  show as islands; it takes seconds, so it runs in a background thread (:class:`TsneJob`) sized to a
  time budget. t-SNE has no projection for new points: the drawing is placed at the mean map
  position of its nearest neighbours in the layer (:func:`place_by_neighbours`), not refitted.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch

from dlplay.classify.predict import model_device, normalise
from dlplay.nn.model import Block, Net, eval_mode

INPUT = "input"  # the pixels themselves, as a baseline map
MAX_POINTS = 5000
TSNE_DIMS = 50  # t-SNE runs on the first 50 principal components (the usual first step; faster, less noise)
TSNE_ITER = 500  # optimisation steps (scikit-learn's minimum is 250)
# seconds per point and step of scikit-learn's Barnes-Hut t-SNE (one thread), measured on this project's
# 2-core machine while shared (1000 points x 500 steps: 9.8 s; 2-3x that under heavy load), with a margin:
# the budget picks how many points fit
TSNE_COST_S = 3.0e-5
TSNE_MIN_POINTS = 100
NEIGHBOURS = 5


def layer_names(model: Net) -> list[str]:
    """The layers a map can be made of: the input, every block, the output (logits)."""
    return [INPUT, *(cast(Block, block).name for block in model.blocks)]


@torch.no_grad()
def activations(model: Net, images: torch.Tensor, mean: float, std: float, layer: str,
                batch_size: int = 500) -> torch.Tensor:
    """[N, D] float32 CPU activations (after the activation function, flattened) of ``layer`` for uint8 images."""
    names = layer_names(model)
    if layer not in names:
        raise ValueError(f"unknown layer {layer!r}")
    if layer == INPUT:
        return images.reshape(len(images), -1).to(torch.float32) / 255.0
    index = names.index(layer) - 1
    device = model_device(model)
    out = []
    with eval_mode(model):
        for i in range(0, len(images), batch_size):
            pixels = images[i : i + batch_size].to(device, torch.float32) / 255.0
            record: list[tuple[torch.Tensor, torch.Tensor]] = []
            model(normalise(pixels, mean, std), record)
            out.append(record[index][1].reshape(len(pixels), -1).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, 0)


def activation_of(model: Net, image28: Any, mean: float, std: float, layer: str) -> np.ndarray:
    """[D] activations of ``layer`` for one uint8 28×28 image (the learner's drawing)."""
    one = torch.as_tensor(np.asarray(image28, dtype=np.uint8)).unsqueeze(0)
    return activations(model, one, mean, std, layer).numpy()[0]


@dataclass(frozen=True)
class Pca:
    """A 2-D PCA of N activations: their map coordinates and what projects a new one."""

    coords: np.ndarray  # [N, 2]
    components: np.ndarray  # [2, D] unit directions
    mean: np.ndarray  # [D]
    explained: tuple[float, float]  # share of the total variance along each direction

    def project(self, x: Any) -> np.ndarray:
        """[M, D] (or [D]) activations -> [M, 2] map coordinates."""
        rows = np.atleast_2d(np.asarray(x, dtype=np.float64))
        return (rows - self.mean) @ self.components.T


def pca_2d(x: torch.Tensor, previous: Pca | None = None, exact_below: int = 2048) -> Pca:
    """The two principal directions of ``x`` [N, D] (an exact SVD when D < ``exact_below``, else
    torch.pca_lowrank's randomised one), each axis flipped to point the way ``previous`` did."""
    x = x.to(torch.float64)
    n, d = x.shape
    mean = x.mean(0)
    centred = x - mean
    total = float(centred.pow(2).sum())
    if min(n, d) < 2 or total == 0.0:
        return Pca(np.zeros((n, 2)), np.zeros((2, d)), mean.numpy(), (0.0, 0.0))
    if d < exact_below:
        _, s, vh = torch.linalg.svd(centred, full_matrices=False)
        components = vh[:2]
    else:
        generator_state = torch.random.get_rng_state()  # the lowrank sketch is random: keep others' draws alone
        torch.manual_seed(0)
        _, s, v = torch.pca_lowrank(centred, q=min(6, n, d), center=False, niter=4)
        torch.random.set_rng_state(generator_state)
        components = v[:, :2].T
    components = components.numpy().copy()
    if components.shape[0] < 2:
        components = np.vstack([components, np.zeros((1, d))])
    if previous is not None and previous.components.shape == components.shape:
        for i in range(2):
            if float(components[i] @ previous.components[i]) < 0:
                components[i] = -components[i]
    coords = centred.numpy() @ components.T
    shares = [*(s[:2].pow(2) / total).tolist(), 0.0]
    return Pca(coords, components, mean.numpy(), (float(shares[0]), float(shares[1])))


def tsne_plan(available: int, budget_s: float, iterations: int = TSNE_ITER) -> int:
    """How many points a t-SNE of ``iterations`` steps can take within ``budget_s`` seconds here."""
    fit = int(budget_s / (TSNE_COST_S * iterations))
    return max(min(available, TSNE_MIN_POINTS), min(available, fit))


def tsne_2d(x: np.ndarray, iterations: int = TSNE_ITER, seed: int = 0) -> np.ndarray:
    """t-SNE map [N, 2] of ``x`` [N, D] (on its first TSNE_DIMS principal components).

    Its OpenMP threads are limited to one while it runs: with the default (one per core) on a busy
    2-core machine it ran 12x slower (300 points: 32 s against 2.6 s), each thread waiting on the others.
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    x = np.asarray(x, dtype=np.float64)
    centred = x - x.mean(0)
    if centred.shape[1] > TSNE_DIMS:
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        centred = centred @ vt[:TSNE_DIMS].T
    perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3.0)))
    tsne = TSNE(n_components=2, perplexity=perplexity, max_iter=max(250, iterations), init="pca",
                random_state=seed, n_jobs=1)
    with threadpool_limits(limits=1, user_api="openmp"):
        return np.asarray(tsne.fit_transform(centred), dtype=np.float64)


def place_by_neighbours(x: np.ndarray, coords: np.ndarray, query: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    """Map position of ``query`` [D]: the mean position of its ``k`` nearest neighbours (Euclidean, in
    the layer's activations) among the mapped points ``x`` [N, D] at ``coords`` [N, 2]."""
    distances = np.linalg.norm(np.asarray(x, dtype=np.float64) - np.asarray(query, dtype=np.float64), axis=1)
    nearest = np.argsort(distances)[: max(1, min(k, len(distances)))]
    return coords[nearest].mean(0)


class TsneJob:
    """A t-SNE map computed in a background thread; the page polls :meth:`progress` until it is done.

    Progress is an estimate (elapsed time against the time the plan expects): scikit-learn reports
    none while it runs.
    """

    def __init__(self, x: np.ndarray, budget_s: float, key: Any = None, iterations: int = TSNE_ITER):
        self.key = key  # what the map is of (the page's choice), to tell a stale job from the current one
        self.n = len(x)
        self.iterations = iterations
        self.budget_s = float(budget_s)
        self.expected_s = max(0.5, TSNE_COST_S * self.n * iterations)
        self.coords: np.ndarray | None = None
        self.error: str | None = None
        self.seconds: float | None = None
        self._x = x
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="dlplay-tsne", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.coords = tsne_2d(self._x, self.iterations)
        except Exception as exc:  # noqa: BLE001 - a failure is a message on the page, never a crash
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.seconds = time.monotonic() - self._started

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def elapsed(self) -> float:
        return self.seconds if self.seconds is not None else time.monotonic() - self._started

    def progress(self) -> float:
        """Share done, estimated from the time (1.0 once finished; at most 0.95 before)."""
        if self.done:
            return 1.0
        return min(0.95, self.elapsed() / self.expected_s)

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return self.done
