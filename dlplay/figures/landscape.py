"""The loss landscape as a contour map, with runs' paths projected onto it (dlplay/learn/landscape.py)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from dlplay.figures.style import BLUE, CATEGORY10, GREEN, OUTLINE, RED, SEQUENTIAL, axis, base_layout


def landscape_figure(alphas: np.ndarray, betas: np.ndarray, loss: np.ndarray,
                     paths: Sequence[tuple[str, np.ndarray, np.ndarray, int | None]], title: str, xtitle: str,
                     ytitle: str, loss_label: str, now_label: str, fork_label: str, height: int = 520) -> go.Figure:
    """Contours of ``loss[j, i]`` at (alphas[i], betas[j]) (log scale: the loss spans decades), and
    each path (label, steps, [k, 2] coordinates, fork step or None) as a line with its steps in the
    hover; the first point of a fork is marked, and the centre (the current weights)."""
    finite = loss[np.isfinite(loss)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (1.0, 1.0)
    logscale = lo > 0 and hi / lo > 10  # the loss spans a decade or more: contours of log J
    z = np.log10(np.clip(loss, 1e-6, None)) if logscale else loss
    nice = np.array([m * 10.0**e for e in range(-3, 4) for m in (1, 2, 5)])
    ticks = nice[(nice >= lo) & (nice <= hi)] if logscale else np.array([])
    colorbar: dict = {"title": {"text": loss_label}}
    if logscale:
        colorbar.update(tickvals=np.log10(ticks).tolist(), ticktext=[f"{v:g}" for v in ticks])
    traces: list[dict] = [{
        "type": "contour", "x": alphas.tolist(), "y": betas.tolist(), "z": z.tolist(), "colorscale": SEQUENTIAL,
        "ncontours": 24, "contours": {"coloring": "heatmap", "showlines": True},
        "line": {"width": 0.5, "color": "rgba(255,255,255,0.5)"}, "name": loss_label,
        "colorbar": colorbar,
        "customdata": loss.tolist(), "hovertemplate": "α %{x:.3g}<br>β %{y:.3g}<br>J %{customdata:.4g}<extra></extra>",
    }]
    colors = (RED, BLUE, GREEN, *CATEGORY10[3:])
    for k, (label, steps, coords, fork_step) in enumerate(paths):
        if not len(coords):
            continue
        color = colors[k % len(colors)]
        traces.append({"type": "scatter", "mode": "lines+markers", "x": coords[:, 0].tolist(), "y": coords[:, 1].tolist(),
                       "name": label, "line": {"color": color, "width": 2}, "marker": {"size": 6, "color": color},
                       "customdata": np.asarray(steps).tolist(),
                       "hovertemplate": f"{label}<br>step %{{customdata}}<extra></extra>"})
        if fork_step is not None:
            traces.append({"type": "scatter", "mode": "markers+text", "x": [coords[0, 0]], "y": [coords[0, 1]],
                           "name": fork_label.format(step=fork_step), "text": [fork_label.format(step=fork_step)],
                           "textposition": "top right", "textfont": {"color": color},
                           "marker": {"symbol": "diamond", "size": 13, "color": color, "line": {"color": "white", "width": 1}}})
    traces.append({"type": "scatter", "mode": "markers", "x": [0], "y": [0], "name": now_label,
                   "marker": {"symbol": "x", "size": 12, "color": OUTLINE, "line": {"color": "white", "width": 1}}})
    layout = {**base_layout(title, height, bottom=50), "xaxis": axis(xtitle), "yaxis": axis(ytitle),
              "legend": {"orientation": "h", "yref": "container", "y": 0.0, "yanchor": "bottom", "x": 0.0}}
    layout["margin"] = {"l": 55, "r": 20, "t": 45, "b": 80}
    return go.Figure({"data": traces, "layout": layout})
