"""dlplay.classify.probe: statistics against hand-computed values on a tiny network, and on real MNIST training."""
from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlplay.classify.probe import HIST_MAX_SAMPLES, METRICS, HistogramPlan, M, Probe, activation_stats, histogram
from dlplay.classify.train import TrainingSession
from dlplay.nn.model import build_model
from dlplay.nn.spec import LayerSpec, ModelSpec, TrainConfig, dense_spec
from dlplay.run.metrics import MetricsHistory, StepSeries
from helpers import train_to_end


def approx(x: float):
    return pytest.approx(x, rel=1e-5)  # float32 arithmetic (W_after - W_before loses a few digits)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# ----- tiny network, every number by hand ---------------------------------------------------------
# 2 inputs -> dense 2 relu -> dense 2 (logits). W1 = [[1, 1], [-1, -1]], b1 = [0.5, 0],
# W2 = I, b2 = 0. Training example x = (1, 0) with class 0; SGD lr 0.1.
#   z1 = (1.5, -1), a1 = (1.5, 0), logits = (1.5, 0), p = (s, 1 - s) with s = sigmoid(1.5)
#   δ2 = p - onehot(0) = (s - 1, 1 - s);  δ1 = (W2ᵀ δ2) ⊙ relu'(z1) = (s - 1, 0)
#   ∂L/∂W2 = δ2 a1ᵀ: only column 0, entries ±1.5(1 - s);  ∂L/∂W1 = δ1 xᵀ: one entry s - 1
LR = 0.1


def tiny_session(probe: Probe):
    spec = ModelSpec(layers=(LayerSpec("dense", 2, "relu"),), input_shape=(1, 1, 2), num_classes=2)
    net = build_model(spec, seed=0)
    with torch.no_grad():
        net.blocks[0].op.weight.copy_(torch.tensor([[1.0, 1.0], [-1.0, -1.0]]))
        net.blocks[0].op.bias.copy_(torch.tensor([0.5, 0.0]))
        net.blocks[1].op.weight.copy_(torch.eye(2))
        net.blocks[1].op.bias.zero_()
    session = SimpleNamespace(model=net, spec=spec, total_steps=1, metrics=MetricsHistory(),
                              normalize=lambda images: images.to(torch.float32),
                              optimizer=torch.optim.SGD(net.parameters(), lr=LR))
    return session


def train_one_step(session, probe: Probe) -> None:
    """Exactly the order of TrainingSession's loop: forward, backward, hooks, step, hooks, sync."""
    probe.on_start(session)
    x = torch.tensor([[[1.0, 0.0]]])
    y = torch.tensor([0])
    out = session.model(x)
    loss = F.cross_entropy(out, y)
    session.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    probe.after_backward(session, 1)
    session.optimizer.step()
    probe.after_step(session, 1)
    probe.on_sync(session)


