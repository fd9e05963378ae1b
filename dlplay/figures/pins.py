"""A pinned image's ten probabilities over the training steps, with the moment the network gets it marked."""
from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from ..i18n import translate
from ..pins import PinsSnapshot
from .style import CATEGORY10, GREEN, GREY, LEGEND_BELOW, plain_figure


def pin_figure(snap: PinsSnapshot, pin: int, class_names: Sequence[str], lang: str = "en",
               height: int = 300) -> go.Figure:
    """Probability of each class for pinned image ``pin`` at every recorded step; its true class (if
    known) drawn thick, and a dashed line at the step from which the network's guess is right for good."""
    label = int(snap.labels[pin])
    steps = snap.steps
    traces: list[dict] = []
    for c, name in enumerate(class_names):
        mine = c == label
        traces.append({
            "type": "scatter", "x": steps, "y": snap.probs[:, pin, c] if len(steps) else [], "name": name,
            "mode": "lines+markers" if len(steps) < 40 else "lines",
            "line": {"color": CATEGORY10[c % len(CATEGORY10)], "width": 4 if mine else 1.5},
            "marker": {"size": 6 if mine else 3}, "opacity": 1.0 if mine or label < 0 else 0.55,
        })
    title = translate("pins.fig_title", lang, n=pin + 1) if label < 0 else \
        translate("pins.fig_title_label", lang, n=pin + 1, label=class_names[label])
    shapes: list[dict] = []
    notes: list[dict] = []
    got = snap.turned_right(pin)
    if got is not None:
        shapes.append({"type": "line", "x0": got, "x1": got, "y0": 0, "y1": 1, "yref": "paper",
                       "line": {"color": GREEN, "dash": "dash", "width": 2}})
        notes.append({"x": got, "y": 1.0, "yref": "paper", "text": translate("pins.fig_got_it", lang, step=got),
                      "showarrow": False, "xanchor": "left", "yanchor": "top", "font": {"color": GREEN, "size": 12}})
    elif len(steps) == 0:
        notes.append({"x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper", "showarrow": False,
                      "text": translate("pins.fig_waiting", lang), "font": {"color": GREY, "size": 13}})
    return plain_figure(traces, title, translate("pins.fig_step", lang), translate("pins.fig_prob", lang),
                        height=height, yaxis={"range": [0, 1.02], "tickformat": ".0%"}, legend=LEGEND_BELOW,
                        margin={"l": 55, "r": 20, "t": 45, "b": 70}, shapes=shapes, annotations=notes)
