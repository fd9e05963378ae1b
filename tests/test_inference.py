"""trace.py, formulas.py and latex.py: the one-input trace equals autograd, the tutorial's formulas equal autograd, the LaTeX shows the trace."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlplay.classify.predict import predictions, probabilities
from dlplay.figures import inside as fi
from dlplay.learn.formulas import activation_derivative, tutorial_deltas, unit_backward, unit_forward
from dlplay.learn.latex import backward_latex, forward_latex, loss_latex, num
from dlplay.learn.trace import trace
from dlplay.nn.model import build_model
from dlplay.nn.spec import ACTIVATIONS, LayerSpec, ModelSpec

DENSE = ModelSpec(layers=(
    LayerSpec("dense", 24, "sigmoid"), LayerSpec("dense", 16, "tanh"), LayerSpec("dense", 12, "relu"),
    LayerSpec("dense", 10, "gelu"), LayerSpec("dense", 9, "elu"), LayerSpec("dense", 8, "leaky_relu"),
    LayerSpec("dense", 7, "softplus"),
))
CONV = ModelSpec(layers=(
    LayerSpec("conv2d", 4, "relu", kernel=3), LayerSpec("maxpool", kernel=2, stride=2),
    LayerSpec("conv2d", 6, "tanh", kernel=3, padding=1), LayerSpec("batchnorm", activation="sigmoid"),
    LayerSpec("avgpool", kernel=2, stride=2), LayerSpec("dense", 12, "relu"),
))


def reference(model, image: torch.Tensor, info, target: int):
    """What loss.backward() gives: dJ/dz per block (retain_grad) and dJ/dW, dJ/db per weight layer."""
    model = copy.deepcopy(model).eval()
    x = ((image.to(torch.float32) / 255.0 - info.mean) / info.std).reshape(1, 1, 28, 28)
    record: list = []
    logits = model(x, record)
    for z, _ in record:
        z.retain_grad()
    loss = F.cross_entropy(logits, torch.tensor([target]))
    loss.backward()
    deltas = [z.grad[0].numpy() for z, _ in record]
    grads = [(b.op.weight.grad.numpy(), b.op.bias.grad.numpy()) for b in model.weight_blocks()]
    return loss.item(), torch.softmax(logits.detach(), 1)[0].numpy(), deltas, grads


def random_bn_stats(model) -> None:
    gen = torch.Generator().manual_seed(3)
    for block in model.blocks:
        if isinstance(block.op, torch.nn.BatchNorm2d):
            c = block.op.num_features
            block.op.running_mean.copy_(torch.randn(c, generator=gen) * 0.3)
            block.op.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
            block.op.weight.data.copy_(torch.rand(c, generator=gen) + 0.5)
            block.op.bias.data.copy_(torch.randn(c, generator=gen) * 0.1)


@pytest.mark.parametrize("spec", [DENSE, CONV], ids=["dense", "conv"])
def test_trace_equals_autograd(mnist, spec):
    model = build_model(spec, seed=1)
    random_bn_stats(model)
    for idx, target in [(0, None), (1, 3)]:
        image, label = mnist.test_images[idx], int(mnist.test_labels[idx])
        tr = trace(model, image, mnist.info, target=target, label=label)
        want_target = label if target is None else target
        assert tr.target == want_target
        assert tr.label == label
        loss, probs, deltas, grads = reference(model, image, mnist.info, want_target)
        assert tr.loss == pytest.approx(loss, rel=1e-5)
        np.testing.assert_allclose(tr.probs, probs, atol=1e-6)
        assert tr.prediction == int(np.argmax(probs))
        assert len(tr.layers) == len(deltas) == len(model.blocks)
        for lt, delta in zip(tr.layers, deltas):
            assert lt.delta.shape == lt.z.shape == delta.shape
            np.testing.assert_allclose(lt.delta, delta, rtol=1e-5, atol=1e-9)
        weighted = [lt for lt in tr.layers if lt.weight is not None]
        assert len(weighted) == len(grads)
        for lt, (gw, gb) in zip(weighted, grads):
            np.testing.assert_allclose(lt.grad_weight, gw, rtol=1e-5, atol=1e-9)
            np.testing.assert_allclose(lt.grad_bias, gb, rtol=1e-5, atol=1e-9)
            assert np.abs(gw).max() > 0  # the comparison is not between zeros
    assert all(p.grad is None for p in model.parameters())  # the caller's model is untouched


def test_trace_shapes_and_activations(mnist):
    model = build_model(CONV, seed=0)
    tr = trace(model, mnist.test_images[5], mnist.info)
    assert [lt.z.shape for lt in tr.layers] == [(4, 26, 26), (4, 13, 13), (6, 13, 13), (6, 13, 13), (6, 6, 6), (12,), (10,)]
    assert [lt.kind for lt in tr.layers] == ["conv2d", "maxpool", "conv2d", "batchnorm", "avgpool", "dense", "dense"]
    assert tr.layers[0].input_shape == (1, 28, 28)
    assert tr.layers[5].input_shape == (6, 6, 6)
    np.testing.assert_allclose(tr.layers[0].a, np.maximum(tr.layers[0].z, 0))
    np.testing.assert_allclose(tr.layers[2].a, np.tanh(tr.layers[2].z), atol=1e-6)
    assert tr.image.shape == (28, 28)
    assert tr.image.max() <= 1.0
    np.testing.assert_allclose(tr.image, mnist.test_images[5].numpy() / 255.0, atol=1e-7)
    np.testing.assert_allclose(tr.x[0], (tr.image - mnist.info.mean) / mnist.info.std, atol=1e-5)
    assert tr.target == tr.prediction
    assert tr.label is None  # no label: the loss is for the guess


@pytest.mark.parametrize("spec", [DENSE, CONV], ids=["dense", "conv"])
def test_tutorial_deltas_equal_autograd(mnist, spec):
    model = build_model(spec, seed=2)
    random_bn_stats(model)
    tr = trace(model, mnist.test_images[7], mnist.info, label=int(mnist.test_labels[7]))
    explicit = tutorial_deltas(tr)
    onehot = np.eye(10)[tr.target]
    np.testing.assert_allclose(explicit[-1], tr.probs - onehot, atol=1e-12)
    computed = [i for i, d in enumerate(explicit) if d is not None]
    if spec is DENSE:
        assert computed == list(range(len(tr.layers)))
    else:  # from the output down to the first block after the last non-dense one (avgpool feeds dense1)
        assert computed == [4, 5, 6]
    for i in computed:
        np.testing.assert_allclose(explicit[i], tr.layers[i].delta, rtol=1e-4, atol=1e-8)
        assert np.abs(tr.layers[i].delta).max() > 1e-6


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_derivative_matches_torch(name):
    from dlplay.nn.model import make_activation

    z = torch.linspace(-6, 6, 241, dtype=torch.float64).requires_grad_(True)
    z_ = torch.cat([z, torch.tensor([25.0, -25.0], dtype=torch.float64)])
    (grad,) = torch.autograd.grad(make_activation(name)(z_).sum(), z)
    mask = z.detach().abs() > 1e-9  # f'(0) is a one-sided choice; PyTorch's is checked separately below
    ours = activation_derivative(name, z.detach().numpy())
    np.testing.assert_allclose(ours[mask.numpy()], grad.numpy()[mask.numpy()], rtol=1e-6, atol=1e-9)
    assert activation_derivative("relu", np.array([0.0]))[0] == 0.0


def test_unit_forward_numbers_are_the_trace(mnist):
    model = build_model(DENSE, seed=4)
    tr = trace(model, mnist.test_images[11], mnist.info, label=int(mnist.test_labels[11]))
    for layer in (0, 1, len(tr.layers) - 1):
        lt = tr.layers[layer]
        for unit in (0, lt.units - 1):
            uf = unit_forward(tr, layer, unit, k=4)
            a_prev = tr.x.reshape(-1) if layer == 0 else tr.layers[layer - 1].a
            assert uf.n_inputs == a_prev.size
            assert uf.n_rest == a_prev.size - 4
            products = lt.weight[unit].astype(np.float64) * a_prev
            assert [t.index for t in uf.terms] == list(np.argsort(-np.abs(products), kind="stable")[:4])
            for term in uf.terms:
                assert term.weight == float(lt.weight[unit, term.index])
                assert term.value == float(a_prev[term.index])
            assert sum(t.product for t in uf.terms) + uf.rest + uf.bias == pytest.approx(float(lt.z[unit]), abs=1e-5)
            assert uf.bias == float(lt.bias[unit])
            assert uf.z == float(lt.z[unit])
            assert uf.a == float(lt.a[unit])
            lines = forward_latex(uf)
            text = "".join(lines)
            for value in [lt.z[unit], lt.bias[unit], uf.rest] + [lt.weight[unit, t.index] for t in uf.terms]:
                assert num(float(value)) in text
            if layer == len(tr.layers) - 1:
                assert uf.is_output
                assert uf.prob == float(tr.probs[unit])
                assert lines[-1].endswith("= " + num(float(tr.probs[unit])))
            else:
                assert lines[-1].endswith(f"({num(float(lt.z[unit]))}) = {num(float(lt.a[unit]))}")


def test_unit_backward_numbers_are_the_trace(mnist):
    model = build_model(DENSE, seed=5)
    tr = trace(model, mnist.test_images[12], mnist.info, target=4)
    out = len(tr.layers) - 1
    ub = unit_backward(tr, out, 4)
    assert ub.is_output
    assert ub.target_value == 1.0
    assert ub.delta == pytest.approx(tr.probs[4] - 1.0, abs=1e-6)
    assert f"{num(float(tr.probs[4]))} - 1 = {num(float(tr.layers[out].delta[4]))}" in backward_latex(ub)[0]
    assert unit_backward(tr, out, 2).target_value == 0.0
    for layer in (0, 3):
        lt = tr.layers[layer]
        unit = int(np.argmax(np.abs(lt.delta)))
        ub = unit_backward(tr, layer, unit, k=3)
        assert ub.upstream * ub.fprime == pytest.approx(float(lt.delta[unit]), rel=1e-4, abs=1e-10)
        assert sum(t.product for t in ub.upstream_terms) + ub.upstream_rest == pytest.approx(ub.upstream, rel=1e-9, abs=1e-12)
        nxt = tr.layers[layer + 1]
        for term in ub.upstream_terms:
            assert term.weight == float(nxt.weight[term.index, unit])
            assert term.value == float(nxt.delta[term.index])
        a_prev = tr.x.reshape(-1) if layer == 0 else tr.layers[layer - 1].a
        for g in ub.grad_terms:
            assert g.grad == float(lt.grad_weight[unit, g.index])
            assert g.grad == pytest.approx(ub.delta * float(a_prev[g.index]), rel=1e-5, abs=1e-12)
        assert ub.grad_bias == float(lt.grad_bias[unit]) == pytest.approx(ub.delta, rel=1e-6)
        text = "".join(backward_latex(ub))
        for value in [lt.delta[unit], ub.upstream, ub.fprime, lt.z[unit], lt.grad_bias[unit]]:
            assert num(float(value)) in text
        for g in ub.grad_terms:
            assert num(float(lt.grad_weight[unit, g.index])) in text
            assert num(float(a_prev[g.index])) in text
    assert loss_latex(tr) == rf"J = -\log p_{{4}} = -\log({num(float(tr.probs[4]))}) = {num(tr.loss)}"
    with pytest.raises(ValueError, match="out of range"):
        unit_forward(tr, 0, tr.layers[0].units)


def test_formula_view_is_dense_only(mnist):
    tr = trace(build_model(CONV, seed=0), mnist.test_images[0], mnist.info)
    with pytest.raises(ValueError, match="dense"):
        unit_forward(tr, 0, 0)
    ub = unit_backward(tr, 5, 0)  # dense1 above avgpool: its next block (output) is dense
    assert ub.upstream is not None
    assert ub.grad_terms


def test_num_formatting():
    assert num(0.5) == "0.5"
    assert num(-1.23456) == "-1.235"
    assert num(1.5e-7) == r"1.5\times 10^{-7}"
    assert num(float("inf")) == r"\infty"
    assert num(-0.0) == "0"


def test_saliency_is_the_gradient_of_the_class_score(mnist):
    torch.manual_seed(0)
    model = build_model(ModelSpec(layers=(LayerSpec("dense", 20, "tanh"),)), seed=6)
    image = mnist.test_images[3]
    tr = trace(model, image, mnist.info, saliency_class=5)
    assert tr.saliency_class == 5
    assert tr.saliency.shape == (28, 28)
    double = copy.deepcopy(model).double().eval()

    def score(pixels: np.ndarray) -> float:
        x = (torch.as_tensor(pixels) - mnist.info.mean) / mnist.info.std
        with torch.no_grad():
            return float(double(x.reshape(1, 1, 28, 28))[0, 5])

    p = image.numpy().astype(np.float64) / 255.0
    direction = np.random.default_rng(0).normal(size=(28, 28))
    h = 1e-4
    finite = (score(p + h * direction) - score(p - h * direction)) / (2 * h)
    assert float((tr.saliency * direction).sum()) == pytest.approx(finite, rel=1e-3)


def test_input_step_moves_towards_the_class(mnist):
    model = build_model(ModelSpec(layers=(LayerSpec("dense", 32, "relu"),)), seed=7)
    image = mnist.test_images[9]
    tr = trace(model, image, mnist.info, step_class=2, step_size=0.5)
    assert tr.step_class == 2
    assert tr.step_size == 0.5
    assert tr.probs_after_step[2] > tr.probs[2]
    change = tr.image_after_step - tr.image
    assert 0 < np.linalg.norm(change) <= 0.5 + 1e-5
    assert tr.image_after_step.min() >= 0
    assert tr.image_after_step.max() <= 1
    np.testing.assert_allclose(probabilities(model, np.rint(tr.image * 255), mnist.info), tr.probs, atol=1e-6)
    still = trace(model, image, mnist.info, step_size=0.0)
    np.testing.assert_allclose(still.probs_after_step, still.probs, atol=1e-7)
    assert still.step_class == still.runner_up != still.prediction


def test_eval_mode_no_dropout_and_predictions(mnist):
    spec = ModelSpec(layers=(LayerSpec("dense", 64, "relu", dropout=0.5),))
    model = build_model(spec, seed=8).train()
    first = trace(model, mnist.test_images[0], mnist.info)
    second = trace(model, mnist.test_images[0], mnist.info)
    assert model.training  # restored
    np.testing.assert_array_equal(first.layers[0].a, second.layers[0].a)
    preds = predictions(model, mnist.test_images[:50], mnist.info, batch_size=16)
    assert model.training
    single = [int(np.argmax(probabilities(model, mnist.test_images[i], mnist.info))) for i in range(50)]
    assert preds.tolist() == single


def test_figures(mnist):
    tr = trace(build_model(CONV, seed=0), mnist.test_images[0], mnist.info)
    grid, index = fi.unit_grid(np.arange(10.0))
    assert grid.shape == (3, 4)
    assert np.isnan(grid[2, 2:]).all()
    assert index[1, 1] == 5
    conv = fi.layer_figure(tr.layers[0].z, "conv2d1", "z", "en")
    assert conv.layout.title.text == "z: conv2d1"
    z = np.asarray(conv.data[0].z, dtype=float)
    assert z.shape == (2 * 27 - 1, 2 * 27 - 1)  # 4 maps of 26x26 in a 2x2 mosaic with 1-pixel gaps
    np.testing.assert_allclose(z[:26, 27:53], tr.layers[0].z[1])
    dense = fi.layer_figure(tr.layers[-1].delta, "output", "delta", "zh", selected=7)
    assert dense.layout.title.text == "δ：output"
    assert len(dense.layout.shapes) == 1
    many = fi.layer_figure(np.zeros((100, 4, 4)), "c", "a", "en")
    assert "64" in many.layout.title.text
    assert "100" in many.layout.title.text
    w = fi.weights_figure(np.arange(784.0), (1, 28, 28), "inside.fig_input", "en")
    assert np.asarray(w.data[0].z).shape == (28, 28)
    assert w.layout.title.text == "Input image"
    probs = fi.probs_figure(tr.probs, [str(i) for i in range(10)], "en", after=tr.probs_after_step, highlight=3)
    assert len(probs.data) == 2
    assert list(probs.data[1].y) == list(tr.probs_after_step)
    sal = fi.saliency_figure(tr.image, tr.saliency, "3", "en")
    assert len(sal.data) == 2
    assert sal.layout.title.text == "Saliency for class 3"


def test_diverged_weights_do_not_crash_the_trace(mnist):
    model = build_model(ModelSpec(layers=(LayerSpec("dense", 8, "relu"),)), seed=0)
    with torch.no_grad():
        model.blocks[0].op.weight[0, 0] = float("nan")
    tr = trace(model, mnist.test_images[0], mnist.info, label=7)
    assert np.isnan(tr.probs).all()
    assert np.isnan(tr.loss)
    assert r"\mathrm{NaN}" in "".join(forward_latex(unit_forward(tr, 1, 0)))
    backward_latex(unit_backward(tr, 0, 0))
    fi.layer_figure(tr.layers[0].delta, "dense1", "delta", "en")
    fi.saliency_figure(tr.image, tr.saliency, "7", "en")
