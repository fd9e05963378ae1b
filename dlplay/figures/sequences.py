"""Plotly figures of the Sequences page (pure functions: arrays in, go.Figure out)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from dlplay.figures.style import CURRENT, FAINT_LINE, LEGEND_BELOW, SERIES_A, SERIES_B, axis, base_layout, plain_figure
from dlplay.figures.style import LAYER_PALETTE as PALETTE
from dlplay.i18n import translate

# white digits on black, as MNIST stores them and the other pages draw them; the rows not read yet
# on a dark wine red, their ink dimmed
INK, PAPER, UNREAD = np.array([255, 255, 255]), np.array([0, 0, 0]), np.array([70, 18, 40])


def read_mask(order: str, step: int, shape: tuple[int, int] = (28, 28)) -> np.ndarray:
    """[H, W] True where the network has read the pixel after ``step`` steps (1-based) in ``order``."""
    w = shape[1]
    rows, cols = np.indices(shape)
    if order == "rows":
        return rows < step
    if order == "columns":
        return cols < step
    return (rows * w + cols) < step


def revealed_figure(image: np.ndarray, order: str, step: int, lang: str = "en", size: int = 260) -> go.Figure:
    """The 28×28 image with the part not read yet tinted: what the network has seen after ``step`` steps."""
    img = np.asarray(image, dtype=np.float64).reshape(28, 28)
    if img.max() > 1.5:
        img = img / 255.0
    ink = PAPER + (INK - PAPER) * img[..., None]
    tinted = UNREAD + (INK - UNREAD) * img[..., None] * 0.35
    rgb = np.where(read_mask(order, step)[..., None], ink, tinted).astype(np.uint8)
    layout = base_layout(translate("sequences.fig_read_title", lang, step=step), size + 40, bottom=10)
    layout.update(width=size + 20, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                  xaxis={"visible": False}, yaxis={"visible": False, "scaleanchor": "x"})
    return go.Figure({"data": [{"type": "image", "z": rgb.tolist(), "hoverinfo": "skip"}], "layout": layout})


def early_prediction_figure(probs: np.ndarray, step: int, labels: Sequence[str], lang: str = "en",
                            highlight: int | None = None) -> go.Figure:
    """Each class's probability after every step (the early-prediction curve), the current step marked."""
    steps = np.arange(1, len(probs) + 1)
    final = int(np.argmax(probs[-1])) if highlight is None else highlight
    traces = []
    for k in range(probs.shape[1]):
        main = k == final
        traces.append({"type": "scatter", "mode": "lines", "x": steps.tolist(), "y": (probs[:, k] * 100).tolist(),
                       "name": str(labels[k]), "line": {"color": PALETTE[k % len(PALETTE)], "width": 3 if main else 1.2},
                       "opacity": 1.0 if main else 0.6,
                       "hovertemplate": f"{labels[k]}: %{{y:.1f}}%<extra></extra>"})
    marker = {"type": "line", "x0": step, "x1": step, "xref": "x", "yref": "paper", "y0": 0, "y1": 1,
              "line": {"color": CURRENT, "dash": "dot", "width": 1.5}}
    return plain_figure(traces, translate("sequences.fig_early_title", lang), translate("sequences.step", lang),
                        translate("sequences.fig_early_axis", lang), height=340, yaxis={"range": [0, 102]},
                        legend=LEGEND_BELOW, shapes=[marker])


def time_gradient_figure(grads: np.ndarray, lang: str = "en", measured_at: int = 0) -> go.Figure:
    """‖∂L/∂h_t‖ for every step t, log scale: how much of the loss's gradient reaches each step."""
    steps = np.arange(1, len(grads) + 1)
    g = np.where(np.asarray(grads) > 0, grads, np.nan)
    trace = {"type": "scatter", "mode": "lines+markers" if len(g) <= 60 else "lines", "x": steps.tolist(),
             "y": g.tolist(), "name": "‖∂L/∂h_t‖", "line": {"color": SERIES_A, "width": 2}, "marker": {"size": 5},
             "hovertemplate": "t = %{x}: %{y:.3g}<extra></extra>"}
    return plain_figure([trace], translate("sequences.fig_tgrad_title", lang, step=measured_at), translate("sequences.step", lang),
                        translate("sequences.fig_tgrad_axis", lang), height=320,
                        yaxis={"type": "log", "exponentformat": "power"})


