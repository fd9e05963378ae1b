"""The fork overlay: a run and its fork side by side from the fork point on (loss, test accuracy,
gradient norm), on a shared axis of epochs trained so the two compare even across a batch-size change."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from dlplay.classify.fork import RunCurves
from dlplay.figures.style import BLUE, GREY, LEGEND_BELOW, ORANGE, plain_figure
from dlplay.figures.training import ema, loss_range, off_chart
from dlplay.i18n import translate
from dlplay.run.metrics import downsample

PARENT, FORK = BLUE, ORANGE
METRICS = ("loss", "acc", "grad")


def _line(x: np.ndarray, y: np.ndarray, name: str, color: str, *, width: float = 2, opacity: float = 1.0,
          mode: str = "lines", legend: bool = True) -> dict:
    return {"type": "scatter", "x": x, "y": y, "mode": mode, "name": name, "opacity": opacity,
            "line": {"color": color, "width": width}, "marker": {"color": color, "size": 7},
            "showlegend": legend}


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values[np.isfinite(values)]


def fork_figure(parent: RunCurves, fork: RunCurves, metric: str, fork_x: float, lang: str = "en",
                height: int = 330) -> go.Figure:
    """One of the overlay's three charts: ``metric`` is ``loss`` (per step, smoothed, the raw values
    faint), ``acc`` (test accuracy after each epoch) or ``grad`` (the probe's total gradient norm)."""
    if metric not in METRICS:
        raise ValueError(metric)
    names = translate("fork.fig_parent", lang), translate("fork.fig_fork", lang)
    traces: list[dict] = []
    notes: list[dict] = []
    # one spike (the fork's, at a learning rate too high) must not flatten the other run to a line at 0:
    # the range of the Train page's loss chart over both runs, the points above it marked on its top edge
    clipped = loss_range(np.concatenate([_finite(c.loss) for c in (parent, fork)])) if metric == "loss" else None
    for curves, name, color in ((parent, names[0], PARENT), (fork, names[1], FORK)):
        if metric == "loss":
            if len(curves.loss):
                xs, ys = downsample(curves.loss_x, curves.loss)
                traces.append(_line(xs, ys, name, color, width=1, opacity=0.25, legend=False))
                xs, ys = downsample(curves.loss_x, ema(curves.loss, alpha=0.1))
                traces.append(_line(xs, ys, name, color))
                keep = np.isfinite(curves.loss)
                x, y = np.asarray(curves.loss_x)[keep], np.asarray(curves.loss)[keep]
                if clipped is not None and len(y) and float(y.max()) > clipped[1]:
                    peak = int(np.argmax(y))
                    mark, note = off_chart(x, y, clipped[1], translate("fig.off_chart", lang), color,
                                           translate("fork.fig_spike", lang, peak=float(y[peak])))
                    traces.append({**mark, "showlegend": False})
                    # in the run's colour, below the fork point's label, towards the middle (the chart is narrow)
                    right = float(x[peak]) > (float(np.min(x)) + float(np.max(x))) / 2
                    notes.append({**note, "yshift": -18 * (len(notes) + 1), "xanchor": "right" if right else "left"})
        elif metric == "acc":
            traces.append(_line(curves.acc_x, curves.acc, name, color, mode="lines+markers"))
        else:
            traces.append(_line(curves.grad_x, curves.grad, name, color, mode="lines+markers"))
    ytitle = {"loss": "fork.fig_loss", "acc": "fork.fig_acc", "grad": "fork.fig_grad"}[metric]
    line = {"type": "line", "x0": fork_x, "x1": fork_x, "y0": 0, "y1": 1, "yref": "paper",
            "line": {"color": GREY, "dash": "dash", "width": 1}}
    notes.append({"x": fork_x, "y": 1.0, "yref": "paper", "text": translate("fork.fig_fork_point", lang),
                  "showarrow": False, "xanchor": "left", "yanchor": "top", "font": {"color": GREY, "size": 11}})
    yaxis: dict | None = {"tickformat": ".0%"} if metric == "acc" else None
    if clipped is not None:
        yaxis = {"range": clipped}
    return plain_figure(traces, translate(f"fork.fig_title_{metric}", lang), translate("fork.fig_epochs", lang),
                        translate(ytitle, lang), height=height,
                        yaxis=yaxis, shapes=[line], annotations=notes,
                        legend=LEGEND_BELOW, margin={"l": 55, "r": 20, "t": 45, "b": 80})
