"""Plotly figure for the Explore page's robustness tab: accuracy against the strength of a perturbation,
one line per model, overlaid."""
from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from dlplay.figures.style import CATEGORY10, FAINT_LINE, LEGEND_BELOW, plain_figure
from dlplay.i18n import translate
from dlplay.learn.robustness import Curve

UNITS = {"noise": "", "rotate": "°", "shift": " px", "thickness": ""}


def level_text(kind: str, level: float) -> str:
    """``0.3``, ``-15°``, ``2 px``, ``+1``: a level as the axis shows it."""
    if kind == "thickness":
        return f"{level:+g}" if level else "0"
    return f"{level:g}{UNITS[kind]}"


def curves_figure(curves: Sequence[tuple[str, Curve]], kind: str, lang: str = "en", height: int = 360) -> go.Figure:
    """Test accuracy (%) at each level of ``kind``, one line per (name, curve); level 0 is marked."""
    traces = [
        {
            "type": "scatter", "mode": "lines+markers", "name": name,
            "x": list(curve.levels), "y": [a * 100 for a in curve.accuracy],
            "line": {"color": CATEGORY10[i % len(CATEGORY10)], "width": 2.5 if i == 0 else 1.8},
            "hovertemplate": f"{name}<br>%{{x}}: %{{y:.1f}}%<extra></extra>",
        }
        for i, (name, curve) in enumerate(curves)
    ]
    levels = sorted({level for _, curve in curves for level in curve.levels})
    title = translate(f"robustness.fig_title_{kind}", lang)
    return plain_figure(
        traces, title, translate(f"robustness.axis_{kind}", lang), translate("robustness.axis_acc", lang),
        height=height,
        xaxis={"tickmode": "array", "tickvals": levels, "ticktext": [level_text(kind, v) for v in levels],
               "zeroline": True, "zerolinecolor": FAINT_LINE},
        yaxis={"range": [0, 101], "ticksuffix": "%"},
        legend=LEGEND_BELOW, showlegend=True,
    )
