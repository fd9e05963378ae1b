"""Watch a network learn: per-layer activation, gradient, update and weight statistics during training.

A :class:`Probe` is a :class:`~dlplay.classify.train.TrainingSession` callback. On step 1, every ``every``-th
step and the last step it measures, on the training device and without a host synchronisation:

- backward (the training batch): L2 norm of each layer's weight and bias gradients, the norm of
  δ = ∂L/∂z (the gradient of the layer's pre-activation output, the tutorial's δ: from the dense
  engine's own backward when it trains, else from a gradient hook), and a histogram of the weight
  gradients;
- the step: ‖W_after − W_before‖ / ‖W_before‖, the actual update whatever the optimiser;
- weights: L2 norm and a histogram;
- forward (a fixed batch of probe images, eval mode): activation mean and std, the fraction of
  dead units (ReLU family: never > 0 on any probe image) and of saturated activations
  (sigmoid/tanh near their limits), and the activations themselves for a heatmap;
- the first layer's weights (or kernels) as small images;
- a recurrent network: the gradient through time ‖∂L/∂h_t‖ for every step t of its first recurrent
  block, on the probe images (dlplay.nn.sequences.time_gradients; the latest probe only).

The device tensors wait until the session's next ``on_sync`` (already a host sync point), then
travel to the host in one copy, join a bounded history and are published as an immutable
:class:`ProbeSnapshot` via ``session.metrics.set_extra("probe", ...)``.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from dlplay.classify.callbacks import TrainingCallback
from dlplay.nn.activations import ACTIVATIONS
from dlplay.nn.layers import LAYER_KINDS
from dlplay.nn.model import Block, Net, eval_mode
from dlplay.nn.sequences import is_recurrent, time_gradients
from dlplay.run.metrics import StepSeries

# Per-layer statistics, in the order of the last axis of ProbeSnapshot.values.
METRICS = ("act_mean", "act_std", "dead", "saturated", "grad_w", "grad_b", "delta", "update_ratio", "weight_norm")
M = {name: i for i, name in enumerate(METRICS)}

# Which activations can have dead units or saturate, and how that is measured: dlplay.nn.activations.
PROBED_KINDS = tuple(kind.name for kind in LAYER_KINDS.values() if kind.learns)  # pooling has nothing to learn

DEFAULT_EVERY = 100  # steps between probes: a probe costs about one step, all told ~3% of the CPU time (bench/instrumentation.py)
DEFAULT_PROBE_IMAGES = 64
HIST_BINS = 32
HIST_CLIP_RMS = 4.0  # histogram range: ±min(max |x|, 4·rms); values beyond land in the outer bins
HIST_MAX_SAMPLES = 4096  # values per layer that enter a histogram (an evenly spaced fixed sample)
MAX_HEATMAP_UNITS = 256
MAX_FIRST_LAYER_UNITS = 64
HISTORY_CAPACITY = 1024
MAX_PENDING = 64  # probes waiting for on_sync before they are copied anyway


@dataclass(frozen=True)
class LayerMeta:
    """What the UI needs to label one probed layer."""

    name: str  # block name: dense1, conv1, ..., output
    kind: str
    activation: str
    units: int  # neurons (dense) or channels (conv / batchnorm)
    has_bias: bool

    @property
    def relu_family(self) -> bool:
        """Units of this layer can die (ReLU family)."""
        entry = ACTIVATIONS.get(self.activation)
        return entry is not None and entry.can_die

    @property
    def saturating(self) -> bool:
        entry = ACTIVATIONS.get(self.activation)
        return entry is not None and entry.saturates


@dataclass(frozen=True)
class ProbeSnapshot:
    """An immutable copy of everything the probe measured so far (arrays are read-only)."""

    layers: tuple[LayerMeta, ...]
    every: int
    steps: np.ndarray  # [T] global step of each recorded probe (averaged pairs keep the later step)
    values: np.ndarray  # [T, layers, len(METRICS)], NaN where a statistic does not apply
    stride: int  # probes averaged per recorded point (doubles when the history is full)
    probes: int  # probes taken in total
    last_step: int  # step of the latest probe (0: none yet)
    weight_hist: np.ndarray  # [layers, HIST_BINS] counts of the latest probe
    weight_edges: np.ndarray  # [layers, HIST_BINS + 1]
    grad_hist: np.ndarray
    grad_edges: np.ndarray
    heatmaps: tuple[np.ndarray, ...]  # per layer [probe images, units<=MAX_HEATMAP_UNITS] activations
    probe_labels: np.ndarray  # [probe images] true classes of the probe images
    first_layer: str | None  # name of the layer shown as images, None when its input is not an image
    first_weights: np.ndarray | None  # [units<=MAX_FIRST_LAYER_UNITS, h, w]
    time_grad: np.ndarray | None = None  # [steps] ‖∂L/∂h_t‖ of the latest probe (recurrent networks only)
    time_grad_step: int = 0  # the step it was measured at

    def series(self, metric: str, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of one statistic of one layer over time."""
        return self.steps, self.values[:, layer, M[metric]]

    def recent(self, metric: str, window: int = 5) -> np.ndarray:
        """Per layer, the median of a statistic over the last ``window`` recorded probes (NaN if none)."""
        if len(self.steps) == 0:
            return np.full(len(self.layers), np.nan)
        tail = self.values[-window:, :, M[metric]]
        with np.errstate(all="ignore"):
            out = np.full(len(self.layers), np.nan)
            for i in range(len(self.layers)):
                col = tail[:, i][np.isfinite(tail[:, i])]
                if len(col):
                    out[i] = float(np.median(col))
        return out


