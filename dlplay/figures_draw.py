"""Plotly figures for the Draw page: the ten probabilities and one forward pass, layer by layer."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from .i18n import translate
from .predict import LayerActivation

TOP_COLOR = "#d62728"
OTHER_COLOR = "#9ecae1"
MAX_BARS = 2000  # above this a dense layer is drawn as a heatmap grid instead of bars


def _base_layout(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(
        height=height,
        margin=dict(l=10, r=10, t=10, b=10),
        template="plotly_white",
        showlegend=False,
        uirevision="keep",
    )
    return fig


def probability_figure(probabilities: Sequence[float], labels: Sequence[str], lang: str = "en", height: int = 260) -> go.Figure:
    """One bar per class, the most probable one highlighted, probabilities as percentages."""
    probs = np.asarray(probabilities, dtype=np.float64)
    top = int(np.argmax(probs)) if probs.size else -1
    colors = [TOP_COLOR if i == top else OTHER_COLOR for i in range(len(probs))]
    fig = go.Figure(
        go.Bar(
            x=list(labels),
            y=probs * 100.0,
            marker_color=colors,
            text=[f"{p * 100:.0f}%" if p >= 0.005 else "" for p in probs],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{x}: %{y:.1f}%<extra></extra>",
        )
    )
    fig.update_xaxes(type="category", title=translate("draw.fig_class", lang), fixedrange=True)
    fig.update_yaxes(range=[0, 112], title=translate("draw.fig_probability", lang), ticksuffix="%", fixedrange=True)
    _base_layout(fig, height)
    fig.update_layout(margin=dict(l=50, r=10, t=10, b=45))
    return fig


def grid_shape(n: int, max_cols: int = 8) -> tuple[int, int]:
    """Rows and columns for ``n`` tiles: one row when they fit, else rows of ``max_cols``."""
    if n <= 0:
        return 0, 0
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def tile_feature_maps(values: np.ndarray, max_cols: int = 8, gap: int = 1) -> np.ndarray:
    """(C, H, W) feature maps -> one 2-D array of C tiles in a grid, NaN between tiles (shown blank)."""
    maps = np.asarray(values, dtype=np.float64)
    if maps.ndim != 3:
        raise ValueError(f"expected (channels, height, width), got shape {maps.shape}")
    c, h, w = maps.shape
    rows, cols = grid_shape(c, max_cols)
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan)
    for i in range(c):
        r, k = divmod(i, cols)
        out[r * (h + gap) : r * (h + gap) + h, k * (w + gap) : k * (w + gap) + w] = maps[i]
    return out


def _colorscale(values: np.ndarray) -> dict:
    """Diverging around zero when there are negative values, sequential otherwise."""
    finite = values[np.isfinite(values)]
    low = float(finite.min()) if finite.size else 0.0
    high = float(finite.max()) if finite.size else 1.0
    if low < 0:
        bound = max(abs(low), abs(high), 1e-6)
        return dict(colorscale="RdBu", reversescale=True, zmin=-bound, zmax=bound, zmid=0.0)
    return dict(colorscale="Viridis", zmin=0.0, zmax=max(high, 1e-6))


def feature_map_figure(layer: LayerActivation, lang: str = "en", max_cols: int = 8, width_px: int = 720) -> go.Figure:
    """All feature maps of a conv / pooling layer as one heatmap grid (map 1 top left, row by row)."""
    c, h, w = layer.values.shape
    grid = tile_feature_maps(layer.values, max_cols)
    rows, cols = grid_shape(c, max_cols)
    # Hover shows which map a cell belongs to.
    ids = np.full(grid.shape, -1, dtype=np.int64)
    for i in range(c):
        r, k = divmod(i, cols)
        ids[r * (h + 1) : r * (h + 1) + h, k * (w + 1) : k * (w + 1) + w] = i + 1
    fig = go.Figure(
        go.Heatmap(
            z=grid,
            customdata=ids,
            hovertemplate=translate("draw.fig_map_hover", lang) + "<extra></extra>",
            showscale=True,
            colorbar=dict(thickness=10, len=0.9),
            **_colorscale(grid),
        )
    )
    fig.update_yaxes(autorange="reversed", showticklabels=False, showgrid=False, zeroline=False, scaleanchor="x", fixedrange=True)
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, fixedrange=True)
    tile_px = min(90.0, width_px / cols) * h / w  # the figure is about ``width_px`` wide, tiles stay square
    return _base_layout(fig, height=int(max(100, rows * tile_px + 20)))


def neuron_figure(layer: LayerActivation, lang: str = "en", height: int = 180) -> go.Figure:
    """A dense layer's neurons as bars (neuron number across, activation up); a heatmap if very wide."""
    values = np.asarray(layer.values, dtype=np.float64).ravel()
    if values.size > MAX_BARS:
        rows, cols = grid_shape(values.size, max_cols=64)
        grid = np.full(rows * cols, np.nan)
        grid[: values.size] = values
        fig = go.Figure(go.Heatmap(z=grid.reshape(rows, cols), **_colorscale(values)))
        fig.update_yaxes(autorange="reversed", showticklabels=False)
        return _base_layout(fig, height)
    positive = values >= 0
    fig = go.Figure(
        go.Bar(
            x=np.arange(1, values.size + 1),
            y=values,
            marker_color=np.where(positive, "#3182bd", "#e6550d").tolist(),
            marker_line_width=0,
            hovertemplate=translate("draw.fig_neuron_hover", lang) + "<extra></extra>",
        )
    )
    fig.update_layout(bargap=0.05 if values.size > 64 else 0.2)
    fig.update_xaxes(title=translate("draw.fig_neuron", lang), fixedrange=True)
    fig.update_yaxes(title=translate("draw.fig_activation", lang), fixedrange=True)
    _base_layout(fig, height)
    fig.update_layout(margin=dict(l=50, r=10, t=10, b=40))
    return fig


def layer_figure(layer: LayerActivation, lang: str = "en") -> go.Figure:
    """The right picture for a layer: a feature-map grid for spatial layers, neuron bars otherwise."""
    return feature_map_figure(layer, lang) if layer.is_spatial else neuron_figure(layer, lang)