def test_tiny_network_statistics_by_hand():
    probe_images = torch.tensor([[[1, 0]], [[2, 1]]], dtype=torch.uint8)  # x_a = (1, 0), x_b = (2, 1)
    probe = Probe(every=1, probe_images=probe_images, bins=4)
    session = tiny_session(probe)
    train_one_step(session, probe)
    snap = session.metrics.snapshot().extras["probe"]
    assert snap is probe.snapshot()
    assert [m.name for m in snap.layers] == ["dense1", "output"]
    assert list(snap.steps) == [1]
    assert snap.probes == 1
    assert snap.last_step == 1
    v = snap.values[0]
    s = sigmoid(1.5)
    g = 1.0 - s

    # backward, on the training example
    assert v[0, M["grad_w"]] == approx(g)  # one entry s - 1
    assert v[0, M["grad_b"]] == approx(g)
    assert v[0, M["delta"]] == approx(g)  # δ1 = (s - 1, 0)
    assert v[1, M["grad_w"]] == approx(1.5 * g * math.sqrt(2))
    assert v[1, M["grad_b"]] == approx(g * math.sqrt(2))
    assert v[1, M["delta"]] == approx(g * math.sqrt(2))

    # the actual SGD step: ‖ΔW‖ = lr ‖∂L/∂W‖, relative to ‖W_before‖ (2 and √2)
    assert v[0, M["update_ratio"]] == approx(LR * g / 2.0)
    assert v[1, M["update_ratio"]] == approx(LR * 1.5 * g * math.sqrt(2) / math.sqrt(2))
    w1 = np.array([[1 + LR * g, 1.0], [-1.0, -1.0]])  # after the step (row 2 had no gradient)
    b1 = np.array([0.5 + LR * g, 0.0])
    w2 = np.array([[1 + LR * 1.5 * g, 0.0], [-LR * 1.5 * g, 1.0]])
    b2 = np.array([LR * g, -LR * g])
    assert v[0, M["weight_norm"]] == approx(np.linalg.norm(w1))
    assert v[1, M["weight_norm"]] == approx(np.linalg.norm(w2))

    # forward on the probe images with the new weights: unit 2 of dense1 is never > 0 -> dead
    x = np.array([[1.0, 0.0], [2.0, 1.0]])
    a1 = np.maximum(x @ w1.T + b1, 0.0)
    assert a1[:, 1].max() == 0.0
    assert a1[:, 0].min() > 0
    assert v[0, M["act_mean"]] == approx(a1.mean())
    assert v[0, M["act_std"]] == approx(a1.std())  # population std
    assert v[0, M["dead"]] == approx(0.5)
    assert math.isnan(v[0, M["saturated"]])  # not a sigmoid/tanh layer
    logits = a1 @ w2.T + b2
    assert v[1, M["act_mean"]] == approx(logits.mean())
    assert math.isnan(v[1, M["dead"]])
    assert math.isnan(v[1, M["saturated"]])
    np.testing.assert_allclose(snap.heatmaps[0], a1, rtol=1e-6)
    np.testing.assert_allclose(snap.heatmaps[1], logits, rtol=1e-6)

    # histograms with 4 bins over ±limit, limit = min(max|x|, 4·rms)
    # W1 after the step: (1 + lr·g, 1, -1, -1) -> limit 1 + lr·g, counts (2, 0, 0, 2)
    assert list(snap.weight_hist[0]) == [2, 0, 0, 2]
    assert snap.weight_edges[0][-1] == approx(1 + LR * g)
    # ∂L/∂W1 = (s - 1, 0, 0, 0): rms = g/2, limit = g, -g in bin 0, zeros in bin 2
    assert list(snap.grad_hist[0]) == [1, 0, 3, 0]
    np.testing.assert_allclose(snap.grad_edges[0], [-g, -g / 2, 0, g / 2, g], rtol=1e-6)

    # the first layer looks at the 1x2 "image": its weights as two 1x2 images
    assert snap.first_layer == "dense1"
    np.testing.assert_allclose(snap.first_weights, w1.reshape(2, 1, 2), rtol=1e-6)
    for arr in (snap.values, snap.steps, snap.weight_hist, snap.heatmaps[0]):
        assert not arr.flags.writeable


def test_activation_stats_saturation_and_conv_dead_units():
    z = torch.tensor([[-5.0, 0.0, 5.0, 1.0], [4.0, -4.0, 0.5, -0.5]])
    a = torch.sigmoid(z)
    mean, std, dead, sat = activation_stats(z, a, "sigmoid").tolist()
    # saturated below 0.025 or above 0.975: sigmoid(±5) yes, sigmoid(±4) = 0.982 / 0.018 yes, others no
    assert sat == pytest.approx(4 / 8)
    assert math.isnan(dead)
    assert mean == pytest.approx(a.mean().item())
    assert std == pytest.approx(a.std(correction=0).item())
    t = torch.tanh(torch.tensor([[2.0, 1.0], [-3.0, 0.0]]))  # |tanh| > 0.95: tanh(2)=0.964, tanh(-3)
    assert activation_stats(t, t, "tanh")[3].item() == pytest.approx(0.5)
    # conv: a channel is dead when its z is never > 0 at any position of any image
    zc = torch.full((2, 3, 4, 4), -1.0)
    zc[1, 0, 3, 3] = 0.1  # channel 0 fires once
    zc[0, 2] = 2.0  # channel 2 fires everywhere
    assert activation_stats(zc, torch.relu(zc), "relu")[2].item() == pytest.approx(1 / 3)
    assert activation_stats(zc, F.leaky_relu(zc, 0.01), "leaky_relu")[2].item() == pytest.approx(1 / 3)


