"""Issue 21: the Inside page's formulas and the dense engine are the same computation.

The engine's forward and backward pass on one example (a batch of one) must give the numbers the
formula view shows for it: z and a of every unit, every δ, and ∂J/∂W.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dlplay.learn.formulas import tutorial_deltas, unit_backward, unit_forward
from dlplay.learn.trace import trace
from dlplay.nn import engine
from dlplay.nn.engine import DenseEngine
from dlplay.nn.model import build_model
from dlplay.nn.spec import LayerSpec, ModelSpec

NET = ModelSpec(layers=(
    LayerSpec("dense", 24, "sigmoid"), LayerSpec("dense", 16, "tanh"), LayerSpec("dense", 12, "relu"),
    LayerSpec("dense", 10, "gelu"), LayerSpec("dense", 9, "elu"), LayerSpec("dense", 8, "softplus"),
))


@pytest.mark.parametrize("seed", [0, 1])
def test_formulas_show_what_the_engine_computes(mnist, seed):
    model = build_model(NET, seed=seed).eval()
    image, label = mnist.test_images[seed + 3], int(mnist.test_labels[seed + 3])
    tr = trace(model, image, mnist.info, label=label)
    x = torch.as_tensor(tr.x, dtype=torch.float32).reshape(1, -1)

    eng = DenseEngine(model, torch.optim.SGD(model.parameters(), lr=0.0))
    deltas: dict[int, np.ndarray] = {}
    eng.watch_delta(lambda i, d: deltas.__setitem__(i, d[0].double().numpy().copy()))
    loss, logits = eng.forward_backward(x, torch.tensor([tr.target]))
    assert loss.item() == pytest.approx(tr.loss, rel=1e-5)

    # forward: the engine's z and a per layer, its own buffers
    buf = eng.buffers(1)
    for i, lt in enumerate(tr.layers[:-1]):
        z = buf.z[i][0].numpy()
        for unit in range(lt.units):
            uf = unit_forward(tr, i, unit)
            assert uf.z == pytest.approx(float(z[unit]), rel=1e-6, abs=1e-6)
    out = len(tr.layers) - 1
    assert unit_forward(tr, out, 0).z == pytest.approx(float(logits[0, 0]), rel=1e-6, abs=1e-6)

    # backward: δ of every layer, then ∂J/∂W and ∂J/∂b in the parameters' .grad
    explicit = tutorial_deltas(tr)
    assert sorted(deltas) == list(range(len(tr.layers)))
    blocks = list(model.blocks)
    for i, lt in enumerate(tr.layers):
        np.testing.assert_allclose(explicit[i], deltas[i], rtol=1e-4, atol=1e-7)
        grad_w = blocks[i].op.weight.grad.numpy()
        for unit in (0, lt.units - 1, int(np.argmax(np.abs(deltas[i])))):
            ub = unit_backward(tr, i, unit)
            assert ub.delta == pytest.approx(float(deltas[i][unit]), rel=1e-4, abs=1e-7)
            for g in ub.grad_terms:
                assert g.grad == pytest.approx(float(grad_w[unit, g.index]), rel=1e-4, abs=1e-7)
            assert ub.grad_bias == pytest.approx(float(blocks[i].op.bias.grad[unit]), rel=1e-4, abs=1e-7)


def test_the_layer_functions_are_the_tutorials_equations():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(5, 7, generator=g, dtype=torch.float64)
    w = torch.randn(4, 7, generator=g, dtype=torch.float64)
    b = torch.randn(4, generator=g, dtype=torch.float64)
    from dlplay.nn.activations import ACTIVATIONS

    act = ACTIVATIONS["tanh"]
    z, f = engine.layer_forward(a, w.t(), b, act.module())
    torch.testing.assert_close(z, a @ w.T + b)
    torch.testing.assert_close(f, torch.tanh(a @ w.T + b))
    y = torch.tensor([0, 3, 1, 2, 3])
    delta = engine.output_delta(torch.log_softmax(z, 1), y)
    torch.testing.assert_close(delta, (torch.softmax(z, 1) - torch.eye(4, dtype=torch.float64)[y]) / 5)
    up = engine.back_project(delta, w)
    torch.testing.assert_close(up, delta @ w)
    torch.testing.assert_close(engine.times_fprime(up.clone(), act, a, torch.tanh(a)), up * (1 - torch.tanh(a) ** 2))
    torch.testing.assert_close(engine.weight_grad(delta, a), delta.T @ a)
    torch.testing.assert_close(engine.bias_grad(delta), delta.sum(0))
