"""Plotly figures for training curves (pure functions: snapshot in, go.Figure out)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from dlplay.figures.style import BLUE, GREEN, GREY, ORANGE, RED, plain_figure
from dlplay.i18n import translate
from dlplay.run.metrics import MAX_POINTS, MetricsSnapshot, downsample

COLORS = {"train": BLUE, "test": ORANGE, "smooth": RED, "lr": GREY, "val": GREEN}


def ema(values: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Exponential moving average with bias correction (like TensorBoard's smoothing).

    out[i] = sum_j<=i alpha (1-alpha)^(i-j) v[j] / (1 - (1-alpha)^(i+1)), computed in numpy blocks
    (a Python loop over the 8,192 points of a long run took ~4 ms on every chart redraw).
    """
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    if n == 0 or alpha >= 1.0:
        return v.copy()
    decay = 1.0 - alpha
    # within a block the factors decay^-j stay below 1e12, so the cumulative sum keeps its precision
    block = int(max(1, min(256, 12 * np.log(10) / -np.log(decay))))
    out = np.empty(n)
    acc = 0.0
    for start in range(0, n, block):
        chunk = v[start : start + block]
        powers = decay ** np.arange(len(chunk))
        run = alpha * powers * np.cumsum(chunk / powers) + decay * powers * acc
        out[start : start + len(chunk)] = run
        acc = run[-1]
    return out / (1.0 - decay ** np.arange(1, n + 1))


def accuracy_range(values: Sequence[float]) -> list[float] | None:
    """A y range for accuracies that never leaves [0, 100%] (autorange around one point went to 150%)."""
    finite = [v for v in values if v is not None and np.isfinite(v)]
    if not finite:
        return None
    lo, hi = min(finite), max(finite)
    pad = max(0.02, 0.1 * (hi - lo))
    return [max(0.0, lo - pad), min(1.0, hi + pad) + 0.005]


SPIKE_FACTOR = 10.0  # a peak this many times the curve's robust top is drawn off the chart, marked


def loss_range(losses: np.ndarray) -> list[float] | None:
    """A y range that keeps the curve readable after a spike, or None (autorange) when there is none.

    The robust top is the larger of the first loss and the upper quartile; a peak more than
    SPIKE_FACTOR times above it (Adam at lr 10 reached 9.5e5 from 2.3) would flatten the rest of the
    curve to zero, so the range stops a little above the robust top instead.
    """
    if len(losses) < 2:
        return None
    top = max(float(losses[0]), float(np.quantile(losses, 0.75)), 1e-6)
    if float(losses.max()) <= SPIKE_FACTOR * top:
        return None
    return [0.0, 1.25 * top]


def off_chart(xs: np.ndarray, ys: np.ndarray, top: float, name: str, color: str, text: str) -> tuple[dict, dict]:
    """The points of a curve above ``top`` (a range from :func:`loss_range`): a trace that draws them on
    the chart's top edge (their values on hover), and a note ``text`` at the highest one."""
    over = ys > top
    peak = int(np.argmax(ys))
    mark = {"type": "scatter", "x": xs[over][:MAX_POINTS], "y": [top] * int(min(over.sum(), MAX_POINTS)),
            "customdata": ys[over][:MAX_POINTS], "mode": "markers", "cliponaxis": False, "name": name,
            "hovertemplate": "%{customdata:.3g}", "marker": {"symbol": "triangle-up", "size": 7, "color": color}}
    note = {"x": float(xs[peak]), "xref": "x", "y": top, "yref": "y", "showarrow": False, "xanchor": "left",
            "yanchor": "top", "font": {"color": color}, "text": text}
    return mark, note


