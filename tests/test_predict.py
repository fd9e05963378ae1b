"""predict.py and figures/draw.py: one digit's forward pass, checked on real MNIST with a trained model."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from dlplay.classify.predict import LayerActivation, normalise, predict, predict_batch, to_pixels
from dlplay.data.datasets import normalize
from dlplay.figures.draw import (
    feature_map_figure,
    layer_figure,
    neuron_figure,
    probability_figure,
    tile_feature_maps,
)
from dlplay.figures.tiles import row_grid
from dlplay.nn.model import build_model
from dlplay.nn.spec import LayerSpec, ModelSpec, dense_spec


def _images(mnist, n: int) -> tuple[np.ndarray, np.ndarray]:
    return mnist.test_images[:n].numpy(), mnist.test_labels[:n].numpy()


def test_probabilities_and_layers_of_the_tutorial_model(trained_tutorial, mnist) -> None:
    model = trained_tutorial.model_copy()
    info = mnist.info
    images, labels = _images(mnist, 1)
    pred = predict(model, images[0], info.mean, info.std)
    assert pred.probabilities.shape == (10,)
    assert pred.probabilities.sum() == pytest.approx(1.0, abs=1e-6)
    assert (pred.probabilities >= 0).all()
    assert pred.is_finite
    assert [layer.name for layer in pred.layers] == ["dense1", "output"]
    dense1, output = pred.layers
    assert dense1.values.shape == (128,)
    assert not dense1.is_spatial
    assert dense1.units == 128
    assert dense1.activation == "relu"
    assert (dense1.values >= 0).all()
    assert 0.0 < dense1.active_fraction() < 1.0
    np.testing.assert_allclose(output.values, pred.logits, rtol=1e-6)
    assert pred.hidden_layers == (dense1,)
    # the top guess is the right one for this real test digit, and it is the largest logit
    assert pred.top == int(labels[0]) == int(np.argmax(pred.logits))
    assert pred.confidence == pytest.approx(float(pred.probabilities.max()))
    ranked = pred.ranked(3)
    assert ranked[0] == (pred.top, pred.confidence)
    assert ranked[0][1] >= ranked[1][1] >= ranked[2][1]


def test_recorded_activation_is_the_layer_computed_by_hand(trained_tutorial, mnist) -> None:
    """dense1 = relu(W x + b) with x normalised like training; output = W2 dense1 + b2."""
    model = trained_tutorial.model_copy()
    info = mnist.info
    image = _images(mnist, 2)[0][1]
    pred = predict(model, image, info.mean, info.std)
    x = (torch.as_tensor(image, dtype=torch.float32).flatten() / 255.0 - info.mean) / info.std
    dense1, out = model.blocks[0].op, model.blocks[1].op
    with torch.no_grad():
        h = torch.relu(dense1.weight @ x + dense1.bias)
        logits = out.weight @ h + out.bias
    np.testing.assert_allclose(pred.layers[0].values, h.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(pred.logits, logits.numpy(), rtol=1e-5, atol=1e-5)


def test_single_predictions_agree_with_the_batch_and_are_mostly_right(trained_tutorial, mnist) -> None:
    model = trained_tutorial.model_copy()
    info = mnist.info
    images, labels = _images(mnist, 300)
    batch = predict_batch(model, images, info.mean, info.std)
    singles = np.stack([predict(model, img, info.mean, info.std).probabilities for img in images[:50]])
    np.testing.assert_allclose(singles, batch[:50], rtol=1e-5, atol=1e-6)
    accuracy = float((batch.argmax(1) == labels).mean())
    _, session_acc = trained_tutorial.evaluate("test")
    print(f"accuracy on 300 test digits: {accuracy:.3f} (whole test set: {session_acc:.3f})")
    assert accuracy > 0.85  # one epoch on the sample reaches about 0.9


def test_conv_layers_give_feature_maps() -> None:
    spec = ModelSpec(layers=(LayerSpec("conv2d", 6, "relu", kernel=5), LayerSpec("maxpool", kernel=2, stride=2),
                             LayerSpec("dense", 16, "tanh")))
    model = build_model(spec, seed=1)
    image = np.zeros((28, 28), dtype=np.uint8)
    image[6:22, 12:16] = 255
    pred = predict(model, image, 0.1307, 0.3081)
    names = [layer.name for layer in pred.layers]
    assert names == ["conv2d1", "maxpool1", "dense1", "output"]
    conv, pool, dense, _ = pred.layers
    assert conv.values.shape == (6, 24, 24)
    assert conv.is_spatial
    assert conv.units == 6
    assert pool.values.shape == (6, 12, 12)
    assert pool.kind == "maxpool"
    # max pooling of the recorded conv maps gives the recorded pool maps
    pooled = torch.nn.functional.max_pool2d(torch.as_tensor(conv.values)[None], 2)[0].numpy()
    np.testing.assert_allclose(pool.values, pooled, rtol=1e-6)
    assert dense.values.shape == (16,)
    assert (np.abs(dense.values) <= 1).all()  # tanh


def test_predict_uses_eval_mode_so_dropout_is_off(mnist) -> None:
    spec = ModelSpec(layers=(LayerSpec("dense", 64, "relu", dropout=0.5),))
    model = build_model(spec, seed=0)
    model.train()
    image = mnist.test_images[0].numpy()
    first = predict(model, image, 0.1307, 0.3081).probabilities
    second = predict(model, image, 0.1307, 0.3081).probabilities
    np.testing.assert_array_equal(first, second)
    assert not model.training


def test_broken_weights_are_reported_not_guessed() -> None:
    model = build_model(dense_spec([8], "relu"), seed=0)
    with torch.no_grad():
        model.blocks[0].op.weight.fill_(float("nan"))
    pred = predict(model, np.full((28, 28), 128, dtype=np.uint8), 0.1307, 0.3081)
    assert not pred.is_finite


# ---------------------------------------------------------------- figures
def test_probability_figure_highlights_the_top_class() -> None:
    probs = np.array([0.01, 0.02, 0.05, 0.8, 0.02, 0.03, 0.02, 0.02, 0.02, 0.01])
    fig = probability_figure(probs, [str(i) for i in range(10)], "zh")
    bar = fig.data[0]
    assert isinstance(bar, go.Bar)
    assert list(bar.x) == [str(i) for i in range(10)]
    np.testing.assert_allclose(bar.y, probs * 100)
    colors = list(bar.marker.color)
    assert colors[3] != colors[0]
    assert len(set(colors)) == 2
    assert colors.count(colors[3]) == 1
    assert bar.text[3] == "80%"
    assert fig.layout.yaxis.title.text == "概率"


def test_grid_shape_and_tiling() -> None:
    assert row_grid(1) == (1, 1)
    assert row_grid(6) == (1, 6)
    assert row_grid(32) == (4, 8)
    assert row_grid(100) == (13, 8)
    maps = np.arange(5 * 3 * 4, dtype=float).reshape(5, 3, 4)
    grid = tile_feature_maps(maps, max_cols=3, gap=1)
    assert grid.shape == (2 * 3 + 1, 3 * 4 + 2)
    np.testing.assert_array_equal(grid[0:3, 0:4], maps[0])
    np.testing.assert_array_equal(grid[0:3, 5:9], maps[1])
    np.testing.assert_array_equal(grid[4:7, 5:9], maps[4])  # map 5: second row, second column
    assert np.isnan(grid[3]).all()
    assert np.isnan(grid[:, 4]).all()  # gaps between tiles
    assert np.isnan(grid[4:7, 10:14]).all()  # the unused sixth tile stays blank
    with pytest.raises(ValueError, match=r"expected \(channels, height, width\)"):
        tile_feature_maps(np.zeros((3, 4)))


def test_layer_figures_pick_the_right_picture() -> None:
    maps = LayerActivation("conv2d1", "conv2d", "relu", np.random.default_rng(0).random((8, 26, 26)))
    many = LayerActivation("conv2d2", "conv2d", "relu", np.random.default_rng(0).random((20, 11, 11)))
    fig = layer_figure(maps)
    assert isinstance(fig.data[0], go.Heatmap)
    assert np.asarray(fig.data[0].z, dtype=float).shape == (26, 8 * 27 - 1)  # 8 maps fit in one row
    assert fig.data[0].zmin == 0.0  # non-negative: sequential scale from 0
    signed = LayerActivation("dense1", "dense", "tanh", np.linspace(-1, 0.5, 128))
    bars = layer_figure(signed, "en")
    assert isinstance(bars.data[0], go.Bar)
    assert len(bars.data[0].y) == 128
    assert bars.layout.xaxis.title.text == "neuron"
    wide = neuron_figure(LayerActivation("dense1", "dense", "tanh", np.linspace(-1, 1, 4096)))
    heat = wide.data[0]
    assert isinstance(heat, go.Heatmap)
    assert heat.zmid == 0.0
    assert heat.zmin == -heat.zmax
    z = np.asarray(layer_figure(many).data[0].z, dtype=float)
    assert z.shape == (3 * 12 - 1, 8 * 12 - 1)  # 20 maps: 3 rows of 8
    assert np.isnan(z[:, 11]).all()
    assert np.isnan(z[-11:, -47:]).all()  # gaps; 4 unused tiles blank
    assert feature_map_figure(many).layout.height > feature_map_figure(maps).layout.height >= 100
    # the output layer, given the class names: one score per class on a class axis, the best highlighted
    output = LayerActivation("output", "dense", "identity", np.array([0.5, -1.0, 3.0, 0.1]))
    scores = layer_figure(output, "en", ["a", "b", "c", "d"])
    assert list(scores.data[0].x) == ["a", "b", "c", "d"]
    assert list(scores.data[0].y) == [0.5, -1.0, 3.0, 0.1]
    colors = list(scores.data[0].marker.color)
    assert colors[2] != colors[0]
    assert colors[1] != colors[0]
    assert colors.count(colors[2]) == 1
    assert scores.layout.yaxis.title.text == "score (logit)"
    assert list(layer_figure(output).data[0].x) == [1, 2, 3, 4]  # without class names: neuron bars
    # built without plotly's validation for speed: the specs must still be valid figures
    for fig in (layer_figure(maps, "zh"), layer_figure(many), bars, wide, scores,
                probability_figure(np.full(10, 0.1), [str(i) for i in range(10)])):
        go.Figure(fig.to_dict())  # raises ValueError on an invalid property


def test_the_network_input_is_normalised_like_training() -> None:
    image = np.zeros((28, 28), dtype=np.uint8)
    image[5, 7] = 255
    x = normalise(to_pixels(image, (1, 28, 28), torch.device("cpu")), 0.1307, 0.3081)
    assert x.shape == (1, 1, 28, 28)
    assert x.dtype == torch.float32
    assert x[0, 0, 0, 0].item() == pytest.approx(-0.1307 / 0.3081, rel=1e-6)
    assert x[0, 0, 5, 7].item() == pytest.approx((1 - 0.1307) / 0.3081, rel=1e-6)
    uint8 = torch.from_numpy(image)[None]
    assert torch.allclose(x[0], normalize(uint8, "mnist"), atol=1e-6)  # the training path's fused form agrees
