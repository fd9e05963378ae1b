"""Plotly figures of training dynamics (pure functions: ProbeSnapshot in, go.Figure out).

The page redraws all of them every second while a run trains, so each figure is built as one
plain dict and validated once (no template, no make_subplots, no add_* helpers: those cost tens of
milliseconds each), and the first-layer weights travel as one small PNG instead of a heatmap.
"""
from __future__ import annotations

import base64
import io
import math
from typing import Any

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from dlplay.classify.probe import ProbeSnapshot
from dlplay.figures.style import (
    BACKGROUND,
    DIVERGING_REVERSED,
    GAP_RGB,
    HEALTHY_FILL,
    HEALTHY_LINE,
    HEALTHY_TEXT,
    LAYER_PALETTE,
    LEGEND_BELOW,
    LINE_FAINT,
    NEGATIVE_CSS,
    NEGATIVE_RGB,
    POSITIVE_CSS,
    POSITIVE_RGB,
    SEQUENTIAL,
    TEXT,
    TEXT_FAINT,
    TEXT_MUTED,
    TOP_WITH_TITLE,
    title_layout,
)
from dlplay.figures.style import axis as _axis
from dlplay.figures.style import plain_figure as _figure
from dlplay.figures.tiles import square_grid, tile
from dlplay.i18n import layer_name, translate
from dlplay.learn.hints import DEAD_FRACTION, HEALTHY_UPDATE_BAND, HEALTHY_UPDATE_RATIO, SATURATED_FRACTION
from dlplay.run.metrics import downsample

LAYER_LINES: dict[str, Any] = {"legend": LEGEND_BELOW, "height": 360}  # per-layer line charts: often two rows of layers

PALETTE = LAYER_PALETTE
MARKERS_BELOW = 40  # points per line under which each probe is also drawn as a dot
NEGATIVE, POSITIVE, GAP = np.array(NEGATIVE_RGB), np.array(POSITIVE_RGB), np.array(GAP_RGB)


