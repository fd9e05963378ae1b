"""A recurrent network reading an image step by step: the recurrence unrolled by hand with the model's
own weights, and what the Sequences page shows from it.

- :func:`unroll`: the network's forward pass with its first recurrent block computed one step at a
  time (h_t = f(W_xh x_t + W_hh h_{t-1} + b) for a plain RNN; the LSTM's and GRU's gates), keeping
  every hidden state h_t in the autograd graph;
- :func:`time_gradients`: ‖∂L/∂h_t‖ for every step (the probe's gradient through time);
- :func:`early_predictions`: the classifier's probabilities after each step, run on h_t;
- :func:`memory`: the hidden state (units × steps, units ordered by the step where they first become
  strongly active) and, for an LSTM or GRU, its gates in the same row order;
- :func:`connectivity`: |∂(target logit)/∂x_t| per step (Distill's "connectivity");
- :func:`step_formula`: the forward formula of one unit at one step with real numbers, and the
  back-propagation-through-time δ recursion written out, checked against autograd.

Only the top layer of a stacked block is shown (its h_t is what the next layer reads). Pure torch +
numpy; no streamlit.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dlplay.nn.cells import CELLS, UnitNumbers
from dlplay.nn.layers import LAYER_KINDS, to_sequence


def sequence_block(net: Any) -> int | None:
    """Index of the network's first recurrent block, None when it has none."""
    return next((i for i, b in enumerate(net.blocks) if LAYER_KINDS[b.kind].sequence), None)


def sequence_length(net: Any) -> int:
    """Steps the first recurrent block reads (28 for rows or columns, 784 for pixels)."""
    index = sequence_block(net)
    if index is None:
        raise ValueError("the network has no recurrent layer")
    spec = net.spec
    shape = spec.input_shape if index == 0 else spec.shapes()[index - 1]
    return LAYER_KINDS[spec.layers[index].kind].input_view(tuple(shape), spec.order)[0]


def is_recurrent(net: Any) -> bool:
    return sequence_block(net) is not None


def _params(rnn: torch.nn.Module, layer: int) -> tuple[torch.Tensor, ...]:
    return tuple(getattr(rnn, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))


def cell_step(cell: str, nonlinearity: str, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None,
              w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor, b_hh: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, torch.Tensor]]:
    """One step of PyTorch's RNN/LSTM/GRU cell, written out: (h_t, c_t, {pre-activation "z" or gates})."""
    return CELLS[cell].step(x @ w_ih.T + b_ih, h @ w_hh.T + b_hh, h, c, nonlinearity)


@dataclass
class Unrolled:
    """One forward pass with the first recurrent block unrolled (tensors keep their autograd graph)."""

    logits: torch.Tensor  # [B, classes]
    inputs: torch.Tensor  # [B, T, F] the sequence the block reads (normalised pixels when it reads the image)
    top_inputs: list[torch.Tensor]  # per step, [B, F'] the top layer's input (x_t, or the layer below's h_t)
    hs: list[torch.Tensor]  # per step, [B, H] the top layer's hidden state h_t
    parts: list[dict[str, torch.Tensor]]  # per step, the top layer's pre-activation / gates
    block: int  # index of the recurrent block
    cell: str
    nonlinearity: str
    read: str
    head_input: torch.Tensor | None = field(repr=False, default=None)  # what the blocks after it read

    @property
    def steps(self) -> int:
        return len(self.hs)


def _head(net: Any, index: int, out: torch.Tensor) -> torch.Tensor:
    """The recurrent block's output through its activation and dropout, then the blocks after it."""
    block = net.blocks[index]
    x = block.drop(block.act(out))
    for b in net.blocks[index + 1:]:
        x = b(x)
    return x


