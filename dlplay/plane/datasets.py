"""Point sets on the plane [-6, 6]²: one entry per set in ``DATASETS``, each a generator of labelled points.

A set is either *classify* (labels 0..K-1) or *regress* (a target in [-1, 1] per point). Every set is
made reproducibly from a seed; ``noise`` (0..50, TensorFlow Playground's scale) blurs it, and
``test_ratio`` holds a share of the points out as the test set. Points of any origin — drawn on the
page, read from a CSV later — become a :class:`PlaneData` through :func:`from_arrays`, the one place
that checks and splits them.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dlplay.errors import UserError

EXTENT = 6.0  # the plane shown and sampled: [-EXTENT, EXTENT]²
CLASSIFY, REGRESS = "classify", "regress"
MAX_NOISE = 50
MAX_POINTS = 5000  # points in one set (drawn or loaded ones too)
MAX_CLASSES = 10
DEFAULT_POINTS = 500
DRAWN = "drawn"  # the learner's own points: :func:`from_points`

Generator = Callable[[int, float, np.random.Generator], tuple[np.ndarray, np.ndarray]]  # (n, noise 0..1, rng)


@dataclass(frozen=True)
class PlaneData:
    """Labelled points split into training and test points (float32 [n, 2]; labels int64 or float32)."""

    name: str
    task: str  # CLASSIFY or REGRESS
    classes: int  # K for a classification set, 0 for regression
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def regression(self) -> bool:
        return self.task == REGRESS

    @property
    def outputs(self) -> int:
        """The network's output units: one per class, or one value."""
        return self.classes if self.task == CLASSIFY else 1


@dataclass(frozen=True)
class DatasetKind:
    """One point set of the registry: its name (translation key ``plane.data_<name>``), task, class count."""

    name: str
    task: str
    classes: int
    make: Generator