def layer_color(i: int, alpha: float | None = None) -> str:
    color = PALETTE[i % len(PALETTE)]
    if alpha is None:
        return color
    r, g, b = (int(color[k : k + 2], 16) for k in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _line(xs: np.ndarray, ys: np.ndarray, name: str, color: str, dash: str = "solid", **extra: Any) -> dict:
    return {"type": "scatter", "x": xs, "y": ys, "name": name,
            "mode": "lines+markers" if len(xs) < MARKERS_BELOW else "lines",
            "line": {"color": color, "width": 2, "dash": dash}, "marker": {"size": 4}, **extra}


def _positive(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(ys) & (ys > 0)
    return downsample(xs[keep], ys[keep])


def _message(text: str) -> dict:
    return {"text": text, "showarrow": False, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper",
            "font": {"size": 13, "color": TEXT_FAINT}}


def gradient_figure(snap: ProbeSnapshot, lang: str = "en", metric: str = "grad_w") -> go.Figure:
    """Per layer over time, log scale: ‖∂L/∂W‖ (``grad_w``) or ‖δ‖ = ‖∂L/∂z‖ (``delta``)."""
    traces = [_line(*_positive(*snap.series(metric, i)), layer_name(meta.name, lang), layer_color(i)) for i, meta in enumerate(snap.layers)]
    weights = metric == "grad_w"
    return _figure(traces, translate("dynamics.fig_grad_title" if weights else "dynamics.fig_delta_title", lang),
                   translate("dynamics.step", lang),
                   translate("dynamics.fig_grad_axis" if weights else "dynamics.fig_delta_axis", lang),
                   yaxis={"type": "log", "exponentformat": "power"}, **LAYER_LINES)


def update_ratio_figure(snap: ProbeSnapshot, lang: str = "en") -> go.Figure:
    """‖W_after − W_before‖ / ‖W_before‖ per layer over time, log scale, with the healthy band marked."""
    lo, hi = HEALTHY_UPDATE_BAND
    traces = [_line(*_positive(*snap.series("update_ratio", i)), layer_name(meta.name, lang), layer_color(i))
              for i, meta in enumerate(snap.layers)]
    shapes = [
        {"type": "rect", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": lo, "y1": hi,
         "fillcolor": HEALTHY_FILL, "line": {"width": 0}, "layer": "below"},
        {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": HEALTHY_UPDATE_RATIO,
         "y1": HEALTHY_UPDATE_RATIO, "line": {"color": HEALTHY_LINE, "dash": "dot", "width": 1.5}},
    ]
    # annotations on a log axis take log10 of the value (shapes take the value itself)
    note = {"text": translate("dynamics.fig_healthy", lang), "showarrow": False, "xref": "paper", "x": 1.0,
            "xanchor": "right", "yref": "y", "y": math.log10(HEALTHY_UPDATE_RATIO), "yanchor": "top",
            "font": {"size": 11, "color": HEALTHY_TEXT}}
    return _figure(traces, translate("dynamics.fig_update_title", lang), translate("dynamics.step", lang),
                   translate("dynamics.fig_update_axis", lang), yaxis={"type": "log", "exponentformat": "power"},
                   shapes=shapes, annotations=[note], **LAYER_LINES)


def hidden_layers(snap: ProbeSnapshot) -> list[int]:
    """Indices of the hidden layers (all but the output layer, unless it is the only one)."""
    idx = [i for i, m in enumerate(snap.layers) if m.name != "output"]
    return idx or list(range(len(snap.layers)))


def activation_figure(snap: ProbeSnapshot, lang: str = "en") -> go.Figure:
    """Mean activation per hidden layer over time, with a mean ± std band, on the probe images."""
    traces = []
    for i in hidden_layers(snap):
        name = layer_name(snap.layers[i].name, lang)
        steps, mean = snap.series("act_mean", i)
        _, std = snap.series("act_std", i)
        keep = np.isfinite(mean) & np.isfinite(std)
        xs, ms = downsample(steps[keep], mean[keep])
        _, ss = downsample(steps[keep], std[keep])
        if len(xs):
            traces.append({"type": "scatter", "x": np.concatenate([xs, xs[::-1]]),
                           "y": np.concatenate([ms + ss, (ms - ss)[::-1]]), "mode": "lines", "fill": "toself",
                           "fillcolor": layer_color(i, 0.15), "line": {"width": 0}, "hoverinfo": "skip",
                           "showlegend": False, "legendgroup": name})
        traces.append(_line(xs, ms, name, layer_color(i), legendgroup=name))
    return _figure(traces, translate("dynamics.fig_act_title", lang), translate("dynamics.step", lang),
                   translate("dynamics.fig_act_axis", lang), **LAYER_LINES)


def dead_saturated_figure(snap: ProbeSnapshot, lang: str = "en") -> go.Figure:
    """Per hidden layer over time: the share of dead units (ReLU family) or saturated activations (sigmoid/tanh)."""
    traces = []
    for i in hidden_layers(snap):
        meta = snap.layers[i]
        if meta.relu_family:
            metric, key, dash = "dead", "dynamics.dead_label", "solid"
        elif meta.saturating:
            metric, key, dash = "saturated", "dynamics.saturated_label", "dash"
        else:
            continue
        steps, vals = snap.series(metric, i)
        keep = np.isfinite(vals)
        xs, ys = downsample(steps[keep], 100.0 * vals[keep])
        traces.append(_line(xs, ys, translate(key, lang, layer=layer_name(meta.name, lang)), layer_color(i), dash))
    annotations = [] if traces else [_message(translate("dynamics.fig_no_dead", lang))]
    shapes = []
    if traces:  # where the page's hint starts: the same threshold as dlplay.learn.hints
        for limit in sorted({DEAD_FRACTION, SATURATED_FRACTION}):
            shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": 100 * limit, "y1": 100 * limit,
                           "line": {"dash": "dot", "width": 1, "color": LINE_FAINT}})
            annotations.append({"xref": "paper", "x": 1, "y": 100 * limit, "xanchor": "right", "yanchor": "bottom",
                                "showarrow": False, "font": {"size": 11, "color": TEXT_MUTED},
                                "text": translate("dynamics.fig_hint_from", lang, pct=round(100 * limit))})
    return _figure(traces, translate("dynamics.fig_dead_title", lang), translate("dynamics.step", lang),
                   translate("dynamics.fig_dead_axis", lang), yaxis={"range": [-2, 102], "ticksuffix": "%"},
                   annotations=annotations, shapes=shapes, **LAYER_LINES)


