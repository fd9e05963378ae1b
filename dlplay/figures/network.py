"""The network as a picture and as a table: layer blocks, small dense layers as neurons, per-layer counts.

Pure functions (spec and optional trained model in, ``go.Figure`` or rows out), so the Build page
only places them and tests can check them without a browser.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import torch

from dlplay.figures.style import (
    BACKGROUND,
    BLUE,
    BOX_FLATTEN,
    BOX_INPUT,
    BOX_OTHER,
    BOX_OUTPUT,
    NEUTRAL,
    OUTLINE,
    TEXT_DARK,
    TEXT_FAINT,
    WEIGHT_ORANGE,
)
from dlplay.i18n import layer_name, translate
from dlplay.nn.activations import IDENTITY
from dlplay.nn.layers import LAYER_KINDS, shape_text
from dlplay.nn.model import LayerInfo, Net, layer_summary
from dlplay.nn.spec import LayerSpec, ModelSpec

NEURON_LIMIT = 16  # dense layers up to this many units are drawn neuron by neuron
POSITIVE, NEGATIVE = BLUE, WEIGHT_ORANGE  # blue > 0, orange < 0 (like TF Playground)
KIND_COLORS = {  # the layer kinds' colours are in their registry entries
    "input": BOX_INPUT, **{name: kind.color for name, kind in LAYER_KINDS.items()}, "flatten": BOX_FLATTEN,
    "output": BOX_OUTPUT,
}
BYTES_PER_PARAM = 4  # float32


def human_count(n: float) -> str:
    """Compact count for labels: 1234 -> '1.2k', 2_500_000 -> '2.5M'."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= limit:
            return f"{n / limit:.1f}{suffix}"
    return str(int(n))


def human_bytes(n: float) -> str:
    for limit, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= limit:
            return f"{n / limit:.1f} {suffix}"
    return f"{int(n)} B"


def short_title(layer: LayerSpec, index: int) -> str:
    """Two-line block title: '3. Conv<br>64×3×3' (the activation is written under the block)."""
    return f"{index + 1}. {LAYER_KINDS[layer.kind].title(layer)}"


@dataclass(frozen=True)
class Column:
    """One column of the diagram: the input, a layer, an automatic flatten, or the output."""

    kind: str
    title: str
    shape: tuple[int, ...]
    size: int  # units or channels: sets the block's height
    activation: str
    params: int
    layer_index: int | None  # index into spec.layers; None for input/flatten, -1 for the output
    neurons: bool  # drawn as individual neurons


def diagram_columns(spec: ModelSpec, lang: str = "en") -> list[Column]:
    """The columns to draw, left to right, with a Flatten where a dense layer follows an image-shaped input."""
    rows = layer_summary(spec)
    cols = [Column("input", translate("build.fig_input", lang), spec.input_shape, spec.input_shape[0],
                   "", 0, None, False)]
    shape: tuple[int, ...] = spec.input_shape
    layers = list(spec.layers)
    for i, row in enumerate(rows):
        is_output = i == len(rows) - 1
        kind = "output" if is_output else row.kind
        entry = LAYER_KINDS[row.kind]
        if entry.flattens(shape):
            flat = math.prod(shape)
            cols.append(Column("flatten", translate("build.fig_flatten", lang), (flat,), 1, "", 0, None, False))
        size = row.output_shape[0]
        activation = "softmax" if is_output else layers[i].activation
        if not entry.activation:
            activation = ""
        neurons = entry.fully_connected and size <= NEURON_LIMIT
        title = translate("build.fig_output", lang) if is_output else short_title(layers[i], i)
        cols.append(Column(kind, title, row.output_shape, size, activation, row.params,
                           -1 if is_output else i, neurons))
        shape = row.output_shape
    return cols


def draws_neurons(spec: ModelSpec) -> bool:
    """Is a hidden layer drawn neuron by neuron (so a trained model colours its connections)?"""
    return any(LAYER_KINDS[layer.kind].fully_connected and layer.units <= NEURON_LIMIT for layer in spec.layers)


def _block_height(size: int, largest: int) -> float:
    """Block height in plot units: grows with the square root of units/channels, never vanishes."""
    return 0.8 + 5.2 * math.sqrt(size) / math.sqrt(max(largest, 1))


