"""Plotly figures for the Generate page (pure functions: arrays in, go.Figure out).

The 2-D lab follows GAN Lab's colours: green is "real" (the real points, and where the discriminator
says real, D(x) near 1), purple is "fake" (generated points, D(x) near 0). The MNIST mode's figures
are curves of the two networks' contest, grids of generated digits, and a class histogram.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from dlplay.figures.style import (
    ARROW_COLOR,
    BACKGROUND,
    BLUE,
    D_SCALE,
    GREEN,
    GREY,
    LEGEND_BELOW,
    LIGHT_BLUE,
    MANIFOLD_COLOR,
    ORANGE,
    PURPLE,
    RED,
    TEXT_MUTED,
    TOP_WITH_TITLE,
    axis,
    base_layout,
    plain_figure,
)
from dlplay.figures.tiles import tile
from dlplay.i18n import translate
from dlplay.run.metrics import MAX_POINTS, downsample

REAL_COLOR, FAKE_COLOR = GREEN, PURPLE
D_LOSS_COLOR, G_LOSS_COLOR = BLUE, ORANGE
MAX_ARROWS = 80  # more would hide the points they start from
# D(x) over the plane: purple where D says "fake" (0), white at 0.5 (undecided), green where it says "real" (1)
CLASS_COLOR, MISSING_COLOR = LIGHT_BLUE, RED


def _xy(points: np.ndarray | None) -> tuple[list[float], list[float]]:
    if points is None or len(points) == 0:
        return [], []
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return p[:, 0].tolist(), p[:, 1].tolist()


def _polylines(lines: np.ndarray) -> tuple[list[float | None], list[float | None]]:
    """[k, m, 2] polylines -> x and y lists with None between lines (one trace for all)."""
    xs: list[float | None] = []
    ys: list[float | None] = []
    for line in np.asarray(lines, dtype=np.float64):
        xs.extend([*line[:, 0].tolist(), None])
        ys.extend([*line[:, 1].tolist(), None])
    return xs, ys


def manifold_lines(lines: np.ndarray) -> tuple[list[float | None], list[float | None]]:
    """The generator's image of a grid of lines in noise space ([lines, points, 2] polylines) as one
    trace's x and y."""
    g = np.asarray(lines, dtype=np.float64)
    if g.ndim != 3 or g.shape[-1] != 2:
        raise ValueError(f"expected [lines, points, 2] polylines, got shape {g.shape}")
    return _polylines(g)


def arrow_segments(starts: np.ndarray, vectors: np.ndarray, length: float) -> tuple[list[float | None], list[float | None]]:
    """Segments from each start along its vector, scaled so the longest is ``length`` long
    (the directions and the relative sizes are the gradient's; the absolute size is for reading)."""
    s = np.asarray(starts, dtype=np.float64).reshape(-1, 2)
    v = np.asarray(vectors, dtype=np.float64).reshape(-1, 2)
    if len(s) == 0:
        return [], []
    norms = np.linalg.norm(v, axis=1)
    top = float(np.nanmax(norms)) if np.isfinite(norms).any() else 0.0
    scale = length / top if top > 0 else 0.0
    ends = s + np.nan_to_num(v) * scale
    xs: list[float | None] = []
    ys: list[float | None] = []
    for (x0, y0), (x1, y1) in zip(s.tolist(), ends.tolist()):
        xs.extend([x0, x1, None])
        ys.extend([y0, y1, None])
    return xs, ys