def test_histogram_fixed_bins_clip_outliers_and_sample_large_tensors():
    counts, limit = histogram(torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0]), bins=4)
    assert limit.item() == 1.0
    assert counts.tolist() == [1, 1, 1, 2]  # like numpy: last bin closed
    np.testing.assert_array_equal(counts.numpy(), np.histogram([-1, -0.5, 0, 0.5, 1], bins=4, range=(-1, 1))[0])
    # one outlier: the range is 4·rms, the outlier is counted in the outer bin
    x = torch.cat([torch.linspace(-1, 1, 999), torch.tensor([1000.0])])
    counts, limit = histogram(x, bins=8)
    rms = x.square().mean().sqrt().item()
    assert limit.item() == pytest.approx(4 * rms)
    assert counts.sum().item() == 1000
    assert counts[-1].item() >= 1
    # many tensors at once; big ones contribute an evenly strided sample of at most max_samples values
    tensors = [torch.randn(300, 100), torch.randn(7)]
    plan = HistogramPlan([t.numel() for t in tensors], bins=16, max_samples=1000)
    counts, limits = plan(tensors)
    assert counts.shape == (2, 16)
    assert counts.sum(1).tolist() == [1000, 7]
    assert limits[1].item() == pytest.approx(min(tensors[1].abs().max().item(), 4 * tensors[1].square().mean().sqrt().item()))


def test_history_is_bounded_and_averages_pairs():
    h = StepSeries(capacity=4, shape=(1, len(METRICS)))  # a probe's history: [layers, metrics] per reading
    for step in range(1, 9):
        h.append(step, np.full((1, len(M)), float(step)))
    steps, values = h.arrays()
    assert h.stride == 2  # 1..4 filled it; 5 halved it to (2: 1.5, 4: 3.5); 6 and 8 close pairs
    assert list(steps) == [2, 4, 6, 8]
    assert list(values[:, 0, 0]) == [1.5, 3.5, 5.5, 7.5]
    h.append(9, np.full((1, len(M)), 9.0))
    h.append(10, np.full((1, len(M)), 10.0))  # full again: pairs averaged, stride 4, (9, 10) pending
    steps, values = h.arrays()
    assert h.stride == 4
    assert list(steps) == [4, 8]
    assert list(values[:, 0, 0]) == [2.5, 6.5]


def test_probe_on_real_training_matches_independent_measurements(mnist):
    every = 3
    probe = Probe(every=every)
    config = TrainConfig(optimizer="sgd", lr=0.05, batch_size=32, epochs=1, train_size=320, seed=1)
    session = train_to_end(mnist, dense_spec([32, 16], "relu"), config, sync_every=4, callbacks=[probe], timeout=60)
    snap = session.snapshot().extras["probe"]
    assert list(snap.steps) == [1, 3, 6, 9, 10]  # step 1, every 3rd, and the last
    assert snap.probes == 5
    assert snap.last_step == 10
    v = snap.values
    # SGD without momentum: the actual step is lr·grad, so ratio·‖W‖ ≈ lr·‖∂L/∂W‖ (two separate measurements)
    np.testing.assert_allclose(v[:, :, M["update_ratio"]] * v[:, :, M["weight_norm"]],
                               config.lr * v[:, :, M["grad_w"]], rtol=2e-2)
    # the last probe ran after the last step: compare with the final model, computed independently
    net = session.model_copy()
    x = session.normalize(mnist.test_images[:64])
    with torch.no_grad():
        record: list = []
        net(x, record)
    for i, block in enumerate(net.weight_blocks()):
        z, a = record[i]
        assert v[-1, i, M["weight_norm"]] == pytest.approx(block.op.weight.norm().item(), rel=1e-5)
        assert v[-1, i, M["act_mean"]] == pytest.approx(a.mean().item(), rel=1e-4, abs=1e-6)
        assert v[-1, i, M["act_std"]] == pytest.approx(a.std(correction=0).item(), rel=1e-4)
        np.testing.assert_allclose(snap.heatmaps[i], a.numpy(), rtol=1e-4, atol=1e-6)
        if block.activation_name == "relu":
            assert v[-1, i, M["dead"]] == pytest.approx(((z > 0).sum(0) == 0).float().mean().item())
        n = block.op.weight.numel()  # an evenly strided sample of at most HIST_MAX_SAMPLES values
        sampled = math.ceil(n / math.ceil(n / HIST_MAX_SAMPLES))
        assert sampled <= HIST_MAX_SAMPLES
        assert snap.weight_hist[i].sum() == sampled == snap.grad_hist[i].sum()
    np.testing.assert_allclose(snap.first_weights, net.blocks[0].op.weight[:32].detach().reshape(32, 28, 28).numpy(), rtol=1e-6)
    assert list(snap.probe_labels) == mnist.test_labels[:64].tolist()
    # every hook is gone once the run ended
    assert all(not b.op._forward_hooks for b in session.model.blocks)


