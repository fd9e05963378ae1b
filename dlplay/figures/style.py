"""One palette and one figure style for every Plotly figure of dlplay.

Colours are named by what they are; the figure modules give them roles (train/test, sign, highlight).
The layout helpers build figures from plain dicts, validated once, with no named template
(Streamlit's chart theme styles them, and a template alone costs ~30 ms per figure).
"""
from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

# ---------------------------------------------------------------- the palette
# categorical: Okabe & Ito's colour-blind-safe palette (distinct with protanopia, deuteranopia and tritanopia),
# for runs, train vs test, the predicted class, the step after; CATEGORY10 extends it to ten classes
BLUE, ORANGE, GREEN, RED, PURPLE = "#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7"
SKY_BLUE, YELLOW, BLACK = "#56b4e9", "#f0e442", "#000000"
GREY = "#7f7f7f"
CATEGORY10 = (BLUE, ORANGE, GREEN, RED, PURPLE, SKY_BLUE, YELLOW, BLACK, GREY, "#882255")
# one colour per layer on the Dynamics page (the same colour-blind-safe palette)
LAYER_PALETTE = CATEGORY10
# blues and oranges of the Draw page's bars, the diagram's weight signs (orange < 0, like TF Playground)
LIGHT_BLUE, MID_BLUE, DEEP_ORANGE = "#9ecae1", BLUE, ORANGE  # negative bars: orange; the best one: RED (vermillion)
WEIGHT_ORANGE, NEUTRAL = ORANGE, "#b8b8b8"
# the diverging pair (RdBu's ends): blue below zero, red above, and a light grey for gaps
NEGATIVE_RGB, POSITIVE_RGB, GAP_RGB = (33, 102, 172), (178, 24, 43), (235, 235, 235)
NEGATIVE_CSS, POSITIVE_CSS = "rgb(33,102,172)", "rgb(178,24,43)"
# the "healthy" band of the update-ratio chart
HEALTHY_FILL, HEALTHY_LINE, HEALTHY_TEXT = "rgba(0,158,115,0.10)", "rgba(0,158,115,0.8)", "rgb(0,110,80)"
# background, grid, text and outlines
BACKGROUND = "white"
GRID = "#e9e9ef"
MUTED_BAR = "#d9d9d9"
OUTLINE, TEXT_DARK, TEXT, TEXT_MUTED, TEXT_FAINT, LINE_FAINT = "#333", "#444", "#555", "#666", "#6e6e6e", "#888"
# the network diagram's boxes without a layer kind of their own
BOX_INPUT, BOX_FLATTEN, BOX_OUTPUT, BOX_OTHER = "#e8e8e8", "#f2f2f2", "#f7d4d4", "#eee"
# the other figures' named colours (all from the palette above)
CURRENT = RED  # the current time step (Sequences)
SERIES_A, SERIES_B = BLUE, RED  # a chart's first and second series
FAINT_LINE = "#bbbbbb"
MANIFOLD_COLOR = "rgba(204,121,167,0.45)"  # the generator's grid (Generate), PURPLE, light
ARROW_COLOR = "rgba(80,80,80,0.55)"
SELECTED_FILL = "rgba(213,94,0,0.35)"  # a chosen cell drawn over a heatmap (RED, light)
STEP_FILL = "rgba(230,159,0,0.08)"  # ORANGE, very light
D_SCALE = [[0.0, "rgb(204,121,167)"], [0.5, "rgb(255,255,255)"], [1.0, "rgb(0,158,115)"]]  # D(x): PURPLE → GREEN
TRANSPARENT = "rgba(0,0,0,0)"
# colour scales
DIVERGING = "RdBu_r"  # blue < 0 < red
DIVERGING_REVERSED = "RdBu"  # the same with reversescale=True
SEQUENTIAL = "Viridis"
COUNTS = "Blues"
GREYS = "gray"
SALIENCY_SCALE = [[0.0, "rgba(33,102,172,0.95)"], [0.5, "rgba(255,255,255,0)"], [1.0, "rgba(178,24,43,0.95)"]]

# ---------------------------------------------------------------- the style
LEGEND_TOP = {"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0}
# for charts whose legend has many or long entries (one per layer, one per run): under the x axis, where
# it cannot cover the title; a legend pushes the bottom margin by itself
LEGEND_BELOW = {"orientation": "h", "yref": "container", "y": 0.0, "yanchor": "bottom", "x": 0.0, "xanchor": "left"}


# Plotly's mode bar (zoom, pan, download…) appears at the top right while the pointer is over a chart and
# covered long titles (Dynamics' first-layer weights, Generate's D(real)/D(fake)): a title sits just above the
# plot area, and a chart with a title keeps a top margin tall enough for the mode bar above the title
MODEBAR_PX = 30  # the mode bar's height, with its padding
TITLE_PX = 24  # one line of a 15 px title and its padding
TOP_WITH_TITLE = MODEBAR_PX + TITLE_PX + 6


def title_layout(text: str, size: int = 15, above: int = 8) -> dict:
    """A chart title at the left, ``above`` pixels above the plot area (with TOP_WITH_TITLE + ``above`` - 8
    above the plot area, the mode bar fits above it: hovering a chart never hides its title)."""
    return {"text": text, "x": 0.0, "xanchor": "left", "yref": "paper", "y": 1.0, "yanchor": "bottom",
            "pad": {"b": above}, "font": {"size": size}}


def room_for_title(layout: dict) -> dict:
    """``layout`` with a top margin of at least TOP_WITH_TITLE when it has a title (margins set by a figure
    for its own reasons stay, only raised where the title band needs it)."""
    title = layout.get("title")
    text = title.get("text") if isinstance(title, dict) else title
    if text:
        margin = dict(layout.get("margin") or {})
        margin["t"] = max(int(margin.get("t", 0)), TOP_WITH_TITLE)
        layout["margin"] = margin
    return layout


def base_layout(title: str, height: int, bottom: int = 40, legend: dict | None = None) -> dict:
    """Title (below the mode bar), size, margins, legend and background shared by the charts. No named
    template: Streamlit's chart theme styles them, and a template alone costs ~30 ms per figure."""
    return {
        "title": title_layout(title),
        "height": height,
        "margin": {"l": 55, "r": 20, "t": TOP_WITH_TITLE if title else 45, "b": bottom},
        "legend": legend or LEGEND_TOP,
        "plot_bgcolor": BACKGROUND,
        "paper_bgcolor": BACKGROUND,
    }


def axis(title: str = "", **extra: Any) -> dict:
    return {"title": {"text": title}, "gridcolor": GRID, "zerolinecolor": GRID, **extra}


def plain_figure(traces: list[dict], title: str, xtitle: str, ytitle: str, height: int = 320,
                 xaxis: dict | None = None, yaxis: dict | None = None, **layout: Any) -> go.Figure:
    """A figure from plain dicts, validated once (no add_*/update_* helpers, see base_layout)."""
    base = {
        **base_layout(title, height),
        "xaxis": axis(xtitle, **(xaxis or {})),
        "yaxis": axis(ytitle, **(yaxis or {})),
        "uirevision": "keep",  # zoom survives live updates
    }
    base.update(layout)
    return go.Figure({"data": traces, "layout": room_for_title(base)})
