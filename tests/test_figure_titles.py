"""Chart titles and Plotly's mode bar (issue 33): the mode bar (zoom, pan, download) appears at the top right of
a chart while the pointer is over it, and it covered long titles (Dynamics' first-layer weights, Generate's
D(real)/D(fake)). Every titled figure of those pages keeps its title just above the plot area with a top margin
that holds the mode bar above the title (dlplay/figures/style.py: title_layout, TOP_WITH_TITLE). The browser
test (tests/test_e2e_reliability_gen.py) hovers a chart and measures the two boxes."""
from __future__ import annotations

import numpy as np
import pytest

from dlplay.classify.probe import Probe
from dlplay.figures import dynamics as fd
from dlplay.figures import gan as fg
from dlplay.figures.style import MODEBAR_PX, TOP_WITH_TITLE, plain_figure
from dlplay.nn.spec import TrainConfig, dense_spec
from helpers import train_to_end


def assert_title_below_modebar(fig) -> None:
    layout = fig.layout
    assert layout.title.text, "a titled figure"
    assert layout.margin.t >= TOP_WITH_TITLE, (layout.title.text, layout.margin.t)
    # the title sits on the plot area's top edge, so it ends MODEBAR_PX or more below the figure's top
    assert layout.title.yref == "paper"
    assert layout.title.y == 1.0
    assert layout.title.yanchor == "bottom"
    assert layout.margin.t - (layout.title.pad.b or 0) - 22 >= MODEBAR_PX


@pytest.fixture(scope="module")
def probe(mnist):
    config = TrainConfig(optimizer="adam", lr=1e-3, batch_size=32, epochs=1, train_size=32 * 40, seed=0)
    session = train_to_end(mnist, dense_spec([16], "relu"), config, callbacks=[Probe(every=10)], timeout=120)
    return session.snapshot().extras["probe"]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_dynamics_titles_sit_below_the_mode_bar(probe, lang):
    for fig in (fd.first_layer_figure(probe, lang), fd.histogram_figure(probe, lang), fd.update_ratio_figure(probe, lang),
                fd.activation_figure(probe, lang), fd.heatmap_figure(probe, 0, lang)):
        assert_title_below_modebar(fig)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_generate_titles_sit_below_the_mode_bar(lang):
    steps = np.arange(1, 11)
    values = np.linspace(0.3, 0.7, 10)
    xs = np.linspace(-1, 1, 8)
    for fig in (fg.d_outputs_figure(steps, values, values[::-1], lang), fg.loss_curves_figure(steps, values, values, lang),
                fg.divergence_figure(steps, values, lang),
                fg.plane_figure(xs, xs, np.full((8, 8), 0.5), np.zeros((3, 2)), np.zeros((3, 2)), lang),
                fg.filmstrip_figure(np.zeros((64, 28, 28), np.uint8), 10, 0, 1, lang)):
        assert_title_below_modebar(fig)


def test_a_figure_that_asks_for_a_small_top_margin_still_gets_room_for_its_title():
    fig = plain_figure([], "a long title that runs under the mode bar", "x", "y", margin={"l": 5, "r": 5, "t": 20, "b": 5})
    assert fig.layout.margin.t == TOP_WITH_TITLE
    assert fig.layout.margin.l == 5
    untitled = plain_figure([], "", "x", "y", margin={"l": 5, "r": 5, "t": 10, "b": 5})
    assert untitled.layout.margin.t == 10  # no title: the figure's own margin stays
