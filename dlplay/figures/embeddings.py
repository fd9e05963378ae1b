"""Plotly figure for the Explore page's embeddings tab: a 2-D map of test images, one colour per class,
the learner's drawing as a star. Each point carries its test-image index (``customdata``), so a click
on the page can open that image."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from dlplay.figures.style import CATEGORY10, LEGEND_BELOW, OUTLINE, plain_figure
from dlplay.i18n import translate


def map_figure(coords: np.ndarray, labels: np.ndarray, indices: np.ndarray, class_names: Sequence[str], title: str,
               lang: str = "en", drawing: np.ndarray | None = None, drawing_guess: str = "",
               axis_titles: tuple[str, str] = ("", ""), height: int = 560) -> go.Figure:
    """``coords`` [N, 2] of test images with ``labels`` and test-set ``indices``; ``drawing`` [2]: where
    the learner's drawing lands (a star), labelled with the model's guess."""
    traces: list[dict] = []
    image_word = translate("embeddings.hover", lang)
    for c, name in enumerate(class_names):
        mask = labels == c
        if not mask.any():
            continue
        traces.append({
            "type": "scatter", "mode": "markers", "name": name,
            "x": coords[mask, 0].round(4).tolist(), "y": coords[mask, 1].round(4).tolist(),
            "customdata": indices[mask].tolist(),
            "marker": {"color": CATEGORY10[c % len(CATEGORY10)], "size": 6, "opacity": 0.75},
            "hovertemplate": f"{name} · {image_word} #%{{customdata}}<extra></extra>",
        })
    if drawing is not None:
        traces.append({
            "type": "scatter", "mode": "markers+text", "name": translate("embeddings.drawing", lang),
            "x": [float(drawing[0])], "y": [float(drawing[1])],
            "text": [translate("embeddings.drawing_text", lang, guess=drawing_guess)], "textposition": "top center",
            "textfont": {"size": 14, "color": OUTLINE, "weight": "bold"},
            "marker": {"symbol": "star", "size": 22, "color": "gold", "line": {"color": OUTLINE, "width": 1.5}},
            "hoverinfo": "skip",
        })
    return plain_figure(traces, title, axis_titles[0], axis_titles[1], height=height,
                        xaxis={"showticklabels": False}, yaxis={"showticklabels": False, "scaleanchor": None},
                        legend=LEGEND_BELOW, showlegend=True, clickmode="event+select", dragmode="pan")
