"""Plotly figures for the Inside page: one input's activations, deltas, weights and saliency.

Pure functions: numpy arrays in, go.Figure out; titles and hover labels via translate(key, lang).
Values that can be negative use a diverging scale centred at 0 (red positive, blue negative).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from dlplay.figures.style import BACKGROUND, BLUE, DIVERGING, GREEN, GREYS, ORANGE, PURPLE, SALIENCY_SCALE
from dlplay.figures.tiles import square_grid, tile
from dlplay.i18n import translate

MAX_CHANNELS = 64  # feature maps drawn per conv layer (a mosaic of more gets unreadable and slow)
HIGHLIGHT = GREEN


def unit_grid(values: np.ndarray, columns: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A vector of unit values laid out row by row in a grid (NaN pads the end) and the unit indices."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    rows, cols = (math.ceil(len(values) / columns), columns) if columns else square_grid(len(values))
    return tile(values.reshape(-1, 1, 1), rows, cols, gap=0)


def mosaic(maps: np.ndarray, max_channels: int = MAX_CHANNELS) -> tuple[np.ndarray, np.ndarray, int]:
    """Feature maps [C, H, W] tiled into one array with 1-pixel NaN gaps; the channel of each cell; channels shown."""
    maps = np.asarray(maps, dtype=np.float64)
    shown = min(len(maps), max_channels)
    grid, channel = tile(maps[:shown], *square_grid(shown))
    return grid, channel, shown


def _symmetric(values: np.ndarray) -> float:
    finite = np.abs(values[np.isfinite(values)])
    top = float(finite.max()) if finite.size else 0.0
    return top if top > 0 else 1.0


def _image_layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0.0, font=dict(size=13)),
        height=height,
        margin=dict(l=5, r=5, t=35, b=5),
        plot_bgcolor=BACKGROUND, paper_bgcolor=BACKGROUND,  # no named template: it costs ~30 ms a figure
        uirevision="keep",
    )
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x", constrain="domain")
    return fig


def _colorbar() -> dict:
    return dict(thickness=10, len=0.85, outlinewidth=0, exponentformat="e")


def _mark(fig: go.Figure, row: int, col: int) -> None:
    fig.add_shape(type="rect", x0=col - 0.5, x1=col + 0.5, y0=row - 0.5, y1=row + 0.5,
                  line=dict(color=HIGHLIGHT, width=3))


def layer_figure(values: np.ndarray, layer: str, quantity: str, lang: str = "en",
                 selected: int | None = None, height: int = 260, columns: int | None = None) -> go.Figure:
    """One layer's z, a or delta for one input: units in a grid, or conv feature maps as a mosaic.

    ``quantity`` is ``z``, ``a`` or ``delta`` (it names the title); ``selected`` outlines that unit
    (dense layers only); ``columns`` fixes the grid's width (a single row labels each unit with
    its number, e.g. the output layer's classes). Diverging colours centred at 0.
    """
    values = np.asarray(values, dtype=np.float64)
    title = translate(f"inside.fig_{quantity}", lang, layer=layer)
    limit = _symmetric(values)
    if values.ndim == 3:
        grid, channel, shown = mosaic(values)
        if shown < len(values):
            title += " " + translate("inside.fig_first_channels", lang, shown=shown, total=len(values))
        fig = go.Figure(go.Heatmap(
            z=grid, customdata=channel, colorscale=DIVERGING, zmid=0, zmin=-limit, zmax=limit, colorbar=_colorbar(),
            hovertemplate=translate("inside.hover_channel", lang) + " %{customdata}: %{z:.4g}<extra></extra>",
            hoverongaps=False,
        ))
    else:
        grid, index = unit_grid(values, columns)
        fig = go.Figure(go.Heatmap(
            z=grid, customdata=index, colorscale=DIVERGING, zmid=0, zmin=-limit, zmax=limit, colorbar=_colorbar(),
            hovertemplate=translate("inside.hover_unit", lang) + " %{customdata}: %{z:.4g}<extra></extra>",
            hoverongaps=False, xgap=1, ygap=1,
        ))
        if selected is not None and 0 <= selected < values.size:
            _mark(fig, *divmod(selected, grid.shape[1]))
        if grid.shape[0] == 1:  # one row: number the units along the axis
            _image_layout(fig, title, height)
            fig.update_xaxes(visible=True, tickmode="array", tickvals=list(range(values.size)),
                             ticktext=[str(i) for i in range(values.size)], showgrid=False, zeroline=False)
            return fig
    return _image_layout(fig, title, height)


def image_figure(image: np.ndarray, title: str, lang: str = "en", diverging: bool = False, height: int = 260) -> go.Figure:
    """A 2-D array as an image: grey pixels in [0, 1], or diverging around 0 (weights, gradients).

    ``title`` is a translation key (formatted with no parameters) or already-translated text.
    """
    image = np.asarray(image, dtype=np.float64)
    if diverging:
        limit = _symmetric(image)
        trace = go.Heatmap(z=image, colorscale=DIVERGING, zmid=0, zmin=-limit, zmax=limit, colorbar=_colorbar(),
                           hovertemplate="(%{y}, %{x}): %{z:.4g}<extra></extra>")
    else:
        trace = go.Heatmap(z=image, colorscale=GREYS, zmin=0, zmax=1, showscale=False,
                           hovertemplate="(%{y}, %{x}): %{z:.3f}<extra></extra>")
    return _image_layout(go.Figure(trace), translate(title, lang), height)


def saliency_figure(image: np.ndarray, saliency: np.ndarray, class_name: str, lang: str = "en",
                    height: int = 300) -> go.Figure:
    """The input in grey with the saliency (d class score / d pixel) overlaid: red raises the score, blue lowers it."""
    image = np.asarray(image, dtype=np.float64)
    saliency = np.asarray(saliency, dtype=np.float64)
    limit = _symmetric(saliency)
    fig = go.Figure([
        go.Heatmap(z=image, colorscale=GREYS, zmin=0, zmax=1, showscale=False, hoverinfo="skip"),
        go.Heatmap(z=saliency, colorscale=SALIENCY_SCALE, zmid=0, zmin=-limit, zmax=limit, colorbar=_colorbar(),
                   hovertemplate="(%{y}, %{x}): %{z:.4g}<extra></extra>"),
    ])
    return _image_layout(fig, translate("inside.fig_saliency", lang, cls=class_name), height)


def probs_figure(probs: Sequence[float], class_names: Sequence[str], lang: str = "en", *,
                 after: Sequence[float] | None = None, highlight: int | None = None, height: int = 260) -> go.Figure:
    """Output probabilities per class as bars; with ``after``, a second bar set (after the input step)."""
    names = [str(c) for c in class_names]
    colors = [BLUE] * len(names)
    if highlight is not None:
        colors[highlight] = ORANGE
    fig = go.Figure(go.Bar(x=names, y=list(probs), marker_color=colors, name=translate("inside.fig_now", lang),
                           hovertemplate="%{x}: %{y:.4f}<extra></extra>"))
    title = translate("inside.fig_probs", lang)
    if after is not None:
        fig.add_trace(go.Bar(x=names, y=list(after), marker_color=PURPLE, name=translate("inside.fig_after", lang),
                             hovertemplate="%{x}: %{y:.4f}<extra></extra>"))
        title = translate("inside.fig_probs_after", lang)
    fig.update_layout(
        title=dict(text=title, x=0.0, font=dict(size=13)),
        height=height, margin=dict(l=40, r=10, t=35, b=30), plot_bgcolor=BACKGROUND, paper_bgcolor=BACKGROUND, barmode="group",
        yaxis=dict(range=[0, 1], title=translate("inside.fig_probability", lang)),
        xaxis=dict(type="category"), showlegend=after is not None,
        legend=dict(orientation="h", yanchor="top", y=-0.12, xanchor="right", x=1.0),
        uirevision="keep",
    )
    if after is not None:
        fig.update_layout(margin=dict(l=40, r=10, t=35, b=55))
    return fig


def weights_figure(values: np.ndarray, input_shape: Sequence[int], title: str, lang: str = "en",
                   height: int = 260) -> go.Figure:
    """A unit's incoming weights (or their gradients): as an image when they come from an image, else a grid.

    ``title`` is a translation key or text.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    shape = tuple(input_shape)
    if len(shape) == 3 and shape[0] == 1 and values.size == shape[1] * shape[2]:
        return image_figure(values.reshape(shape[1], shape[2]), title, lang, diverging=True, height=height)
    if len(shape) == 3 and values.size == math.prod(shape):
        grid, channel, _ = mosaic(values.reshape(shape))
        limit = _symmetric(values)
        fig = go.Figure(go.Heatmap(
            z=grid, customdata=channel, colorscale=DIVERGING, zmid=0, zmin=-limit, zmax=limit, colorbar=_colorbar(),
            hovertemplate=translate("inside.hover_channel", lang) + " %{customdata}: %{z:.4g}<extra></extra>",
            hoverongaps=False,
        ))
        return _image_layout(fig, translate(title, lang), height)
    grid, index = unit_grid(values)
    limit = _symmetric(values)
    fig = go.Figure(go.Heatmap(
        z=grid, customdata=index, colorscale=DIVERGING, zmid=0, zmin=-limit, zmax=limit, colorbar=_colorbar(),
        hovertemplate=translate("inside.hover_input", lang) + " %{customdata}: %{z:.4g}<extra></extra>",
        hoverongaps=False, xgap=1, ygap=1,
    ))
    return _image_layout(fig, translate(title, lang), height)
