"""One training step in slow motion, and weights in the learner's hands.

:func:`record_next_step` takes a paused run of dense layers (through its :class:`~dlplay.classify.handle.RunHandle`
only) and computes the step it will take next, phase by phase, with the dense engine's own functions
(:mod:`dlplay.nn.engine`, the tutorial's equations; rows are examples, W is [out, in]):

    forward    z_l = W_l a_{l-1} + b_l,   a_l = f(z_l)               (layer by layer)
    loss       J = −mean log softmax(z_L)[y]
    backward   δ_L = (softmax(z_L) − onehot(y)) / batch,   δ_l = (W_{l+1}ᵀ δ_{l+1}) ⊙ f′(z_l)
    gradients  ∂J/∂W_l = δ_l a_{l-1}ᵀ   (the issue's a δᵀ, transposed to W's [out, in]),   ∂J/∂b_l = Σ δ_l
    update     W ← W − η ∂J/∂W (SGD), or the optimiser's rule: Adam's m, v, bias correction m̂, v̂ …

The batch is the run's own next batch (its permutation, its place in the epoch, from the run's
:class:`~dlplay.classify.fork.ResumeState`), the weights and optimiser state are the run's. :func:`take_step`
then lets the run take that step itself and checks that it lands on the recorded weights: the replay
IS the run's next step, and the run goes on from there.

:class:`NeuronEditor` is the hand editor: one neuron's incoming weights and bias typed or dragged, z,
a, the loss and the prediction recomputed from that layer on; undo; :func:`give_back` turns the
edited weights into a fork plan (dlplay/classify/fork.py) whose origin says "edit", so the run's record and
history carry it.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F

from dlplay.classify.fork import ForkPlan, Origin, ResumeState
from dlplay.data.datasets import normalize_with
from dlplay.errors import UserError
from dlplay.nn import engine
from dlplay.nn.activations import ACTIVATIONS
from dlplay.nn.engine import supports
from dlplay.nn.model import Block, Net
from dlplay.nn.optimizers import lr_factor

# the phases of one step, in the order they play
FORWARD, LOSS, BACKWARD, GRAD, UPDATE = "forward", "loss", "backward", "grad", "update"
PHASE_KINDS = (FORWARD, LOSS, BACKWARD, GRAD, UPDATE)
STEP_TIMEOUT_S = 60.0
TOLERANCE = 1e-5  # |recorded − run's| after the step (float32, the fused kernel's rounding differs)


@dataclass(frozen=True)
class Phase:
    """One phase of the replay: ``kind`` and the block it is about (−1: the loss, no block)."""

    kind: str
    layer: int


def phases(n_layers: int) -> list[Phase]:
    """Forward layer by layer, the loss, δ from the output back, the gradients, the update."""
    out = [Phase(FORWARD, i) for i in range(n_layers)] + [Phase(LOSS, -1)]
    out += [Phase(BACKWARD, i) for i in range(n_layers - 1, -1, -1)]
    out += [Phase(GRAD, i) for i in range(n_layers - 1, -1, -1)]
    out += [Phase(UPDATE, i) for i in range(n_layers)]
    return out


@dataclass
class ParamUpdate:
    """The update of one parameter tensor: before, ∂J/∂θ, after, and the optimiser's state around it.

    ``state`` holds what the rule reads and writes: ``m_prev``/``m``/``v_prev``/``v``/``m_hat``/``v_hat``
    (Adam, AdamW), ``buf_prev``/``buf`` (momentum), ``v_prev``/``v`` (RMSprop)."""

    before: torch.Tensor
    grad: torch.Tensor
    after: torch.Tensor
    state: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class LayerStep:
    """One dense block's numbers in the step (batch rows)."""

    name: str
    activation: str
    a_prev: torch.Tensor  # [B, in] the layer's input (after the dropout below it)
    z: torch.Tensor  # [B, out]
    a: torch.Tensor  # [B, out] f(z) (the output layer: z itself; its probabilities are ``StepRecord.probs``)
    mask: torch.Tensor | None  # dropout mask / (1 − p) applied to a (None: no dropout)
    upstream: torch.Tensor | None  # [B, out] Wᵀδ of the layer above (None: the output layer)
    delta: torch.Tensor  # [B, out]
    weight: ParamUpdate
    bias: ParamUpdate | None


