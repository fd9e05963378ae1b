"""PlaneSession: a small dense network learning points on the plane, on the shared run loop.

The 2-D playground's task. :class:`PlaneSession` is a :class:`~dlplay.run.loop.RunLoop` (thread, commands,
pause / single steps / pace / Stop / heartbeat, run slots, status) whose step is one **epoch**, as in
TensorFlow Playground: the training points shuffled and visited once in mini-batches, then the loss
(and accuracy) of the training and the test points. A single step is one epoch; the pace counts epochs
per second. The numbers of each epoch stay on the device and reach the host every ``sync_every``
epochs (sooner at a watchable pace, after a single step, and at least every MAX_SYNC_S seconds).

Loss: cross-entropy over the K class outputs (softmax) for a classification set, mean squared error
of the one output for a regression set; plus λ·Σ|w| (L1) or λ/2·Σw² (L2) over the weights (not the
biases) when regularisation is on. Layers come from the layer registry's dense kind and the
activation registry.

Reads (any thread, under ``model_lock``, so never half an update): :meth:`grid` (the output and every
neuron's output over an R×R grid of the plane, in one batched forward, plus the weights for the
diagram), :meth:`predict` (outputs for any points), :meth:`snapshot` (loss and accuracy curves).
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlplay.errors import UserError
from dlplay.nn.layers import DENSE, LAYER_KINDS
from dlplay.nn.model import make_activation
from dlplay.nn.optimizers import make_optimizer
from dlplay.nn.spec import LayerSpec, validate_lr
from dlplay.plane import datasets as ds
from dlplay.plane.features import DEFAULT_FEATURES, FEATURES, check_features, feature_matrix
from dlplay.run.device import choose_device
from dlplay.run.loop import Diverged, RunLoop
from dlplay.run.metrics import Progress, StepSeries
from dlplay.run.status import Status

if TYPE_CHECKING:
    from dlplay.plane.edits import PlaneEdit

MAX_SYNC_S = 0.1  # a host sync (and fresh numbers on the page) at least this often
ACTIVATION_CHOICES = ("tanh", "relu", "sigmoid", "identity")  # identity: "linear" on the page
OPTIMIZER_CHOICES = ("sgd", "adam")
REGULARIZATIONS = ("none", "l1", "l2")
MAX_LAYERS = 6
MAX_NEURONS = 8
LOCK_EVERY = 16  # mini-batches trained per hold of the model lock (readers wait at most that long)
GRID = 50  # the default grid of the plane: 50 × 50 points
CURVES = ("train_loss", "test_loss", "train_acc", "test_acc")


def _setting(default: Any, *, low: float | None = None, high: float | None = None,
             choices: tuple | None = None) -> Any:
    """A field of PlaneConfig with its declared range or choices (the settings table reads them)."""
    meta: dict[str, Any] = {}
    if low is not None:
        meta["range"] = (low, high)
    if choices is not None:
        meta["choices"] = choices
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class PlaneConfig:
    """Every setting of the 2-D playground, with its range (``fields(PlaneConfig)[i].metadata``).

    Defaults are TensorFlow Playground's: 500 points, half of them for testing, x₁ and x₂, two hidden
    layers (4, 2), tanh, SGD at 0.03, batch 10, no regularisation.
    """

    dataset: str = _setting("circle", choices=ds.NAMES)
    noise: float = _setting(0.0, low=0, high=ds.MAX_NOISE)
    test_ratio: float = _setting(0.5, low=0.1, high=0.9)
    points: int = _setting(ds.DEFAULT_POINTS, low=20, high=ds.MAX_POINTS)
    seed: int = _setting(0, low=0, high=2**31 - 1)
    features: tuple[str, ...] = _setting(DEFAULT_FEATURES, choices=tuple(FEATURES))
    hidden: tuple[int, ...] = _setting((4, 2), low=1, high=MAX_NEURONS)  # neurons per hidden layer, at most 6 layers
    activation: str = _setting("tanh", choices=ACTIVATION_CHOICES)
    optimizer: str = _setting("sgd", choices=OPTIMIZER_CHOICES)
    lr: float = _setting(0.03, low=1e-5, high=10)
    batch_size: int = _setting(10, low=1, high=ds.MAX_POINTS)
    regularization: str = _setting("none", choices=REGULARIZATIONS)
    reg_rate: float = _setting(0.001, low=0, high=10)
    epochs: int = _setting(5000, low=1, high=1_000_000)  # the run ends after this many epochs
    drawn: tuple[tuple[float, float, int], ...] = ()  # the learner's points (x, y, class) for dataset DRAWN

    def validated(self) -> PlaneConfig:
        """This config, or UserError (``plane.*`` keys) for the first bad setting."""
        for f in fields(self):
            value = getattr(self, f.name)
            if "choices" in f.metadata and f.name != "features" and value not in f.metadata["choices"]:
                raise UserError("plane.bad_choice", name=f.name, value=value, choices=", ".join(f.metadata["choices"]))
            if "range" in f.metadata and f.name not in ("hidden", "lr"):
                low, high = f.metadata["range"]
                wrong_type = isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or (isinstance(f.default, int) and not isinstance(value, int))
                if wrong_type or not math.isfinite(value) or not low <= value <= high:
                    raise UserError("plane.bad_number", name=f.name, value=value, low=low, high=high)
        check_features(self.features)
        if len(self.hidden) > MAX_LAYERS or any(isinstance(u, bool) or not isinstance(u, int) or not 1 <= u <= MAX_NEURONS
                                                for u in self.hidden):
            raise UserError("plane.bad_hidden", value=list(self.hidden), layers=MAX_LAYERS, neurons=MAX_NEURONS)
        validate_lr(self.lr)
        return self

    def with_changes(self, **changes: Any) -> PlaneConfig:
        return replace(self, **changes).validated()

    def make_data(self) -> ds.PlaneData:
        """The run's points: the registry's set, or the drawn ones."""
        return ds.make_dataset(self.dataset, self.points, self.noise, self.test_ratio, self.seed,
                               points=list(self.drawn) if self.dataset == ds.DRAWN else None)


def build_network(inputs: int, hidden: tuple[int, ...], outputs: int, activation: str, seed: int) -> nn.Sequential:
    """Dense layers ``inputs -> hidden... -> outputs`` from the layer registry, each hidden one followed by
    ``activation``, the output by none (softmax is in the loss); the same weights for the same seed."""
    dense = LAYER_KINDS[DENSE]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        width = inputs
        for i, units in enumerate([*hidden, outputs]):
            act = "identity" if i == len(hidden) else activation
            layers += [dense.build(LayerSpec(DENSE, units, act), (width,)), make_activation(act)]
            width = units
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class PlaneGrid:
    """The network over an R×R grid of the plane at one moment (numpy, float32).

    ``output``: [K, R, R] class probabilities, or [1, R, R] the regression value; ``inputs``: [F, R, R] the
    features; ``neurons``: per hidden layer [units, R, R] its activations; ``weights``/``biases``: per
    dense layer [out, in] / [out]. Row i of a grid is y = ys[i] (bottom to top), column j is x = xs[j].
    """

    epoch: int
    xs: np.ndarray
    ys: np.ndarray
    output: np.ndarray
    inputs: np.ndarray
    neurons: list[np.ndarray]
    weights: list[np.ndarray]
    biases: list[np.ndarray]


@dataclass(frozen=True)
class PlaneSnapshot:
    """The curves (one point per epoch, averaged in pairs once long) and the progress."""

    version: int
    epochs: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray
    train_acc: np.ndarray  # NaN for regression
    test_acc: np.ndarray
    stride: int
    progress: Progress

    def last(self, name: str) -> float | None:
        values = getattr(self, name)
        return float(values[-1]) if len(values) and np.isfinite(values[-1]) else None


def plane_grid(resolution: int = GRID, extent: float = ds.EXTENT) -> tuple[np.ndarray, np.ndarray]:
    """The grid's x and y coordinates (cell centres across [-extent, extent])."""
    step = 2 * extent / resolution
    centres = (-extent + step * (np.arange(resolution) + 0.5)).astype(np.float32)
    return centres, centres.copy()