# ----- measurements (pure functions on tensors, no host sync) --------------------------------

def activation_stats(z: torch.Tensor, a: torch.Tensor, activation: str) -> torch.Tensor:
    """[mean, std, dead, saturated] of a layer's activations ``a`` (pre-activation ``z``) on a batch.

    mean/std: over all values (population std). dead: the fraction of units (dim 1: neurons or
    channels) whose z is never > 0 on any example or position (ReLU family only, else NaN).
    saturated: the fraction of values of ``a`` near the limits of sigmoid/tanh (else NaN).
    """
    a = a.detach().float()
    std, mean = torch.std_mean(a, correction=0)
    nan = torch.full((), math.nan, device=a.device)
    entry = ACTIVATIONS[activation]
    dead = entry.dead_fraction(z)
    saturated = entry.saturated_fraction(a)
    return torch.stack([mean, std, nan if dead is None else dead, nan if saturated is None else saturated])


class HistogramPlan:
    """Histograms of a fixed list of tensors (one per layer, shapes fixed) in a handful of device ops.

    Each tensor contributes an evenly strided sample of at most ``max_samples`` of its values (all
    of them when it has fewer), so the cost does not grow with the model. Range per tensor:
    ±min(max |x|, 4·rms(x)); values beyond land in the outermost of ``bins`` equal bins.

    The samples sit as rows of one zero-padded matrix, so every statistic is one op along its rows;
    the padding zeros all fall into the middle bin and are taken out of it again at the end.
    """

    def __init__(self, numels: list[int], bins: int = HIST_BINS, max_samples: int = HIST_MAX_SAMPLES,
                 device: torch.device | str = "cpu"):
        self.bins = bins
        self.numels = list(numels)
        self.strides = [max(1, math.ceil(n / max_samples)) for n in self.numels]
        counts = [math.ceil(n / s) for n, s in zip(self.numels, self.strides)]
        width = max(counts, default=1)
        self.samples = torch.tensor(counts, dtype=torch.float32, device=device)
        self.padding = torch.tensor([width - c for c in counts], dtype=torch.float32, device=device)
        self.bin_offset = (torch.arange(len(counts), device=device) * bins)[:, None]
        self.ones = torch.ones(len(counts) * width, device=device)

    def __call__(self, tensors: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(counts [tensors, bins], limits [tensors]); stays on the tensors' device."""
        n_layers, bins = len(self.numels), self.bins
        rows = [t.detach().reshape(-1)[::s].float() for t, s in zip(tensors, self.strides)]
        x = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)  # [tensors, width], zero-padded
        amax = x.abs().amax(dim=1)
        rms = torch.linalg.vector_norm(x, dim=1) / self.samples.clamp_min(1.0).sqrt()
        limits = torch.minimum(amax, HIST_CLIP_RMS * rms).clamp_min(1e-12)
        pos = x.div_(limits[:, None]).add_(1.0).mul_(bins / 2).floor_().clamp_(0, bins - 1).long() + self.bin_offset
        counts = torch.zeros(n_layers * bins, device=x.device).index_add_(0, pos.reshape(-1), self.ones)
        counts = counts.view(n_layers, bins)
        counts[:, bins // 2] -= self.padding  # a padding zero lands at floor((0 + 1) * bins / 2)
        return counts, limits


def histogram(x: torch.Tensor, bins: int = HIST_BINS) -> tuple[torch.Tensor, torch.Tensor]:
    """(counts [bins], limit) of all values of one tensor, on its device (see HistogramPlan)."""
    plan = HistogramPlan([x.numel()], bins, max_samples=max(1, x.numel()), device=x.device)
    counts, limits = plan([x])
    return counts[0], limits[0]


def _norms(tensors: list[torch.Tensor]) -> torch.Tensor:
    """L2 norm of each tensor, as one device tensor [len(tensors)]."""
    if not tensors:
        return torch.zeros(0)
    return torch.stack(torch._foreach_norm([t.detach().float() for t in tensors]))


def _unit_matrix(a: torch.Tensor, max_units: int) -> torch.Tensor:
    """[images, units]: dense activations as they are, conv/BN2d channels averaged over positions."""
    a = a.detach().float()
    if a.dim() > 2:
        a = a.flatten(2).mean(dim=2)
    return a[:, :max_units]


def first_layer_images(net: Net) -> tuple[str, Any] | None:
    """(layer name, function weight -> [units, h, w]) for the first weight layer when it sees the
    image (possibly pooled): a conv layer's kernels, or a dense layer's weights reshaped to the image."""
    shapes = [tuple(net.spec.input_shape), *net.spec.shapes()]
    for block, in_shape in zip(cast("list[Block]", list(net.blocks)), shapes):
        if isinstance(block.op, nn.Conv2d):
            return block.name, lambda w: w[:MAX_FIRST_LAYER_UNITS].mean(dim=1)
        if isinstance(block.op, nn.Linear):
            if len(in_shape) != 3:
                return None
            c, h, wd = in_shape
            return block.name, lambda w: w[:MAX_FIRST_LAYER_UNITS].reshape(-1, c, h, wd).mean(dim=1)  # noqa: B023 (returned at once)
        if not isinstance(block.op, (nn.MaxPool2d, nn.AvgPool2d)):
            return None  # batchnorm first: no weights that look at pixels
    return None


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def probe_of(callbacks: Any) -> Probe | None:
    """The Probe among a session's ``callbacks``, if any."""
    return next((cb for cb in callbacks if isinstance(cb, Probe)), None)


@dataclass
class _Pending:
    step: int
    scalars: torch.Tensor  # [L, M] on device
    detail: list[torch.Tensor] | None  # hist counts, hist limits, heatmaps..., first weights (latest only)


class Probe(TrainingCallback):
    """TrainingSession callback measuring the network every ``every`` steps (see the module doc).

    ``probe_images``: how many of the first test images to use as the fixed probe batch, or a uint8
    tensor [n, H, W] of images. A probe costs about one or two training steps.
    """

    # set by on_start / _arm (declared for mypy)
    _blocks: list[Block]
    _engine: Any  # the session's dense engine (dlplay.nn.engine), or None
    _first_name: str | None
    _first_fn: Callable[[torch.Tensor], torch.Tensor] | None
    _first_block: Block | None
    _delta: list[torch.Tensor]
    _grads: torch.Tensor | None

    def __init__(self, every: int = DEFAULT_EVERY, probe_images: int | torch.Tensor = DEFAULT_PROBE_IMAGES,
                 *, bins: int = HIST_BINS, capacity: int = HISTORY_CAPACITY):
        self.set_every(every)
        self.probe_images = probe_images
        self.bins = bins
        self.capacity = capacity
        self._snapshot: ProbeSnapshot | None = None
        self._hooks: list[Any] = []
        self._armed_step = 0
        self._pending: list[_Pending] = []

    # ----- callbacks (training thread) ----------------------------------------------------------
    def on_start(self, session: Any) -> None:
        net = session.model
        self._session_total = session.total_steps
        self._device = next(net.parameters()).device
        self._blocks = [b for b in cast("list[Block]", list(net.blocks)) if b.kind in PROBED_KINDS and getattr(b.op, "weight", None) is not None]
        self._weights = [cast(torch.Tensor, b.op.weight) for b in self._blocks]  # Parameters (filtered above)
        self._bias_layers = [i for i, b in enumerate(self._blocks) if getattr(b.op, "bias", None) is not None]
        self._biases = [cast(torch.Tensor, self._blocks[i].op.bias) for i in self._bias_layers]
        self._bias_index = torch.tensor(self._bias_layers, dtype=torch.int64, device=self._device)  # no H2D copy later
        self._plan = HistogramPlan([w.numel() for w in self._weights] * 2, self.bins, device=self._device)
        self._needs_eval = any(isinstance(m, (nn.Dropout, nn.modules.batchnorm._BatchNorm)) for m in net.modules())
        self._block_index = [list(net.blocks).index(b) for b in self._blocks]
        # the dense engine (dlplay.nn.engine) builds no autograd graph: it hands δ over itself
        self._engine = getattr(session, "engine", None)
        self._probed = {bi: i for i, bi in enumerate(self._block_index)}
        self.layers = tuple(self._layer_meta(b) for b in self._blocks)
        if isinstance(self.probe_images, torch.Tensor):
            images, labels = self.probe_images, torch.full((len(self.probe_images),), -1, dtype=torch.int64)
        else:
            n = max(1, int(self.probe_images))
            images, labels = session.dataset.test_images[:n], session.dataset.test_labels[:n]
        self._x = session.normalize(images.to(self._device))
        self._labels = labels.cpu().numpy().copy()
        first = first_layer_images(net)
        self._first_name, self._first_fn = first if first else (None, None)
        self._first_block = next((b for b in self._blocks if b.name == self._first_name), None)
        self._recurrent = is_recurrent(net)
        self._target = labels.to(self._device) if (labels >= 0).all() else None  # drawn probe images: the prediction
        self.history = StepSeries(self.capacity, (len(self._blocks), len(METRICS)))
        self._probes = 0
        self._pending = []
        self._armed_step = 0
        self._last_detail: tuple[int, list[np.ndarray]] | None = None
        self._publish(session)
        self._arm(1)

    def after_backward(self, session: Any, step: int) -> None:
        if step != self._armed_step:
            return
        self._disarm()
        ws = self._weights
        gws = [w.grad if w.grad is not None else torch.zeros_like(w) for w in ws]
        grad_b = torch.full((len(ws),), math.nan, device=self._device)
        if self._bias_layers:
            gbs = [b.grad if b.grad is not None else torch.zeros_like(b) for b in self._biases]
            grad_b[self._bias_index] = _norms(gbs)
        self._grads = torch.stack([_norms(gws), grad_b, torch.stack(self._delta)], dim=1)
        self._before = [w.detach().clone() for w in ws]

    def after_step(self, session: Any, step: int) -> None:
        if step == self._armed_step and getattr(self, "_grads", None) is not None:
            self._measure(session, step)
        nxt = step + 1
        if nxt == 1 or nxt % self.every == 0 or nxt == self._session_total:
            self._arm(nxt)

    def on_sync(self, session: Any) -> None:
        if self._pending:
            self._flush(session)

    def on_end(self, session: Any) -> None:
        self._disarm()
        self._armed_step = 0
        if self._pending:
            self._flush(session)

    # ----- commands (any thread) ------------------------------------------------------------------
    def set_every(self, every: int) -> None:
        """Measure every ``every`` steps from now on (the next multiple of it is the next probe)."""
        if int(every) < 1:
            raise ValueError("every must be >= 1")
        self.every = int(every)  # one attribute store: the training thread reads it between steps

    # ----- reads ------------------------------------------------------------------------------
    def snapshot(self) -> ProbeSnapshot | None:
        """The latest published snapshot (also in ``session.snapshot().extras["probe"]``)."""
        return self._snapshot

    # ----- internals --------------------------------------------------------------------------
    @staticmethod
    def _layer_meta(block: Block) -> LayerMeta:
        op = block.op
        units = getattr(op, "out_features", 0) or getattr(op, "out_channels", 0) or getattr(op, "num_features", 0)
        return LayerMeta(block.name, block.kind, block.activation_name, int(units), getattr(op, "bias", None) is not None)

    def _arm(self, step: int) -> None:
        """Before the forward of a probe step: catch each layer's δ = ∂L/∂z during its backward."""
        self._disarm()
        self._armed_step = step
        self._grads = None
        self._delta = [torch.full((), math.nan, device=self._device) for _ in self._blocks]
        if self._engine is not None:
            self._engine.watch_delta(self._engine_delta)
            return
        for i, b in enumerate(self._blocks):
            self._hooks.append(b.op.register_forward_hook(self._delta_hook(i, b.op)))

    def _delta_hook(self, i: int, module: nn.Module):
        delta = self._delta

        def forward_hook(mod: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            # model_copy() deep-copies hooks too: only the training model's own forward counts
            if mod is not module or not isinstance(output, torch.Tensor) or not output.requires_grad:
                return

            def grad_hook(g: torch.Tensor) -> None:
                delta[i] = torch.linalg.vector_norm(g.detach().float())

            output.register_hook(grad_hook)

        return forward_hook

    def _engine_delta(self, block_index: int, delta: torch.Tensor) -> None:
        """The dense engine's δ of block ``block_index`` during the armed step's backward."""
        i = self._probed.get(block_index)
        if i is not None:
            self._delta[i] = torch.linalg.vector_norm(delta.float())

    def _disarm(self) -> None:
        if getattr(self, "_engine", None) is not None:
            self._engine.watch_delta(None)
        for h in self._hooks:
            h.remove()
        self._hooks = []

    @torch.no_grad()
    def _measure(self, session: Any, step: int) -> None:
        net = session.model
        ws = [w.detach() for w in self._weights]
        updates = _norms(list(torch._foreach_sub(ws, self._before))) / _norms(self._before).clamp_min(1e-30)
        weight_norms = _norms(ws)
        # weights after the step and the gradients of this step (optimisers leave .grad unchanged)
        gws = [w.grad if w.grad is not None else torch.zeros_like(w) for w in self._weights]
        hist_counts, hist_limits = self._plan(ws + gws)
        n = len(ws)
        self._before = []
        record: list = []
        if self._needs_eval:  # no dropout, batchnorm running statistics untouched
            with eval_mode(net):
                net(self._x, record)
        else:
            net(self._x, record)
        acts, heat = [], []
        for b, bi in zip(self._blocks, self._block_index):
            z, a = record[bi]
            acts.append(activation_stats(z, a, b.activation_name))
            heat.append(_unit_matrix(a, MAX_HEATMAP_UNITS))
        grads = cast(torch.Tensor, self._grads)  # after_step measures only once after_backward set them
        scalars = torch.cat([torch.stack(acts), grads, updates[:, None], weight_norms[:, None]], dim=1)
        detail = [hist_counts[:n], hist_limits[:n], hist_counts[n:], hist_limits[n:], *heat]
        if self._first_block is not None and self._first_fn is not None:  # (a first block comes with its fn)
            detail.append(self._first_fn(cast(torch.Tensor, self._first_block.op.weight).detach().float()))
        if self._recurrent:
            detail.append(self._time_gradients(net))
        self._grads = None
        if self._pending:
            self._pending[-1].detail = None  # only the latest probe's histograms and images are kept
        self._pending.append(_Pending(step, scalars, detail))
        self._probes += 1
        if len(self._pending) >= MAX_PENDING:
            self._flush(session)

    def _time_gradients(self, net: nn.Module) -> torch.Tensor:
        """‖∂L/∂h_t‖ per step on the probe images (eval mode), without touching the training gradients."""
        was_training = net.training
        net.eval()
        try:
            with torch.no_grad():
                target = self._target if self._target is not None else net(self._x).argmax(1)
            return time_gradients(net, self._x, target)
        finally:
            net.train(was_training)

    def _flush(self, session: Any) -> None:
        """One device->host copy for all pending probes, then publish a new snapshot."""
        pending, self._pending = self._pending, []
        tensors = [p.scalars for p in pending]
        detail = pending[-1].detail or []
        flat = torch.cat([t.reshape(-1) for t in tensors + detail]).cpu().numpy().astype(np.float64)
        offset = 0
        for p in pending:
            n = p.scalars.numel()
            self.history.append(p.step, flat[offset : offset + n].reshape(p.scalars.shape))
            offset += n
        host = []
        for t in detail:
            host.append(flat[offset : offset + t.numel()].reshape(t.shape).copy())
            offset += t.numel()
        if host:
            self._last_detail = (pending[-1].step, host)
        self._publish(session)

    def _publish(self, session: Any) -> None:
        n_layers, bins = len(self._blocks), self.bins
        steps, values = self.history.arrays()
        if self._last_detail is not None:
            step, d = self._last_detail
            w_hist, w_lim, g_hist, g_lim = d[:4]
            heat = tuple(_readonly(h) for h in d[4 : 4 + n_layers])
            first = _readonly(d[4 + n_layers]) if self._first_block is not None else None
            time_grad = _readonly(d[-1]) if self._recurrent else None
        else:
            step = 0
            w_hist = g_hist = np.zeros((n_layers, bins))
            w_lim = g_lim = np.ones(n_layers)
            heat, first = tuple(np.zeros((len(self._labels), 0)) for _ in range(n_layers)), None
            time_grad = None
        grid = np.linspace(-1.0, 1.0, bins + 1)
        snap = ProbeSnapshot(
            layers=self.layers,
            every=self.every,
            steps=_readonly(steps),
            values=_readonly(values),
            stride=self.history.stride,
            probes=self._probes,
            last_step=step,
            weight_hist=_readonly(np.array(w_hist)),
            weight_edges=_readonly(np.outer(w_lim, grid)),
            grad_hist=_readonly(np.array(g_hist)),
            grad_edges=_readonly(np.outer(g_lim, grid)),
            heatmaps=heat,
            probe_labels=_readonly(self._labels.copy()),
            first_layer=self._first_name if first is not None else None,
            first_weights=first,
            time_grad=time_grad,
            time_grad_step=step if time_grad is not None else 0,
        )
        self._snapshot = snap
        session.metrics.set_extra("probe", snap)
