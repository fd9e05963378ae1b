"""The recurrent cells dlplay offers (plain RNN, LSTM, GRU): one entry each, every cell-specific rule in
one place.

A :class:`Cell` knows its PyTorch module and weight blocks (the layer registry builds and counts
with them), one step of its recurrence written out (``step``: what the Sequences page unrolls), its
back-propagation-through-time step (``back``), one unit's forward pass in plain numbers
(``unit_forward``, the formula view) and the LaTeX of both. Nothing outside this module switches on
a cell's name; adding a cell is one entry here plus its ``sequences.bptt_intro_<name>`` and layer-kind
translations. The formulas are checked against PyTorch's own modules and autograd by
tests/test_sequences.py.

Conventions: ``gi = x_t W_ihᵀ + b_ih`` and ``gh = h_{t-1} W_hhᵀ + b_hh`` stacked by gate in PyTorch's
order; ``parts`` are the step's named quantities (the pre-activation ``z`` of a plain RNN, the
gates), float64 numpy arrays in the numeric functions.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

Tensor = torch.Tensor
Parts = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class UnitNumbers:
    """One unit at one step, in plain numbers: what the forward formula needs (float64 rows)."""

    w_ih: np.ndarray  # [3·H or 4·H or H, F] the top layer's input weights
    w_hh: np.ndarray  # [blocks·H, H]
    b_ih: np.ndarray
    b_hh: np.ndarray
    x: np.ndarray  # [F] x_t
    h_prev: np.ndarray  # [H] h_{t-1}
    gates: Mapping[str, float]  # the unit's gates at this step (and c_prev for an LSTM)
    unit: int
    hidden: int
    nonlinearity: str


@dataclass(frozen=True)
class Cell:
    """One recurrent cell kind (see the module docstring)."""

    name: str
    module: Callable[[int, int, int, str], nn.RNNBase]  # (input size, hidden, stack, nonlinearity) -> module
    blocks: int  # weight blocks per step (rows of W_ih / W_hh per unit)
    gates: tuple[str, ...]  # the gates the memory view shows, in PyTorch's block order
    candidate: int  # the block of the candidate (RNN: h itself; LSTM: g; GRU: n): the formula's row
    cell_state: bool  # carries c_t besides h_t (an LSTM)
    activations: tuple[str, ...] | None  # the activations a learner may choose (None: fixed by the cell)
    step: Callable[[Tensor, Tensor, Tensor, Tensor | None, str], tuple[Tensor, Tensor | None, dict[str, Tensor]]]
    back: Callable[[np.ndarray, int, Sequence[Parts], list[np.ndarray], np.ndarray, str, np.ndarray],
                   tuple[np.ndarray, np.ndarray]]
    unit_forward: Callable[[UnitNumbers], tuple[float, float]]  # -> (candidate pre-activation z, h_t)
    forward_latex: Callable[[Any, float, float], list[str]]  # (StepFormula, w_x·x, w_h·h) -> lines
    bptt_latex: Callable[[str], list[str]]  # (nonlinearity) -> lines

    def shown_parts(self) -> tuple[str, ...]:
        """The per-step quantities the memory view shows besides h_t (LSTM: i f g o c; GRU: r z n)."""
        return (*self.gates, *(("c",) if self.cell_state else ()))


# ----------------------------------------------------------------------------------- plain RNN
def _rnn_step(gi: Tensor, gh: Tensor, h: Tensor, c: Tensor | None, nonlinearity: str
              ) -> tuple[Tensor, Tensor | None, dict[str, Tensor]]:
    z = gi + gh
    return (torch.tanh(z) if nonlinearity == "tanh" else torch.relu(z)), None, {"z": z}


def _rnn_back(d: np.ndarray, t: int, parts: Sequence[Parts], hs: list[np.ndarray], w_hh: np.ndarray,
              nonlinearity: str, dc_next: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = parts[t]["z"]
    fprime = 1 - np.tanh(z) ** 2 if nonlinearity == "tanh" else (z > 0).astype(np.float64)
    return w_hh.T @ (d * fprime), dc_next


def _rnn_unit(n: UnitNumbers) -> tuple[float, float]:
    z = float(n.w_ih[n.unit] @ n.x + n.w_hh[n.unit] @ n.h_prev + n.b_ih[n.unit] + n.b_hh[n.unit])
    return z, (math.tanh(z) if n.nonlinearity == "tanh" else max(z, 0.0))


def _act_tex(nonlinearity: str) -> str:
    return r"\tanh" if nonlinearity == "tanh" else r"\mathrm{ReLU}"


def _rnn_latex(f: Any, wx: float, wh: float) -> list[str]:
    t_, j, act = f.step + 1, f.unit, _act_tex(f.nonlinearity)
    return [rf"h_{{{t_},{j}}} = {act}\big(W_{{xh}}[{j}]\,x_{{{t_}}} + W_{{hh}}[{j}]\,h_{{{t_ - 1}}} + b_{{{j}}}\big)",
            rf"= {act}\big({wx:.4g} + ({wh:.4g}) + ({f.b:.4g})\big) = {act}({f.z:.4g}) = {f.h:.4g}"]


def _rnn_bptt_latex(nonlinearity: str) -> list[str]:
    fp = r"(1 - h_{t+1}^2)" if nonlinearity == "tanh" else r"\mathbb{1}[z_{t+1} > 0]"
    return [_DIRECT + rf"W_{{hh}}^\top\big({fp} \odot \delta_{{t+1}}\big)"]


# ----------------------------------------------------------------------------------- LSTM
def _lstm_step(gi: Tensor, gh: Tensor, h: Tensor, c: Tensor | None, nonlinearity: str
               ) -> tuple[Tensor, Tensor | None, dict[str, Tensor]]:
    i, f, g, o = (gi + gh).chunk(4, dim=-1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c = f * c + i * g if c is not None else i * g
    return o * torch.tanh(c), c, {"i": i, "f": f, "g": g, "o": o, "c": c}


def _lstm_back(d: np.ndarray, t: int, parts: Sequence[Parts], hs: list[np.ndarray], w_hh: np.ndarray,
               nonlinearity: str, dc_next: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = parts[t]
    i, f, g, o, c = p["i"], p["f"], p["g"], p["o"], p["c"]
    c_prev = parts[t - 1]["c"]
    dc = d * o * (1 - np.tanh(c) ** 2) + dc_next
    dgates = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g ** 2),
                             d * np.tanh(c) * o * (1 - o)])
    return w_hh.T @ dgates, dc * f


def _lstm_unit(n: UnitNumbers) -> tuple[float, float]:
    row = 2 * n.hidden + n.unit  # the candidate g
    z = float(n.w_ih[row] @ n.x + n.w_hh[row] @ n.h_prev + n.b_ih[row] + n.b_hh[row])
    g = n.gates
    return z, g["o"] * math.tanh(g["f"] * g["c_prev"] + g["i"] * math.tanh(z))


def _lstm_latex(f: Any, wx: float, wh: float) -> list[str]:
    t_, j, g = f.step + 1, f.unit, f.gates
    return [r"i,f,o = \sigma(W_{x\cdot}x_t + W_{h\cdot}h_{t-1} + b_\cdot),\ "
            r"g = \tanh(W_{xg}x_t + W_{hg}h_{t-1} + b_g)",
            rf"g_{{{t_},{j}}} = \tanh({wx:.4g} + ({wh:.4g}) + ({f.b:.4g})) = {g['g']:.4g},\ "
            rf"i = {g['i']:.3g},\ f = {g['f']:.3g},\ o = {g['o']:.3g}",
            rf"c_{{{t_},{j}}} = f\,c_{{{t_ - 1},{j}}} + i\,g = {g['f']:.3g}\cdot{g['c_prev']:.4g} + "
            rf"{g['i']:.3g}\cdot{g['g']:.4g} = {g['c']:.4g}",
            rf"h_{{{t_},{j}}} = o\,\tanh(c_{{{t_},{j}}}) = {g['o']:.3g}\cdot\tanh({g['c']:.4g}) = {f.h:.4g}"]


def _lstm_bptt_latex(nonlinearity: str) -> list[str]:
    return [r"\delta c_{t+1} = \delta_{t+1}\odot o_{t+1}(1-\tanh^2 c_{t+1}) + \delta c_{t+2}\odot f_{t+2}",
            _DIRECT + r"W_{hh}^\top\big[\delta c_{t+1}\odot g\odot i(1-i);\ \delta c_{t+1}\odot c_t\odot f(1-f);",
            r"\qquad\qquad \delta c_{t+1}\odot i\odot(1-g^2);\ \delta_{t+1}\odot\tanh c_{t+1}\odot o(1-o)\big]_{t+1}"]


# ----------------------------------------------------------------------------------- GRU
def _gru_step(gi: Tensor, gh: Tensor, h: Tensor, c: Tensor | None, nonlinearity: str
              ) -> tuple[Tensor, Tensor | None, dict[str, Tensor]]:
    ir, iz, in_ = gi.chunk(3, dim=-1)
    hr, hz, hn = gh.chunk(3, dim=-1)
    r, zg = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
    n = torch.tanh(in_ + r * hn)
    return (1 - zg) * n + zg * h, None, {"r": r, "z": zg, "n": n, "hn": hn}


def _gru_back(d: np.ndarray, t: int, parts: Sequence[Parts], hs: list[np.ndarray], w_hh: np.ndarray,
              nonlinearity: str, dc_next: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = parts[t]
    r, zg, n, hn = p["r"], p["z"], p["n"], p["hn"]
    w_r, w_z, w_n = np.split(w_hh, 3)
    dn = d * (1 - zg) * (1 - n ** 2)
    back = d * zg + w_z.T @ (d * (hs[t - 1] - n) * zg * (1 - zg)) + w_n.T @ (dn * r) + w_r.T @ (dn * hn * r * (1 - r))
    return back, dc_next


def _gru_unit(n: UnitNumbers) -> tuple[float, float]:
    row = 2 * n.hidden + n.unit  # n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
    g = n.gates
    z = float(n.w_ih[row] @ n.x + n.b_ih[row]) + g["r"] * float(n.w_hh[row] @ n.h_prev + n.b_hh[row])
    return z, (1 - g["z"]) * math.tanh(z) + g["z"] * float(n.h_prev[n.unit])


def _gru_latex(f: Any, wx: float, wh: float) -> list[str]:
    t_, j, g = f.step + 1, f.unit, f.gates
    return [r"r,z = \sigma(W_{x\cdot}x_t + W_{h\cdot}h_{t-1} + b_\cdot),\ "
            r"n = \tanh(W_{xn}x_t + b_{xn} + r\odot(W_{hn}h_{t-1} + b_{hn}))",
            rf"n_{{{t_},{j}}} = \tanh({f.z:.4g}) = {g['n']:.4g},\ r = {g['r']:.3g},\ z = {g['z']:.3g}",
            rf"h_{{{t_},{j}}} = (1-z)\,n + z\,h_{{{t_ - 1},{j}}} = {1 - g['z']:.3g}\cdot{g['n']:.4g} + "
            rf"{g['z']:.3g}\cdot{f.h_prev[j]:.4g} = {f.h:.4g}"]


def _gru_bptt_latex(nonlinearity: str) -> list[str]:
    return [r"\delta n_{t+1} = \delta_{t+1}\odot(1-z)\odot(1-n^2)",
            _DIRECT + r"\delta_{t+1}\odot z + W_{hz}^\top\big(\delta_{t+1}\odot(h_t - n)\odot z(1-z)\big)",
            r"\qquad + W_{hn}^\top(\delta n_{t+1}\odot r) + W_{hr}^\top\big(\delta n_{t+1}\odot (W_{hn}h_t + b_{hn})"
            r"\odot r(1-r)\big)"]


_DIRECT = r"\delta_t = \frac{\partial L}{\partial h_t}\Big|_{\text{direct}} + "

CELLS: dict[str, Cell] = {c.name: c for c in (
    Cell("rnn", lambda n_in, hidden, stack, act: nn.RNN(n_in, hidden, stack, nonlinearity=act, batch_first=True),
         blocks=1, gates=(), candidate=0, cell_state=False, activations=("tanh", "relu"),
         step=_rnn_step, back=_rnn_back, unit_forward=_rnn_unit, forward_latex=_rnn_latex,
         bptt_latex=_rnn_bptt_latex),
    Cell("lstm", lambda n_in, hidden, stack, act: nn.LSTM(n_in, hidden, stack, batch_first=True),
         blocks=4, gates=("i", "f", "g", "o"), candidate=2, cell_state=True, activations=None,
         step=_lstm_step, back=_lstm_back, unit_forward=_lstm_unit, forward_latex=_lstm_latex,
         bptt_latex=_lstm_bptt_latex),
    Cell("gru", lambda n_in, hidden, stack, act: nn.GRU(n_in, hidden, stack, batch_first=True),
         blocks=3, gates=("r", "z", "n"), candidate=2, cell_state=False, activations=None,
         step=_gru_step, back=_gru_back, unit_forward=_gru_unit, forward_latex=_gru_latex,
         bptt_latex=_gru_bptt_latex),
)}
