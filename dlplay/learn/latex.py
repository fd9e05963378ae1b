"""LaTeX with the real numbers: one neuron's forward and backward formulas and the loss, for st.latex."""
from __future__ import annotations

import math
from typing import cast

from dlplay.learn.formulas import UnitBackward, UnitForward
from dlplay.learn.trace import Trace
from dlplay.nn.activations import ACTIVATIONS


def num(value: float, digits: int = 4) -> str:
    """A number for LaTeX: ``digits`` significant digits, scientific notation as a x 10^{e}."""
    if not math.isfinite(value):
        return r"\infty" if value > 0 else (r"-\infty" if value < 0 else r"\mathrm{NaN}")
    if value == 0:
        return "0"  # also for -0.0
    text = f"{value:.{digits}g}"
    if "e" in text:
        mantissa, exp = text.split("e")
        text = rf"{mantissa}\times 10^{{{int(exp)}}}"
    return text


def _par(value: float) -> str:
    """A number as a factor: negative ones in parentheses."""
    text = num(value)
    return f"({text})" if text.startswith("-") else text


def _act(name: str) -> str:
    return ACTIVATIONS[name].latex


def _aligned(lhs: str, parts: list[str], total: str, per_line: int = 3) -> str:
    """``lhs = p1 + p2 + ... = total`` broken after every ``per_line`` terms, so long sums fit the page."""
    rows = [" + ".join(parts[i : i + per_line]) for i in range(0, len(parts), per_line)]
    body = r" \\ &\quad + ".join(rows)
    return rf"\begin{{aligned}} {lhs} &= {body} \\ &= {total} \end{{aligned}}"


def forward_latex(uf: UnitForward) -> list[str]:
    """The forward formulas of one neuron: the general form, then with the real numbers.

    T is the set of the ``len(uf.terms)`` largest terms |w_ji a_i|; the rest is summed into one number.
    """
    l, j = uf.layer + 1, uf.unit
    lines = [
        rf"z^{{({l})}}_{{{j}}} = \sum_{{i}} w^{{({l})}}_{{{j},i}}\, a^{{({l - 1})}}_{{i}} + b^{{({l})}}_{{{j}}}",
    ]
    parts = [rf"\underbrace{{{_par(t.weight)}\cdot{_par(t.value)}}}_{{i={t.index}}}" for t in uf.terms]
    if uf.n_rest > 0:
        parts.append(rf"\underbrace{{{_par(uf.rest)}}}_{{\sum_{{i\notin T}}\,({uf.n_rest})}}")
    parts.append(rf"\underbrace{{{_par(uf.bias)}}}_{{b}}")
    lines.append(_aligned(rf"z^{{({l})}}_{{{j}}}", parts, num(uf.z)))
    if uf.is_output:
        lines.append(rf"p_{{{j}}} = \mathrm{{softmax}}(z^{{({l})}})_{{{j}}} = \frac{{e^{{z_{{{j}}}}}}}{{\sum_k e^{{z_k}}}} = {num(cast(float, uf.prob))}")  # an output neuron has its p
    else:
        lines.append(rf"a^{{({l})}}_{{{j}}} = f(z^{{({l})}}_{{{j}}}) = {_act(uf.activation)}({num(uf.z)}) = {num(uf.a)}")
    return lines


def loss_latex(tr: Trace) -> str:
    """J = -log p_target with the numbers."""
    return rf"J = -\log p_{{{tr.target}}} = -\log({num(float(tr.probs[tr.target]))}) = {num(tr.loss)}"


def backward_latex(ub: UnitBackward) -> list[str]:
    """The back-propagation formulas of one neuron with the real numbers (delta, dJ/db, dJ/dw)."""
    l, j = ub.layer + 1, ub.unit
    d = rf"\delta^{{({l})}}_{{{j}}}"
    lines = []
    if ub.is_output:
        lines.append(rf"{d} = \frac{{\partial J}}{{\partial z^{{({l})}}_{{{j}}}}} = p_{{{j}}} - y_{{{j}}} = "
                     rf"{num(cast(float, ub.prob))} - {num(cast(float, ub.target_value))} = {num(ub.delta)}")  # set for the output
    elif ub.upstream is not None:
        lines.append(rf"{d} = \Big(\sum_k w^{{({l + 1})}}_{{k,{j}}}\, \delta^{{({l + 1})}}_k\Big)\, f'(z^{{({l})}}_{{{j}}})")
        parts = [rf"\underbrace{{{_par(t.weight)}\cdot{_par(t.value)}}}_{{k={t.index}}}" for t in ub.upstream_terms]
        rest = ub.n_upstream - len(ub.upstream_terms)
        if rest > 0:
            parts.append(rf"\underbrace{{{_par(ub.upstream_rest)}}}_{{\sum_{{k\notin T}}\,({rest})}}")
        lines.append(_aligned(rf"\textstyle\sum_k w^{{({l + 1})}}_{{k,{j}}}\, \delta^{{({l + 1})}}_k", parts, num(ub.upstream)))
        lines.append(rf"{d} = {_par(ub.upstream)}\cdot {_act(ub.activation)}'({num(ub.z)}) = "
                     rf"{_par(ub.upstream)}\cdot {_par(cast(float, ub.fprime))} = {num(ub.delta)}")  # a hidden neuron has its f'
    else:
        lines.append(rf"{d} = \frac{{\partial J}}{{\partial z^{{({l})}}_{{{j}}}}} = {num(ub.delta)}")
    lines.append(rf"\frac{{\partial J}}{{\partial b^{{({l})}}_{{{j}}}}} = {d} = {num(ub.grad_bias)}")
    lines.append(rf"\frac{{\partial J}}{{\partial w^{{({l})}}_{{{j},i}}}} = {d}\, a^{{({l - 1})}}_{{i}}")
    if ub.grad_terms:
        rows = [rf"\frac{{\partial J}}{{\partial w^{{({l})}}_{{{j},{g.index}}}}} &= {_par(ub.delta)}\cdot {_par(g.activation)} = {num(g.grad)}"
                for g in ub.grad_terms]
        lines.append(r"\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}")
    return lines
