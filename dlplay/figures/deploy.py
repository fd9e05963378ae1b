"""Plotly figure for the Deploy page: the load test's requests per second (bars) and latency
percentiles (lines, right axis) at each number of concurrent clients."""
from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from dlplay.export.serve import LoadResult
from dlplay.figures.style import CATEGORY10, GREY, LEGEND_BELOW, MUTED_BAR, axis, plain_figure
from dlplay.i18n import translate


def load_figure(results: Sequence[LoadResult], lang: str = "en", height: int = 380) -> go.Figure:
    """Requests/s per level as bars; p50, p95 and p99 latency (ms) as lines on the right axis."""
    x = [str(r.clients) for r in results]
    traces: list[dict] = [{
        "type": "bar", "name": translate("deploy.fig_rps", lang), "x": x, "y": [r.rps for r in results],
        "marker": {"color": MUTED_BAR, "line": {"color": GREY, "width": 1}},
        "text": [f"{r.rps:,.0f}" for r in results], "textposition": "outside",
        "hovertemplate": "%{x}: %{y:,.0f}/s<extra></extra>",
    }]
    for i, (name, values) in enumerate((("p50", [r.p50_ms for r in results]), ("p95", [r.p95_ms for r in results]),
                                        ("p99", [r.p99_ms for r in results]))):
        traces.append({
            "type": "scatter", "mode": "lines+markers", "name": f"{name} (ms)", "x": x, "y": values, "yaxis": "y2",
            "line": {"color": CATEGORY10[i], "width": 2}, "hovertemplate": f"{name}: %{{y:.2f}} ms<extra></extra>",
        })
    return plain_figure(
        traces, translate("deploy.fig_title", lang), translate("deploy.fig_clients", lang),
        translate("deploy.fig_rps_axis", lang), height=height, xaxis={"type": "category"},
        yaxis2=axis(translate("deploy.fig_ms_axis", lang), overlaying="y", side="right", rangemode="tozero",
                    showgrid=False),
        legend=LEGEND_BELOW, margin={"l": 60, "r": 60, "t": 45, "b": 90},
    )