def _neuron_y(n: int) -> np.ndarray:
    """Vertical positions of ``n`` neurons centred on 0, neuron 0 at the top, spaced so 16 fit the tallest block."""
    gap = 0.38
    return ((n - 1) / 2 - np.arange(n)) * gap


def _layer_weights(model: Net | None, layer_index: int) -> np.ndarray | None:
    if model is None:
        return None
    block = model.blocks[layer_index]
    weight = getattr(block.op, "weight", None)
    if weight is None:
        return None
    return weight.detach().to("cpu", torch.float32).numpy()


def _connection_traces(x0: float, y0: np.ndarray, x1: float, y1: np.ndarray, weights: np.ndarray | None,
                       lang: str) -> list[go.Scatter]:
    """Lines between two neuron columns, grouped into a few traces by sign and magnitude bucket."""
    buckets: dict[tuple[str, int], tuple[list, list]] = {}
    scale = float(np.abs(weights).max()) if weights is not None and weights.size else 0.0
    for j, yb in enumerate(y1):
        for i, ya in enumerate(y0):
            if weights is None or scale == 0.0:
                key = ("none", 0)
            else:
                w = float(weights[j, i])
                key = ("pos" if w >= 0 else "neg", min(3, int(4 * abs(w) / scale)))
            xs, ys = buckets.setdefault(key, ([], []))
            xs += [x0, x1, None]
            ys += [ya, yb, None]
    traces = []
    for (sign, level), (xs, ys) in sorted(buckets.items()):
        color = {"pos": POSITIVE, "neg": NEGATIVE, "none": NEUTRAL}[sign]
        width = 0.6 if sign == "none" else 0.5 + 1.2 * level
        opacity = 0.35 if sign == "none" else 0.25 + 0.2 * level
        traces.append(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=color, width=width),
                                 opacity=opacity, hoverinfo="skip", showlegend=False))
    return traces


def _fan_trace(x0: float, top: float, bottom: float, x1: float, ys: np.ndarray) -> go.Scatter:
    """Faint lines from a block's edge to each neuron of the next column (many inputs, not drawn one by one)."""
    xs: list = []
    yy: list = []
    for y in ys:
        for y_src in (top, 0.0, bottom):
            xs += [x0, x1, None]
            yy += [y_src, y, None]
    return go.Scatter(x=xs, y=yy, mode="lines", line=dict(color=NEUTRAL, width=0.5), opacity=0.4,
                      hoverinfo="skip", showlegend=False)


