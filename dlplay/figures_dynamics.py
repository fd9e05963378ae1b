"""Plotly figures of training dynamics (pure functions: ProbeSnapshot in, go.Figure out)."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from .figures import downsample
from .hints import HEALTHY_UPDATE_BAND, HEALTHY_UPDATE_RATIO
from .i18n import translate
from .probe import M, ProbeSnapshot

PALETTE = qualitative.Plotly


def layer_color(i: int, alpha: float | None = None) -> str:
    color = PALETTE[i % len(PALETTE)]
    if alpha is None:
        return color
    r, g, b = (int(color[k : k + 2], 16) for k in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _layout(fig: go.Figure, title: str, xtitle: str, ytitle: str, height: int = 320) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0.0, font=dict(size=15)),
        xaxis_title=xtitle,
        yaxis_title=ytitle,
        height=height,
        margin=dict(l=55, r=20, t=45, b=40),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0),
        template="plotly_white",
        uirevision="keep",  # zoom survives live updates
    )
    return fig


def _positive(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(ys) & (ys > 0)
    return xs[keep], ys[keep]


def gradient_figure(snap: ProbeSnapshot, lang: str = "en", metric: str = "grad_w") -> go.Figure:
    """Per layer over time, log scale: ‖∂L/∂W‖ (``grad_w``) or ‖δ‖ = ‖∂L/∂z‖ (``delta``)."""
    fig = go.Figure()
    for i, meta in enumerate(snap.layers):
        xs, ys = _positive(*snap.series(metric, i))
        xs, ys = downsample(xs, ys)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers" if len(xs) < 40 else "lines", name=meta.name,
                                 line=dict(color=layer_color(i), width=2), marker=dict(size=4)))
    fig.update_yaxes(type="log", exponentformat="power")
    title = "dynamics.fig_grad_title" if metric == "grad_w" else "dynamics.fig_delta_title"
    axis = "dynamics.fig_grad_axis" if metric == "grad_w" else "dynamics.fig_delta_axis"
    return _layout(fig, translate(title, lang), translate("dynamics.step", lang), translate(axis, lang))


def update_ratio_figure(snap: ProbeSnapshot, lang: str = "en") -> go.Figure:
    """‖W_after − W_before‖ / ‖W_before‖ per layer over time, log scale, with the healthy band marked."""
    fig = go.Figure()
    lo, hi = HEALTHY_UPDATE_BAND
    fig.add_hrect(y0=lo, y1=hi, fillcolor="rgba(44,160,44,0.10)", line_width=0, layer="below")
    fig.add_hline(y=HEALTHY_UPDATE_RATIO, line=dict(color="rgba(44,160,44,0.8)", dash="dot", width=1.5),
                  annotation_text=translate("dynamics.fig_healthy", lang), annotation_position="bottom right")
    for i, meta in enumerate(snap.layers):
        xs, ys = _positive(*snap.series("update_ratio", i))
        xs, ys = downsample(xs, ys)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers" if len(xs) < 40 else "lines", name=meta.name,
                                 line=dict(color=layer_color(i), width=2), marker=dict(size=4)))
    fig.update_yaxes(type="log", exponentformat="power")
    return _layout(fig, translate("dynamics.fig_update_title", lang), translate("dynamics.step", lang),
                   translate("dynamics.fig_update_axis", lang))


def _hidden(snap: ProbeSnapshot) -> list[int]:
    """Indices of the hidden layers (all but the output layer, unless it is the only one)."""
    idx = [i for i, m in enumerate(snap.layers) if m.name != "output"]
    return idx or list(range(len(snap.layers)))


def activation_figure(snap: ProbeSnapshot, lang: str = "en") -> go.Figure:
    """Mean activation per hidden layer over time, with a mean ± std band, on the probe images."""
    fig = go.Figure()
    for i in _hidden(snap):
        meta = snap.layers[i]
        steps, mean = snap.series("act_mean", i)
        _, std = snap.series("act_std", i)
        keep = np.isfinite(mean) & np.isfinite(std)
        steps, mean, std = steps[keep], mean[keep], std[keep]
        xs, ms = downsample(steps, mean)
        _, ss = downsample(steps, std)
        if len(xs):
            fig.add_trace(go.Scatter(x=np.concatenate([xs, xs[::-1]]), y=np.concatenate([ms + ss, (ms - ss)[::-1]]),
                                     fill="toself", fillcolor=layer_color(i, 0.15), line=dict(width=0),
                                     hoverinfo="skip", showlegend=False, legendgroup=meta.name))
        fig.add_trace(go.Scatter(x=xs, y=ms, mode="lines+markers" if len(xs) < 40 else "lines", name=meta.name,
                                 legendgroup=meta.name, line=dict(color=layer_color(i), width=2), marker=dict(size=4)))
    return _layout(fig, translate("dynamics.fig_act_title", lang), translate("dynamics.step", lang),
                   translate("dynamics.fig_act_axis", lang))


def dead_saturated_figure(snap: ProbeSnapshot, lang: str = "en") -> go.Figure:
    """Per hidden layer over time: the share of dead units (ReLU family) or saturated activations (sigmoid/tanh)."""
    fig = go.Figure()
    shown = 0
    for i in _hidden(snap):
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
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers" if len(xs) < 40 else "lines",
                                 name=translate(key, lang, layer=meta.name),
                                 line=dict(color=layer_color(i), width=2, dash=dash), marker=dict(size=4)))
        shown += 1
    if not shown:
        fig.add_annotation(text=translate("dynamics.fig_no_dead", lang), showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper", font=dict(size=13, color="#777"))
    fig.update_yaxes(range=[-2, 102], ticksuffix="%")
    return _layout(fig, translate("dynamics.fig_dead_title", lang), translate("dynamics.step", lang),
                   translate("dynamics.fig_dead_axis", lang))


def histogram_figure(snap: ProbeSnapshot, lang: str = "en") -> go.Figure:
    """The latest histograms of weights (left) and of their gradients (right), one row per layer."""
    n = max(1, len(snap.layers))
    titles = []
    for meta in snap.layers:
        titles += [translate("dynamics.hist_weights", lang, layer=meta.name),
                   translate("dynamics.hist_grads", lang, layer=meta.name)]
    fig = make_subplots(rows=n, cols=2, subplot_titles=titles or None, vertical_spacing=min(0.08, 0.35 / n),
                        horizontal_spacing=0.08)
    for i in range(len(snap.layers)):
        for col, (counts, edges) in enumerate(((snap.weight_hist[i], snap.weight_edges[i]),
                                               (snap.grad_hist[i], snap.grad_edges[i])), start=1):
            total = counts.sum()
            share = 100.0 * counts / total if total > 0 else counts
            centres = (edges[:-1] + edges[1:]) / 2
            fig.add_trace(go.Bar(x=centres, y=share, width=np.diff(edges), marker_color=layer_color(i, 0.85 if col == 1 else 0.5),
                                 marker_line_width=0, showlegend=False, name=snap.layers[i].name,
                                 hovertemplate="%{x:.3g}: %{y:.1f}%<extra></extra>"), row=i + 1, col=col)
    fig.update_xaxes(exponentformat="e", showexponent="all", tickfont=dict(size=10))
    fig.update_yaxes(ticksuffix="%", tickfont=dict(size=10))
    fig.update_layout(height=90 + 150 * n, margin=dict(l=50, r=20, t=60, b=30), template="plotly_white",
                      bargap=0, uirevision="keep",
                      title=dict(text=translate("dynamics.fig_hist_title", lang, step=snap.last_step), x=0.0,
                                 font=dict(size=15)))
    fig.update_annotations(font=dict(size=12))
    return fig


def heatmap_figure(snap: ProbeSnapshot, layer: int, lang: str = "en") -> go.Figure:
    """Activations of one layer's units (rows) on each probe image (columns), from the latest probe."""
    meta = snap.layers[layer]
    acts = snap.heatmaps[layer]  # [images, units]
    labels = [f"#{j} ({int(c)})" if c >= 0 else f"#{j}" for j, c in enumerate(snap.probe_labels[: acts.shape[0]])]
    z = acts.T if acts.size else np.zeros((0, 0))
    signed = meta.activation not in ("relu", "sigmoid", "softplus") and z.size and float(np.nanmin(z)) < 0
    if signed:
        bound = float(np.nanmax(np.abs(z))) or 1.0
        colors = dict(colorscale="RdBu", reversescale=True, zmin=-bound, zmax=bound)
    else:
        colors = dict(colorscale="Viridis")
    fig = go.Figure(go.Heatmap(z=z, x=labels, y=list(range(z.shape[0])), colorbar=dict(thickness=12), **colors,
                               hovertemplate=translate("dynamics.heat_hover", lang) + "<extra></extra>"))
    fig.update_xaxes(showticklabels=len(labels) <= 64, tickfont=dict(size=8), tickangle=-90)
    fig.update_yaxes(autorange="reversed")
    title = translate("dynamics.fig_heat_title", lang, layer=meta.name, step=snap.last_step)
    return _layout(fig, title, translate("dynamics.heat_x", lang), translate("dynamics.heat_y", lang),
                   height=min(700, max(300, 140 + 2 * z.shape[0])))


