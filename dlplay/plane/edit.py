"""Weights in the learner's hands on the 2-D playground: edit one weight or bias of a paused plane run,
see the decision boundary, every neuron's picture and the loss recomputed at once, undo, give it back.

:class:`PlaneEditor` works on a copy of the run's network (taken through its
:class:`~dlplay.plane.handle.PlaneHandle`, at the epoch the run stands at) with the run's own points
and grid features: an edit writes one entry of the copy and :meth:`PlaneEditor.view` recomputes the
grid (the output and every neuron over R×R points, one batched forward, as the live view draws it),
the training and test loss (the loss the run reports, without regularisation) and accuracy, and the
chosen neuron's z and a at one training point. Nothing trains. :meth:`PlaneEditor.give_back` hands the
edited weights to the run (``apply_edits``: copied into its parameters in place, the optimiser's state
kept) and the run records each :class:`PlaneEdit` in its history of edits.

Pure torch and numpy (no page code): the page is dlplay/ui/plane_edit.py.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from dlplay.errors import UserError
from dlplay.plane.edits import PlaneEdit
from dlplay.plane.features import feature_matrix
from dlplay.plane.session import GRID, PlaneGrid, build_network, network_grid, plane_grid, plane_loss

MAX_VALUE = 100.0  # |weight| or |bias| the editor takes (tanh and sigmoid saturate long before)


@dataclass(frozen=True)
class PlaneEditView:
    """The edited network at a glance: the grid (pictures), the losses and accuracies (None for
    regression), the edited neuron's z and a at training point ``point`` and the prediction there."""

    grid: PlaneGrid
    train_loss: float
    test_loss: float
    train_acc: float | None
    test_acc: float | None
    z: float
    a: float
    point: tuple[float, float]
    prediction: np.ndarray  # [K] class probabilities, or [1] the value, at the point
    seconds: float  # how long the recomputation took (server side)


def parse_value(text: Any) -> float:
    """A typed weight as a float, or UserError (``plane_edit.*``) for a non-number, inf/NaN, a huge value."""
    try:
        value = float(str(text).strip().replace("−", "-").replace(",", "."))
    except ValueError:
        raise UserError("plane_edit.not_a_number", value=str(text)[:40]) from None
    if not math.isfinite(value):
        raise UserError("plane_edit.not_finite", value=str(text)[:40])
    if abs(value) > MAX_VALUE:
        raise UserError("plane_edit.too_big", value=str(text)[:40], limit=f"{MAX_VALUE:g}")
    return value


