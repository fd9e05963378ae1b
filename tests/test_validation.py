"""Validation split, early stopping, label edits and the overfitting hint, on the real MNIST sample."""
from __future__ import annotations

import math

import pytest
import torch

from dlplay.classify.runs import RunRecord, record_from_session
from dlplay.classify.split import make_split, validation_indices
from dlplay.classify.train import TrainingSession
from dlplay.errors import UserError
from dlplay.learn.hints import overfitting_hint, overfitting_since
from dlplay.nn.presets import PRESETS
from dlplay.nn.spec import DROP, MAX_LABEL_EDITS, TrainConfig, dense_spec
from dlplay.run.metrics import EpochRecord


# ----- the split -----------------------------------------------------------------------------------
def test_split_is_disjoint_from_training_and_reproducible(mnist):
    labels = mnist.train_labels
    config = TrainConfig(val_share=0.1, seed=4)
    split = make_split(config, labels, 10)
    train, val = set(split.train.tolist()), set(split.val.tolist())
    assert len(val) == round(0.1 * len(labels))
    assert not train & val
    assert train | val == set(range(len(labels)))  # without a training-set limit: everything else trains
    again = make_split(config, labels, 10)
    assert torch.equal(again.train, split.train)
    assert torch.equal(again.val, split.val)
    other = make_split(config.with_changes(seed=5), labels, 10)
    assert not torch.equal(other.val, split.val)
    assert len(set(other.val.tolist()) & val) < 0.3 * len(val)  # a different draw, not a shifted one


def test_split_with_a_training_subset_and_without_validation(mnist):
    labels = mnist.train_labels
    split = make_split(TrainConfig(val_share=0.2, train_size=500, seed=1), labels, 10)
    assert len(split.train) == 500
    assert len(split.val) == 2000
    assert not set(split.train.tolist()) & set(split.val.tolist())
    plain = make_split(TrainConfig(val_share=0.0, train_size=500), labels, 10)  # as before splits existed
    assert plain.train.tolist() == list(range(500))
    assert len(plain.val) == 0
    assert validation_indices(10, 0.01, 0).tolist() != []  # a share above 0 holds out at least one image


def test_a_run_validates_on_its_split_every_epoch(mnist):
    config = TrainConfig(epochs=2, batch_size=100, train_size=600, val_share=0.05, seed=0)
    session = TrainingSession(dense_spec([16]), config, mnist, "cpu")
    session.start()
    assert session.join(120)
    assert session.status == "done"
    epochs = session.snapshot().epochs
    assert all(e.val_loss is not None and 0 <= e.val_acc <= 1 for e in epochs)
    loss, acc = session.evaluate("val")
    assert (loss, acc) == pytest.approx((epochs[-1].val_loss, epochs[-1].val_acc), rel=1e-5)
    images, labels, idx = session.split_data("val")
    assert len(idx) == 500
    assert torch.equal(images, mnist.train_images[idx])
    assert torch.equal(labels, mnist.train_labels[idx])
    assert not set(idx.tolist()) & set(session.split_data("train")[2].tolist())


# ----- early stopping ------------------------------------------------------------------------------
class _Weights:
    """A callback that keeps a copy of the weights after every epoch (in the training thread)."""

    def __init__(self):
        self.by_epoch: dict[int, dict[str, torch.Tensor]] = {}

    def on_epoch_end(self, session, record):
        self.by_epoch[record.epoch] = {k: v.detach().clone() for k, v in session.model.state_dict().items()}


def test_early_stopping_stops_and_restores_the_best_weights(mnist):
    weights = _Weights()
    preset = PRESETS["overfit"]
    config = preset.config.with_changes(epochs=12, train_size=200, batch_size=20, lr=3e-3, patience=2, seed=0)
    session = TrainingSession(dense_spec([256, 256]), config, mnist, "cpu", callbacks=[weights])
    session.start()
    assert session.join(180)
    assert session.status == "done"
    snap = session.snapshot()
    info = snap.extras["early_stop"]
    val = [e.val_loss for e in snap.epochs]
    assert info.best_epoch == 1 + val.index(min(val))
    assert info.stopped_at == len(snap.epochs) < 12  # 200 images overfit quickly: it stopped early
    assert info.stopped_at - info.best_epoch == 2
    assert info.restored
    kept = weights.by_epoch[info.best_epoch]
    final = session.state_dict()
    assert all(torch.equal(final[k], kept[k]) for k in kept)
    assert not all(torch.equal(final[k], weights.by_epoch[info.stopped_at][k]) for k in kept)
    assert session.evaluate("val")[0] == pytest.approx(min(val), rel=1e-5)
    record = record_from_session(session)
    assert record.test_acc == snap.epochs[info.best_epoch - 1].test_acc  # the record is of the kept weights