def unroll(net: Any, x: torch.Tensor, inputs_grad: bool = False) -> Unrolled:
    """``net`` on a normalised batch ``x`` [B, C, H, W] with its first recurrent block unrolled step by
    step; ``inputs_grad``: the block's input sequence requires grad (for :func:`connectivity`)."""
    index = sequence_block(net)
    if index is None:
        raise ValueError("the network has no recurrent layer")
    if x.dim() == 3:  # [B, H, W], as Net.forward takes it
        x = x.unsqueeze(1)
    for b in net.blocks[:index]:
        x = b(x)
    block = net.blocks[index]
    seq = to_sequence(x, block.order) if block.order is not None else x
    if inputs_grad:
        seq = seq.detach().requires_grad_(True)
    op = block.op
    rnn = op.rnn
    cell, nonlinearity = op.cell, getattr(rnn, "nonlinearity", "tanh")
    batch, steps, _ = seq.shape
    layers = rnn.num_layers
    h = [seq.new_zeros(batch, rnn.hidden_size) for _ in range(layers)]
    c: list[torch.Tensor | None] = ([seq.new_zeros(batch, rnn.hidden_size) for _ in range(layers)]
                                    if CELLS[cell].cell_state else [None] * layers)
    params = [_params(rnn, layer) for layer in range(layers)]
    hs, parts, top_inputs = [], [], []
    for t in range(steps):
        inp = seq[:, t]
        for layer in range(layers):
            if layer == layers - 1:
                top_inputs.append(inp)
            h[layer], c[layer], part = cell_step(cell, nonlinearity, inp, h[layer], c[layer], *params[layer])
            inp = h[layer]
        hs.append(h[-1])
        parts.append(part)
    out = torch.stack(hs, dim=1) if op.read == "all" else hs[-1]
    return Unrolled(_head(net, index, out), seq, top_inputs, hs, parts, index, cell, nonlinearity, op.read, out)


def _eval_copy(net: Any, dtype: torch.dtype | None = None) -> Any:
    model = copy.deepcopy(net).eval()
    return model.to(dtype) if dtype is not None else model


# ----------------------------------------------------------------------- gradient through time