@dataclass
class StepRecord:
    """One real training step of a run, recorded phase by phase (CPU float32 tensors)."""

    run_id: str
    step: int  # the run's step this is (1-based: the run had done step − 1)
    epoch: int
    indices: torch.Tensor  # the batch's images, as indices into the run's training split
    images: torch.Tensor  # [B, H, W] uint8
    labels: torch.Tensor  # [B]
    x: torch.Tensor  # [B, in] the normalised input
    optimizer: str
    lr: float  # η for this step (the schedule applied)
    hyper: dict[str, float]  # betas, eps, weight decay, momentum, alpha: what the rule uses
    t: int  # the optimiser's step count after this step (Adam's bias correction)
    layers: list[LayerStep]
    logits: torch.Tensor  # [B, classes]
    probs: torch.Tensor
    loss: float
    seconds: dict[str, float] = field(default_factory=dict)  # time per phase kind

    @property
    def phases(self) -> list[Phase]:
        return phases(len(self.layers))

    def state_after(self) -> dict[str, torch.Tensor]:
        """The weights the step ends with, as the run's state dict names them."""
        out: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.layers):
            out[f"blocks.{i}.op.weight"] = layer.weight.after
            if layer.bias is not None:
                out[f"blocks.{i}.op.bias"] = layer.bias.after
        return out

    def state_before(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.layers):
            out[f"blocks.{i}.op.weight"] = layer.weight.before
            if layer.bias is not None:
                out[f"blocks.{i}.op.bias"] = layer.bias.before
        return out


def dense_blocks(net: Net) -> list[Block]:
    """The network's blocks, typed (a dense network's: each ``op`` an ``nn.Linear``)."""
    return cast("list[Block]", list(net.blocks))


def _linear(block: Block) -> torch.nn.Linear:
    return cast(torch.nn.Linear, block.op)


def net_from(spec: Any, state: dict[str, torch.Tensor]) -> Net:
    """A CPU network with these weights, built on the meta device first: no initialisation draws from
    the global generator, which a paused run's next dropout masks come from."""
    with torch.device("meta"):
        net = Net(spec)
    net = net.to_empty(device="cpu")
    net.load_state_dict(state, strict=True)
    return net.eval()


# ----- the run's next batch --------------------------------------------------------------------------
def check_dense(handle: Any) -> None:
    """A UserError unless the run is a network of dense layers without augmentation."""
    with torch.device("meta"):
        net = Net(handle.spec)
    if not supports(net):
        raise UserError("slowmo.not_dense")
    if not handle.config.augment.is_off:
        raise UserError("slowmo.augmented")


def next_batch(handle: Any, state: ResumeState) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(indices into the training split, uint8 images, labels) of the batch the run trains on after
    ``state``: the rest of its epoch's permutation, or the next epoch's first batch."""
    images, labels, _ = handle.split_data("train")
    n = len(labels)
    perm = state.perm
    if perm is None:  # the epoch's permutation is not drawn yet: the run's generator draws it next
        gen = torch.Generator()
        gen.set_state(state.gen_state)
        perm = torch.randperm(n, generator=gen)
    idx = perm[state.consumed: state.consumed + handle.config.batch_size].cpu()
    return idx, images[idx], labels[idx]


def _opt_state(state: ResumeState, n_params: int) -> tuple[list[dict[str, torch.Tensor]], dict[str, Any]]:
    """Per parameter (model.parameters() order) its optimiser state, and the param group's settings."""
    sd = state.optimizer_state
    group = dict(sd["param_groups"][0]) if sd.get("param_groups") else {}
    ids = group.get("params", list(range(n_params)))
    per = [dict(sd.get("state", {}).get(pid, {})) for pid in ids]
    return per, group


def record_next_step(handle: Any) -> StepRecord:
    """The step a paused run takes next, recorded phase by phase (UserError: not dense, training, done)."""
    check_dense(handle)
    if handle.status in ("running", "queued"):
        raise UserError("slowmo.pause_first")
    done = int(handle.snapshot().progress.global_step)
    if done >= handle.total_steps:
        raise UserError("slowmo.run_done")
    state = handle.resume_state(done)
    idx, images, labels = next_batch(handle, state)
    info = handle.dataset_info
    x = normalize_with(images, torch.tensor(-info.mean / info.std, dtype=torch.float32), 1.0 / (255.0 * info.std))
    net = net_from(handle.spec, state.model_state)
    lr = state.base_lr * lr_factor(handle.config.schedule, done + 1, handle.total_steps)
    per, group = _opt_state(state, len(list(net.parameters())))
    if state.optimizer != handle.config.optimizer:
        per = [{} for _ in per]
    dropout = torch.Generator()
    dropout.set_state(state.rng_state)
    rec = compute_step(net, x.reshape(len(x), -1), labels, handle.config.optimizer, per, group, lr, dropout)
    return dataclasses.replace(rec, run_id=handle.run_id, step=done + 1, epoch=state.epoch, indices=idx,
                               images=images)