def test_early_stopping_needs_a_validation_split():
    with pytest.raises(UserError) as exc:
        TrainConfig(val_share=0.0, patience=3)
    assert exc.value.key == "validation.patience_needs_val"
    for bad in (-0.1, 0.6, math.nan, "0.1", True):
        with pytest.raises(UserError):
            TrainConfig(val_share=bad)


# ----- label edits ---------------------------------------------------------------------------------
def test_edited_labels_change_the_runs_data_and_nothing_else(mnist):
    base = TrainConfig(epochs=1, batch_size=100, train_size=1000, val_share=0.1, seed=2)
    plain = TrainingSession(dense_spec([8]), base, mnist, "cpu")
    val_index = int(plain.split.val[3])
    train_ids = plain.split.train.tolist()
    relabel = {train_ids[5]: (int(mnist.train_labels[train_ids[5]]) + 1) % 10, val_index: 0 if int(mnist.train_labels[val_index]) else 1}
    dropped = [train_ids[10], train_ids[20]]
    edits = tuple(sorted([*relabel.items(), *((i, DROP) for i in dropped)]))
    edited = TrainingSession(dense_spec([8]), base.with_changes(label_edits=edits), mnist, "cpu")
    a_img, a_lab, a_idx = plain.split_data("train")
    b_img, b_lab, b_idx = edited.split_data("train")
    assert b_idx.tolist() == [i for i in a_idx.tolist() if i not in dropped]  # dropped ones absent, order kept
    keep = torch.tensor([i not in dropped for i in a_idx.tolist()])
    assert torch.equal(b_img, a_img[keep])  # the images themselves are untouched
    differs = (b_lab != a_lab[keep]).nonzero().flatten()
    assert [int(b_idx[k]) for k in differs] == [train_ids[5]]  # exactly the edited training label
    assert int(b_lab[b_idx.tolist().index(train_ids[5])]) == relabel[train_ids[5]]
    _, va, vi = plain.split_data("val")
    _, vb, vj = edited.split_data("val")
    assert torch.equal(vi, vj)
    assert (va != vb).nonzero().flatten().tolist() == [vi.tolist().index(val_index)]
    assert torch.equal(edited.split_data("test")[1], plain.split_data("test")[1])  # the test set is never edited
    assert int(mnist.train_labels[train_ids[5]]) != relabel[train_ids[5]]  # the dataset itself is not changed


def test_label_edits_are_validated():
    config = TrainConfig(label_edits=[[40, -1], [12, 3]])  # from JSON: lists, any order
    assert config.label_edits == ((12, 3), (40, DROP))
    assert TrainConfig.from_json(config.to_json()) == config
    for bad, key in (([(1, 2), (1, 3)], "fixdata.duplicate_edit"), ([(1, 1000)], "fixdata.bad_edit"),
                     ([(-1, 2)], "fixdata.bad_edit"), ([(1,)], "fixdata.bad_edits"), ("1:2", "fixdata.bad_edits"),
                     ([(1.0, 2)], "fixdata.bad_edits"), ([(i, 1) for i in range(MAX_LABEL_EDITS + 1)], "fixdata.too_many")):
        with pytest.raises(UserError) as exc:
            TrainConfig(label_edits=bad)
        assert exc.value.key == key


def test_edits_must_fit_the_dataset(mnist):
    for edits in (((len(mnist.train_labels), 1),), ((3, 10),)):
        with pytest.raises(UserError) as exc:
            TrainingSession(dense_spec([8]), TrainConfig(label_edits=edits), mnist, "cpu")
        assert exc.value.key == "fixdata.edit_out_of_range"