def time_gradients(net: Any, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """[T] ‖∂L/∂h_t‖ (L: mean cross-entropy over the batch ``x``, h_t: the top layer's hidden states of
    the whole batch), on the batch's device, without a host sync. ``net`` is used as it is (its mode
    decides dropout); its ``.grad`` fields are not touched."""
    with torch.enable_grad():
        un = unroll(net, x)
        loss = F.cross_entropy(un.logits, labels)
        grads = torch.autograd.grad(loss, un.hs)
    return torch.stack(torch._foreach_norm([g.detach().float() for g in grads]))


def gradient_factor(grads: np.ndarray) -> float:
    """‖∂L/∂h_T‖ / ‖∂L/∂h_1‖: how much weaker the gradient reaching the first step is than at the last."""
    g = np.asarray(grads, dtype=np.float64)
    if len(g) == 0 or not np.isfinite(g).all():
        return math.nan
    return float(g[-1] / g[0]) if g[0] > 0 else math.inf


# ----------------------------------------------------------------------- one input, step by step

def _pixels(image: Any, net: Any, mean: float, std: float) -> torch.Tensor:
    arr = torch.as_tensor(np.asarray(image, dtype=np.float32))
    if arr.max() > 1.5:  # uint8 0..255
        arr = arr / 255.0
    device = next(net.parameters()).device
    return ((arr.reshape(1, *net.spec.input_shape).to(device) - mean) / std)


@torch.no_grad()
def early_predictions(net: Any, image: Any, mean: float, std: float) -> np.ndarray:
    """[T, classes] probabilities after each step: the classifier run on h_t. When it reads all hidden
    states, the states after step t count as zeros (not read yet)."""
    model = _eval_copy(net)
    un = unroll(model, _pixels(image, model, mean, std))
    hs = torch.cat(un.hs)  # [T, H]
    if un.read == "all":
        steps = len(un.hs)
        mask = torch.tril(torch.ones(steps, steps, device=hs.device))  # row t: steps 0..t
        out = mask[:, :, None] * hs[None, :, :]  # [T, T, H]
    else:
        out = hs
    return torch.softmax(_head(model, un.block, out), dim=1).cpu().numpy().astype(np.float64)


ONSET_SHARE = 0.5  # a unit is "strongly active" from the first step where |h| reaches this share of its largest |h|


def onset_steps(values: np.ndarray, share: float = ONSET_SHARE) -> np.ndarray:
    """[units] for a [units, T] array: the first step (0-based) where each row's |value| reaches ``share``
    of its largest; ``T`` for a row that is 0 throughout (it never becomes active)."""
    mag = np.abs(values)
    top = mag.max(axis=1, keepdims=True)
    onset = (mag >= share * top).argmax(axis=1)
    return np.where(top[:, 0] > 0, onset, mag.shape[1])


@dataclass(frozen=True)
class Memory:
    """The top layer's hidden state and gates for one input, units ordered by :func:`onset_steps` of |h|."""

    h: np.ndarray  # [units, T] in display order
    units: np.ndarray  # [units] the original unit index of each row
    gates: dict[str, np.ndarray]  # name -> [units, T], same row order (LSTM: i f g o c; GRU: r z n)


@torch.no_grad()
def memory(net: Any, image: Any, mean: float, std: float) -> Memory:
    model = _eval_copy(net)
    un = unroll(model, _pixels(image, model, mean, std))
    h = torch.cat(un.hs).T.cpu().numpy().astype(np.float64)  # [H, T]
    # the step where each unit first becomes strongly active, then its step of peak |h|, then its size: a
    # unit that switches on early and stays on (an LSTM's memory) sits with the early ones, where the eye
    # sees it, not with the step where it happens to be a little larger
    mag = np.abs(h)
    order = np.lexsort((-mag.max(axis=1), mag.argmax(axis=1), onset_steps(h)))
    gates = {}
    for name in CELLS[un.cell].shown_parts():
        gates[name] = torch.cat([p[name] for p in un.parts]).T.cpu().numpy().astype(np.float64)[order]
    return Memory(h[order], order, gates)


def connectivity(net: Any, image: Any, mean: float, std: float, target: int | None = None) -> tuple[np.ndarray, int]:
    """(|∂ logit_target / ∂x_t| per step (L2 over the step's features), target); target: the prediction by default."""
    model = _eval_copy(net)
    with torch.enable_grad():
        un = unroll(model, _pixels(image, model, mean, std), inputs_grad=True)
        if target is None:
            target = int(un.logits[0].argmax())
        (grad,) = torch.autograd.grad(un.logits[0, target], un.inputs)
    return torch.linalg.vector_norm(grad[0], dim=1).cpu().numpy().astype(np.float64), int(target)


# ----------------------------------------------------------------------- the formulas with numbers

@dataclass(frozen=True)
class StepFormula:
    """One unit at one step, forward, and the BPTT recursion for the whole sequence (float64)."""

    cell: str
    nonlinearity: str
    step: int  # 0-based
    unit: int
    x: np.ndarray  # [F] the top layer's input x_t
    h_prev: np.ndarray  # [H] h_{t-1}
    w_x: np.ndarray  # [F] row of W_xh for this unit (RNN; LSTM/GRU: of its candidate g / n)
    w_h: np.ndarray  # [H] row of W_hh
    b: float  # b_ih + b_hh for this unit (candidate for LSTM/GRU)
    z: float  # the unit's pre-activation (RNN) / candidate pre-activation
    h: float  # h_t of the unit, by the formula
    h_module: float  # h_t of the unit, as PyTorch's module computes it
    gates: dict[str, float]  # LSTM: i f g o c c_prev; GRU: r z n
    delta_formula: np.ndarray  # [T, H] ∂L/∂h_t by the recursion
    delta_autograd: np.ndarray  # [T, H] ∂L/∂h_t by autograd
    direct: np.ndarray  # [T, H] the classifier's direct share of ∂L/∂h_t (nonzero at T only when it reads the last)
    target: int
    loss: float

    @property
    def max_difference(self) -> float:
        return float(np.abs(self.delta_formula - self.delta_autograd).max())

    @property
    def forward_difference(self) -> float:
        return abs(self.h - self.h_module)


def bptt_deltas(cell: str, nonlinearity: str, parts: list[dict[str, np.ndarray]], hs: list[np.ndarray],
                w_hh: np.ndarray, direct: np.ndarray) -> np.ndarray:
    """∂L/∂h_t for t = T..1 by the recursion, one example (all arrays float64, [H] per step):

    plain RNN: δ_t = direct_t + W_hhᵀ (f′(z_{t+1}) ⊙ δ_{t+1});
    LSTM: δc_t = δ_t ⊙ o_t ⊙ (1 − tanh² c_t) + δc_{t+1} ⊙ f_{t+1};
          δ_{t-1} = direct_{t-1} + W_hhᵀ [δc_t⊙g_t⊙i_t(1−i_t); δc_t⊙c_{t−1}⊙f_t(1−f_t); δc_t⊙i_t⊙(1−g_t²); δ_t⊙tanh c_t⊙o_t(1−o_t)];
    GRU:  δ_{t-1} = direct_{t-1} + δ_t⊙z_t + W_hzᵀ(δ_t⊙(h_{t−1}−n_t)⊙z_t(1−z_t)) + W_hnᵀ(δn_t⊙r_t)
                    + W_hrᵀ(δn_t⊙hn_t⊙r_t(1−r_t)), with δn_t = δ_t⊙(1−z_t)⊙(1−n_t²).
    """
    steps, hidden = direct.shape
    deltas = np.zeros_like(direct)
    deltas[-1] = direct[-1]
    dc_next = np.zeros(hidden)
    back_step = CELLS[cell].back
    for t in range(steps - 1, 0, -1):
        back, dc_next = back_step(deltas[t], t, parts, hs, w_hh, nonlinearity, dc_next)
        deltas[t - 1] = direct[t - 1] + back
    return deltas


def step_formula(net: Any, image: Any, mean: float, std: float, step: int, unit: int,
                 target: int | None = None) -> StepFormula:
    """The formula view of one unit at one step (0-based), in float64 with a copy of ``net``'s weights."""
    model = _eval_copy(net, torch.float64)
    x = _pixels(image, model, mean, std).to(torch.float64)
    index = sequence_block(model)
    if index is None:
        raise ValueError("the network has no recurrent layer")
    rnn = model.blocks[index].op.rnn
    with torch.enable_grad():
        un = unroll(model, x)
        if target is None:
            target = int(un.logits[0].argmax())
        loss = F.cross_entropy(un.logits, torch.tensor([target], device=x.device))
        autograd = torch.autograd.grad(loss, un.hs, retain_graph=True)
        assert un.head_input is not None
        out = un.head_input.detach().requires_grad_(True)  # the classifier's own share, from its output
        (direct_out,) = torch.autograd.grad(
            F.cross_entropy(_head(model, index, out), torch.tensor([target], device=x.device)), out)
    steps, hidden = un.steps, rnn.hidden_size
    direct = np.zeros((steps, hidden))
    if un.read == "all":
        direct[:] = direct_out[0].numpy()
    else:
        direct[-1] = direct_out[0].numpy()
    np_parts = [{k: v[0].detach().numpy() for k, v in p.items()} for p in un.parts]
    np_hs = [h[0].detach().numpy() for h in un.hs]
    top = rnn.num_layers - 1
    w_ih, w_hh, b_ih, b_hh = (p.detach().numpy() for p in _params(rnn, top))
    deltas = bptt_deltas(un.cell, un.nonlinearity, np_parts, np_hs, w_hh, direct)
    with torch.no_grad():
        module_out, _ = rnn(un.inputs)
    if not 0 <= step < steps or not 0 <= unit < hidden:
        raise ValueError(f"step {step} or unit {unit} out of range")
    cell = CELLS[un.cell]
    row = cell.candidate * hidden + unit  # the candidate's row (RNN: h; LSTM: g; GRU: n)
    x_t = un.top_inputs[step][0].detach().numpy()
    h_prev = np_hs[step - 1] if step > 0 else np.zeros(hidden)
    gates = {k: float(v[unit]) for k, v in np_parts[step].items()} if cell.gates else {}  # an RNN has none
    if cell.cell_state:
        gates["c_prev"] = float(np_parts[step - 1]["c"][unit]) if step > 0 else 0.0
    z, h = cell.unit_forward(UnitNumbers(w_ih, w_hh, b_ih, b_hh, x_t, h_prev, gates, unit, hidden, un.nonlinearity))
    return StepFormula(
        cell=un.cell, nonlinearity=un.nonlinearity, step=step, unit=unit, x=x_t, h_prev=h_prev, w_x=w_ih[row],
        w_h=w_hh[row], b=float(b_ih[row] + b_hh[row]), z=z, h=h, h_module=float(module_out[0, step, unit]),
        gates=gates, delta_formula=deltas, delta_autograd=np.stack([g[0].numpy() for g in autograd]),
        direct=direct, target=int(target), loss=float(loss.detach()),
    )