HIST_LABEL_PX = 20  # the histogram rows' labels ("dense1: weights") sit on each row's top edge


def histogram_figure(snap: ProbeSnapshot, lang: str = "en") -> go.Figure:
    """The latest histograms of weights (left) and of their gradients (right), one row per layer."""
    n = max(1, len(snap.layers))
    row_px, top_px, bottom_px, gap_px = 150, TOP_WITH_TITLE + HIST_LABEL_PX, 30, 60  # the first row's labels under the title
    height = top_px + bottom_px + n * row_px + (n - 1) * gap_px
    plot_h = height - top_px - bottom_px
    traces, notes = [], []
    layout: dict[str, Any] = {}
    for i, meta in enumerate(snap.layers):
        y1 = 1.0 - i * (row_px + gap_px) / plot_h
        y0 = max(0.0, y1 - row_px / plot_h)
        for col, (counts, edges, key) in enumerate(((snap.weight_hist[i], snap.weight_edges[i], "dynamics.hist_weights"),
                                                    (snap.grad_hist[i], snap.grad_edges[i], "dynamics.hist_grads"))):
            k = 2 * i + col + 1
            suffix = "" if k == 1 else str(k)
            total = counts.sum()
            traces.append({"type": "bar", "x": (edges[:-1] + edges[1:]) / 2,
                           "y": 100.0 * counts / total if total > 0 else counts, "width": np.diff(edges),
                           "marker": {"color": layer_color(i, 0.85 if col == 0 else 0.5), "line": {"width": 0}},
                           "showlegend": False, "name": layer_name(meta.name, lang), "xaxis": f"x{suffix}", "yaxis": f"y{suffix}",
                           "hovertemplate": "%{x:.3g}: %{y:.1f}%<extra></extra>"})
            x0, x1 = (0.0, 0.46) if col == 0 else (0.54, 1.0)
            layout[f"xaxis{suffix}"] = _axis(domain=[x0, x1], anchor=f"y{suffix}", exponentformat="e",
                                             tickfont={"size": 10})
            layout[f"yaxis{suffix}"] = _axis(domain=[y0, y1], anchor=f"x{suffix}", ticksuffix="%", tickfont={"size": 10})
            notes.append({"text": translate(key, lang, layer=layer_name(meta.name, lang)), "showarrow": False, "xref": "paper",
                          "yref": "paper", "x": (x0 + x1) / 2, "y": y1, "yanchor": "bottom", "font": {"size": 12}})
    layout.update({
        "title": title_layout(translate("dynamics.fig_hist_title", lang, step=snap.last_step), above=HIST_LABEL_PX + 8),
        "height": height, "margin": {"l": 50, "r": 20, "t": top_px, "b": bottom_px}, "bargap": 0,
        "annotations": notes, "plot_bgcolor": BACKGROUND, "paper_bgcolor": BACKGROUND, "uirevision": "keep",
    })
    return go.Figure({"data": traces, "layout": layout})


