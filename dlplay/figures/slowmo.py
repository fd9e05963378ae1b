"""One training step on the network diagram: every neuron of every dense layer as a dot, coloured by
the number the current phase has produced for it (dlplay/learn/slowmo.py's ``neuron_value``)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from dlplay.figures.style import (
    BACKGROUND,
    DIVERGING,
    GRID,
    NEUTRAL,
    ORANGE,
    OUTLINE,
    SEQUENTIAL,
    STEP_FILL,
    TEXT_MUTED,
    base_layout,
)

ROWS = 32  # neurons per sub-column: a layer of 128 is drawn as 4 columns of 32


def step_figure(columns: Sequence[tuple[str, str, np.ndarray | None, bool]], active: int | None,
                selected: tuple[int, int] | None, title: str, arrow: str = "", height: int = 430) -> go.Figure:
    """``columns``: per layer (title, quantity label, values per neuron or None while not yet computed,
    signed: a diverging scale around 0, else a sequential one). ``active``: the layer of the phase now
    playing (highlighted); ``selected``: (layer, neuron) ringed. Each dot's customdata is (layer, neuron)."""
    traces: list[dict] = []
    shapes: list[dict] = []
    annotations: list[dict] = []
    x0 = 0.0
    for c, (name, label, values, signed) in enumerate(columns):
        n = len(values) if values is not None else 0
        width = 0.0
        if values is not None:
            sub = int(np.ceil(n / ROWS))
            idx = np.arange(n)
            xs = x0 + (idx // ROWS) * 0.35
            ys = -(idx % ROWS).astype(float)
            width = (sub - 1) * 0.35
            lim = float(np.nanmax(np.abs(values))) if n and np.isfinite(values).any() else 1.0
            lim = lim or 1.0
            marker: dict = {"size": 9, "color": values.tolist(), "line": {"color": OUTLINE, "width": 0.5},
                            "colorscale": DIVERGING if signed else SEQUENTIAL,
                            "cmin": -lim if signed else 0.0, "cmax": lim}
            traces.append({"type": "scatter", "mode": "markers", "x": xs.tolist(), "y": ys.tolist(), "marker": marker,
                           "customdata": [[c, int(i)] for i in idx], "showlegend": False, "name": name,
                           "hovertemplate": f"{name} #%{{customdata[1]}}<br>{label} = %{{marker.color:.4g}}<extra></extra>"})
            if selected is not None and selected[0] == c and 0 <= selected[1] < n:
                j = selected[1]
                traces.append({"type": "scatter", "mode": "markers", "x": [float(xs[j])], "y": [float(ys[j])],
                               "marker": {"size": 17, "color": "rgba(0,0,0,0)", "line": {"color": ORANGE, "width": 3}},
                               "hoverinfo": "skip", "showlegend": False})
        else:
            annotations.append({"x": x0, "y": -ROWS / 2, "text": "…", "showarrow": False,
                                "font": {"size": 22, "color": NEUTRAL}})
        if active == c:
            shapes.append({"type": "rect", "x0": x0 - 0.3, "x1": x0 + width + 0.3, "y0": 0.8, "y1": -ROWS + 0.2,
                           "line": {"color": ORANGE, "width": 2}, "fillcolor": STEP_FILL})
        annotations.append({"x": x0 + width / 2, "y": 1.0, "yanchor": "bottom", "text": f"<b>{name}</b><br>{label}",
                            "showarrow": False, "font": {"size": 12, "color": TEXT_MUTED}})
        x0 += width + 1.4
    if arrow:
        annotations.append({"x": 0.5, "xref": "paper", "y": -ROWS - 0.8, "text": arrow, "showarrow": False,
                            "font": {"size": 13, "color": ORANGE}})
    layout = {**base_layout(title, height, bottom=30),
              "xaxis": {"visible": False, "range": [-0.8, x0 - 0.6]},
              "yaxis": {"visible": False, "range": [-ROWS - 1.5, 3.2]},
              "shapes": shapes, "annotations": annotations, "plot_bgcolor": BACKGROUND, "clickmode": "event+select",
              "hoverlabel": {"bgcolor": "white", "bordercolor": GRID}}
    return go.Figure({"data": traces, "layout": layout})