def test_old_records_and_configs_read_as_without_validation():
    old = {k: v for k, v in TrainConfig().to_dict().items() if k not in ("val_share", "patience", "label_edits")}
    assert TrainConfig.from_dict(old).val_share == 0.0
    record = RunRecord("0123456789ab", 0.0, dense_spec([8]), TrainConfig(), "cpu", "CPU", "done", 1.0, 10, 100,
                       epochs=(EpochRecord(1, 0.5, 0.8, 0.4, 0.85, 1.0, 1000.0, 0.45, 0.84),))
    data = record.to_dict()
    assert RunRecord.from_dict(data) == record
    data["epochs"] = [row[:7] for row in data["epochs"]]  # a record saved before validation existed
    assert RunRecord.from_dict(data).epochs[0].val_loss is None


# ----- the overfitting hint -----------------------------------------------------------------------
def _epochs(train, val):
    return [EpochRecord(i + 1, t, 0.9, 0.5, 0.8, 1.0, 1.0, v, 0.8) for i, (t, v) in enumerate(zip(train, val))]


def test_overfitting_hint_names_the_epoch_after_the_lowest_validation_loss():
    assert overfitting_since(_epochs([1.0, 0.5, 0.3, 0.2, 0.1], [0.9, 0.6, 0.5, 0.55, 0.62])) == 4
    assert overfitting_since(_epochs([1.0, 0.5, 0.3], [0.9, 0.6, 0.5])) is None  # still improving
    assert overfitting_since(_epochs([1.0, 0.5, 0.6], [0.9, 0.6, 0.7])) is None  # training loss rose too
    assert overfitting_since(_epochs([1.0, 0.5, 0.4, 0.3], [0.9, 0.6, 0.65, 0.605])) is None  # within noise
    assert overfitting_since(_epochs([1.0, 0.5, 0.4], [0.9, 0.6, 0.7])) is None  # one epoch: maybe noise
    assert overfitting_since([EpochRecord(i, 1.0 / i, 0.9, 0.5, 0.8, 1.0, 1.0) for i in (1, 2, 3)]) is None
    hint = overfitting_hint(_epochs([1.0, 0.5, 0.3, 0.2], [0.9, 0.5, 0.6, 0.7]))
    assert hint is not None
    assert "3" in hint.text("en")
    assert "3" in hint.text("zh")


# ----- share links ---------------------------------------------------------------------------------
def test_share_links_round_trip_validation_and_edits():
    from dlplay.server.share import from_params, to_params

    spec = dense_spec([32])
    config = TrainConfig(val_share=0.15, patience=4, label_edits=((12, 3), (40, DROP), (9999, 0)))
    params = to_params(spec, config)
    assert params["val"] == "0.15"
    assert params["pat"] == "4"
    assert params["le"] == "12:3,40:d,9999:0"
    assert from_params(params) == (spec, config)
    assert from_params(to_params(spec, TrainConfig(val_share=0.0))) == (spec, TrainConfig(val_share=0.0))
    old = {k: v for k, v in params.items() if k not in ("val", "pat", "le")}  # a link from before validation
    assert from_params(old)[1] == TrainConfig(val_share=0.0)


@pytest.mark.parametrize(("param", "value", "key"), [
    ("val", "abc", "eval.share_bad_link"), ("val", "0.9", "validation.share_range"),
    ("val", "nan", "validation.share_range"), ("pat", "-1", "eval.share_bad_link"), ("pat", "x", "eval.share_bad_link"),
    ("pat", "500", "spec.int_range"), ("le", "12:x", "eval.share_bad_link"), ("le", "12:3:4", "eval.share_bad_link"),
    ("le", "12:3,12:4", "fixdata.duplicate_edit"), ("le", ",".join(f"{i}:1" for i in range(MAX_LABEL_EDITS + 1)),
                                                     "fixdata.too_many"),
    ("le", "1:1," * 2000, "eval.share_bad_link"),
])
def test_malformed_links_are_refused_with_a_message(param, value, key):
    from dlplay.server.share import from_params

    params = {"v": "1", "net": "d32", "val": "0.1", param: value}
    if param == "pat":
        params.setdefault("val", "0.1")
    with pytest.raises(UserError) as exc:
        from_params(params)
    assert exc.value.key == key
    for lang in ("en", "zh"):
        text = exc.value.message(lang)
        assert text
        assert "{" not in text
        assert text != exc.value.key
    if key == "eval.share_bad_link":  # the message names the setting by its label on the page
        assert {"val": "Validation share", "pat": "Early stopping", "le": "Label edits"}[param] in exc.value.message("en")
