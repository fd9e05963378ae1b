"""The 2-D playground's core: data sets (shapes, classes, determinism by seed, checks), features, the
session on the run loop (a spiral learned to ≥ 95% test accuracy with x₁, x₂ and two tanh layers of 8;
pause, single steps, stop; the grid equals the model's forward), the settings' declared ranges, and the
figure builders' specs valid for Plotly."""
from __future__ import annotations

import io
import time
from dataclasses import fields

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from PIL import Image

from dlplay.errors import UserError
from dlplay.figures import plane as fp
from dlplay.plane import datasets as ds
from dlplay.plane.features import FEATURES, check_features, feature_matrix
from dlplay.plane.session import PlaneConfig, PlaneSession, plane_grid
from helpers import wait_for


# ---------------------------------------------------------------- data sets
@pytest.mark.parametrize("name", list(ds.DATASETS))
def test_every_set_has_its_shape_classes_and_split(name):
    kind = ds.DATASETS[name]
    data = ds.make_dataset(name, n=300, noise=10, test_ratio=0.3, seed=1)
    assert data.x_train.shape[1] == 2
    assert data.x_test.shape[1] == 2
    assert len(data.x_train) + len(data.x_test) == 300
    assert len(data.x_test) == pytest.approx(90, abs=3)
    assert data.x_train.dtype == np.float32
    assert data.task == kind.task
    assert data.classes == kind.classes
    if kind.task == ds.CLASSIFY:
        assert set(np.unique(data.y_train)) == set(range(kind.classes))
        assert data.outputs == kind.classes
    else:
        assert data.y_train.dtype == np.float32
        assert np.abs(data.y_train).max() <= 1
        assert data.outputs == 1
    assert np.abs(np.concatenate([data.x_train, data.x_test])).max() < 12


def test_three_or_more_classes_are_offered():
    assert {k.classes for k in ds.DATASETS.values()} >= {2, 3}


@pytest.mark.parametrize("name", list(ds.DATASETS))
def test_the_same_seed_gives_the_same_points_and_another_seed_others(name):
    a, b = ds.make_dataset(name, seed=3), ds.make_dataset(name, seed=3)
    c = ds.make_dataset(name, seed=4)
    assert np.array_equal(a.x_train, b.x_train)
    assert np.array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_train, c.x_train)


def test_noise_moves_the_points():
    clean, noisy = ds.make_dataset("circle", noise=0, seed=0), ds.make_dataset("circle", noise=50, seed=0)
    r_clean = np.linalg.norm(clean.x_train[clean.y_train == 0], axis=1)
    r_noisy = np.linalg.norm(noisy.x_train[noisy.y_train == 0], axis=1)
    assert r_clean.max() <= 2.5 + 1e-6 < r_noisy.max()


def test_drawn_points_make_a_set_of_their_classes():
    points = [(x, y, k) for k in range(3) for x, y in ((k, 1.0), (k, 2.0), (k, -1.0), (k, -2.0))]
    data = ds.make_dataset(ds.DRAWN, test_ratio=0.5, points=points)
    assert data.classes == 3
    assert data.task == ds.CLASSIFY
    assert set(data.y_train) == {0, 1, 2}  # every class keeps training points
    assert len(data.x_train) + len(data.x_test) == 12


def test_a_two_feature_table_becomes_a_set_through_from_arrays():
    """What a CSV upload will call: points and labels, classification or regression."""
    rng = np.random.default_rng(0)
    xy = rng.uniform(-5, 5, (200, 2))
    classes = ds.from_arrays(xy, (xy[:, 0] > 0).astype(int), ds.CLASSIFY, 0.25, name="csv")
    assert classes.name == "csv"
    assert classes.classes == 2
    assert len(classes.x_test) == 50
    values = ds.from_arrays(xy, np.tanh(xy[:, 0]), ds.REGRESS, 0.25)
    assert values.regression
    assert values.classes == 0


@pytest.mark.parametrize(("points", "key"), [
    ([], "plane.too_few"),
    ([(0, 0, 0), (1, 1, 0), (2, 2, 0), (3, 3, 0)], "plane.one_class"),
    ([(0, 0, 0), (1, 1, 1.5), (2, 2, 0), (3, 3, 1)], "plane.bad_labels"),
    ([(0, 0, 0), (float("nan"), 1, 1), (2, 2, 0), (3, 3, 1)], "plane.not_finite"),
])
def test_bad_points_get_a_message(points, key):
    with pytest.raises(UserError) as info:
        ds.make_dataset(ds.DRAWN, points=points)
    assert info.value.key == key


def test_bad_settings_of_a_set_get_a_message():
    with pytest.raises(UserError) as info:
        ds.make_dataset("circle", noise=80)
    assert info.value.key == "plane.bad_noise"
    with pytest.raises(UserError) as info:
        ds.make_dataset("moons")
    assert info.value.key == "plane.bad_dataset"
    with pytest.raises(UserError) as info:
        ds.make_dataset("circle", test_ratio=1.0)
    assert info.value.key == "plane.bad_ratio"