# ----- the step itself: the engine's equations -----------------------------------------------------
def compute_step(net: Net, x: torch.Tensor, y: torch.Tensor, optimizer: str, opt_state: list[dict[str, Any]],
                 group: dict[str, Any], lr: float, dropout_gen: torch.Generator | None = None) -> StepRecord:
    """Forward, loss, backward, gradients and update of one batch, with the dense engine's functions.

    ``opt_state``: per parameter the optimiser's state before the step (empty: its first step);
    ``group``: its param group (betas, eps, weight_decay, momentum, alpha)."""
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    blocks = dense_blocks(net)
    a = x.detach().float()
    fwd: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]] = []  # a_prev, z, f(z), mask
    with torch.no_grad():
        for i, block in enumerate(blocks):
            w, b = _linear(block).weight.detach(), _linear(block).bias
            act = ACTIVATIONS[block.activation_name]
            z, fz = engine.layer_forward(a, w.t(), None if b is None else b.detach(), act.module())
            mask = None
            p = block.drop.p if isinstance(block.drop, torch.nn.Dropout) else 0.0
            if p > 0 and i < len(blocks) - 1:
                mask = torch.empty_like(fz).bernoulli_(1.0 - p, generator=dropout_gen).div_(1.0 - p)
            fwd.append((a, z, fz, mask))
            a = fz * mask if mask is not None else fz
        seconds[FORWARD] = time.perf_counter() - t0
        t1 = time.perf_counter()
        logits = fwd[-1][1]
        log_p = torch.log_softmax(logits, 1)
        loss = float(F.nll_loss(log_p, y))
        seconds[LOSS] = time.perf_counter() - t1
        t1 = time.perf_counter()
        deltas: list[torch.Tensor] = [torch.empty(0)] * len(blocks)
        upstreams: list[torch.Tensor | None] = [None] * len(blocks)
        delta = engine.output_delta(log_p, y)
        deltas[-1] = delta
        for i in range(len(blocks) - 1, 0, -1):
            back = engine.back_project(delta, _linear(blocks[i]).weight.detach())
            upstreams[i - 1] = back.clone()
            _, _, fz, mask = fwd[i - 1]
            if mask is not None:
                back = back * mask
            delta = engine.times_fprime(back.clone(), ACTIVATIONS[blocks[i - 1].activation_name], fwd[i - 1][1], fz)
            deltas[i - 1] = delta
        seconds[BACKWARD] = time.perf_counter() - t1
        t1 = time.perf_counter()
        grads = []
        for i, block in enumerate(blocks):
            gw = engine.weight_grad(deltas[i], fwd[i][0])
            gb = engine.bias_grad(deltas[i]) if _linear(block).bias is not None else None
            grads.append((gw, gb))
        seconds[GRAD] = time.perf_counter() - t1
        t1 = time.perf_counter()
        params = [p.detach() for p in net.parameters()]
        flat_grads = [g for pair in grads for g in pair if g is not None]
        rule = UPDATE_RULES.get(optimizer)
        if rule is None:
            raise UserError("slowmo.optimizer", optimizer=optimizer)
        hyper = _hyper(optimizer, group)
        t = int(float(opt_state[0].get("step", 0))) + 1 if opt_state else 1
        updates = [rule(p.clone(), g, st, lr, hyper, t) for p, g, st in zip(params, flat_grads, opt_state)]
        seconds[UPDATE] = time.perf_counter() - t1
    layers, k = [], 0
    for i, block in enumerate(blocks):
        wu = updates[k]
        k += 1
        bu = None
        if _linear(block).bias is not None:
            bu = updates[k]
            k += 1
        a_prev, z, fz, mask = fwd[i]
        layers.append(LayerStep(block.name, block.activation_name, a_prev, z, fz, mask, upstreams[i], deltas[i], wu, bu))
    return StepRecord(run_id="", step=0, epoch=0, indices=torch.arange(len(y)), images=torch.empty(0),
                      labels=y.clone(), x=x, optimizer=optimizer, lr=float(lr), hyper=hyper, t=t, layers=layers,
                      logits=logits, probs=log_p.exp(), loss=loss, seconds=seconds)


