"""Test-set evaluation: predictions, confusion matrix, per-class metrics, confused pairs, mistakes, calibration.

Everything after :func:`predict` is plain numpy on small arrays, so each metric can be checked
against hand-computed values. Per-class *accuracy* here is the share of a class's test examples
the model gets right (which is that class's recall); *precision* is the share of the model's
guesses of that class that are right.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from dlplay.data.datasets import normalize
from dlplay.nn.model import eval_mode


@dataclass(frozen=True)
class Predictions:
    """The model's answer for every example of a split (numpy arrays on the host)."""

    labels: np.ndarray  # int64 [N] true classes
    predicted: np.ndarray  # int64 [N] argmax classes
    probs: np.ndarray  # float32 [N, C] softmax probabilities

    @property
    def confidence(self) -> np.ndarray:
        """Probability of the predicted class, [N]."""
        return self.probs[np.arange(len(self.predicted)), self.predicted]

    @property
    def correct(self) -> np.ndarray:
        return self.predicted == self.labels

    @property
    def num_classes(self) -> int:
        return int(self.probs.shape[1])

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean()) if len(self.labels) else float("nan")


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, info: Any, batch_size: int = 2000) -> Predictions:
    """Run ``model`` (eval mode, on its device) over uint8 ``images`` normalised as ``info`` says."""
    device = next(model.parameters()).device
    chunks = []
    with eval_mode(model):
        for i in range(0, len(images), batch_size):
            logits = model(normalize(images[i : i + batch_size].to(device), info))
            chunks.append(torch.softmax(logits.float(), dim=1).cpu())
    probs = torch.cat(chunks).numpy() if chunks else np.zeros((0, 0), dtype=np.float32)
    return Predictions(labels=labels.cpu().numpy().astype(np.int64), predicted=probs.argmax(1).astype(np.int64), probs=probs)


def predict_session(session: Any, split: str = "test") -> Predictions:
    """Predictions of a run's current weights (a consistent copy: safe while it trains), on its device,
    for the ``test`` split, the ``train`` images it trains on or its ``val`` split (labels with the
    run's label edits); all read through the RunHandle."""
    model = session.model_copy(session.device_name)
    if split == "test":
        images, labels = session.test_split()
    else:
        images, labels, _ = session.split_data(split)
    return predict(model, images, labels, session.dataset_info)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """``cm[t, p]`` = number of examples of true class ``t`` predicted as ``p`` (int64 [C, C])."""
    labels = np.asarray(labels, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    flat = np.bincount(labels * num_classes + predicted, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def row_normalize(cm: np.ndarray) -> np.ndarray:
    """Each row divided by its total (the share of a true class going to each guess); empty rows stay 0."""
    totals = cm.sum(axis=1, keepdims=True).astype(np.float64)
    return np.divide(cm, totals, out=np.zeros(cm.shape, dtype=np.float64), where=totals > 0)


@dataclass(frozen=True)
class ClassMetrics:
    """Per-class numbers, arrays of length C; NaN where a ratio has no examples to stand on."""

    support: np.ndarray  # test examples of the class
    correct: np.ndarray  # of those, predicted right
    predicted_count: np.ndarray  # how often the model guessed the class
    accuracy: np.ndarray  # correct / support (= recall)
    precision: np.ndarray  # correct / predicted_count
    f1: np.ndarray

    @property
    def recall(self) -> np.ndarray:
        return self.accuracy


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.divide(a, b, out=np.full(a.shape, np.nan), where=b > 0)


def class_metrics(cm: np.ndarray) -> ClassMetrics:
    """Accuracy (recall), precision and F1 of every class from a confusion matrix."""
    correct = np.diag(cm).astype(np.int64)
    support = cm.sum(axis=1)
    predicted_count = cm.sum(axis=0)
    recall = _ratio(correct, support)
    precision = _ratio(correct, predicted_count)
    both = ~np.isnan(precision) & ~np.isnan(recall)
    p, r = np.where(both, precision, 0.0), np.where(both, recall, 0.0)
    f1 = np.where(both, np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) > 0), np.nan)
    return ClassMetrics(support, correct, predicted_count, recall, precision, f1)


@dataclass(frozen=True)
class ConfusedPair:
    true: int
    predicted: int
    count: int
    share: float  # count / examples of the true class


def confused_pairs(cm: np.ndarray, k: int = 5) -> list[ConfusedPair]:
    """The ``k`` largest off-diagonal cells (true -> guessed), largest first; ties by class order."""
    support = cm.sum(axis=1)
    cells = [
        (int(cm[t, p]), t, p)
        for t in range(cm.shape[0])
        for p in range(cm.shape[1])
        if t != p and cm[t, p] > 0
    ]
    cells.sort(key=lambda c: (-c[0], c[1], c[2]))
    return [ConfusedPair(t, p, n, n / support[t]) for n, t, p in cells[:k]]


def mistake_indices(preds: Predictions, true_class: int | None = None, predicted_class: int | None = None) -> np.ndarray:
    """Indices of misclassified examples, optionally of one true and/or guessed class, most confident first."""
    mask = ~preds.correct
    if true_class is not None:
        mask &= preds.labels == true_class
    if predicted_class is not None:
        mask &= preds.predicted == predicted_class
    idx = np.flatnonzero(mask)
    order = np.argsort(-preds.confidence[idx], kind="stable")
    return idx[order]


@dataclass(frozen=True)
class Reliability:
    """Accuracy against confidence in equal-width bins (a reliability diagram) and the calibration error."""

    edges: np.ndarray  # [B + 1] bin edges on [0, 1]
    counts: np.ndarray  # [B] examples per bin
    accuracy: np.ndarray  # [B] share correct per bin (NaN for empty bins)
    confidence: np.ndarray  # [B] mean confidence per bin (NaN for empty bins)
    ece: float  # expected calibration error: sum over bins of count/N * |accuracy - confidence|

    @property
    def centers(self) -> np.ndarray:
        return (self.edges[:-1] + self.edges[1:]) / 2


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> Reliability:
    """Bin examples by confidence (bin i holds [i/B, (i+1)/B), the last one includes 1.0)."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip((confidence * bins).astype(np.int64), 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    acc_sum = np.bincount(which, weights=correct, minlength=bins)
    conf_sum = np.bincount(which, weights=confidence, minlength=bins)
    acc = _ratio(acc_sum, counts)
    conf = _ratio(conf_sum, counts)
    n = max(1, len(confidence))
    ece = float(np.nansum(counts / n * np.abs(acc - conf)))
    return Reliability(edges, counts, acc, conf, ece)


@dataclass(frozen=True)
class EvalReport:
    """All the Evaluate page shows, computed once per set of weights."""

    preds: Predictions
    confusion: np.ndarray
    classes: ClassMetrics
    pairs: list[ConfusedPair]
    calibration: Reliability

    @property
    def accuracy(self) -> float:
        return self.preds.accuracy

    @property
    def mistakes(self) -> int:
        return int((~self.preds.correct).sum())


def build_report(preds: Predictions, top_pairs: int = 5, bins: int = 10) -> EvalReport:
    cm = confusion_matrix(preds.labels, preds.predicted, preds.num_classes)
    return EvalReport(
        preds=preds,
        confusion=cm,
        classes=class_metrics(cm),
        pairs=confused_pairs(cm, top_pairs),
        calibration=reliability(preds.confidence, preds.correct, bins),
    )