# ---------------------------------------------------------------- features
def test_features_are_the_functions_they_are_named_for():
    xy = torch.tensor([[2.0, -3.0], [0.5, 1.0]])
    m = feature_matrix(xy, list(FEATURES))
    a, b = xy[:, 0], xy[:, 1]
    expected = torch.stack([a, b, a * a, b * b, a * b, torch.sin(a), torch.sin(b)], 1)
    assert torch.allclose(m, expected)
    assert feature_matrix(xy, ["x1x2"]).shape == (2, 1)


def test_features_are_checked_and_ordered():
    assert check_features(["sin2", "x1"]) == ("x1", "sin2")
    with pytest.raises(UserError):
        check_features([])
    with pytest.raises(UserError):
        check_features(["x3"])


# ---------------------------------------------------------------- settings
def test_every_setting_declares_its_range_or_choices():
    for f in fields(PlaneConfig):
        if f.name != "drawn":
            assert "range" in f.metadata or "choices" in f.metadata, f.name
    assert PlaneConfig().validated() == PlaneConfig()


@pytest.mark.parametrize(("change", "key"), [
    ({"activation": "swish"}, "plane.bad_choice"),
    ({"noise": -1}, "plane.bad_number"),
    ({"batch_size": 0}, "plane.bad_number"),
    ({"hidden": (4,) * 7}, "plane.bad_hidden"),
    ({"hidden": (9,)}, "plane.bad_hidden"),
    ({"features": ()}, "plane.no_features"),
    ({"lr": 0.0}, "spec.lr_range"),
])
def test_bad_settings_get_a_message(change, key):
    with pytest.raises(UserError) as info:
        PlaneConfig().with_changes(**change)
    assert info.value.key == key


# ---------------------------------------------------------------- the session
SPIRAL = PlaneConfig(dataset="spiral", hidden=(8, 8), features=("x1", "x2"), activation="tanh", optimizer="adam",
                     lr=0.03, batch_size=32, epochs=400, seed=0)


def test_a_spiral_is_learned_to_95_percent_with_x1_x2_and_two_tanh_layers():
    run = PlaneSession(SPIRAL)
    run.start()
    assert run.join(300), "400 epochs of 250 points"
    assert run.status == "done"
    snap = run.snapshot()
    assert snap.epochs[-1] == 400
    assert len(snap.test_acc) == 400
    assert snap.last("test_acc") >= 0.95, snap.test_acc[-20:]
    assert run.accuracy("test") == pytest.approx(snap.last("test_acc"))
    assert snap.train_loss[-1] < snap.train_loss[0] / 5


def test_pause_single_steps_and_stop():
    run = PlaneSession(SPIRAL.with_changes(epochs=100_000, optimizer="sgd"))
    run.step(1)
    assert wait_for(lambda: run.snapshot().progress.global_step == 1 and run.status == "paused", 30)
    run.step(2)
    assert wait_for(lambda: run.snapshot().progress.global_step == 3, 30)
    assert wait_for(lambda: run.status == "paused", 30)
    assert run.epoch == 3
    assert len(run.snapshot().epochs) == 3  # each single step flushed
    run.resume()
    assert wait_for(lambda: run.snapshot().progress.global_step > 10, 60)
    run.pause()
    assert wait_for(lambda: run.status == "paused", 30)
    paused_at = run.epoch
    time.sleep(0.5)
    assert run.epoch == paused_at  # paused: no epoch goes by
    run.stop()
    assert run.join(30)
    assert run.status == "stopped"


def test_the_grid_is_the_models_forward_over_the_plane():
    run = PlaneSession(PlaneConfig(dataset="xor", hidden=(5, 3), features=("x1", "x2", "x1x2", "sin1"), seed=2))
    run.step(3)
    assert wait_for(lambda: run.snapshot().progress.global_step == 3, 30)
    grid = run.grid(20)
    xs, ys = plane_grid(20)
    assert np.array_equal(grid.xs, xs)
    assert grid.output.shape == (2, 20, 20)
    assert [n.shape for n in grid.neurons] == [(5, 20, 20), (3, 20, 20)]
    assert grid.inputs.shape == (4, 20, 20)
    assert [w.shape for w in grid.weights] == [(5, 4), (3, 5), (2, 3)]
    i, j = 7, 13  # row i is y = ys[i], column j is x = xs[j]
    point = torch.tensor([[xs[j], ys[i]]])
    x = feature_matrix(point, run.features)
    with torch.no_grad():
        probs = torch.softmax(run.model(x), 1)[0].numpy()
        first = torch.tanh(run.model[0](x))[0].numpy()
    assert np.allclose(grid.output[:, i, j], probs, atol=1e-5)
    assert np.allclose(grid.neurons[0][:, i, j], first, atol=1e-5)
    assert np.allclose(run.predict(point.numpy())[0], probs, atol=1e-5)
    assert np.array_equal(grid.weights[0], run.model[0].weight.detach().numpy())
    run.stop()
    run.join(10)


