"""dlplay.nn.sequences: the unrolled recurrence equals PyTorch's module, the BPTT recursion equals autograd,
the probe's gradient through time equals autograd on a small case, and the analyses' shapes and meaning."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlplay.classify.probe import Probe
from dlplay.classify.train import TrainingSession
from dlplay.learn import hints as H
from dlplay.nn.model import build_model
from dlplay.nn.sequences import (
    connectivity,
    early_predictions,
    gradient_factor,
    memory,
    onset_steps,
    step_formula,
    time_gradients,
    unroll,
)
from dlplay.nn.spec import LayerSpec, ModelSpec, TrainConfig

CASES = [("rnn", "tanh", 1, "last"), ("rnn", "relu", 2, "all"), ("lstm", "identity", 2, "last"),
         ("lstm", "identity", 1, "all"), ("gru", "identity", 2, "last"), ("gru", "identity", 1, "all")]


def spec_of(cell, act, stack, read, order="rows", hidden=12):
    return ModelSpec(layers=(LayerSpec(cell, hidden, act, stack=stack, read=read), LayerSpec("dense", 7, "tanh")),
                     order=order)


@pytest.fixture(scope="module")
def image(mnist):
    return mnist.test_images[0].numpy(), int(mnist.test_labels[0])


@pytest.mark.parametrize("case", CASES)
def test_unrolled_recurrence_is_the_module(case):
    model = build_model(spec_of(*case, order="columns"), seed=1).eval()
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        un = unroll(model, x)
        torch.testing.assert_close(un.logits, model(x), rtol=1e-5, atol=1e-5)
        out, _ = model.blocks[0].op.rnn(un.inputs)
    torch.testing.assert_close(torch.stack(un.hs, 1), out, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", CASES)
def test_bptt_formula_equals_autograd(case, image, mnist):
    model = build_model(spec_of(*case), seed=2)
    img, label = image
    f = step_formula(model, img, mnist.info.mean, mnist.info.std, step=13, unit=5, target=label)
    assert f.delta_formula.shape == (28, 12)
    assert f.max_difference < 1e-10 * max(1.0, np.abs(f.delta_autograd).max())
    assert np.abs(f.delta_autograd[:-1]).max() > 0  # the recursion really carried something back
    assert f.forward_difference < 1e-10  # h_t by the formula is the module's h_t
    if case[3] == "last":
        assert np.all(f.direct[:-1] == 0)  # only h_T meets the classifier
    broken = f.delta_formula.copy()
    broken[0] *= 1.01
    assert np.abs(broken - f.delta_autograd).max() > f.max_difference  # the check can fail


def test_probe_time_gradient_equals_autograd(mnist):
    """The probe's ‖∂L/∂h_t‖ on its probe images is autograd's, h_t perturbed directly on the module."""
    spec = spec_of("lstm", "identity", 1, "last", hidden=10)
    probe = Probe(every=4, probe_images=16)
    session = TrainingSession(spec, TrainConfig(epochs=1, train_size=128, batch_size=32), mnist, "cpu",
                              sync_every=1, callbacks=[probe])
    session.start()
    assert session.join(60)
    assert session.status == "done"
    snap = probe.snapshot()
    assert snap.time_grad is not None
    assert snap.time_grad.shape == (28,)
    assert snap.time_grad_step == snap.last_step
    model = session.model_copy("cpu")
    # autograd independently: add a zero perturbation e_t to the state after step t (PyTorch's own
    # module, one step at a time); ∂L/∂e_t = ∂L/∂h_t
    x = session.normalize(mnist.test_images[:16])
    seq = x.reshape(16, 28, 28)
    rnn = model.blocks[0].op.rnn
    eps = [torch.zeros(1, 16, 10, requires_grad=True) for _ in range(28)]
    state = None
    for t in range(28):
        _out, (h, c) = rnn(seq[:, t : t + 1], state)
        state = (h + eps[t], c)
    logits = state[0][0]
    for block in model.blocks[1:]:  # dense 7 tanh, output
        logits = block(logits)
    loss = F.cross_entropy(logits, mnist.test_labels[:16])
    grads = torch.autograd.grad(loss, eps)
    expected = np.array([float(g.norm()) for g in grads])
    np.testing.assert_allclose(snap.time_grad, expected, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(time_gradients(model, x, mnist.test_labels[:16]).numpy(), expected, rtol=1e-4)


def test_vanishing_hint_names_the_factor():
    from dlplay.classify.probe import ProbeSnapshot
    grads = np.geomspace(1e-6, 1e-2, 28)
    assert gradient_factor(grads) == pytest.approx(1e4)
    hint = H.time_gradient_hint(grads)
    assert hint is not None
    assert hint.key == "dynamics.hint_vanishing_time"
    for lang in ("en", "zh"):
        text = hint.text(lang)
        assert "10,000" in text
        assert "28" in text
        assert "{" not in text
    healthy = H.time_gradient_hint(np.linspace(1.0, 2.0, 28))
    assert healthy is not None
    assert healthy.level == "info"
    assert healthy.key == "dynamics.hint_time_ok"
    assert H.time_gradient_hint(None) is None
    assert ProbeSnapshot.__dataclass_fields__["time_grad"].default is None


@pytest.mark.parametrize("case", CASES[:3] + CASES[3:4])
def test_early_prediction_memory_and_connectivity(case, image, mnist):
    model = build_model(spec_of(*case), seed=3).eval()
    img, _label = image
    mean, std = mnist.info.mean, mnist.info.std
    probs = early_predictions(model, img, mean, std)
    assert probs.shape == (28, 10)
    assert np.allclose(probs.sum(1), 1)
    with torch.no_grad():
        final = torch.softmax(model(torch.as_tensor((img / 255.0 - mean) / std, dtype=torch.float32)[None, None]), 1)
    np.testing.assert_allclose(probs[-1], final[0].numpy(), rtol=1e-4, atol=1e-6)  # after the last row: the answer
    mem = memory(model, img, mean, std)
    assert mem.h.shape == (12, 28)
    assert sorted(mem.units) == list(range(12))
    assert np.all(np.diff(onset_steps(mem.h)) >= 0)  # ordered by the step where each unit becomes strongly active
    for rows in mem.gates.values():
        assert rows.shape == mem.h.shape  # (in the same row order: checked on the page's figures)
    assert set(mem.gates) == {"rnn": set(), "lstm": {"i", "f", "g", "o", "c"}, "gru": {"r", "z", "n"}}[case[0]]
    conn, target = connectivity(model, img, mean, std)
    assert conn.shape == (28,)
    assert target == int(probs[-1].argmax())
    x = torch.as_tensor((img / 255.0 - mean) / std, dtype=torch.float32)[None, None].requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x)[0, target], x)  # the whole model, row t = step t
    np.testing.assert_allclose(conn, grad[0, 0].norm(dim=1).numpy(), rtol=1e-4, atol=1e-8)


def test_onset_is_the_first_step_at_half_the_largest_magnitude():
    values = np.array([[0.1, 0.6, -1.0, 0.2],  # |h| reaches 0.5 at step 1
                       [-0.9, 0.0, 0.0, 0.0],  # at once, negative
                       [0.0, 0.0, 0.0, 0.0],  # never active: after the last step
                       [0.0, 0.2, 0.3, 0.4]])  # 0.2 is exactly half of 0.4
    assert onset_steps(values).tolist() == [1, 0, 4, 1]


def test_the_read_and_tinted_digits_are_white_on_black_like_mnist(image):
    """As MNIST stores them and the other pages draw them (colorscale "gray": 0 black, 255 white)."""
    from dlplay.figures.sequences import connectivity_image, revealed_figure

    img, _ = image
    ink, paper = img >= 200, img == 0
    assert ink[14:].any()
    assert paper.any()
    read = np.asarray(revealed_figure(img, "rows", 28).data[0].z, dtype=np.int64)  # every row read
    assert np.abs(read - img.astype(np.int64)[..., None]).max() <= 1  # MNIST's own grey levels
    half = np.asarray(revealed_figure(img, "rows", 14).data[0].z, dtype=np.int64)
    assert (half[:14] == read[:14]).all()
    unread = half[14:]  # the rows not read yet: dark and tinted, their ink dimmed but brighter than the paper
    assert unread[paper[14:]].max() < 100
    assert (unread[paper[14:]][:, 0] > unread[paper[14:]][:, 1]).all()
    assert unread[ink[14:]].min() > unread[paper[14:]].max()
    tinted = np.asarray(connectivity_image(img, np.ones(28), "rows").data[0].z, dtype=np.int64)
    assert tinted[ink].mean() > 200
    assert tinted[paper].mean(axis=1).max() < tinted[ink].mean()


def test_pixel_by_pixel_preset_shows_the_vanishing_hint(mnist):
    """The plain RNN reading 784 pixels: the probe's gradient through time falls by far more than
    VANISHING_FACTOR from the last step to the first, and the hints name it (Dynamics' list too)."""
    from dlplay.nn.presets import PRESETS

    preset = PRESETS["rnn_pixels"]
    probe = Probe(every=2, probe_images=16)
    session = TrainingSession(preset.spec, preset.config.with_changes(train_size=64, epochs=1), mnist, "cpu",
                              sync_every=1, callbacks=[probe])
    session.start()
    assert session.join(120)
    assert session.status == "done"
    snap = probe.snapshot()
    assert snap.time_grad.shape == (784,)
    assert gradient_factor(snap.time_grad) > H.VANISHING_FACTOR
    assert "dynamics.hint_vanishing_time" in [h.key for h in H.find_hints(snap)]


def test_every_cell_is_a_recurrent_layer_kind_and_every_case_covers_it():
    """The cell registry and the layer registry name the same recurrent kinds, and CASES walks each cell
    through the formula tests above (a new cell without a case fails here)."""
    from dlplay.nn.cells import CELLS
    from dlplay.nn.layers import SEQUENCE_KINDS

    assert set(CELLS) == set(SEQUENCE_KINDS)
    assert {case[0] for case in CASES} == set(CELLS)
    for cell in CELLS.values():
        assert cell.blocks == max(1, len(cell.gates))  # PyTorch's weight blocks: one per gate (an RNN: h)
