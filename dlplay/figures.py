"""Plotly figures for training curves (pure functions: snapshot in, go.Figure out)."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .i18n import translate
from .metrics import MetricsSnapshot

MAX_POINTS = 2000  # plain SVG scatter stays smooth below this (WebGL froze headless Chromium)
COLORS = {"train": "#1f77b4", "test": "#ff7f0e", "smooth": "#d62728", "lr": "#7f7f7f"}


def downsample(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Average consecutive points so at most ``max_points`` remain (keeps the shape of the curve)."""
    n = len(x)
    if n <= max_points:
        return x, y
    k = int(np.ceil(n / max_points))
    m = n // k * k
    xs = x[:m].reshape(-1, k)[:, -1]
    ys = y[:m].reshape(-1, k).mean(axis=1)
    if m < n:
        xs, ys = np.append(xs, x[-1]), np.append(ys, y[m:].mean())
    return xs, ys


def ema(values: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Exponential moving average with bias correction (like TensorBoard's smoothing)."""
    out = np.empty(len(values))
    acc, weight = 0.0, 0.0
    for i, v in enumerate(values):
        acc = (1 - alpha) * acc + alpha * v
        weight = (1 - alpha) * weight + alpha
        out[i] = acc / weight
    return out


def _layout(fig: go.Figure, title: str, xtitle: str, ytitle: str, height: int = 320) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0.0, font=dict(size=15)),
        xaxis_title=xtitle,
        yaxis_title=ytitle,
        height=height,
        margin=dict(l=50, r=20, t=45, b=40),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0),
        hovermode="x unified",
        template="plotly_white",
        uirevision="keep",  # zoom survives live updates
    )
    return fig


def loss_figure(snap: MetricsSnapshot, lang: str = "en", log_y: bool = False) -> go.Figure:
    """Per-step training loss, raw and smoothed, with learning-rate changes marked."""
    fig = go.Figure()
    steps, losses = snap.steps, snap.losses
    finite = np.isfinite(losses)
    steps, losses = steps[finite], losses[finite]
    if len(steps):
        smooth = ema(losses, alpha=min(1.0, 0.05 * snap.loss_stride))
        xs, ys = downsample(steps, losses)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=translate("fig.raw", lang),
                                 line=dict(color=COLORS["train"], width=1), opacity=0.35))
        xs, ys = downsample(steps, smooth)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=translate("fig.smoothed", lang),
                                 line=dict(color=COLORS["smooth"], width=2)))
    for step, lr in snap.lr_changes:
        fig.add_vline(x=step, line=dict(color=COLORS["lr"], dash="dot", width=1),
                      annotation_text=translate("fig.lr_change", lang, lr=lr), annotation_position="top left")
    if log_y:
        fig.update_yaxes(type="log")
    return _layout(fig, translate("fig.loss_title", lang), translate("fig.step", lang), translate("fig.loss", lang))


def epoch_figure(snap: MetricsSnapshot, metric: str = "acc", lang: str = "en") -> go.Figure:
    """Per-epoch train and test accuracy (``acc``) or loss (``loss``)."""
    fig = go.Figure()
    epochs = [e.epoch for e in snap.epochs]
    train = [getattr(e, f"train_{metric}") for e in snap.epochs]
    test = [getattr(e, f"test_{metric}") for e in snap.epochs]
    fig.add_trace(go.Scatter(x=epochs, y=train, mode="lines+markers", name=translate("fig.train", lang),
                             line=dict(color=COLORS["train"])))
    fig.add_trace(go.Scatter(x=epochs, y=test, mode="lines+markers", name=translate("fig.test", lang),
                             line=dict(color=COLORS["test"])))
    title = translate("fig.acc_title" if metric == "acc" else "fig.epoch_loss_title", lang)
    ytitle = translate("fig.accuracy" if metric == "acc" else "fig.loss", lang)
    fig.update_xaxes(dtick=1, range=[0.5, max(snap.progress.epochs, 1) + 0.5])
    if metric == "acc":
        fig.update_yaxes(tickformat=".0%")
    return _layout(fig, title, translate("fig.epoch", lang), ytitle)
