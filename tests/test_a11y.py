"""Accessibility without a browser: the charts' text alternative, the one colour-blind-safe palette, the
training announcement (changes per epoch, not per step)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from dlplay.figures import style
from dlplay.figures.style import plain_figure
from dlplay.figures.table import MAX_ROWS, figure_tables, figure_title

FIGURES = Path(__file__).resolve().parents[1] / "dlplay" / "figures"
# white, black and transparent are no hues: any figure may use them
NEUTRAL = re.compile(r"^(#fff(fff)?|#000(000)?|rgba\(\s*(0,\s*0,\s*0|255,\s*255,\s*255)\s*,[\d.\s]+\))$", re.I)
COLOUR = re.compile(r"\"(#[0-9a-fA-F]{3,8}|rgba?\([\d\s.,]*\))\"")


def test_a_line_chart_gives_its_title_and_its_points_as_a_table():
    fig = plain_figure([{"type": "scatter", "x": [1, 2, 3], "y": [0.5, 0.25, 0.125], "name": "test <b>loss</b>"}],
                       "Loss <i>per</i> epoch", "epoch", "loss")
    assert figure_title(fig) == "Loss per epoch"
    [(name, columns)] = figure_tables(fig)
    assert name == "test loss"
    assert columns == {"x": [1, 2, 3], "y": [0.5, 0.25, 0.125]}


def test_long_traces_are_thinned_and_keep_both_ends():
    n = 5000
    fig = go.Figure({"data": [{"type": "scatter", "x": list(range(n)), "y": np.linspace(0, 1, n).tolist()}]})
    [(_, columns)] = figure_tables(fig)
    assert len(columns["x"]) == MAX_ROWS
    assert columns["x"][0] == 0
    assert columns["x"][-1] == n - 1
    assert columns["y"][-1] == 1.0


def test_a_heatmap_is_summarised_and_an_image_has_no_table():
    z = np.arange(12, dtype=float).reshape(3, 4)
    fig = go.Figure({"data": [{"type": "heatmap", "z": z.tolist(), "name": "weights"},
                              {"type": "image", "z": np.zeros((2, 2, 3)).tolist()}]})
    assert figure_tables(fig) == [("weights", {"rows × columns": ["3 × 4"], "min": [0.0], "mean": [5.5],
                                               "max": [11.0]})]


def test_one_colour_blind_safe_palette():
    okabe_ito = {"#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#f0e442", "#000000"}
    assert {style.BLUE, style.ORANGE, style.GREEN, style.RED, style.PURPLE} <= okabe_ito
    assert len(set(style.CATEGORY10)) == 10
    assert style.LAYER_PALETTE == style.CATEGORY10


def test_no_figure_module_hard_codes_a_hue():
    found = []
    for path in sorted(FIGURES.glob("*.py")):
        if path.name == "style.py":
            continue
        for colour in COLOUR.findall(path.read_text(encoding="utf-8")):
            if not NEUTRAL.match(colour):
                found.append(f"{path.name}: {colour}")
    assert not found, found