def test_regression_trains_with_mse_and_reports_no_accuracy():
    run = PlaneSession(PlaneConfig(dataset="reg_plane", hidden=(4,), activation="identity", lr=0.01, epochs=60,
                                   regularization="l2", reg_rate=0.001))
    run.start()
    assert run.join(120)
    assert run.status == "done"
    snap = run.snapshot()
    assert snap.last("test_acc") is None
    assert run.accuracy() is None
    assert snap.test_loss[-1] < 1e-4 < snap.test_loss[0]  # a linear network fits the plane exactly
    assert run.grid(10).output.shape == (1, 10, 10)


def test_a_too_high_learning_rate_diverges_with_a_message():
    run = PlaneSession(PlaneConfig(dataset="reg_gauss", hidden=(8, 8), activation="relu", lr=10.0, epochs=500))
    run.start()
    assert run.join(120)
    assert run.status == "diverged"
    assert run.snapshot().progress.message == "plane.msg_diverged"


def test_three_classes_and_l1_train():
    run = PlaneSession(PlaneConfig(dataset="blobs3", hidden=(4,), epochs=40, regularization="l1", reg_rate=0.001))
    run.start()
    assert run.join(120)
    assert run.status == "done"
    assert run.grid(8).output.shape == (3, 8, 8)
    assert run.snapshot().last("test_acc") >= 0.9


# ---------------------------------------------------------------- figures
def test_figure_specs_are_valid_plotly_and_pictures_decode():
    run = PlaneSession(PlaneConfig(dataset="spiral3", hidden=(8, 8, 3), features=tuple(FEATURES)))
    grid, data = run.grid(50), run.data
    tiles = fp.diagram_tiles(grid.inputs, grid.neurons, grid.output, False)
    assert [len(c) for c in tiles] == [7, 8, 8, 3, 3]
    labels = [[f"{c}.{i}" for i in range(len(col))] for c, col in enumerate(tiles)]
    heat = fp.output_rgb(grid.output, False)
    figures = [fp.network_figure(tiles, labels, grid.weights, selected=(1, 0), column_titles=["a"] * 5),
               fp.plane_figure(fp.png_uri(heat), data.x_train, data.y_train, data.x_test, data.y_test, "en", classes=3),
               fp.neuron_figure(fp.png_uri(heat), "t", "en"),
               fp.loss_figure(np.arange(1, 4), np.ones(3), np.ones(3), "zh")]
    for fig in figures:
        go.Figure(fig.to_dict())  # Plotly's validation, once (the live figures skip it)
        assert fig.to_json().startswith("{")
    png = Image.open(io.BytesIO(fp.png_bytes(heat[::-1])))
    assert png.size == (50, 50)
    assert np.array_equal(np.asarray(png), heat[::-1])
    overlay = fp.points_overlay(data.x_train, data.y_train, data.x_test, data.y_test)
    for jpeg in (fp.plane_jpeg(heat, overlay), fp.network_jpeg(tiles, grid.weights), fp.picture_jpeg(heat)):
        assert Image.open(io.BytesIO(jpeg)).format == "JPEG"


def test_colours_follow_the_palette():
    def rgb(hex_colour: str) -> list[int]:
        return [int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]

    from dlplay.figures.style import BLUE, WEIGHT_ORANGE  # the one palette (colour-blind safe)

    assert fp.diverging_rgb(np.array([[-1.0, 0.0, 1.0]]))[0].tolist() == [rgb(WEIGHT_ORANGE), [255, 255, 255],
                                                                           rgb(BLUE)]
    sure = fp.class_map_rgb(np.array([[[1.0]], [[0.0]]]))[0, 0]
    unsure = fp.class_map_rgb(np.array([[[0.5]], [[0.5]]]))[0, 0]
    assert sure[2] > sure[0]
    assert tuple(unsure.tolist()) != tuple(sure.tolist())


def test_the_live_loss_picture_draws_curves_and_copes_with_no_epochs():
    picture = Image.open(io.BytesIO(fp.loss_jpeg(np.arange(1, 51), np.linspace(1, 0.1, 50), np.linspace(1.2, 0.2, 50))))
    assert picture.size == (460, 190)
    rgb = np.asarray(picture, np.int16)
    assert (rgb[..., 2] > rgb[..., 0] + 50).sum() > 100  # the training curve (blue) is drawn
    assert (rgb[..., 0] > rgb[..., 2] + 50).sum() > 100  # and the test curve (orange)
    assert Image.open(io.BytesIO(fp.loss_jpeg(np.zeros(0), np.zeros(0), np.zeros(0)))).size == (460, 190)
