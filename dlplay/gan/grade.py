"""Measure what a generator made: a classifier grades the samples (classes, confidence, mode
collapse, the requested digit), and a memorisation check finds each sample's nearest training image.

The classifier is the learner's own (a :class:`dlplay.nn.model.Net` reading normalised pixels) or, if
there is none, one trained quickly here (:func:`train_quick_classifier`; the grade says so).
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dlplay.data.datasets import Dataset, normalize
from dlplay.nn.model import Net, build_model, eval_mode
from dlplay.nn.spec import ModelSpec

NUM_CLASSES = 10
CONFIDENT = 0.9  # a label counts as confident at this top softmax probability
MISSING_FRACTION = 0.25  # a digit is "missing" with fewer than this share of a uniform class's samples
CHUNK = 500  # images per classifier / distance batch


@dataclass(frozen=True)
class Grade:
    """A classifier's verdict on generated digits (plain numbers).

    ``histogram[k]``: samples labelled k; ``confident_histogram[k]``: those with confidence >= 0.9.
    ``missing``: digits labelled for fewer than 1/4 of the uniform share (n/10/4) of the samples;
    ``collapse``: the mode-collapse alarm, raised when any digit is missing. For a conditional
    generator, ``requested_share`` is the share labelled as the digit asked for (and
    ``requested_confident_share`` with confidence >= 0.9 as well); None otherwise.
    ``quick_classifier``: the grader was trained on the spot (the learner had none).
    """

    n: int
    histogram: tuple[int, ...]
    confident_histogram: tuple[int, ...]
    confident_share: float
    mean_confidence: float
    present: tuple[int, ...]  # digits labelled at least once
    missing: tuple[int, ...]
    collapse: bool
    requested_share: float | None = None
    requested_confident_share: float | None = None
    quick_classifier: bool = False

    @property
    def all_present(self) -> bool:
        return len(self.present) == NUM_CLASSES


def classifier_from_state(state_dict: Mapping[str, torch.Tensor], spec: ModelSpec) -> Net:
    """The learner's classifier rebuilt from its weights and spec (strict: names and shapes must match)."""
    net = build_model(spec)
    net.load_state_dict(dict(state_dict), strict=True)
    return net.eval()


def classify(images_u8: torch.Tensor, classifier: nn.Module, *, mean: float = 0.1307,
             std: float = 0.3081) -> torch.Tensor:
    """Softmax probabilities [N, 10] for uint8 images [N, 28, 28] (on the classifier's device)."""
    device = next(classifier.parameters()).device
    neg_shift = torch.tensor(-mean / std, device=device)
    out = []
    with torch.no_grad(), eval_mode(classifier):
        for chunk in images_u8.split(CHUNK):
            x = torch.add(neg_shift, chunk.to(device), alpha=1.0 / (255.0 * std)).unsqueeze(1)
            out.append(F.softmax(classifier(x), dim=1).float())
    return torch.cat(out).cpu()


def grade(images_u8: torch.Tensor, classifier: nn.Module, *, requested: torch.Tensor | None = None,
          mean: float = 0.1307, std: float = 0.3081, quick_classifier: bool = False) -> Grade:
    """Label ``images_u8`` [N, 28, 28] with ``classifier``; ``requested`` [N]: the digits a conditional G was asked for."""
    if images_u8.dim() == 4:
        images_u8 = images_u8.squeeze(1)
    if images_u8.dim() != 3 or images_u8.shape[1:] != (28, 28) or images_u8.shape[0] == 0:
        raise ValueError(f"expected uint8 images [N, 28, 28], got {tuple(images_u8.shape)}")
    probs = classify(images_u8, classifier, mean=mean, std=std)
    n = probs.shape[0]
    confidence, labels = probs.max(dim=1)
    confident = confidence >= CONFIDENT
    hist = torch.bincount(labels, minlength=NUM_CLASSES)
    conf_hist = torch.bincount(labels[confident], minlength=NUM_CLASSES)
    floor = MISSING_FRACTION * n / NUM_CLASSES
    missing = tuple(k for k in range(NUM_CLASSES) if hist[k] < floor)
    requested_share = requested_confident = None
    if requested is not None:
        hit = labels == requested.cpu().long()
        requested_share = float(hit.float().mean())
        requested_confident = float((hit & confident).float().mean())
    return Grade(
        n=n,
        histogram=tuple(int(v) for v in hist),
        confident_histogram=tuple(int(v) for v in conf_hist),
        confident_share=float(confident.float().mean()),
        mean_confidence=float(confidence.mean()),
        present=tuple(k for k in range(NUM_CLASSES) if hist[k] > 0),
        missing=missing,
        collapse=bool(missing),
        requested_share=requested_share,
        requested_confident_share=requested_confident,
        quick_classifier=quick_classifier,
    )


