"""Evaluation metrics against hand-computed values, and predictions of a real trained model."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dlplay.classify.evaluation import (
    Predictions,
    build_report,
    class_metrics,
    confused_pairs,
    confusion_matrix,
    mistake_indices,
    predict,
    predict_session,
    reliability,
    row_normalize,
)
from dlplay.nn.spec import TrainConfig, dense_spec
from helpers import train_to_end

# 9 examples, 3 classes. True 0: guessed 0,1,0 / true 1: 1,1 / true 2: 2,0,2,2
LABELS = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
PREDS = np.array([0, 1, 0, 1, 1, 2, 0, 2, 2])
CM = np.array([[2, 1, 0], [0, 2, 0], [1, 0, 3]])


def test_confusion_matrix_by_hand():
    cm = confusion_matrix(LABELS, PREDS, 3)
    assert cm.tolist() == CM.tolist()
    assert cm.sum() == len(LABELS)


def test_row_normalize_by_hand_and_empty_rows():
    shares = row_normalize(np.array([[2, 1, 0], [0, 0, 0], [1, 0, 3]]))
    np.testing.assert_allclose(shares, [[2 / 3, 1 / 3, 0], [0, 0, 0], [0.25, 0, 0.75]])


def test_class_metrics_by_hand():
    m = class_metrics(CM)
    assert m.support.tolist() == [3, 2, 4]
    assert m.correct.tolist() == [2, 2, 3]
    assert m.predicted_count.tolist() == [3, 3, 3]
    np.testing.assert_allclose(m.accuracy, [2 / 3, 1.0, 0.75])
    np.testing.assert_allclose(m.recall, m.accuracy)
    np.testing.assert_allclose(m.precision, [2 / 3, 2 / 3, 1.0])
    # F1 = 2PR/(P+R): class 1: 2*(2/3)*1/(5/3) = 0.8; class 2: 2*1*0.75/1.75 = 6/7
    np.testing.assert_allclose(m.f1, [2 / 3, 0.8, 6 / 7])


def test_class_metrics_absent_classes_are_nan_not_zero():
    # class 2 never appears and is never guessed; class 3 is guessed once but never appears
    cm = confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 3]), 4)
    m = class_metrics(cm)
    assert np.isnan(m.accuracy[2])
    assert np.isnan(m.precision[2])
    assert np.isnan(m.f1[2])
    assert np.isnan(m.accuracy[3])
    assert m.precision[3] == 0.0
    assert np.isnan(m.f1[3])
    assert m.accuracy[1] == 0.5
    assert m.precision[1] == 1.0
    # a class with precision and recall both 0 has F1 0, not NaN
    cm2 = confusion_matrix(np.array([0, 1]), np.array([1, 0]), 2)
    assert class_metrics(cm2).f1.tolist() == [0.0, 0.0]


def test_confused_pairs_order_and_share():
    cm = np.array([[50, 3, 7], [3, 40, 0], [7, 1, 30]])
    pairs = confused_pairs(cm, k=3)
    # 7 twice (0->2 before 2->0: ties by true class), then 3 (0->1)
    assert [(p.true, p.predicted, p.count) for p in pairs] == [(0, 2, 7), (2, 0, 7), (0, 1, 3)]
    assert pairs[0].share == pytest.approx(7 / 60)
    assert pairs[1].share == pytest.approx(7 / 38)
    assert confused_pairs(np.diag([5, 5]), k=3) == []


def _preds(labels, probs) -> Predictions:
    probs = np.asarray(probs, dtype=np.float32)
    return Predictions(np.asarray(labels), probs.argmax(1), probs)


def test_mistakes_sorted_by_confidence_and_filtered():
    p = _preds(
        [0, 1, 2, 0, 1, 2],
        [[0.1, 0.8, 0.1],  # 0 -> 1 (0.8)
         [0.05, 0.9, 0.05],  # right
         [0.6, 0.3, 0.1],  # 2 -> 0 (0.6)
         [0.05, 0.05, 0.9],  # 0 -> 2 (0.9)
         [0.7, 0.2, 0.1],  # 1 -> 0 (0.7)
         [0.1, 0.1, 0.8]],  # right
    )
    np.testing.assert_allclose(p.confidence, [0.8, 0.9, 0.6, 0.9, 0.7, 0.8])
    assert p.accuracy == pytest.approx(2 / 6)
    assert mistake_indices(p).tolist() == [3, 0, 4, 2]
    assert mistake_indices(p, true_class=0).tolist() == [3, 0]
    assert mistake_indices(p, predicted_class=0).tolist() == [4, 2]
    assert mistake_indices(p, true_class=2, predicted_class=0).tolist() == [2]
    assert mistake_indices(p, true_class=1, predicted_class=2).tolist() == []


def test_reliability_by_hand():
    conf = np.array([0.95, 0.92, 1.0, 0.85, 0.81, 0.55])
    correct = np.array([1, 0, 1, 1, 1, 0], dtype=bool)
    rel = reliability(conf, correct, bins=10)
    assert rel.counts.tolist() == [0, 0, 0, 0, 0, 1, 0, 0, 2, 3]
    assert rel.accuracy[9] == pytest.approx(2 / 3)
    assert rel.confidence[9] == pytest.approx((0.95 + 0.92 + 1.0) / 3)
    assert rel.accuracy[8] == 1.0
    assert rel.confidence[8] == pytest.approx(0.83)
    assert rel.accuracy[5] == 0.0
    assert rel.confidence[5] == pytest.approx(0.55)
    assert np.isnan(rel.accuracy[0])
    assert np.isnan(rel.confidence[0])
    expected = 3 / 6 * abs(2 / 3 - 2.87 / 3) + 2 / 6 * abs(1 - 0.83) + 1 / 6 * 0.55
    assert rel.ece == pytest.approx(expected)
    np.testing.assert_allclose(rel.centers[:2], [0.05, 0.15])
    # a perfectly calibrated set has ECE 0
    perfect = reliability(np.array([0.75] * 4), np.array([1, 1, 1, 0], dtype=bool), bins=4)
    assert perfect.ece == pytest.approx(0.0)


@pytest.fixture(scope="module")
def trained(mnist):
    return train_to_end(mnist, dense_spec([32]), TrainConfig(epochs=1, batch_size=100, train_size=2000, seed=1), timeout=120)


def test_predictions_of_a_trained_model_agree_with_the_session(trained, mnist):
    preds = predict_session(trained)
    n = len(mnist.test_labels)
    assert preds.probs.shape == (n, 10)
    np.testing.assert_allclose(preds.probs.sum(1), 1.0, atol=1e-5)
    _loss, acc = trained.evaluate("test")
    assert preds.accuracy == pytest.approx(acc)
    assert 0.6 < preds.accuracy < 1.0  # 20 steps of a small MLP on real digits
    report = build_report(preds)
    assert report.confusion.sum() == n
    assert np.trace(report.confusion) / n == pytest.approx(acc)
    assert report.mistakes == n - np.trace(report.confusion)
    assert report.confusion.sum(1).tolist() == np.bincount(mnist.test_labels.numpy(), minlength=10).tolist()
    assert report.pairs
    assert report.pairs[0].count == max(
        report.confusion[t, p] for t in range(10) for p in range(10) if t != p
    )
    assert int(report.calibration.counts.sum()) == n
    # the model stays in its mode (predict puts it back)
    model = trained.model
    model.train()
    predict(model, mnist.test_images[:10], mnist.test_labels[:10], mnist.info)
    assert model.training


def test_predict_on_train_split_uses_train_size(trained):
    preds = predict_session(trained, "train")
    assert len(preds.labels) == 2000
    assert preds.accuracy == pytest.approx(trained.evaluate("train")[1])


def test_predict_matches_manual_forward(trained, mnist):
    images = mnist.test_images[:50]
    preds = predict(trained.model_copy(), images, mnist.test_labels[:50], mnist.info)
    with torch.no_grad():
        logits = trained.model_copy()(trained.normalize(images))
    assert preds.predicted.tolist() == logits.argmax(1).tolist()
    np.testing.assert_allclose(preds.probs, torch.softmax(logits, 1).numpy(), atol=1e-6)


def test_figures_show_the_numbers():
    from dlplay.figures.evaluation import class_metrics_figure, confusion_figure, reliability_figure

    labels = ["zero", "one", "two"]
    fig = confusion_figure(CM, labels)
    assert np.asarray(fig.data[0].z).tolist() == CM.tolist()
    assert list(fig.data[0].x) == labels
    assert fig.data[0].text[2][2] == "3"
    fig = confusion_figure(CM, labels, normalized=True, lang="zh")
    np.testing.assert_allclose(np.asarray(fig.data[0].z), row_normalize(CM))
    assert fig.data[0].text[2][2] == "75%"
    assert "混淆矩阵" in fig.layout.title.text
    fig = class_metrics_figure(class_metrics(CM), labels)
    np.testing.assert_allclose(fig.data[0].y, [2 / 3, 1.0, 0.75])
    np.testing.assert_allclose(fig.data[1].y, [2 / 3, 2 / 3, 1.0])
    rel = reliability(np.array([0.95, 0.92, 1.0, 0.85, 0.81, 0.55]), np.array([1, 0, 1, 1, 1, 0], dtype=bool))
    fig = reliability_figure(rel)
    assert list(fig.data[0].y) == rel.counts.tolist()
    np.testing.assert_allclose(fig.data[1].y, [0.0, 1.0, 2 / 3])  # only the filled bins
    assert f"{rel.ece:.2%}" in fig.layout.title.text
    # the accuracy axis has ticks of its own, not the log count axis's places (4 %, 13 %, 26 % ...)
    assert fig.layout.yaxis.tickmode == "array"
    assert list(fig.layout.yaxis.tickvals) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert all(trace.type != "scattergl" for trace in fig.data)
