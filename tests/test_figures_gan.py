"""The Generate page's figures: arrays in, valid Plotly figures out, in both languages."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from dlplay.figures import gan as fg


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_plane_figure_draws_every_layer(lang):
    xs = ys = np.linspace(-2, 2, 21)
    d = 1 / (1 + np.exp(-(xs[None, :] + ys[:, None])))
    real = np.random.default_rng(0).normal(size=(50, 2))
    fake = np.random.default_rng(1).normal(size=(40, 2))
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 5), np.linspace(-1, 1, 5)), -1)
    grid = np.concatenate([grid, grid.transpose(1, 0, 2)])  # 5 rows and 5 columns as polylines
    arrows = -fake
    fig = go.Figure(fg.plane_figure(xs, ys, d, real, fake, lang, manifold=grid, arrows=arrows))  # validates
    kinds = [tr.type for tr in fig.data]
    assert kinds == ["heatmap", "scatter", "scatter", "scatter", "scatter"]
    heat, lines, arr, r, f = fig.data  # the arrows under the points
    assert np.asarray(heat.z).shape == (21, 21)
    assert heat.zmin == 0
    assert heat.zmax == 1
    assert len(r.x) == 50
    assert len(f.x) == 40
    assert sum(v is None for v in lines.x) == 10  # 5 rows + 5 columns of the noise grid
    assert len(arr.x) == 3 * 40
    only_points = fg.plane_figure(xs, ys, d, real, fake, lang, show=("real", "fake"))
    assert [tr.type for tr in only_points.data] == ["scatter", "scatter"]


def test_arrows_keep_directions_and_scale_the_longest():
    starts = np.array([[0.0, 0.0], [1.0, 1.0]])
    vec = np.array([[2.0, 0.0], [0.0, -1.0]])
    xs, ys = fg.arrow_segments(starts, vec, 0.5)
    assert xs[:2] == [0.0, 0.5]
    assert ys[:2] == [0.0, 0.0]  # the longest is 0.5 long
    assert xs[3:5] == [1.0, 1.0]
    assert ys[3:5] == [1.0, 0.75]  # half as long, pointing down
    zero = fg.arrow_segments(starts, np.zeros((2, 2)), 0.5)
    assert zero[0][:2] == [0.0, 0.0]


def test_curves_and_histogram():
    steps = np.arange(5000)
    fig = fg.loss_curves_figure(steps, np.ones(5000), np.zeros(5000), "zh")
    assert len(fig.data) == 2
    assert len(fig.data[0].x) <= 2000  # downsampled
    fig = fg.d_outputs_figure(steps[:10], np.full(10, 0.8), np.full(10, 0.2))
    assert list(fig.data[-1].y) == [0.5, 0.5]
    fig = fg.divergence_figure([1, 2, 3], [0.5, 0.3, 0.1], "en", "JS")
    assert list(fig.data[0].y) == [0.5, 0.3, 0.1]
    fig = fg.class_histogram_figure([10, 0, 5, 0, 1, 1, 1, 1, 1, 1], "en", missing=[1, 3])
    colors = fig.data[0].marker.color
    assert colors[1] == colors[3] == fg.MISSING_COLOR
    assert colors[0] == fg.CLASS_COLOR


def test_image_grids():
    frame = np.random.default_rng(0).integers(0, 256, size=(64, 28, 28), dtype=np.uint8)
    fig = fg.filmstrip_figure(frame, step=500, index=2, count=7, lang="en")
    z = np.asarray(fig.data[0].z, dtype=float)
    assert z.shape == (8 * 29 - 1, 8 * 29 - 1)
    np.testing.assert_array_equal(z[:28, :28], frame[0])
    assert "500" in fig.layout.title.text
    assert "3" in fig.layout.title.text
    one_image = frame.reshape(8, 8, 28, 28).transpose(0, 2, 1, 3).reshape(224, 224)  # the grid PNG's layout
    np.testing.assert_array_equal(fg.grid_tiles(one_image), frame)
    z1 = np.asarray(fg.filmstrip_figure(one_image, 500, 2, 7).data[0].z, dtype=float)
    np.testing.assert_array_equal(z1, z)
    floats = frame.astype(np.float32) / 255.0
    z2 = np.asarray(fg.image_grid_figure(floats[:, None], 8, 8).data[0].z, dtype=float)
    np.testing.assert_allclose(z2[:28, :28], frame[0], atol=1e-3)  # [n,1,h,w] floats in 0..1 read as pixels
    fig = fg.pairs_figure(frame[:4], frame[4:8], [1.0, 2.0, 3.0, 4.0], "zh")
    assert np.asarray(fig.data[0].z, dtype=float).shape == (2 * 29 - 1, 4 * 29 - 1)
    assert len(fig.layout.annotations) == 4
    fig = fg.interpolation_figure(frame[:9], 4)
    assert fig.layout.shapes[0].x0 == 4 * 29 - 1