def plane_loss(out: torch.Tensor, y: torch.Tensor, regression: bool) -> torch.Tensor:
    """The run's loss without regularisation: MSE of the one output (regression) or cross-entropy."""
    return F.mse_loss(out.squeeze(1), y) if regression else F.cross_entropy(out, y)


@torch.no_grad()
def network_grid(model: nn.Sequential, xs: np.ndarray, ys: np.ndarray, inputs: torch.Tensor, regression: bool,
                 epoch: int) -> PlaneGrid:
    """A PlaneGrid of ``model`` (dense, activation, dense, activation … as :func:`build_network` makes it)
    over the grid whose features are ``inputs`` [R·R, F]: one batched forward, weights copied."""
    r = len(xs)
    dense = [m for m in model if isinstance(m, nn.Linear)]
    acts = [m for m in model if not isinstance(m, nn.Linear)]
    a = inputs
    layers = []
    for d, act in zip(dense, acts):
        a = act(d(a))
        layers.append(a)
    weights = [d.weight.detach().cpu().numpy().copy() for d in dense]
    biases = [d.bias.detach().cpu().numpy().copy() for d in dense]
    out = layers.pop()
    out = out if regression else torch.softmax(out, 1)
    grid = lambda t: t.T.reshape(t.shape[1], r, r).float().cpu().numpy()  # noqa: E731 - [R·R, n] -> [n, R, R]
    return PlaneGrid(epoch, xs, ys, grid(out), grid(inputs), [grid(h) for h in layers], weights, biases)