def _hyper(optimizer: str, group: dict[str, Any]) -> dict[str, float]:
    betas = group.get("betas", (0.9, 0.999))
    return {"beta1": float(betas[0]), "beta2": float(betas[1]), "eps": float(group.get("eps", 1e-8)),
            "weight_decay": float(group.get("weight_decay", 0.0)),
            "momentum": float(group.get("momentum", 0.9 if optimizer == "momentum" else 0.0)),
            "alpha": float(group.get("alpha", 0.99))}


UpdateRule = Callable[[torch.Tensor, torch.Tensor, dict[str, Any], float, dict[str, float], int], ParamUpdate]


def _sgd(p: torch.Tensor, g: torch.Tensor, st: dict[str, Any], lr: float, h: dict[str, float], t: int) -> ParamUpdate:
    """W ← W − η (∂J/∂W + λW)."""
    d = g + h["weight_decay"] * p if h["weight_decay"] else g
    return ParamUpdate(p, g, p - lr * d)


def _momentum(p: torch.Tensor, g: torch.Tensor, st: dict[str, Any], lr: float, h: dict[str, float], t: int) -> ParamUpdate:
    """buf ← μ buf + ∂J/∂W (the first step: buf = ∂J/∂W);  W ← W − η buf."""
    d = g + h["weight_decay"] * p if h["weight_decay"] else g
    prev = st.get("momentum_buffer")
    buf = d.clone() if prev is None else h["momentum"] * prev + d
    zero = torch.zeros_like(p)
    return ParamUpdate(p, g, p - lr * buf, {"buf_prev": zero if prev is None else prev.clone(), "buf": buf})


def _adam(p: torch.Tensor, g: torch.Tensor, st: dict[str, Any], lr: float, h: dict[str, float], t: int,
          decoupled: bool = False) -> ParamUpdate:
    """m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  m̂ = m/(1−β₁ᵗ);  v̂ = v/(1−β₂ᵗ);  W ← W − η m̂/(√v̂ + ε)."""
    b1, b2, eps, wd = h["beta1"], h["beta2"], h["eps"], h["weight_decay"]
    base = p
    if wd and decoupled:
        base = p * (1 - lr * wd)
    elif wd:
        g = g + wd * p
    m_prev = st.get("exp_avg", torch.zeros_like(p))
    v_prev = st.get("exp_avg_sq", torch.zeros_like(p))
    m = b1 * m_prev + (1 - b1) * g
    v = b2 * v_prev + (1 - b2) * g * g
    m_hat = m / (1 - b1**t)
    v_hat = v / (1 - b2**t)
    after = base - lr * m_hat / (v_hat.sqrt() + eps)
    return ParamUpdate(p, g, after, {"m_prev": m_prev.clone(), "m": m, "v_prev": v_prev.clone(), "v": v,
                                     "m_hat": m_hat, "v_hat": v_hat})


def _adamw(p: torch.Tensor, g: torch.Tensor, st: dict[str, Any], lr: float, h: dict[str, float], t: int) -> ParamUpdate:
    return _adam(p, g, st, lr, h, t, decoupled=True)


def _rmsprop(p: torch.Tensor, g: torch.Tensor, st: dict[str, Any], lr: float, h: dict[str, float], t: int) -> ParamUpdate:
    """v ← αv + (1−α)g²;  W ← W − η g/(√v + ε)."""
    d = g + h["weight_decay"] * p if h["weight_decay"] else g
    v_prev = st.get("square_avg", torch.zeros_like(p))
    v = h["alpha"] * v_prev + (1 - h["alpha"]) * d * d
    return ParamUpdate(p, g, p - lr * d / (v.sqrt() + h["eps"]), {"v_prev": v_prev.clone(), "v": v})


UPDATE_RULES: dict[str, UpdateRule] = {"sgd": _sgd, "momentum": _momentum, "adam": _adam, "adamw": _adamw,
                                       "rmsprop": _rmsprop}