class PlaneEditor:
    """Edit a paused plane run's weights by hand on a copy, and see the effect (see the module doc)."""

    def __init__(self, run: Any, resolution: int = GRID, point: int = 0):
        cfg, data = run.config, run.data
        self.run_id: str = run.run_id
        self.epoch = int(run.snapshot().progress.global_step)
        self.regression = bool(run.regression)
        self.features = tuple(run.features)
        self.net = build_network(len(self.features), cfg.hidden, data.outputs, cfg.activation, cfg.seed)
        self.net.load_state_dict(run.state_dict())
        self.net.eval().requires_grad_(False)
        self.dense = [m for m in self.net if isinstance(m, nn.Linear)]
        self.original = self.state()
        ytype = torch.float32 if self.regression else torch.int64
        self.x_train = feature_matrix(torch.as_tensor(data.x_train), self.features)
        self.x_test = feature_matrix(torch.as_tensor(data.x_test), self.features)
        self.y_train = torch.as_tensor(data.y_train, dtype=ytype)
        self.y_test = torch.as_tensor(data.y_test, dtype=ytype)
        self.point = min(point, len(self.y_train) - 1)
        self.point_xy = (float(data.x_train[self.point, 0]), float(data.x_train[self.point, 1]))
        self.xs, self.ys = plane_grid(resolution)
        gx, gy = np.meshgrid(self.xs, self.ys)
        self.grid_inputs = feature_matrix(torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], 1)), self.features)
        self.history: list[PlaneEdit] = []

    # ----- the entries ------------------------------------------------------------------------
    @property
    def layers(self) -> int:
        """Dense layers (hidden ones and the output)."""
        return len(self.dense)

    def shape(self, layer: int) -> tuple[int, int]:
        """(neurons, inputs) of dense layer ``layer``."""
        w = self.dense[layer].weight
        return int(w.shape[0]), int(w.shape[1])

    def _check(self, layer: int, unit: int, index: int | None) -> None:
        if not 0 <= layer < self.layers or not 0 <= unit < self.shape(layer)[0] \
                or (index is not None and not 0 <= index < self.shape(layer)[1]):
            raise UserError("plane_edit.bad_entry", layer=layer + 1, unit=unit + 1)

    def value(self, layer: int, unit: int, index: int | None) -> float:
        self._check(layer, unit, index)
        d = self.dense[layer]
        return float(d.bias[unit] if index is None else d.weight[unit, index])

    def set(self, layer: int, unit: int, index: int | None, value: float) -> PlaneEditView:
        """Set one entry (``index`` None: the neuron's bias) to ``value`` and recompute; UserError for a bad
        entry or value (nothing changes then)."""
        self._check(layer, unit, index)
        value = parse_value(value)
        old = self.value(layer, unit, index)
        if value != old:
            self._write(layer, unit, index, value)
            self.history.append(PlaneEdit(self.epoch, layer, unit, index, old, value))
        return self.view(layer, unit)

    def undo(self) -> PlaneEdit | None:
        """Take the latest edit back (the entry gets its old value); the edit undone, or None."""
        if not self.history:
            return None
        last = self.history.pop()
        self._write(last.layer, last.unit, last.index, last.old)
        return last

    def _write(self, layer: int, unit: int, index: int | None, value: float) -> None:
        with torch.no_grad():
            d = self.dense[layer]
            if index is None:
                d.bias[unit] = value
            else:
                d.weight[unit, index] = value

    # ----- what the edit does -----------------------------------------------------------------
    @torch.no_grad()
    def view(self, layer: int = 0, unit: int = 0) -> PlaneEditView:
        """The grid, losses and the neuron's numbers of the edited network (one forward of the grid, the
        training and the test points)."""
        t0 = time.perf_counter()
        grid = network_grid(self.net, self.xs, self.ys, self.grid_inputs, self.regression, self.epoch)
        out_train, out_test = self.net(self.x_train), self.net(self.x_test)
        train_loss = float(plane_loss(out_train, self.y_train, self.regression))
        test_loss = float(plane_loss(out_test, self.y_test, self.regression))
        train_acc = test_acc = None
        if not self.regression:
            train_acc = float((out_train.argmax(1) == self.y_train).float().mean())
            test_acc = float((out_test.argmax(1) == self.y_test).float().mean())
        a = self.x_train[self.point:self.point + 1]
        z = a
        for i, module in enumerate(self.net):
            a = module(a)
            if i == 2 * layer:
                z = a
            if i == 2 * layer + 1:
                break
        out = out_train[self.point]
        prediction = out if self.regression else torch.softmax(out, 0)
        return PlaneEditView(grid, train_loss, test_loss, train_acc, test_acc, float(z[0, unit]), float(a[0, unit]),
                             self.point_xy, prediction.numpy().copy(), time.perf_counter() - t0)

    def state(self) -> dict[str, torch.Tensor]:
        """The edited weights (a copy)."""
        return {k: v.detach().clone() for k, v in self.net.state_dict().items()}

    def changed(self) -> list[tuple[str, tuple[int, ...]]]:
        """Entries that differ from the weights the editor started with: (state key, index)."""
        return [(k, tuple(idx)) for k, v in self.net.state_dict().items()
                for idx in torch.nonzero(v != self.original[k]).tolist()]

    def give_back(self, run: Any) -> list[PlaneEdit]:
        """The run takes the edited weights and records the edits (UserError when there are none, the run
        is not paused or has moved on); the edits given back."""
        if run.run_id != self.run_id:
            raise UserError("plane_edit.moved_on", epoch=self.epoch, now="?")
        edits = list(self.history)
        run.apply_edits(self.state(), edits, self.epoch)
        self.original = self.state()
        self.history.clear()
        return edits