class PlaneSession(RunLoop):
    """One 2-D playground run (see the module doc): the points, the network, its optimiser and the thread."""

    title = "2-D playground"  # the Admin page's name for the run
    thread_name = "dlplay-plane"

    def __init__(self, config: PlaneConfig = PlaneConfig(), data: ds.PlaneData | None = None,
                 device: torch.device | str | None = None, *, sync_every: int = 20, callbacks: Any = (),
                 heartbeat_timeout: float | None = None, slot_pool: Any = None, history_capacity: int = 4096):
        config = config.validated()
        super().__init__(torch.device(device) if device is not None else choose_device("cpu"), sync_every=sync_every,
                         callbacks=callbacks, heartbeat_timeout=heartbeat_timeout, slot_pool=slot_pool,
                         history_capacity=history_capacity)
        self.config = config
        self.data = data if data is not None else config.make_data()
        self.features = check_features(config.features)
        self.regression = self.data.regression
        self.model = build_network(len(self.features), config.hidden, self.data.outputs, config.activation,
                                   config.seed).to(self.device)
        self._dense = [m for m in self.model if isinstance(m, nn.Linear)]
        self._acts = [m for m in self.model if not isinstance(m, nn.Linear)]
        self.optimizer = make_optimizer(config.optimizer, self.model.parameters(), config.lr, 0.0)
        dev, ytype = self.device, (torch.float32 if self.regression else torch.int64)
        self.x_train = feature_matrix(torch.as_tensor(self.data.x_train, device=dev), self.features)
        self.x_test = feature_matrix(torch.as_tensor(self.data.x_test, device=dev), self.features)
        self.y_train = torch.as_tensor(self.data.y_train, dtype=ytype, device=dev)
        self.y_test = torch.as_tensor(self.data.y_test, dtype=ytype, device=dev)
        self.total_steps = config.epochs
        self._curves = StepSeries(history_capacity, (len(CURVES),))
        self._curves_lock = threading.Lock()
        self._synced = 0
        self._grid_cache: dict[int, tuple[np.ndarray, np.ndarray, torch.Tensor]] = {}
        self._edits: list[PlaneEdit] = []
        self.metrics.update_progress(epochs=config.epochs, steps_per_epoch=1, total_steps=config.epochs,
                                     lr=config.lr, engine="autograd")

    # ----- commands -------------------------------------------------------------------------
    def _change_lr(self, lr: float) -> None:
        with self.model_lock:
            for group in self.optimizer.param_groups:
                group["lr"] = lr
        self.metrics.add_lr_change(self._global_step + 1, lr)
        self.metrics.update_progress(lr=lr)

    # ----- reads ----------------------------------------------------------------------------
    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    @property
    def epoch(self) -> int:
        """Epochs trained so far (the training thread's count; the page shows the synced one)."""
        return self._global_step

    def snapshot(self) -> PlaneSnapshot:
        with self._curves_lock:
            steps, values = self._curves.arrays()
            stride, version = self._curves.stride, self._synced
        return PlaneSnapshot(version + self.metrics.version, steps, values[:, 0], values[:, 1], values[:, 2],
                             values[:, 3], stride, self.metrics.progress)

    def _grid_inputs(self, resolution: int) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
        """The grid's coordinates and its features [R·R, F] on the device (made once per resolution)."""
        cached = self._grid_cache.get(resolution)
        if cached is None:
            xs, ys = plane_grid(resolution)
            gx, gy = np.meshgrid(xs, ys)  # row i: y = ys[i]
            points = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], 1), device=self.device)
            cached = (xs, ys, feature_matrix(points, self.features))
            self._grid_cache[resolution] = cached
        return cached

    @torch.no_grad()
    def grid(self, resolution: int = GRID) -> PlaneGrid:
        """The output and every neuron's output over an R×R grid: one batched forward under the model lock."""
        xs, ys, inputs = self._grid_inputs(resolution)
        with self.model_lock:
            return network_grid(self.model, xs, ys, inputs, self.regression, self._global_step)

    @torch.no_grad()
    def predict(self, xy: np.ndarray | torch.Tensor) -> np.ndarray:
        """The network's output for points [n, 2]: class probabilities [n, K] or values [n, 1] (CPU numpy)."""
        x = feature_matrix(torch.as_tensor(np.asarray(xy, dtype=np.float32), device=self.device), self.features)
        with self.model_lock:
            out = self.model(x)
        return (out if self.regression else torch.softmax(out, 1)).cpu().numpy()

    def accuracy(self, split: str = "test") -> float | None:
        """Share of the split's points classified right, now (None for regression)."""
        if self.regression:
            return None
        x, y = (self.x_test, self.y_test) if split == "test" else (self.x_train, self.y_train)
        with torch.no_grad(), self.model_lock:
            return float((self.model(x).argmax(1) == y).float().mean())

    def state_dict(self) -> dict[str, torch.Tensor]:
        with self.model_lock:
            return {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}

    @property
    def edits(self) -> list[PlaneEdit]:
        """The learner's hand edits given back to this run, oldest first (its history of edits)."""
        return list(self._edits)

    def apply_edits(self, state: dict[str, torch.Tensor], edits: Sequence[PlaneEdit], epoch: int) -> None:
        """Give edited weights back to training: the network takes ``state`` (copied into its parameters in
        place, so the optimiser and its moments go on with them) and the edits join the run's history.
        Only while the run stands still (not started, or paused) at ``epoch``, the epoch the edits were made
        at; UserError otherwise."""
        if self.status not in (Status.READY, Status.PAUSED):
            raise UserError("plane_edit.pause_first")
        if not edits:
            raise UserError("plane_edit.no_edits")
        with torch.no_grad(), self.model_lock:
            if self._global_step != epoch:
                raise UserError("plane_edit.moved_on", epoch=epoch, now=self._global_step)
            own = self.model.state_dict()
            if set(state) != set(own) or any(state[k].shape != own[k].shape for k in own):
                raise UserError("plane_edit.wrong_shape")
            for key, value in own.items():
                value.copy_(state[key])
            self._edits.extend(edits)
        self.metrics.set_extra("edits", len(self._edits))

    # ----- the loop -------------------------------------------------------------------------
    def _prepare(self) -> None:
        self._pending: list[torch.Tensor] = []
        self._samples_since_sync = 0

    def _diverged_message(self, step: int) -> tuple[str, dict[str, Any]]:
        return "plane.msg_diverged", {"epoch": step, "lr": self.lr}

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return plane_loss(out, y, self.regression)

    def _penalty(self) -> torch.Tensor | None:
        cfg = self.config
        if cfg.regularization == "none" or cfg.reg_rate == 0:
            return None
        if cfg.regularization == "l1":
            return cfg.reg_rate * sum(d.weight.abs().sum() for d in self._dense)  # type: ignore[return-value]
        return cfg.reg_rate / 2 * sum(d.weight.pow(2).sum() for d in self._dense)  # type: ignore[return-value]

    def _measure(self) -> torch.Tensor:
        """[train loss, test loss, train acc, test acc] of the network now (a device tensor, no sync)."""
        out_train, out_test = self.model(self.x_train), self.model(self.x_test)
        losses = [self._loss(out_train, self.y_train), self._loss(out_test, self.y_test)]
        if self.regression:
            nan = torch.full((), float("nan"), device=self.device)
            return torch.stack([*losses, nan, nan])
        accs = [(out_train.argmax(1) == self.y_train).float().mean(), (out_test.argmax(1) == self.y_test).float().mean()]
        return torch.stack([*losses, *accs]).detach()

    def _loop(self) -> None:
        cfg = self.config
        gen = torch.Generator(device=self.device).manual_seed(cfg.seed)
        n = len(self.y_train)
        batch = min(cfg.batch_size, n)
        self.model.train()
        self._call("on_start")
        while self._global_step < self.total_steps:
            self._gate()
            self._regain_slot()
            single = self._single_step
            order = torch.randperm(n, generator=gen, device=self.device)
            for start in range(0, n, batch * LOCK_EVERY):
                with self.model_lock:
                    for first in range(start, min(n, start + batch * LOCK_EVERY), batch):
                        idx = order[first:first + batch]
                        loss = self._loss(self.model(self.x_train[idx]), self.y_train[idx])
                        penalty = self._penalty()
                        if penalty is not None:
                            loss = loss + penalty
                        self.optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                        self.optimizer.step()
            with torch.no_grad(), self.model_lock:
                self._pending.append(self._measure())
                self._global_step += 1
            self._samples_since_sync += n
            self._call("after_step", self._global_step)
            window = self.sync_every if self._pace is None else self._sync_window()
            if (single or len(self._pending) >= window or self._global_step == self.total_steps
                    or time.perf_counter() - self._sync_time >= MAX_SYNC_S):
                self._single_step = False
                self._flush()

    def _flush(self) -> None:
        """The epochs' numbers to the host (the only sync in the loop); a non-finite loss ends the run."""
        k = len(self._pending)
        if k == 0:
            return
        rows = torch.stack(self._pending).cpu().numpy().astype(np.float64)
        self._pending.clear()
        first = self._global_step - k + 1
        with self._curves_lock:
            for i, row in enumerate(rows):
                self._curves.append(first + i, row)
            self._synced += 1
        now = time.perf_counter()
        seconds = max(now - self._sync_time, 1e-9)
        rate = self._samples_since_sync / seconds
        self._sync_time, self._samples_since_sync = now, 0
        self.metrics.update_progress(
            global_step=self._global_step, epoch=self._global_step, step_in_epoch=0, samples_per_s=rate,
            elapsed_s=time.time() - (self.started_at or time.time()), lr=self.lr,
            eta_s=(self.total_steps - self._global_step) * seconds / k if self._pace is None else None)
        bad = np.flatnonzero(~np.isfinite(rows[:, :2]).all(1))
        if len(bad):
            raise Diverged(first + int(bad[0]))
        self._call("on_sync")
