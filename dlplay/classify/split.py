"""Which training-set images a run trains on and which it validates on, and the learner's label edits.

The validation split is a seeded random share of the whole training set (``TrainConfig.val_share``,
the seed is the run's), so the same settings always hold out the same images and the split never
overlaps the images trained on. Training takes the rest in their order, at most ``train_size`` of
them; without a validation share that is the first ``train_size`` images, as before splits existed.

Label edits (``TrainConfig.label_edits``, made on the Evaluate page) change only the edited images:
a new label replaces the old one, a dropped image leaves both splits, and nothing else moves.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from dlplay.errors import UserError
from dlplay.nn.spec import DROP, TrainConfig

SPLIT_STREAM = 0x5A11D  # added to the seed: the split's random stream is not the batch order's


@dataclass(frozen=True)
class DataSplit:
    """Indices into the dataset's training set (int64, ascending), and the labels with the edits applied."""

    train: torch.Tensor
    val: torch.Tensor
    labels: torch.Tensor  # all training-set labels, edited (the dataset's own tensor when there is no edit)


def validation_indices(n: int, share: float, seed: int) -> torch.Tensor:
    """``round(share * n)`` (at least 1 for a share above 0) distinct indices of ``range(n)``, ascending,
    drawn by ``seed``: the same seed always gives the same split."""
    if share <= 0 or n < 2:
        return torch.zeros(0, dtype=torch.int64)
    k = min(n - 1, max(1, round(share * n)))
    gen = torch.Generator().manual_seed(int(seed) + SPLIT_STREAM)
    return torch.randperm(n, generator=gen)[:k].sort().values


def check_edits(config: TrainConfig, n: int, num_classes: int) -> None:
    """Every edit names an image of this training set and a class of this dataset (or a drop)."""
    for index, label in config.label_edits:
        if index >= n or label >= num_classes:
            raise UserError("fixdata.edit_out_of_range", index=index, label=label, n=n, classes=num_classes)


def make_split(config: TrainConfig, labels: torch.Tensor, num_classes: int) -> DataSplit:
    """The run's training and validation indices for a training set with ``labels`` (on any device;
    the indices live there too)."""
    n = len(labels)
    check_edits(config, n, num_classes)
    device = labels.device
    val = validation_indices(n, config.val_share, config.seed)
    keep = torch.ones(n, dtype=torch.bool)
    keep[val] = False
    rest = keep.nonzero().flatten()
    train = rest[: min(len(rest), config.train_size or len(rest))]
    dropped = torch.tensor([i for i, label in config.label_edits if label == DROP], dtype=torch.int64)
    if len(dropped):
        train = train[~torch.isin(train, dropped)]
        val = val[~torch.isin(val, dropped)]
    if not len(train):
        raise UserError("fixdata.nothing_left")
    relabel = [(i, label) for i, label in config.label_edits if label != DROP]
    if relabel:
        labels = labels.clone()
        at, new = zip(*relabel)
        labels[torch.tensor(at, device=device)] = torch.tensor(new, dtype=labels.dtype, device=device)
    return DataSplit(train=train.to(device), val=val.to(device), labels=labels)


def is_prefix(split: DataSplit) -> bool:
    """Do the training indices read 0, 1, ..., k-1 (a plain slice of the training set, no copy needed)?"""
    k = len(split.train)
    return k == 0 or int(split.train[-1]) == k - 1
