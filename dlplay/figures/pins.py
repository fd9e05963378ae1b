"""A pinned image's ten probabilities over the training steps, with the moment the network gets it marked."""
from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go

from dlplay.classify.pins import PinsSnapshot
from dlplay.figures.style import CATEGORY10, GREEN, GREY, LEGEND_BELOW, plain_figure
from dlplay.i18n import translate


def log_step_axis(last: int) -> dict:
    """A log axis of steps labelled with plain numbers (1, 2, 5, 10, 20, …, or 1, 10, 100, 1,000 over many
    decades) instead of plotly's default, whose minor labels read "3 4 5 … 9 1000 2 3"."""
    decades = max(1, math.ceil(math.log10(max(last, 2))))
    mults = (1, 2, 5) if decades <= 3 else (1,)
    values = [m * 10**d for d in range(decades + 1) for m in mults if m * 10**d <= last]
    return {"type": "log", "tickvals": values, "ticktext": [f"{v:,}" for v in values]}


def pin_figure(snap: PinsSnapshot, pin: int, class_names: Sequence[str], lang: str = "en",
               height: int = 300) -> go.Figure:
    """Probability of each class for pinned image ``pin`` at every recorded step; its true class (if
    known) drawn thick, and a dashed line at the step from which the network's guess is right for good."""
    label = int(snap.labels[pin])
    steps = snap.steps
    traces: list[dict] = []
    for c, name in enumerate(class_names):
        mine = c == label
        color = GREEN if mine else CATEGORY10[c % len(CATEGORY10)]
        if not mine and label >= 0 and color == GREEN:
            color = GREY  # green is the right answer's
        traces.append({
            "type": "scatter", "x": steps, "y": snap.probs[:, pin, c] if len(steps) else [], "name": name,
            "mode": "lines+markers" if len(steps) < 40 else "lines",
            "line": {"color": color, "width": 4 if mine else 1.5},
            "marker": {"size": 6 if mine else 3}, "opacity": 1.0 if mine or label < 0 else 0.55,
        })
    title = translate("pins.fig_title", lang, n=pin + 1) if label < 0 else \
        translate("pins.fig_title_label", lang, n=pin + 1, label=class_names[label])
    notes: list[dict] = []
    got = snap.turned_right(pin)
    if got is not None:  # a trace, not a shape: data coordinates on a log axis too
        traces.append({"type": "scatter", "x": [got, got], "y": [0, 1.0], "mode": "lines+text", "hoverinfo": "skip",
                       "text": ["", translate("pins.fig_got_it", lang, step=got)], "textposition": "bottom right",
                       "textfont": {"color": GREEN, "size": 12}, "showlegend": False,
                       "line": {"color": GREEN, "dash": "dash", "width": 2}})
    elif len(steps) == 0:
        notes.append({"x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper", "showarrow": False,
                      "text": translate("pins.fig_waiting", lang), "font": {"color": GREY, "size": 13}})
    # a log axis once there are readings past the first hundred steps: the early ones (1, 2, 4, ...) stay apart
    log = len(steps) > 0 and int(steps[-1]) > 100
    xtitle = translate("pins.fig_step_log" if log else "pins.fig_step", lang)
    return plain_figure(traces, title, xtitle, translate("pins.fig_prob", lang), height=height,
                        xaxis=log_step_axis(int(steps[-1])) if log else None,
                        yaxis={"range": [0, 1.02], "tickformat": ".0%"}, legend=LEGEND_BELOW,
                        margin={"l": 55, "r": 20, "t": 45, "b": 70}, annotations=notes)
