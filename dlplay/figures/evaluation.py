"""Plotly figures for evaluation and run comparison (pure functions: data in, go.Figure out)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from dlplay.classify.evaluation import ClassMetrics, Reliability, row_normalize
from dlplay.classify.runs import RunRecord
from dlplay.figures.style import CATEGORY10, COUNTS, GRID, LEGEND_BELOW, MUTED_BAR, TEXT_DARK, base_layout
from dlplay.figures.training import accuracy_range
from dlplay.i18n import translate

PALETTE = CATEGORY10


def _layout(fig: go.Figure, title: str, xtitle: str, ytitle: str, height: int = 360,
            legend: dict | None = None) -> go.Figure:
    fig.update_layout(**base_layout(title, height, bottom=45, legend=legend), xaxis_title=xtitle, yaxis_title=ytitle)
    fig.update_xaxes(gridcolor=GRID, zerolinecolor=GRID)
    fig.update_yaxes(gridcolor=GRID, zerolinecolor=GRID)
    return fig


def confusion_figure(cm: np.ndarray, labels: Sequence[str], normalized: bool = False, lang: str = "en") -> go.Figure:
    """Heatmap of true class (rows, top to bottom) against guessed class (columns): counts or row shares."""
    shares = row_normalize(cm)
    z = shares if normalized else cm
    text = [[f"{v:.0%}" if normalized else f"{int(v)}" for v in row] for row in z]
    labels = [str(x) for x in labels]
    hover = translate("eval.fig_cm_hover", lang)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=labels,
            y=labels,
            text=text,
            texttemplate="%{text}",
            customdata=np.dstack([cm, shares * 100]),
            hovertemplate=hover + "<extra></extra>",
            colorscale=COUNTS,
            showscale=False,
            zmin=0,
        )
    )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category", side="bottom")
    title = translate("eval.fig_cm_title_norm" if normalized else "eval.fig_cm_title", lang)
    _layout(fig, title, translate("eval.fig_predicted", lang), translate("eval.fig_true", lang), height=460)
    fig.update_layout(yaxis_scaleanchor="x")
    return fig


def class_metrics_figure(metrics: ClassMetrics, labels: Sequence[str], lang: str = "en") -> go.Figure:
    """Per class: accuracy (recall) and precision as grouped bars."""
    labels = [str(x) for x in labels]
    fig = go.Figure()
    for values, key, color in ((metrics.accuracy, "eval.fig_recall", PALETTE[0]), (metrics.precision, "eval.fig_precision", PALETTE[1])):
        fig.add_trace(go.Bar(x=labels, y=np.nan_to_num(values), name=translate(key, lang), marker_color=color,
                             hovertemplate="%{x}: %{y:.1%}<extra>" + translate(key, lang) + "</extra>"))
    lowest = float(np.nanmin(np.concatenate([metrics.accuracy, metrics.precision]))) if len(labels) else 0.0
    fig.update_yaxes(range=[max(0.0, min(0.9, lowest - 0.05)), 1.0], tickformat=".0%")
    fig.update_xaxes(type="category")
    fig.update_layout(barmode="group")
    return _layout(fig, translate("eval.fig_classes_title", lang), translate("eval.fig_class", lang), "", height=320)


def reliability_figure(rel: Reliability, lang: str = "en") -> go.Figure:
    """Accuracy per confidence bin against the diagonal of perfect calibration, with bin sizes behind."""
    fig = go.Figure()
    width = float(rel.edges[1] - rel.edges[0])
    filled = rel.counts > 0
    fig.add_trace(go.Bar(x=rel.centers, y=rel.counts, width=width * 0.95, name=translate("eval.fig_count", lang),
                         marker_color=MUTED_BAR, yaxis="y2", hovertemplate="%{y}<extra></extra>"))
    fig.add_trace(go.Bar(x=rel.centers[filled], y=rel.accuracy[filled], width=width * 0.6,
                         name=translate("eval.fig_accuracy", lang), marker_color=PALETTE[0],
                         customdata=rel.confidence[filled],
                         hovertemplate=translate("eval.fig_rel_hover", lang) + "<extra></extra>"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name=translate("eval.fig_perfect", lang),
                             line=dict(color=TEXT_DARK, dash="dash", width=1)))
    fig.update_layout(
        # fixed ticks: else the accuracy axis borrows the log count axis's tick places (4 %, 13 %, 26 %, ...)
        yaxis=dict(range=[0, 1.02], tickformat=".0%", overlaying="y2", tickmode="array",
                   tickvals=[0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        yaxis2=dict(side="right", showgrid=False, title=translate("eval.fig_count", lang), type="log"),
        xaxis=dict(range=[0, 1], tickformat=".0%"),
        barmode="overlay",
    )
    title = translate("eval.fig_rel_title", lang, ece=rel.ece)
    return _layout(fig, title, translate("eval.fig_confidence", lang), translate("eval.fig_accuracy", lang))


def compare_figure(records: Sequence[RunRecord], names: Sequence[str], metric: str = "test_acc", lang: str = "en") -> go.Figure:
    """Overlay the runs' curves: a per-epoch metric (``test_acc``, ``train_acc``, ``test_loss``,
    ``train_loss``) or the per-step training loss (``step_loss``)."""
    fig = go.Figure()
    for i, (record, name) in enumerate(zip(records, names)):
        color = PALETTE[i % len(PALETTE)]
        x: Any
        y: Any
        if metric == "step_loss":
            x = np.asarray(record.loss_steps)
            y = np.asarray(record.loss_values, dtype=float)
            keep = np.isfinite(y)
            fig.add_trace(go.Scatter(x=x[keep], y=y[keep], mode="lines", name=name, line=dict(color=color, width=1.5)))
        else:
            x = [e.epoch for e in record.epochs]
            y = [getattr(e, metric) for e in record.epochs]
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=name, line=dict(color=color, width=2)))
    if metric.endswith("acc"):
        values = [getattr(e, metric) for record in records for e in record.epochs]
        fig.update_yaxes(tickformat=".1%", range=accuracy_range(values))
    if metric != "step_loss":
        fig.update_xaxes(dtick=1)  # whole epochs
    xkey = "eval.fig_step" if metric == "step_loss" else "eval.fig_epoch"
    fig.update_layout(hovermode="x unified")
    return _layout(fig, translate(f"runs.fig_{metric}", lang), translate(xkey, lang), translate(f"runs.axis_{metric}", lang),
                   height=400, legend=LEGEND_BELOW)  # run names are long