def weight_mosaic(images: np.ndarray, cols: int | None = None) -> np.ndarray:
    """Tile [n, h, w] images into one 2-D array with a one-pixel NaN gap between tiles."""
    n, h, w = images.shape
    cols = cols or max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    out = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
    for k in range(n):
        r, c = divmod(k, cols)
        out[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = images[k]
    return out


def first_layer_figure(snap: ProbeSnapshot, lang: str = "en") -> go.Figure:
    """The first layer's weights (or conv kernels) as small images: red pulls up, blue pulls down."""
    fig = go.Figure()
    if snap.first_weights is None or len(snap.first_weights) == 0:
        fig.add_annotation(text=translate("dynamics.fig_first_none", lang), showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper", font=dict(size=13, color="#777"))
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        return _layout(fig, translate("dynamics.fig_first_title", lang, layer="–", n=0), "", "", height=300)
    mosaic = weight_mosaic(snap.first_weights)
    bound = float(np.nanmax(np.abs(mosaic))) or 1.0
    fig.add_trace(go.Heatmap(z=mosaic, colorscale="RdBu", reversescale=True, zmin=-bound, zmax=bound,
                             colorbar=dict(thickness=12), hoverongaps=False,
                             hovertemplate="%{z:.3f}<extra></extra>"))
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x", constrain="domain")
    title = translate("dynamics.fig_first_title", lang, layer=snap.first_layer, n=len(snap.first_weights))
    fig = _layout(fig, title, "", "", height=460)
    fig.update_layout(plot_bgcolor="white")
    return fig