def network_figure(spec: ModelSpec, lang: str = "en", model: Net | None = None, height: int = 430) -> go.Figure:
    """Layers as blocks (height by units/channels) with shape, activation and parameters underneath.

    Dense layers of at most ``NEURON_LIMIT`` units are drawn as neurons with their connections; with a
    trained ``model`` (matching ``spec``) the connections are coloured by weight sign and magnitude.
    """
    cols = diagram_columns(spec, lang)
    largest = max(c.size for c in cols)
    fig = go.Figure()
    spacing = 2.2
    xs = [k * spacing for k in range(len(cols))]
    hover_x, hover_y, hover_text = [], [], []
    neuron_pos: dict[int, np.ndarray] = {}
    extents: dict[int, tuple[float, float]] = {}
    crowded = len(cols) > 6
    for k, (x, col) in enumerate(zip(xs, cols)):
        h = _block_height(col.size, largest)
        if col.kind == "flatten":
            h = 0.6
        half_w = 0.25 if col.kind == "flatten" else 0.45
        if col.neurons:
            ys = _neuron_y(col.size)
            neuron_pos[k] = ys
            h = max(h, float(ys.max() - ys.min()) + 0.5)
        fig.add_shape(type="rect", x0=x - half_w, x1=x + half_w, y0=-h / 2, y1=h / 2,
                      line=dict(color=TEXT_FAINT, width=1), fillcolor=KIND_COLORS.get(col.kind, BOX_OTHER),
                      opacity=0.45 if col.neurons else 1.0, layer="below")
        extents[k] = (h / 2, -h / 2)
        details = [shape_text(col.shape)]
        if col.activation and col.activation != IDENTITY:
            details.append(col.activation)
        if col.params:
            details.append(translate("build.fig_params", lang, params=human_count(col.params)))
        lift = 0.75 if crowded and k % 2 else 0.0  # stagger titles when columns are close together
        fig.add_annotation(x=x, y=h / 2 + 0.15 + lift, text=f"<b>{col.title}</b>", showarrow=False,
                           yanchor="bottom", font=dict(size=10))
        fig.add_annotation(x=x, y=-h / 2 - 0.15, text="<br>".join(details), showarrow=False,
                           yanchor="top", font=dict(size=10, color=TEXT_DARK))
        hover_x.append(x)
        hover_y.append(0.0)
        hover_text.append(f"{col.title}<br>{'<br>'.join(details)}")
    # connections: neuron-to-neuron between small dense columns, faint fans from a block into neurons
    for k in range(1, len(cols)):
        if k not in neuron_pos:
            continue
        col = cols[k]
        if k - 1 in neuron_pos:
            weights = _layer_weights(model, col.layer_index) if col.layer_index is not None else None
            for trace in _connection_traces(xs[k - 1], neuron_pos[k - 1], xs[k], neuron_pos[k], weights, lang):
                fig.add_trace(trace)
        else:
            top, bottom = extents[k - 1]
            fig.add_trace(_fan_trace(xs[k - 1] + 0.45, top * 0.8, bottom * 0.8, xs[k], neuron_pos[k]))
    for k, ys in neuron_pos.items():
        col = cols[k]
        labels = [str(i) for i in range(len(ys))] if col.kind == "output" else [""] * len(ys)
        fig.add_trace(go.Scatter(
            x=[xs[k]] * len(ys), y=ys, mode="markers+text", text=labels, textposition="middle right",
            marker=dict(size=11, color=BACKGROUND, line=dict(color=OUTLINE, width=1.2)),
            hoverinfo="skip", showlegend=False, textfont=dict(size=9)))
    fig.add_trace(go.Scatter(x=hover_x, y=hover_y, mode="markers", marker=dict(size=28, opacity=0),
                             hovertext=hover_text, hoverinfo="text", showlegend=False))
    if model is not None and neuron_pos:
        for name, color in ((translate("build.fig_positive", lang), POSITIVE),
                            (translate("build.fig_negative", lang), NEGATIVE)):
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line=dict(color=color, width=3), name=name))
    top = max(e[0] for e in extents.values())
    fig.update_xaxes(visible=False, range=[-1.2, xs[-1] + 1.2], fixedrange=True)
    fig.update_yaxes(visible=False, range=[-top - 1.4, top + (1.8 if crowded else 1.0)], fixedrange=True)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), plot_bgcolor=BACKGROUND, paper_bgcolor=BACKGROUND,
                      legend=dict(orientation="h", yanchor="bottom", y=0.0, xanchor="right", x=1.0),
                      dragmode=False)
    return fig


def summary_rows(spec: ModelSpec, lang: str = "en") -> list[dict[str, object]]:
    """The summary table: per layer output shape, parameters, multiply-adds; a totals row last."""
    infos: list[LayerInfo] = layer_summary(spec)
    col = {k: translate(f"build.col_{k}", lang) for k in ("layer", "type", "output", "params", "macs")}
    rows: list[dict[str, object]] = [{col["layer"]: translate("build.fig_input", lang), col["type"]: "",
                                      col["output"]: shape_text(spec.input_shape), col["params"]: 0, col["macs"]: 0}]
    for info in infos:
        rows.append({col["layer"]: layer_name(info.name, lang), col["type"]: info.description, col["output"]: shape_text(info.output_shape),
                     col["params"]: info.params, col["macs"]: info.macs})
    rows.append({col["layer"]: translate("build.total", lang), col["type"]: "", col["output"]: "",
                 col["params"]: sum(i.params for i in infos), col["macs"]: sum(i.macs for i in infos)})
    return rows


@dataclass(frozen=True)
class Totals:
    params: int
    macs: int
    weight_bytes: int


def totals(spec: ModelSpec) -> Totals:
    """Total trainable parameters, multiply-adds per example, and float32 weight memory."""
    infos = layer_summary(spec)
    params = sum(i.params for i in infos)
    return Totals(params, sum(i.macs for i in infos), params * BYTES_PER_PARAM)
