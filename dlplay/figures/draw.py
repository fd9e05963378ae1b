"""Plotly figures for the Draw page: the ten probabilities and one forward pass, layer by layer.

These are redrawn after every stroke, so they are built from plain dicts without plotly's
per-property validation (which cost 40-60 ms per figure here; tests validate the specs instead),
and without a template (Streamlit's chart theme styles them; a template costs another ~50 ms).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from dlplay.classify.predict import LayerActivation
from dlplay.figures.style import DEEP_ORANGE, DIVERGING_REVERSED, LIGHT_BLUE, MID_BLUE, RED, SEQUENTIAL
from dlplay.figures.tiles import row_grid, tile
from dlplay.i18n import translate

TOP_COLOR, OTHER_COLOR = RED, LIGHT_BLUE
POSITIVE_COLOR, NEGATIVE_COLOR = MID_BLUE, DEEP_ORANGE
MAX_BARS = 2000  # above this a dense layer is drawn as a heatmap grid instead of bars


def _figure(data: list[dict[str, Any]], layout: dict[str, Any], height: int) -> go.Figure:
    """A figure from dict specs, unvalidated (fast); the common layout of the page's small charts."""
    base = dict(height=height, margin=dict(l=10, r=10, t=10, b=10), showlegend=False, uirevision="keep")
    base.update(layout)
    return go.Figure(data=data, layout=base, _validate=False)


def probability_text(p: float) -> str:
    """A probability as a percentage a learner can read without being misled: never "100%" or "0%"
    (a softmax never gives exactly 1 or 0 but by rounding) (">99.9%", "<0.1%"), one decimal near the ends."""
    p = float(p)
    if not np.isfinite(p):
        return "–"
    if p > 0.999:  # 1.0 too: a softmax reaches exactly 1 only by rounding (float32), never in truth
        return ">99.9%"
    if p < 0.001:
        return "<0.1%"
    if p >= 0.99 or p < 0.01:
        return f"{p * 100:.1f}%"
    return f"{p * 100:.0f}%"


def probability_figure(probabilities: Sequence[float], labels: Sequence[str], lang: str = "en", height: int = 260) -> go.Figure:
    """One bar per class, the most probable one highlighted, probabilities as percentages."""
    probs = np.asarray(probabilities, dtype=np.float64)
    top = int(np.argmax(probs)) if probs.size else -1
    bar = dict(
        type="bar",
        x=list(labels),
        y=(probs * 100.0).tolist(),
        marker=dict(color=[TOP_COLOR if i == top else OTHER_COLOR for i in range(len(probs))]),
        text=[probability_text(p) if p >= 0.005 else "" for p in probs],
        textposition="outside",
        cliponaxis=False,
        hovertemplate="%{x}: %{y:.1f}%<extra></extra>",
    )
    layout = dict(
        xaxis=dict(type="category", title=dict(text=translate("draw.fig_class", lang)), fixedrange=True),
        yaxis=dict(range=[0, 112], title=dict(text=translate("draw.fig_probability", lang)), ticksuffix="%",
                   fixedrange=True),
        margin=dict(l=50, r=10, t=10, b=45),
    )
    return _figure([bar], layout, height)


def tile_feature_maps(values: np.ndarray, max_cols: int = 8, gap: int = 1) -> np.ndarray:
    """(C, H, W) feature maps -> one 2-D array of C tiles in a grid, NaN between tiles (shown blank)."""
    maps = np.asarray(values, dtype=np.float64)
    if maps.ndim != 3:
        raise ValueError(f"expected (channels, height, width), got shape {maps.shape}")
    return tile(maps, *row_grid(len(maps), max_cols), gap)[0]


def _colorscale(values: np.ndarray) -> dict[str, Any]:
    """Diverging around zero when there are negative values, sequential otherwise."""
    finite = values[np.isfinite(values)]
    low = float(finite.min()) if finite.size else 0.0
    high = float(finite.max()) if finite.size else 1.0
    if low < 0:
        bound = max(abs(low), abs(high), 1e-6)
        return dict(colorscale=DIVERGING_REVERSED, reversescale=True, zmin=-bound, zmax=bound, zmid=0.0)
    return dict(colorscale=SEQUENTIAL, zmin=0.0, zmax=max(high, 1e-6))


def _grid_z(grid: np.ndarray) -> list[list[float | None]]:
    """A 2-D array as nested lists with None for NaN (blank cells in plotly)."""
    return [[None if math.isnan(v) else v for v in row] for row in grid.tolist()]