def loss_figure(snap: MetricsSnapshot, lang: str = "en", log_y: bool = False,
                lr_curve: tuple[Sequence[int], Sequence[float]] | None = None) -> go.Figure:
    """Per-step training loss, raw and smoothed, with learning-rate changes marked; with ``lr_curve``
    (spec.lr_curve: a schedule or live changes) also the learning rate over the whole run, on a
    second axis, so the loss can be read against it."""
    traces: list[dict] = []
    extra: dict[str, Any] = {}
    if lr_curve is not None and len(lr_curve[0]):
        traces.append({"type": "scatter", "x": list(lr_curve[0]), "y": list(lr_curve[1]), "yaxis": "y2",
                       "mode": "lines", "name": translate("fig.lr", lang),
                       "line": {"color": COLORS["lr"], "dash": "dot", "width": 1.5}})
        extra["yaxis2"] = {"title": {"text": translate("fig.lr", lang)}, "overlaying": "y", "side": "right",
                           "showgrid": False, "tickformat": ".2~g", "tickmode": "auto",  # not the loss axis's tick places
                           "range": [0.0, 1.05 * max(max(lr_curve[1]), 1e-12)]}
    steps, losses = snap.steps, snap.losses
    finite = np.isfinite(losses)
    steps, losses = steps[finite], losses[finite]
    if len(steps):
        smooth = ema(losses, alpha=min(1.0, 0.05 * snap.loss_stride))
        xs, ys = downsample(steps, losses)
        traces.append({"type": "scatter", "x": xs, "y": ys, "mode": "lines", "name": translate("fig.raw", lang),
                       "line": {"color": COLORS["train"], "width": 1}, "opacity": 0.35})
        xs, ys = downsample(steps, smooth)
        traces.append({"type": "scatter", "x": xs, "y": ys, "mode": "lines", "name": translate("fig.smoothed", lang),
                       "line": {"color": COLORS["smooth"], "width": 2}})
    shapes, notes = [], []
    clipped = None if log_y else loss_range(losses)
    if clipped is not None:  # the spike: its points drawn on the top edge, and its peak named there
        peak = int(np.argmax(losses))
        mark, note = off_chart(steps, losses, clipped[1], translate("fig.off_chart", lang), COLORS["smooth"],
                               translate("fig.spike", lang, peak=float(losses[peak]), step=int(steps[peak])))
        traces.append(mark)
        notes.append(note)
    for step, lr in snap.lr_changes:
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": step, "x1": step, "y0": 0, "y1": 1,
                       "line": {"color": COLORS["lr"], "dash": "dot", "width": 1}})
        notes.append({"x": step, "xref": "x", "y": 1, "yref": "paper", "showarrow": False, "xanchor": "right",
                      "yanchor": "top", "text": translate("fig.lr_change", lang, lr=lr)})
    return plain_figure(traces, translate("fig.loss_title", lang), translate("fig.step", lang),
                        translate("fig.loss", lang),
                        yaxis={"type": "log"} if log_y else ({"range": clipped} if clipped is not None else None),
                        shapes=shapes, annotations=notes, hovermode="x unified", **extra)


def epoch_figure(snap: MetricsSnapshot, metric: str = "acc", lang: str = "en") -> go.Figure:
    """Per-epoch train, validation (when the run has a validation split) and test accuracy (``acc``)
    or loss (``loss``); the epoch whose weights early stopping kept is marked."""
    epochs = [e.epoch for e in snap.epochs]
    train = [getattr(e, f"train_{metric}") for e in snap.epochs]
    test = [getattr(e, f"test_{metric}") for e in snap.epochs]
    val = [getattr(e, f"val_{metric}") for e in snap.epochs]
    traces = [
        {"type": "scatter", "x": epochs, "y": train, "mode": "lines+markers", "name": translate("fig.train", lang),
         "line": {"color": COLORS["train"]}},
        {"type": "scatter", "x": epochs, "y": test, "mode": "lines+markers", "name": translate("fig.test", lang),
         "line": {"color": COLORS["test"]}},
    ]
    shapes, notes = [], []
    if any(v is not None for v in val):
        traces.insert(1, {"type": "scatter", "x": epochs, "y": [np.nan if v is None else v for v in val],
                          "mode": "lines+markers", "name": translate("validation.curve", lang),
                          "line": {"color": COLORS["val"]}})
        train = train + [v for v in val if v is not None]
    kept = getattr(snap.extras.get("early_stop"), "best_epoch", 0)
    if kept:
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": kept, "x1": kept, "y0": 0, "y1": 1,
                       "line": {"color": COLORS["val"], "dash": "dot", "width": 1}})
        notes.append({"x": kept, "xref": "x", "y": 0, "yref": "paper", "showarrow": False, "xanchor": "left",
                      "yanchor": "bottom", "font": {"color": COLORS["val"]},
                      "text": translate("validation.kept_mark", lang)})
    title = translate("fig.acc_title" if metric == "acc" else "fig.epoch_loss_title", lang)
    ytitle = translate("fig.accuracy" if metric == "acc" else "fig.loss", lang)
    if metric == "acc":
        yaxis = {"tickformat": ".0%", "range": accuracy_range(train + test) or [0.0, 1.005]}
    else:  # before the first epoch ends an empty axis would span -1..4
        yaxis = {"rangemode": "tozero"} if epochs else {"range": [0.0, 2.5]}
    return plain_figure(traces, title, translate("fig.epoch", lang), ytitle,
                        xaxis={"dtick": 1, "range": [0.5, max(snap.progress.epochs, 1) + 0.5]},
                        yaxis=yaxis, hovermode="x unified", shapes=shapes, annotations=notes)