# ---------------------------------------------------------------- the generators (noise: 0..1)
def _circle(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Class 0 inside a disc of radius 2.5, class 1 on a ring between 3.5 and 5 around it."""
    half = n // 2
    radius = np.concatenate([rng.uniform(0, 2.5, half), rng.uniform(3.5, 5.0, n - half)])
    angle = rng.uniform(0, 2 * math.pi, n)
    xy = np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1)
    labels = (np.arange(n) >= half).astype(np.int64)
    return xy + rng.normal(0, noise * 2.5, xy.shape), labels


def _xor(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points kept a little off the axes; the class is whether x₁ and x₂ have the same sign."""
    xy = rng.uniform(-5, 5, (n, 2))
    xy += np.where(xy > 0, 0.3, -0.3)  # a gap along both axes
    labels = (xy[:, 0] * xy[:, 1] < 0).astype(np.int64)
    return xy + rng.normal(0, noise * 2.0, xy.shape), labels


def _blobs(centres: np.ndarray) -> Generator:
    def make(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(n) % len(centres)
        spread = 0.5 + noise * 3.5
        return centres[labels] + rng.normal(0, spread, (n, 2)), labels.astype(np.int64)
    return make


def _spiral(arms: int) -> Generator:
    """``arms`` interleaved spirals, one per class, each turning 1.75 times out to radius 5."""
    def make(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(n) % arms
        t = rng.uniform(0, 1, n)
        radius = 5 * t
        angle = 1.75 * 2 * math.pi * t + 2 * math.pi * labels / arms
        xy = np.stack([radius * np.sin(angle), radius * np.cos(angle)], 1)
        return xy + rng.normal(0, noise * 1.5, xy.shape), labels.astype(np.int64)
    return make


def _reg_plane(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Target (x₁ + x₂) / 10: a tilted plane, noise on the target."""
    xy = rng.uniform(-EXTENT, EXTENT, (n, 2))
    target = (xy[:, 0] + xy[:, 1]) / (2 * EXTENT) + rng.normal(0, noise * 0.5, n)
    return xy, np.clip(target, -1, 1)


_BUMPS = np.array([[-4, 2.5, 1], [0, 2.5, -1], [4, 2.5, 1], [-4, -2.5, -1], [0, -2.5, 1], [4, -2.5, -1]], np.float64)


def _reg_gauss(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Target: a sum of six Gaussian bumps of alternating sign, noise on the target."""
    xy = rng.uniform(-EXTENT, EXTENT, (n, 2))
    d2 = ((xy[:, None, :] - _BUMPS[None, :, :2]) ** 2).sum(-1)
    target = (_BUMPS[:, 2] * np.exp(-d2 / 2.0)).sum(1) + rng.normal(0, noise * 0.5, n)
    return xy, np.clip(target, -1, 1)


_ENTRIES = (
    DatasetKind("circle", CLASSIFY, 2, _circle),
    DatasetKind("xor", CLASSIFY, 2, _xor),
    DatasetKind("gauss", CLASSIFY, 2, _blobs(np.array([[2.0, 2.0], [-2.0, -2.0]]))),
    DatasetKind("spiral", CLASSIFY, 2, _spiral(2)),
    DatasetKind("blobs3", CLASSIFY, 3, _blobs(np.array([[0.0, 3.0], [-2.6, -1.5], [2.6, -1.5]]))),
    DatasetKind("spiral3", CLASSIFY, 3, _spiral(3)),
    DatasetKind("reg_plane", REGRESS, 0, _reg_plane),
    DatasetKind("reg_gauss", REGRESS, 0, _reg_gauss),
)
DATASETS: dict[str, DatasetKind] = {d.name: d for d in _ENTRIES}
NAMES = (*DATASETS, DRAWN)  # what the page offers, the learner's own points last


# ---------------------------------------------------------------- making a set
def _check_number(value: object, low: float, high: float, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise UserError(key, value=value, low=low, high=high)
    return float(value)


def make_dataset(name: str, n: int = DEFAULT_POINTS, noise: float = 0, test_ratio: float = 0.5, seed: int = 0,
                 points: np.ndarray | list | None = None) -> PlaneData:
    """The set ``name`` (a registry entry, or DRAWN with ``points`` as rows (x, y, class)) with ``noise`` (0..50)
    and ``test_ratio`` of the points held out for testing, the same for the same seed."""
    if name == DRAWN:
        return from_points(points if points is not None else [], test_ratio, seed)
    if name not in DATASETS:
        raise UserError("plane.bad_dataset", value=name, choices=", ".join(NAMES))
    kind = DATASETS[name]
    noise = _check_number(noise, 0, MAX_NOISE, "plane.bad_noise")
    n = int(_check_number(n, 4, MAX_POINTS, "plane.bad_points"))
    rng = np.random.default_rng(seed)
    xy, labels = kind.make(n, noise / 100, rng)
    return from_arrays(xy, labels, kind.task, test_ratio, seed, name=name, classes=kind.classes)


def from_points(points: np.ndarray | list, test_ratio: float = 0.5, seed: int = 0) -> PlaneData:
    """The learner's drawn points, rows (x, y, class): a classification set of their classes."""
    rows = np.asarray(points, dtype=np.float64).reshape(-1, 3) if len(points) else np.zeros((0, 3))
    return from_arrays(rows[:, :2], rows[:, 2], CLASSIFY, test_ratio, seed, name=DRAWN)


def from_arrays(xy: np.ndarray, labels: np.ndarray, task: str = CLASSIFY, test_ratio: float = 0.5, seed: int = 0,
                name: str = "custom", classes: int | None = None) -> PlaneData:
    """Points [n, 2] and their labels (classes 0..K-1, or regression targets) -> a checked, split set.

    Classification labels must be whole numbers below MAX_CLASSES, with at least two classes; every class
    keeps a training point. The split is stratified by class and the same for the same seed.
    """
    xy = np.asarray(xy, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64).reshape(-1)
    test_ratio = _check_number(test_ratio, 0.1, 0.9, "plane.bad_ratio")
    if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) != len(labels):
        raise UserError("plane.bad_shape")
    if len(xy) < 4:
        raise UserError("plane.too_few", n=len(xy), min=4)
    if len(xy) > MAX_POINTS:
        raise UserError("plane.too_many", n=len(xy), max=MAX_POINTS)
    if not (np.isfinite(xy).all() and np.isfinite(labels).all()):
        raise UserError("plane.not_finite")
    rng = np.random.default_rng([seed, 1])
    if task == CLASSIFY:
        if (labels != np.round(labels)).any() or labels.min() < 0 or labels.max() >= MAX_CLASSES:
            raise UserError("plane.bad_labels", max=MAX_CLASSES - 1)
        y = labels.astype(np.int64)
        k = classes if classes is not None else int(y.max()) + 1
        if len(np.unique(y)) < 2:
            raise UserError("plane.one_class")
        test = np.zeros(len(y), dtype=bool)
        for c in np.unique(y):  # stratified: each class keeps at least one training point
            idx = rng.permutation(np.flatnonzero(y == c))
            take = min(round(len(idx) * test_ratio), len(idx) - 1)
            test[idx[:take]] = True
        labels_out: np.ndarray = y
    elif task == REGRESS:
        k = 0
        test = np.zeros(len(labels), dtype=bool)
        test[rng.permutation(len(labels))[: round(len(labels) * test_ratio)]] = True
        labels_out = labels.astype(np.float32)
    else:
        raise UserError("plane.bad_task", value=task)
    if test.all() or not test.any():
        raise UserError("plane.too_few", n=len(xy), min=4)
    xy32 = xy.astype(np.float32)
    return PlaneData(name, task, k, xy32[~test], labels_out[~test], xy32[test], labels_out[test])