def heatmap_figure(snap: ProbeSnapshot, layer: int, lang: str = "en") -> go.Figure:
    """Activations of one layer's units (rows) on each probe image (columns), from the latest probe."""
    meta = snap.layers[layer]
    acts = snap.heatmaps[layer]  # [images, units]
    labels = [f"#{j} ({int(c)})" if c >= 0 else f"#{j}" for j, c in enumerate(snap.probe_labels[: acts.shape[0]])]
    z = acts.T.astype(np.float32)  # half the bytes on the wire, every second
    trace: dict[str, Any] = {"type": "heatmap", "z": z, "x": labels, "y": np.arange(z.shape[0]),
                             "colorbar": {"thickness": 12},
                             "hovertemplate": translate("dynamics.heat_hover", lang) + "<extra></extra>"}
    if z.size and float(np.nanmin(z)) < 0:  # signed values: white at 0
        bound = float(np.nanmax(np.abs(z))) or 1.0
        trace.update(colorscale=DIVERGING_REVERSED, reversescale=True, zmin=-bound, zmax=bound)
    else:
        trace.update(colorscale=SEQUENTIAL)
    title = translate("dynamics.fig_heat_title", lang, layer=layer_name(meta.name, lang), step=snap.last_step)
    return _figure([trace], title, translate("dynamics.heat_x", lang), translate("dynamics.heat_y", lang),
                   height=min(700, max(300, 140 + 2 * z.shape[0])),
                   xaxis={"showticklabels": len(labels) <= 64, "tickfont": {"size": 8}, "tickangle": -90},
                   yaxis={"autorange": "reversed"})


def weight_mosaic(images: np.ndarray, cols: int | None = None) -> np.ndarray:
    """Tile [n, h, w] images into one 2-D array with a one-pixel NaN gap between tiles (near-square)."""
    cols = cols or square_grid(len(images))[1]
    return tile(images, max(1, math.ceil(len(images) / cols)), cols)[0]


def diverging_png(values: np.ndarray, bound: float, levels: int = 32) -> bytes:
    """A palette PNG: negative values blue, 0 white, positive red (|v| >= bound saturated), NaN light grey.

    2·levels + 1 colours are plenty for the eye and keep the image small (one byte per pixel).
    """
    t = np.clip(np.nan_to_num(values / (bound or 1.0)), -1.0, 1.0)
    index = np.rint((t + 1.0) * levels).astype(np.uint8)  # 0 .. 2·levels
    index[np.isnan(values)] = 2 * levels + 1
    steps = np.linspace(-1.0, 1.0, 2 * levels + 1)[:, None]
    white = np.array([255.0, 255.0, 255.0])
    colors = np.where(steps >= 0, white + steps * (POSITIVE - white), white - steps * (NEGATIVE - white))
    palette = np.rint(np.vstack([colors, GAP])).astype(np.uint8)
    image = Image.fromarray(index, mode="P")
    image.putpalette(palette.reshape(-1).tolist())
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def first_layer_figure(snap: ProbeSnapshot, lang: str = "en") -> go.Figure:
    """The first layer's weights (or conv kernels) as small images: red pulls up, blue pulls down."""
    if snap.first_weights is None or len(snap.first_weights) == 0:
        return _figure([], translate("dynamics.fig_first_title", lang, layer="–", n=0), "", "", height=300,
                       xaxis={"visible": False}, yaxis={"visible": False},
                       annotations=[_message(translate("dynamics.fig_first_none", lang))])
    mosaic = weight_mosaic(snap.first_weights)
    bound = float(np.nanmax(np.abs(mosaic))) or 1.0
    source = "data:image/png;base64," + base64.b64encode(diverging_png(mosaic, bound)).decode("ascii")
    title = translate("dynamics.fig_first_title", lang, layer=snap.first_layer, n=len(snap.first_weights))
    scale_note = {"text": f"<span style='color:{NEGATIVE_CSS}'>■</span> −{bound:.2g} · 0 · "
                          f"<span style='color:{POSITIVE_CSS}'>■</span> +{bound:.2g}",
                  "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": -0.02, "yanchor": "top",
                  "font": {"size": 12, "color": TEXT}}
    # zsmooth False: the browser scales the small PNG up with sharp pixels
    return _figure([{"type": "image", "source": source, "zsmooth": False, "hoverinfo": "skip"}], title, "", "", height=520,
                   xaxis={"visible": False, "constrain": "domain"},
                   yaxis={"visible": False, "scaleanchor": "x", "constrain": "domain"},
                   annotations=[scale_note], margin={"l": 10, "r": 10, "t": TOP_WITH_TITLE, "b": 30})