def test_history_stays_bounded_in_a_long_run(mnist):
    probe = Probe(every=1, capacity=8)
    config = TrainConfig(epochs=1, train_size=640, batch_size=16)
    train_to_end(mnist, dense_spec([16]), config, callbacks=[probe], timeout=60)
    snap = probe.snapshot()
    assert snap.probes == 40
    assert len(snap.steps) <= 8
    assert snap.stride >= 8
    assert snap.steps[-1] <= 40
    assert np.all(np.diff(snap.steps) > 0)


def test_the_interval_can_change_during_a_run(mnist):
    probe = Probe(every=20)

    class Switch:  # after the probe's own after_step, as a UI thread's set_every would land between steps
        def after_step(self, session, step):
            if step == 45:
                probe.set_every(7)

    config = TrainConfig(epochs=1, train_size=16 * 80, batch_size=16)
    train_to_end(mnist, dense_spec([8]), config, callbacks=[probe, Switch()], timeout=60)
    snap = probe.snapshot()
    assert snap.steps.tolist() == [1, 20, 40, 49, 56, 63, 70, 77, 80]
    assert snap.every == 7
    with pytest.raises(ValueError, match="every must be >= 1"):
        probe.set_every(0)


def test_model_copies_do_not_feed_the_probe():
    """model_copy() deep-copies a model whose δ hooks are armed: the copy's backward must not count."""
    probe = Probe(every=1, probe_images=torch.zeros(2, 1, 2, dtype=torch.uint8))
    session = tiny_session(probe)
    probe.on_start(session)  # arms the hooks for step 1
    clone = copy.deepcopy(session.model)
    out = clone(torch.tensor([[[1.0, 0.0]]]))
    F.cross_entropy(out, torch.tensor([0])).backward()
    assert all(math.isnan(d.item()) for d in probe._delta)
    out = session.model(torch.tensor([[[1.0, 0.0]]]))
    F.cross_entropy(out, torch.tensor([0])).backward()
    assert all(not math.isnan(d.item()) for d in probe._delta)


def test_conv_first_layer_kernels_and_batchnorm_left_alone(mnist):
    spec = ModelSpec(layers=(LayerSpec("conv2d", 4, "relu", kernel=3), LayerSpec("batchnorm", activation="relu"),
                             LayerSpec("maxpool", kernel=2, stride=2), LayerSpec("dense", 8, "tanh", dropout=0.2)))
    probe = Probe(every=2)
    config = TrainConfig(epochs=1, train_size=128, batch_size=32)
    session = TrainingSession(spec, config, mnist, "cpu", callbacks=[probe])
    bn = session.model.blocks[1].op
    session.start()
    assert session.join(60)
    assert session.status == "done"
    snap = probe.snapshot()
    assert [m.name for m in snap.layers] == ["conv2d1", "batchnorm1", "dense1", "output"]
    assert snap.first_layer == "conv2d1"
    assert snap.first_weights.shape == (4, 3, 3)
    np.testing.assert_allclose(snap.first_weights, session.model.blocks[0].op.weight[:, 0].detach().numpy(), rtol=1e-6)
    assert snap.heatmaps[0].shape == (64, 4)  # channels averaged over positions
    # 4 training steps -> the running statistics saw 4 batches, not the probe's forward passes
    assert bn.num_batches_tracked.item() == 4
    assert session.model.training
    assert np.isfinite(snap.values[-1, :, M["delta"]]).all()