def feature_map_figure(layer: LayerActivation, lang: str = "en", max_cols: int = 8, width_px: int = 720) -> go.Figure:
    """All feature maps of a conv / pooling layer as one heatmap grid (map 1 top left, row by row)."""
    c, h, w = layer.values.shape
    grid = tile_feature_maps(layer.values, max_cols)
    rows, cols = row_grid(c, max_cols)
    ids = np.zeros(grid.shape, dtype=np.int64)  # which map a cell belongs to, for the hover text
    for i in range(c):
        r, k = divmod(i, cols)
        ids[r * (h + 1) : r * (h + 1) + h, k * (w + 1) : k * (w + 1) + w] = i + 1
    heat = dict(
        type="heatmap",
        z=_grid_z(grid),
        customdata=ids.tolist(),
        hovertemplate=translate("draw.fig_map_hover", lang) + "<extra></extra>",
        hoverongaps=False,
        showscale=True,
        colorbar=dict(thickness=10, len=0.9),
        **_colorscale(grid),
    )
    axis = dict(showticklabels=False, showgrid=False, zeroline=False, fixedrange=True)
    layout = dict(xaxis=dict(axis, constrain="domain"),
                  yaxis=dict(axis, autorange="reversed", scaleanchor="x", constrain="domain"))
    tile_px = min(90.0, width_px / cols) * h / w  # the figure is about ``width_px`` wide, tiles stay square
    return _figure([heat], layout, int(max(100, rows * tile_px + 20)))


def neuron_figure(layer: LayerActivation, lang: str = "en", height: int = 180) -> go.Figure:
    """A dense layer's neurons as bars (neuron number across, activation up); a heatmap if very wide."""
    values = np.asarray(layer.values, dtype=np.float64).ravel()
    if values.size > MAX_BARS:
        rows, cols = row_grid(values.size, max_cols=64)
        grid = np.full(rows * cols, np.nan)
        grid[: values.size] = values
        heat = dict(type="heatmap", z=_grid_z(grid.reshape(rows, cols)), hoverongaps=False, **_colorscale(values))
        return _figure([heat], dict(yaxis=dict(autorange="reversed", showticklabels=False)), height)
    bar = dict(
        type="bar",
        x=list(range(1, values.size + 1)),
        y=values.tolist(),
        marker=dict(color=[POSITIVE_COLOR if v >= 0 else NEGATIVE_COLOR for v in values], line=dict(width=0)),
        hovertemplate=translate("draw.fig_neuron_hover", lang) + "<extra></extra>",
    )
    layout = dict(
        bargap=0.05 if values.size > 64 else 0.2,
        xaxis=dict(title=dict(text=translate("draw.fig_neuron", lang)), fixedrange=True),
        yaxis=dict(title=dict(text=translate("draw.fig_activation", lang)), fixedrange=True),
        margin=dict(l=50, r=10, t=10, b=40),
    )
    return _figure([bar], layout, height)


def logits_figure(logits: Sequence[float] | np.ndarray, labels: Sequence[str], lang: str = "en", height: int = 180) -> go.Figure:
    """The output layer: one score (logit) per class, the highest highlighted; softmax of these is the guess."""
    values = np.asarray(logits, dtype=np.float64)
    top = int(np.argmax(values)) if values.size else -1
    bar = dict(
        type="bar",
        x=list(labels),
        y=values.tolist(),
        marker=dict(color=[TOP_COLOR if i == top else (POSITIVE_COLOR if v >= 0 else NEGATIVE_COLOR)
                           for i, v in enumerate(values)]),
        hovertemplate="%{x}: %{y:.3f}<extra></extra>",
    )
    layout = dict(
        xaxis=dict(type="category", title=dict(text=translate("draw.fig_class", lang)), fixedrange=True),
        yaxis=dict(title=dict(text=translate("draw.fig_logit", lang)), fixedrange=True, zeroline=True),
        margin=dict(l=50, r=10, t=10, b=40),
    )
    return _figure([bar], layout, height)


def layer_figure(layer: LayerActivation, lang: str = "en", labels: Sequence[str] | None = None) -> go.Figure:
    """The right picture for a layer: a feature-map grid for spatial layers, neuron bars otherwise,
    and for the output layer (given the class ``labels``) its scores per class."""
    if layer.name == "output" and labels is not None and len(labels) == layer.values.size:
        return logits_figure(layer.values, labels, lang)
    return feature_map_figure(layer, lang) if layer.is_spatial else neuron_figure(layer, lang)