def grade_generator(g: Any, classifier: nn.Module, *, n: int = 1000, seed: int = 0, mean: float = 0.1307,
                    std: float = 0.3081, quick_classifier: bool = False) -> Grade:
    """Draw ``n`` digits from generator ``g`` (fixed noise from ``seed``; a conditional G is asked for 0..9 in turn)
    and grade them."""
    from dlplay.gan.images import generate
    from dlplay.gan.mnist import grid_labels, sample_noise

    requested = grid_labels(n) if g.spec.conditional else None
    images = generate(g, sample_noise(n, g.spec, seed=seed), requested)
    return grade(images, classifier, requested=requested, mean=mean, std=std, quick_classifier=quick_classifier)


def quick_classifier_spec() -> ModelSpec:
    """The grader trained on the spot: the small-CNN preset (about 98.5% on the sample's test set)."""
    from dlplay.nn.presets import small_cnn_spec

    return small_cnn_spec()


@dataclass(frozen=True)
class QuickClassifier:
    model: Net
    test_accuracy: float
    seconds: float


def train_quick_classifier(dataset: Dataset, *, spec: ModelSpec | None = None, epochs: int = 2, batch_size: int = 64,
                           lr: float = 3e-3, seed: int = 0, train_size: int | None = None,
                           device: str | torch.device = "cpu") -> QuickClassifier:
    """A classifier trained now on ``dataset``'s training images (Adam, cosine schedule), with its test accuracy."""
    t0 = time.perf_counter()
    spec = spec or quick_classifier_spec()
    data = dataset.to(device)
    images, labels = data.train_images, data.train_labels
    if train_size is not None:
        images, labels = images[:train_size], labels[:train_size]
    net = build_model(spec, seed=seed).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    n = images.shape[0]
    total = epochs * math.ceil(n / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen).to(images.device)
        for start in range(0, n, batch_size):
            idx = order[start: start + batch_size]
            x = normalize(images[idx], dataset.info).unsqueeze(1)
            loss = F.cross_entropy(net(x), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    probs = classify(data.test_images, net, mean=dataset.info.mean, std=dataset.info.std)
    accuracy = float((probs.argmax(dim=1) == data.test_labels.cpu()).float().mean())
    return QuickClassifier(net, accuracy, time.perf_counter() - t0)


# ------------------------------------------------------------------ memorisation

@dataclass(frozen=True)
class Nearest:
    """For each sample: the index of its nearest training image and the L2 distance (pixels in [0, 1])."""

    indices: tuple[int, ...]
    distances: tuple[float, ...]


def nearest_training(samples_u8: torch.Tensor, train_u8: torch.Tensor, *,
                     device: str | torch.device | None = None) -> Nearest:
    """The nearest training image of each sample (L2 over the 784 pixels scaled to [0, 1]), by torch.cdist."""
    device = torch.device(device) if device is not None else train_u8.device
    train = train_u8.to(device).flatten(1).float().div_(255.0)
    samples = samples_u8.to(device).reshape(samples_u8.shape[0], -1).float().div_(255.0)
    best_d = torch.full((samples.shape[0],), math.inf, device=device)
    best_i = torch.zeros(samples.shape[0], dtype=torch.long, device=device)
    for start in range(0, train.shape[0], 4 * CHUNK):
        block = train[start: start + 4 * CHUNK]
        # direct differences: exact for identical images (the matrix-product path can give ~1e-3 instead of 0)
        dist = torch.cdist(samples, block, compute_mode="donot_use_mm_for_euclid_dist")
        d, i = dist.min(dim=1)
        better = d < best_d
        best_d = torch.where(better, d, best_d)
        best_i = torch.where(better, i + start, best_i)
    return Nearest(tuple(int(i) for i in best_i.cpu()), tuple(float(d) for d in best_d.cpu()))


@dataclass(frozen=True)
class TypicalDistance:
    """How far a new real digit (a test image) is from its nearest training image: quantiles of that distance.

    A generated sample at least ``low`` (the 5th percentile) away is as far from every training image
    as new real digits usually are: not a copy. ``n``: test images measured.
    """

    n: int
    low: float  # 5th percentile
    median: float
    high: float  # 95th percentile

    def far(self, distance: float) -> bool:
        return distance >= self.low


def typical_nearest_distance(dataset: Dataset, n: int = 500, seed: int = 0) -> TypicalDistance:
    """Nearest-training distances of ``n`` random test images, summarised as quantiles."""
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(dataset.test_images.shape[0], generator=gen)[:n].to(dataset.device)
    found = torch.tensor(nearest_training(dataset.test_images[idx], dataset.train_images).distances)
    q = torch.quantile(found, torch.tensor([0.05, 0.5, 0.95]))
    return TypicalDistance(int(found.numel()), float(q[0]), float(q[1]), float(q[2]))