def plane_figure(
    xs: np.ndarray, ys: np.ndarray, d_values: np.ndarray | None, real: np.ndarray, fake: np.ndarray,
    lang: str = "en", manifold: np.ndarray | None = None, arrows: np.ndarray | None = None,
    height: int = 460, show: Sequence[str] = ("heatmap", "real", "fake", "manifold", "arrows"),
) -> go.Figure:
    """The 2-D lab's plane: D(x) as a heatmap (``d_values`` [len(ys), len(xs)], rows along y), the real
    and the generated points, the generator's image of a noise grid (``manifold``: [lines, points, 2] polylines) and the
    gradient arrows on the generated points (``arrows`` [n, 2], one per fake point: the way G moves it).
    ``show`` picks the layers to draw."""
    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(ys, dtype=np.float64)
    traces: list[dict[str, Any]] = []
    if d_values is not None and "heatmap" in show:
        traces.append({
            "type": "heatmap", "x": x.tolist(), "y": y.tolist(), "z": np.asarray(d_values, dtype=np.float64).tolist(),
            "zmin": 0.0, "zmax": 1.0, "colorscale": D_SCALE, "opacity": 0.85, "zsmooth": "fast",  # "best" is smoother but slow to redraw live
            "name": translate("generate.fig_d_of_x", lang),
            "colorbar": {"title": {"text": "D(x)", "side": "right"}, "thickness": 12, "len": 0.8,
                         "tickvals": [0, 0.5, 1],
                         "ticktext": [translate("generate.fig_says_fake", lang), "0.5",
                                      translate("generate.fig_says_real", lang)]},
            "hovertemplate": "x=%{x:.2f}, y=%{y:.2f}<br>D(x)=%{z:.2f}<extra></extra>",
        })
    if manifold is not None and "manifold" in show:
        mx, my = manifold_lines(manifold)
        traces.append({"type": "scatter", "x": mx, "y": my, "mode": "lines", "hoverinfo": "skip",
                       "name": translate("generate.fig_manifold", lang), "line": {"color": MANIFOLD_COLOR, "width": 1}})
    if arrows is not None and fake is not None and len(fake) and "arrows" in show:
        span = float(max(x.max() - x.min(), y.max() - y.min())) if x.size and y.size else 1.0
        keep = np.linspace(0, len(fake) - 1, min(len(fake), MAX_ARROWS)).round().astype(int)
        ax, ay = arrow_segments(np.asarray(fake)[keep], np.asarray(arrows)[keep], 0.08 * span)
        traces.append({"type": "scatter", "x": ax, "y": ay, "mode": "lines+markers", "hoverinfo": "skip",
                       "name": translate("generate.fig_arrows", lang), "line": {"color": ARROW_COLOR, "width": 1},
                       "marker": {"symbol": "arrow", "angleref": "previous", "size": 6, "color": ARROW_COLOR,
                                  "opacity": [0, 1, 0] * (len(ax) // 3)}})
    if "real" in show:
        rx, ry = _xy(real)
        traces.append({"type": "scatter", "x": rx, "y": ry, "mode": "markers", "name": translate("generate.fig_real", lang),
                       "marker": {"color": REAL_COLOR, "size": 6, "line": {"color": "white", "width": 0.5}},
                       "hovertemplate": "%{x:.2f}, %{y:.2f}<extra></extra>"})
    if "fake" in show:
        fx, fy = _xy(fake)
        traces.append({"type": "scatter", "x": fx, "y": fy, "mode": "markers", "name": translate("generate.fig_fake", lang),
                       "marker": {"color": FAKE_COLOR, "size": 6, "line": {"color": "white", "width": 0.5}},
                       "hovertemplate": "%{x:.2f}, %{y:.2f}<extra></extra>"})
    rng_x = [float(x.min()), float(x.max())] if x.size else None
    rng_y = [float(y.min()), float(y.max())] if y.size else None
    layout = {
        **base_layout(translate("generate.fig_plane", lang), height, bottom=40),
        "xaxis": axis("x₁", range=rng_x, constrain="domain", zeroline=False),
        "yaxis": axis("x₂", range=rng_y, scaleanchor="x", scaleratio=1, constrain="domain", zeroline=False),
        "uirevision": "keep",
        "legend": {"orientation": "h", "yref": "container", "yanchor": "bottom", "y": 0.0, "x": 0.0, "xanchor": "left"},
        "margin": {"l": 45, "r": 10, "t": TOP_WITH_TITLE, "b": 80},
    }
    return go.Figure({"data": traces, "layout": layout})


def _curve(steps: Sequence[int], values: Sequence[float], name: str, color: str, **extra: Any) -> dict[str, Any]:
    s, v = downsample(np.asarray(steps, dtype=np.float64), np.asarray(values, dtype=np.float64), MAX_POINTS)
    return {"type": "scatter", "x": s.tolist(), "y": v.tolist(), "mode": "lines", "name": name,
            "line": {"color": color, "width": 1.6}, **extra}


def loss_curves_figure(steps: Sequence[int], d_loss: Sequence[float], g_loss: Sequence[float], lang: str = "en",
                       height: int = 300) -> go.Figure:
    """The discriminator's and the generator's loss per step: in a healthy contest neither wins for long."""
    traces = [_curve(steps, d_loss, translate("generate.fig_d_loss", lang), D_LOSS_COLOR),
              _curve(steps, g_loss, translate("generate.fig_g_loss", lang), G_LOSS_COLOR)]
    return plain_figure(traces, translate("generate.fig_losses", lang), translate("generate.fig_step", lang),
                        translate("generate.fig_loss", lang), height=height)


def d_outputs_figure(steps: Sequence[int], d_real: Sequence[float], d_fake: Sequence[float], lang: str = "en",
                     height: int = 300) -> go.Figure:
    """Mean D(real) and mean D(fake) per step, between 0 and 1, with the stalemate at 0.5 marked:
    when G matches the data, D cannot tell and both drift towards 0.5."""
    traces = [_curve(steps, d_real, translate("generate.fig_d_real", lang), REAL_COLOR),
              _curve(steps, d_fake, translate("generate.fig_d_fake", lang), FAKE_COLOR)]
    if len(steps):
        traces.append({"type": "scatter", "x": [float(steps[0]), float(steps[-1])], "y": [0.5, 0.5], "mode": "lines",
                       "name": translate("generate.fig_undecided", lang), "hoverinfo": "skip",
                       "line": {"color": GREY, "dash": "dot", "width": 1}})
    return plain_figure(traces, translate("generate.fig_d_outputs", lang), translate("generate.fig_step", lang),
                        "D(x)", height=height, yaxis={"range": [-0.02, 1.02]}, legend=LEGEND_BELOW)


def divergence_figure(steps: Sequence[int], values: Sequence[float], lang: str = "en", name: str = "JS",
                      height: int = 260) -> go.Figure:
    """A divergence between the real and the generated points over the steps (lower: closer)."""
    label = translate("generate.fig_divergence", lang, name=name)
    traces = [_curve(steps, values, label, RED)]
    return plain_figure(traces, label, translate("generate.fig_step", lang), name, height=height,
                        yaxis={"rangemode": "tozero"}, showlegend=False)


def _as_float_images(images: np.ndarray) -> np.ndarray:
    """[n, h, w] (or [n, 1, h, w]) images in uint8 0..255 or floats 0..1 -> floats 0..255."""
    a = np.asarray(images)
    if a.ndim == 4:
        a = a[:, 0]
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"expected [n, h, w] images, got shape {a.shape}")
    a = a.astype(np.float64)
    if a.size and np.issubdtype(np.asarray(images).dtype, np.floating) and float(np.nanmax(a)) <= 1.0 + 1e-6:
        a = a * 255.0
    return np.clip(a, 0.0, 255.0)


def image_grid_figure(images: np.ndarray, rows: int, cols: int, title: str = "", height: int = 360,
                      hover: Sequence[str] | None = None, gap: int = 1) -> go.Figure:
    """Images (white on black, like MNIST) in a ``rows``×``cols`` grid, row by row, thin gaps between
    them; ``hover``: a text per image."""
    imgs = _as_float_images(images)
    n = min(len(imgs), rows * cols)
    grid, index = tile(imgs[:n], rows, cols, gap) if n else (np.full((1, 1), np.nan), np.full((1, 1), np.nan))
    trace: dict[str, Any] = {"type": "heatmap", "z": grid.tolist(), "colorscale": "gray", "zmin": 0, "zmax": 255,
                             "showscale": False, "hoverongaps": False}
    if hover is not None:
        labels = np.array([hover[int(k)] if np.isfinite(k) and int(k) < len(hover) else "" for k in index.ravel()],
                          dtype=object).reshape(index.shape)
        trace.update(text=labels.tolist(), hovertemplate="%{text}<extra></extra>")
    else:
        trace["hoverinfo"] = "skip"
    layout = {
        **base_layout(title, height, bottom=5),
        "xaxis": {"visible": False, "constrain": "domain"},
        "yaxis": {"visible": False, "autorange": "reversed", "scaleanchor": "x", "constrain": "domain"},
        "margin": {"l": 5, "r": 5, "t": TOP_WITH_TITLE if title else 5, "b": 5},
        "plot_bgcolor": BACKGROUND,
    }
    return go.Figure({"data": [trace], "layout": layout})


def grid_tiles(grid: np.ndarray, tile: int = 28) -> np.ndarray:
    """One image of k×k tiles without gaps ([k·tile, k·tile]) -> the k² tiles [k², tile, tile], row by row."""
    g = np.asarray(grid)
    k = g.shape[0] // tile
    return g[: k * tile, : k * tile].reshape(k, tile, k, tile).transpose(0, 2, 1, 3).reshape(k * k, tile, tile)


def filmstrip_figure(frame: np.ndarray, step: int, index: int, count: int, lang: str = "en",
                     height: int = 380) -> go.Figure:
    """One frame of the filmstrip: the fixed 8×8 noise grid rendered at ``step`` (tiles [64, 28, 28],
    or the grid as one [224, 224] image)."""
    images = grid_tiles(frame) if np.asarray(frame).ndim == 2 else _as_float_images(frame)
    n = len(images)
    side = int(np.ceil(np.sqrt(n))) if n else 1
    title = translate("generate.fig_frame", lang, index=index + 1, count=count, step=f"{step:,}")
    return image_grid_figure(images, side, side, title, height)


def pairs_figure(samples: np.ndarray, nearest: np.ndarray, distances: Sequence[float], lang: str = "en",
                 height: int = 255) -> go.Figure:
    """Memorisation check: each generated sample (top row) above its nearest training image (bottom
    row), with the pixel distance between them."""
    top, bottom = _as_float_images(samples), _as_float_images(nearest)
    n = min(len(top), len(bottom))
    images = np.concatenate([top[:n], bottom[:n]], axis=0)
    hover = ([translate("generate.fig_sample_n", lang, n=i + 1) for i in range(n)]
             + [translate("generate.fig_nearest_d", lang, d=f"{distances[i]:.2f}") for i in range(n)])
    fig = image_grid_figure(images, 2, max(n, 1), translate("generate.fig_memorisation", lang), height, hover=hover)
    h, w = top.shape[1:] if n else (28, 28)
    notes = [{"x": i * (w + 1) + w / 2 - 0.5, "y": 2 * h + 1.5, "text": f"{distances[i]:.2f}", "showarrow": False,
              "yanchor": "top", "font": {"size": 11, "color": TEXT_MUTED}} for i in range(n)]
    fig.update_layout(annotations=notes, margin={"l": 5, "r": 5, "t": TOP_WITH_TITLE, "b": 22})
    return fig


def interpolation_figure(images: np.ndarray, selected: int, lang: str = "en", height: int = 175) -> go.Figure:
    """The path between two samples, one image per step of the latent interpolation, the chosen one framed."""
    imgs = _as_float_images(images)
    n = len(imgs)
    fig = image_grid_figure(imgs, 1, max(n, 1), translate("generate.fig_interpolation", lang), height,
                            hover=[f"t = {i / max(n - 1, 1):.2f}" for i in range(n)])
    if n:
        h, w = imgs.shape[1:]
        k = int(np.clip(selected, 0, n - 1))
        fig.update_layout(shapes=[{"type": "rect", "x0": k * (w + 1) - 1, "x1": k * (w + 1) + w, "y0": -1, "y1": h,
                                   "line": {"color": ORANGE, "width": 3}}])
    return fig


def class_histogram_figure(counts: Sequence[int], lang: str = "en", labels: Sequence[str] | None = None,
                           missing: Sequence[int] = (), height: int = 280) -> go.Figure:
    """How many generated digits the classifier put in each class; missing classes marked in red."""
    c = np.asarray(counts, dtype=np.int64)
    names = list(labels) if labels is not None else [str(i) for i in range(len(c))]
    gone = set(int(m) for m in missing)
    total = max(int(c.sum()), 1)
    bar = {"type": "bar", "x": names, "y": c.tolist(),
           "marker": {"color": [MISSING_COLOR if i in gone else CLASS_COLOR for i in range(len(c))]},
           "text": [translate("generate.fig_missing", lang) if i in gone else f"{v / total:.0%}" for i, v in enumerate(c)],
           "textposition": "outside", "cliponaxis": False,
           "hovertemplate": "%{x}: %{y}<extra></extra>"}
    top = int(c.max()) if c.size else 1
    return plain_figure([bar], translate("generate.fig_classes", lang), translate("generate.fig_class", lang),
                        translate("generate.fig_count", lang), height=height,
                        xaxis={"type": "category"}, yaxis={"range": [0, max(top, 1) * 1.18]}, showlegend=False)