# ----- the run takes the step ------------------------------------------------------------------------
def take_step(handle: Any, record: StepRecord, timeout: float = STEP_TIMEOUT_S) -> float:
    """The run takes its next step itself; the largest |run's weight − recorded weight| afterwards.

    A UserError when the run is elsewhere (another step came first) or lands somewhere else."""
    done = int(handle.snapshot().progress.global_step)
    if done != record.step - 1 or handle.run_id != record.run_id:
        raise UserError("slowmo.stale", step=record.step - 1, now=done)
    handle.step(1)
    end = time.monotonic() + timeout
    while int(handle.snapshot().progress.global_step) < record.step:
        if time.monotonic() > end or not handle.is_alive:
            raise UserError("slowmo.step_timeout")
        time.sleep(0.01)
    return max_difference(handle.state_dict(), record.state_after())


def max_difference(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> float:
    """The largest |difference| over the entries ``expected`` names."""
    return max(float((state[k].float() - v.float()).abs().max()) for k, v in expected.items())


# ----- weights in the learner's hands ----------------------------------------------------------------
@dataclass(frozen=True)
class Edit:
    """One hand edit: block ``layer``, neuron ``unit``, input ``index`` (None: the bias), old → new."""

    layer: int
    unit: int
    index: int | None
    old: float
    new: float

    @property
    def key(self) -> str:
        return f"blocks.{self.layer}.op.{'bias' if self.index is None else 'weight'}"

    def text(self) -> str:
        where = f"b[{self.unit}]" if self.index is None else f"w[{self.unit},{self.index}]"
        return f"L{self.layer + 1} {where} {self.old:.4g}"


@dataclass(frozen=True)
class EditView:
    """What an edit changes, for the editor's images: the neuron's z and a on each image, the batch's
    loss and accuracy, and every image's ten probabilities."""

    z: np.ndarray  # [n] the edited neuron's z on each image
    a: np.ndarray  # [n]
    loss: float
    accuracy: float
    probs: np.ndarray  # [n, classes]
    seconds: float  # how long the recomputation took


class NeuronEditor:
    """Edit one neuron's incoming weights and bias of a dense network by hand, and see its effect live.

    Works on a copy of the weights (``state``) and a fixed set of images: the input of the edited
    layer is computed once, so an edit recomputes only that layer and the ones above it."""

    def __init__(self, spec: Any, state: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                 layer: int, unit: int):
        self.net = net_from(spec, state)
        self.original = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
        blocks = dense_blocks(self.net)
        if not 0 <= layer < len(blocks) or not 0 <= unit < _linear(blocks[layer]).out_features:
            raise UserError("slowmo.bad_neuron", layer=layer + 1, unit=unit)
        self.layer, self.unit = layer, unit
        self.x, self.y = x.reshape(len(x), -1).float(), y
        self.history: list[Edit] = []
        with torch.no_grad():
            a = self.x
            for block in blocks[:layer]:
                a = block.act(block.op(a))
        self.a_prev = a  # [n, in] the edited layer's input (eval mode: no dropout)

    @property
    def weight(self) -> torch.Tensor:
        return _linear(dense_blocks(self.net)[self.layer]).weight.detach()

    @property
    def bias(self) -> torch.Tensor:
        return _linear(dense_blocks(self.net)[self.layer]).bias.detach()

    def value(self, index: int | None) -> float:
        return float(self.bias[self.unit] if index is None else self.weight[self.unit, index])

    def set(self, index: int | None, value: float) -> EditView:
        """Set input ``index``'s weight (None: the bias) of the neuron to ``value``; recompute."""
        if index is not None and not 0 <= index < self.weight.shape[1]:
            raise UserError("slowmo.bad_input", index=index, n=self.weight.shape[1])
        if not math.isfinite(value):
            raise UserError("slowmo.bad_value")
        old = self.value(index)
        if value != old:
            self._write(index, value)
            self.history.append(Edit(self.layer, self.unit, index, old, float(value)))
        return self.view()

    def undo(self) -> EditView:
        """Take the latest edit back."""
        if self.history:
            last = self.history.pop()
            self._write(last.index, last.old)
        return self.view()

    def _write(self, index: int | None, value: float) -> None:
        with torch.no_grad():
            if index is None:
                _linear(dense_blocks(self.net)[self.layer]).bias[self.unit] = value
            else:
                _linear(dense_blocks(self.net)[self.layer]).weight[self.unit, index] = value

    def view(self) -> EditView:
        t0 = time.perf_counter()
        blocks = dense_blocks(self.net)
        with torch.no_grad():
            z = _linear(blocks[self.layer])(self.a_prev)
            a = blocks[self.layer].act(z)
            zj, aj = z[:, self.unit].clone(), a[:, self.unit].clone()
            for block in blocks[self.layer + 1:]:
                a = block.act(block.op(a))
            log_p = torch.log_softmax(a, 1)
            loss = float(F.nll_loss(log_p, self.y))
            acc = float((a.argmax(1) == self.y).float().mean())
        return EditView(zj.numpy(), aj.numpy(), loss, acc, log_p.exp().numpy(), time.perf_counter() - t0)

    def state(self) -> dict[str, torch.Tensor]:
        """The edited weights (a copy)."""
        return {k: v.detach().clone() for k, v in self.net.state_dict().items()}

    def changed(self) -> list[tuple[str, tuple[int, ...]]]:
        """Which entries differ from the weights the editor started with: (state key, index)."""
        out = []
        for k, v in self.net.state_dict().items():
            for idx in torch.nonzero(v != self.original[k]).tolist():
                out.append((k, tuple(idx)))
        return out


def give_back(handle: Any, editor: NeuronEditor) -> ForkPlan:
    """A fork plan that carries the run on from its current step with the edited weights (its optimiser
    state, batches and generators unchanged); its origin says "edit" and what was edited."""
    if handle.status in ("running", "queued"):
        raise UserError("slowmo.pause_first")
    if not editor.history:
        raise UserError("slowmo.no_edits")
    done = int(handle.snapshot().progress.global_step)
    state = handle.resume_state(done)
    first, last = editor.history[0], editor.history[-1]
    old = first.text() + (f" (+{len(editor.history) - 1})" if len(editor.history) > 1 else "")
    origin: Origin = (handle.run_id, done, "edit", old[:40], f"{last.new:.4g}")
    start = dataclasses.replace(state, model_state=editor.state(), origin=origin)
    config = dataclasses.replace(handle.config, lr=state.base_lr)
    return ForkPlan(handle.spec, config, start)


# ----- one neuron's numbers in one phase, as LaTeX -----------------------------------------------------
def _n(value: float) -> str:
    from dlplay.learn.latex import num

    text = num(float(value))
    return f"({text})" if text.startswith("-") else text


def _rows(lhs: str, parts: list[str], total: str, per_row: int = 2) -> str:
    """``lhs = p1 + p2 + … = total`` broken after every ``per_row`` terms, so that it fits the page."""
    rows = [" + ".join(parts[i: i + per_row]) for i in range(0, len(parts), per_row)]
    body = r" \\ &\quad + ".join(rows)
    return rf"\begin{{aligned}} {lhs} &= {body} \\ &= {total} \end{{aligned}}"


def top_input(record: StepRecord, layer: int, unit: int) -> int:
    """The input whose weight into ``unit`` has the largest |∂J/∂w| this step."""
    return int(record.layers[layer].weight.grad[unit].abs().argmax())


def phase_latex(record: StepRecord, phase: Phase, layer: int, unit: int, example: int = 0,
                index: int | None = None, k: int = 3) -> list[str]:
    """The formula that produced neuron ``unit`` of block ``layer``'s number in ``phase``, with the real
    numbers (``example``: which image of the batch; ``index``: which incoming weight, default
    :func:`top_input`)."""
    from dlplay.learn.latex import num

    L = record.layers[layer]
    l, j, b = layer + 1, unit, example
    n_out = len(record.layers)
    is_out = layer == n_out - 1
    B = len(record.labels)
    i_w = top_input(record, layer, unit) if index is None else index
    if phase.kind == FORWARD:
        w = L.weight.before[j].double()
        a_prev = L.a_prev[b].double()
        prod = w * a_prev
        top = torch.argsort(-prod.abs())[:k].tolist()
        rest = float(prod.sum() - prod[top].sum())
        parts = [rf"{_n(float(w[i]))}\cdot{_n(float(a_prev[i]))}" for i in top]
        parts.append(rf"\underbrace{{{_n(rest)}}}_{{\sum_{{i\notin T}}\,({len(prod) - len(top)})}}")
        bias = float(L.bias.before[j]) if L.bias is not None else 0.0
        parts.append(rf"\underbrace{{{_n(bias)}}}_{{b}}")
        lines = [rf"z^{{({l})}}_{{{j}}} = \sum_i w^{{({l})}}_{{{j},i}}\, a^{{({l - 1})}}_i + b^{{({l})}}_{{{j}}}",
                 _rows(rf"z^{{({l})}}_{{{j}}}", parts, num(float(L.z[b, j])))]
        if is_out:
            lines.append(rf"p_{{{j}}} = \frac{{e^{{z_{{{j}}}}}}}{{\sum_k e^{{z_k}}}} = {num(float(record.probs[b, j]))}")
        else:
            lines.append(rf"a^{{({l})}}_{{{j}}} = {ACTIVATIONS[L.activation].latex}({num(float(L.z[b, j]))}) = "
                         rf"{num(float(L.a[b, j]))}")
            if L.mask is not None:
                lines.append(rf"a^{{({l})}}_{{{j}}} \cdot m/(1-p) = {num(float(L.a[b, j]))}\cdot{num(float(L.mask[b, j]))}"
                             rf" = {num(float(L.a[b, j] * L.mask[b, j]))}")
        return lines
    if phase.kind == LOSS:
        yb = int(record.labels[b])
        pb = float(record.probs[b, yb])
        return [r"J = -\frac{1}{B}\sum_{b=1}^{B} \log p^{(b)}_{y_b}",
                rf"-\log p^{{({b + 1})}}_{{{yb}}} = -\log {num(pb)} = {num(-float(np.log(pb)))}",
                rf"J = \tfrac{{1}}{{{B}}}(\ldots) = {num(record.loss)}"]
    d = rf"\delta^{{({l})}}_{{{j}}}"
    if phase.kind == BACKWARD:
        if is_out:
            y = float(int(record.labels[b]) == j)
            return [rf"{d} = \frac{{p_{{{j}}} - y_{{{j}}}}}{{B}} = \frac{{{num(float(record.probs[b, j]))} - {num(y)}}}{{{B}}}"
                    rf" = {num(float(L.delta[b, j]))}"]
        above = record.layers[layer + 1]
        w = above.weight.before[:, j].double()
        dn = above.delta[b].double()
        prod = w * dn
        top = torch.argsort(-prod.abs())[:k].tolist()
        rest = float(prod.sum() - prod[top].sum())
        up = float(L.upstream[b, j]) if L.upstream is not None else float(prod.sum())
        parts = [rf"{_n(float(w[i]))}\cdot{_n(float(dn[i]))}" for i in top]
        parts.append(rf"\underbrace{{{_n(rest)}}}_{{\sum_{{k\notin T}}\,({len(prod) - len(top)})}}")
        fp = float(ACTIVATIONS[L.activation].derivative(L.z[b, j].double().reshape(1))[0])
        mask = rf"\cdot {num(float(L.mask[b, j]))}" if L.mask is not None else ""
        return [rf"{d} = \Big(\sum_k w^{{({l + 1})}}_{{k,{j}}}\, \delta^{{({l + 1})}}_k\Big)\, f'(z^{{({l})}}_{{{j}}})",
                _rows(rf"\textstyle\sum_k w_{{k,{j}}}\delta_k", parts, num(up)),
                rf"{d} = {_n(up)}{mask}\cdot {ACTIVATIONS[L.activation].latex}'({num(float(L.z[b, j]))}) = "
                rf"{_n(up)}{mask}\cdot{_n(fp)} = {num(float(L.delta[b, j]))}"]
    g = L.weight.grad
    if phase.kind == GRAD:
        mine = float(L.delta[b, j] * L.a_prev[b, i_w])
        lines = [rf"\frac{{\partial J}}{{\partial w^{{({l})}}_{{{j},{i_w}}}}} = \sum_b {d}^{{\,(b)}} a^{{({l - 1})(b)}}_{{{i_w}}}"
                 rf" = \underbrace{{{_n(float(L.delta[b, j]))}\cdot{_n(float(L.a_prev[b, i_w]))}}}_{{b={b + 1}}}"
                 rf" + \underbrace{{{_n(float(g[j, i_w]) - mine)}}}_{{\sum_{{b\ne {b + 1}}}\,({B - 1})}} = {num(float(g[j, i_w]))}"]
        if L.bias is not None:
            lines.append(rf"\frac{{\partial J}}{{\partial b^{{({l})}}_{{{j}}}}} = \sum_b {d}^{{\,(b)}} = {num(float(L.bias.grad[j]))}")
        return lines
    # the update of w_{j,i}
    u = L.weight
    w0, gi, w1 = float(u.before[j, i_w]), float(u.grad[j, i_w]), float(u.after[j, i_w])
    lr = num(record.lr)
    wname = rf"w^{{({l})}}_{{{j},{i_w}}}"
    h = record.hyper
    if record.optimizer in ("adam", "adamw"):
        st = {k: float(v[j, i_w]) for k, v in u.state.items()}
        b1, b2, t = h["beta1"], h["beta2"], record.t
        return [rf"m = \beta_1 m + (1-\beta_1)\,g = {num(b1)}\cdot{_n(st['m_prev'])} + {num(1 - b1)}\cdot{_n(gi)} = {num(st['m'])}",
                rf"v = \beta_2 v + (1-\beta_2)\,g^2 = {num(b2)}\cdot{_n(st['v_prev'])} + {num(1 - b2)}\cdot{_n(gi)}^2 = {num(st['v'])}",
                rf"\hat m = \frac{{m}}{{1-\beta_1^{{{t}}}}} = {num(st['m_hat'])},\quad \hat v = \frac{{v}}{{1-\beta_2^{{{t}}}}} = {num(st['v_hat'])}",
                rf"{wname} \leftarrow {wname} - \eta\,\frac{{\hat m}}{{\sqrt{{\hat v}}+\epsilon}} = {_n(w0)} - {lr}\cdot"
                rf"\frac{{{_n(st['m_hat'])}}}{{\sqrt{{{num(st['v_hat'])}}}+{num(h['eps'])}}} = {num(w1)}"]
    if record.optimizer == "momentum":
        st = {k: float(v[j, i_w]) for k, v in u.state.items()}
        return [rf"u = \mu u + g = {num(h['momentum'])}\cdot{_n(st['buf_prev'])} + {_n(gi)} = {num(st['buf'])}",
                rf"{wname} \leftarrow {wname} - \eta\, u = {_n(w0)} - {lr}\cdot{_n(st['buf'])} = {num(w1)}"]
    if record.optimizer == "rmsprop":
        st = {k: float(v[j, i_w]) for k, v in u.state.items()}
        return [rf"v = \alpha v + (1-\alpha)\,g^2 = {num(st['v'])}",
                rf"{wname} \leftarrow {wname} - \eta\,\frac{{g}}{{\sqrt{{v}}+\epsilon}} = {_n(w0)} - {lr}\cdot"
                rf"\frac{{{_n(gi)}}}{{\sqrt{{{num(st['v'])}}}+{num(h['eps'])}}} = {num(w1)}"]
    return [rf"{wname} \leftarrow {wname} - \eta\,\frac{{\partial J}}{{\partial {wname}}} = {_n(w0)} - {lr}\cdot{_n(gi)} = {num(w1)}"]


def neuron_value(record: StepRecord, phase: Phase, layer: int, example: int = 0) -> np.ndarray | None:
    """Per neuron of ``layer``, the number the diagram shows once ``phase`` has played (None: not yet):
    a (the output: p) after its forward phase, δ after its backward phase, ‖∂J/∂W row‖ after its
    gradient phase, ‖ΔW row‖ after its update."""
    L = record.layers[layer]
    shown = shown_kind(record, phase, layer)
    if shown == FORWARD:
        return (record.probs[example] if layer == len(record.layers) - 1 else L.a[example]).numpy()
    if shown == BACKWARD:
        return L.delta[example].numpy()
    if shown == GRAD:
        return L.weight.grad.norm(dim=1).numpy()
    if shown == UPDATE:
        return (L.weight.after - L.weight.before).norm(dim=1).numpy()
    return None


def shown_kind(record: StepRecord, phase: Phase, layer: int) -> str | None:
    """Which quantity :func:`neuron_value` shows for ``layer`` at ``phase``."""
    order = record.phases
    now = order.index(phase)
    for kind in (UPDATE, GRAD, BACKWARD, FORWARD):
        if order.index(Phase(kind, layer)) <= now:
            return kind
    return None