def memory_figure(values: np.ndarray, units: np.ndarray, title: str, lang: str = "en", step: int | None = None,
                  zero_centered: bool = True) -> go.Figure:
    """A heatmap of units (rows, in the given order) × steps (columns)."""
    vmax = float(np.abs(values).max()) or 1.0
    heat = {"type": "heatmap", "z": values.tolist(), "x": list(range(1, values.shape[1] + 1)),
            "y": [str(u) for u in units], "colorscale": "RdBu" if zero_centered else "Viridis", "reversescale": zero_centered,
            "zmin": -vmax if zero_centered else 0.0, "zmax": vmax if zero_centered else max(vmax, 1.0),
            "hovertemplate": "t = %{x}, " + translate("sequences.unit_axis", lang) + " %{y}: %{z:.3f}<extra></extra>"}
    shapes = []
    if step is not None:
        shapes.append({"type": "line", "x0": step, "x1": step, "xref": "x", "yref": "paper", "y0": 0, "y1": 1,
                       "line": {"color": CURRENT, "dash": "dot", "width": 1.5}})
    layout = {**base_layout(title, 380), "xaxis": axis(translate("sequences.step", lang)),
              # the first row on top: units that peak early come first, read downwards like the image
              "yaxis": axis(translate("sequences.unit_axis", lang), type="category", showticklabels=len(units) <= 40,
                            autorange="reversed"),
              "shapes": shapes}
    return go.Figure({"data": [heat], "layout": layout})


def connectivity_figure(conn: np.ndarray, lang: str = "en", target_label: str = "") -> go.Figure:
    """|∂ logit / ∂x_t| per step as bars: which steps (rows) mattered for the answer."""
    steps = np.arange(1, len(conn) + 1)
    bar = {"type": "bar", "x": steps.tolist(), "y": conn.tolist(), "marker": {"color": SERIES_B},
           "hovertemplate": "t = %{x}: %{y:.3g}<extra></extra>"}
    return plain_figure([bar], translate("sequences.fig_conn_title", lang, label=target_label), translate("sequences.step", lang),
                        translate("sequences.fig_conn_axis", lang), height=300)


def connectivity_image(image: np.ndarray, conn: np.ndarray, order: str, lang: str = "en", size: int = 260) -> go.Figure:
    """The image with each step's pixels tinted by how much that step mattered."""
    img = np.asarray(image, dtype=np.float64).reshape(28, 28)
    if img.max() > 1.5:
        img = img / 255.0
    weight = conn / (conn.max() or 1.0)
    if order == "rows":
        per_pixel = np.repeat(weight[:, None], 28, axis=1)
    elif order == "columns":
        per_pixel = np.repeat(weight[None, :], 28, axis=0)
    else:
        per_pixel = weight.reshape(28, 28)
    tint = PAPER + (np.array([239, 85, 59]) - PAPER) * per_pixel[..., None]
    rgb = (tint * (1 - 0.85 * img[..., None]) + INK * 0.85 * img[..., None]).astype(np.uint8)
    layout = base_layout(translate("sequences.fig_conn_image", lang), size + 40, bottom=10)
    layout.update(width=size + 20, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                  xaxis={"visible": False}, yaxis={"visible": False, "scaleanchor": "x"})
    return go.Figure({"data": [{"type": "image", "z": rgb.tolist(), "hoverinfo": "skip"}], "layout": layout})


def delta_figure(formula: np.ndarray, autograd: np.ndarray, lang: str = "en") -> go.Figure:
    """‖δ_t‖ by the BPTT recursion and by autograd, per step (they lie on top of each other)."""
    steps = np.arange(1, len(formula) + 1).tolist()
    traces = [
        {"type": "scatter", "mode": "lines", "x": steps, "y": np.linalg.norm(autograd, axis=1).tolist(),
         "name": translate("sequences.autograd", lang), "line": {"color": FAINT_LINE, "width": 6}},
        {"type": "scatter", "mode": "lines+markers", "x": steps, "y": np.linalg.norm(formula, axis=1).tolist(),
         "name": translate("sequences.recursion", lang), "line": {"color": SERIES_A, "width": 1.5}, "marker": {"size": 4}},
    ]
    return plain_figure(traces, translate("sequences.fig_delta_title", lang), translate("sequences.step", lang), "‖δ_t‖",
                        height=300, yaxis={"type": "log", "exponentformat": "power"})
