"""A confusion matrix whose cells can be clicked (Streamlit's chart selection reads point traces, not
heatmaps: an invisible square marker sits on every cell and carries the cell's hover text)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from dlplay.classify.evaluation import row_normalize
from dlplay.figures.evaluation import confusion_figure
from dlplay.figures.style import SELECTED_FILL as SELECTED
from dlplay.i18n import translate


def cell_of(point_index: int, num_classes: int) -> tuple[int, int]:
    """(true class, guessed class) of the overlay's ``point_index``."""
    return divmod(int(point_index), num_classes)


def clickable_confusion_figure(cm: np.ndarray, labels: Sequence[str], normalized: bool = False, lang: str = "en",
                               selected: tuple[int, int] | None = None) -> go.Figure:
    """The Evaluate page's confusion matrix with one clickable marker per cell (row-major: point
    ``t * C + p`` is true class ``t`` guessed as ``p``); ``selected`` is drawn highlighted."""
    fig = confusion_figure(cm, labels, normalized, lang)
    n = len(labels)
    names = [str(x) for x in labels]
    shares = row_normalize(cm) * 100
    rows, cols = np.divmod(np.arange(n * n), n)
    fig.update_traces(hoverinfo="skip", hovertemplate=None, selector={"type": "heatmap"})
    fig.add_trace(go.Scatter(
        x=[names[c] for c in cols], y=[names[r] for r in rows], mode="markers",
        marker={"symbol": "square", "size": max(8, min(34, 340 // max(n, 1))), "color": "rgba(0,0,0,0)"},
        customdata=np.stack([cm.reshape(-1), shares.reshape(-1)], axis=1).tolist(),  # plain lists: read by the browser test
        hovertemplate=translate("eval.fig_cm_hover", lang) + "<extra></extra>",
        selected={"marker": {"color": SELECTED, "opacity": 1.0}}, unselected={"marker": {"opacity": 1.0}},
        selectedpoints=None if selected is None else [selected[0] * n + selected[1]],
        showlegend=False, name="",
    ))
    fig.update_layout(clickmode="event+select", dragmode=False)
    return fig
