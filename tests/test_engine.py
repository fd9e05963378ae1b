"""The dense engine (dlplay.nn.engine) trains as autograd does: same weights after 200 steps from the same
initialisation and batches, for every activation, optimiser and schedule, with dropout and weight decay.

Tolerance. Both paths run the same float32 kernels (addmm forward, mm backward, the optimiser's fused
kernel); they differ only in rounding: the engine writes δ_L = (softmax − onehot)/B where autograd
computes log-softmax's backward, and f′(z) comes from the registry's formula instead of autograd's
own backward kernel (a few ulp, ~1e-7 relative, per step). Adam and RMSprop divide by √v, so for a
weight whose gradient is nearly zero that rounding can become a visible (but lr-sized) step. Measured
over the grid below the largest difference is 0.2% of how far the weights moved in 200 steps (GELU
with RMSprop), most are below 0.01%. The bound is 1% of that distance: a wrong equation (a missing
f′, a missing 1/B, a dropout mask not applied) moves the weights by tens of percent of it, and
``test_the_tolerance_catches_a_one_percent_change`` shows that even a learning rate 1% off fails it.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dlplay.classify.probe import M, Probe
from dlplay.classify.train import TrainingSession
from dlplay.data.datasets import load_dataset
from dlplay.nn.activations import ACTIVATIONS
from dlplay.nn.engine import DenseEngine, supports
from dlplay.nn.model import build_model
from dlplay.nn.optimizers import OPTIMIZERS, SCHEDULES, lr_factor, make_optimizer, make_update
from dlplay.nn.spec import LayerSpec, ModelSpec, TrainConfig, dense_spec

STEPS = 200
BATCH = 32
TOLERANCE = 0.01  # of the largest distance a weight moved in the 200 steps (see the module doc)


@pytest.fixture(scope="module")
def mnist():
    ds = load_dataset("mnist", download=False)
    x = (ds.train_images.float() / 255 - ds.info.mean) / ds.info.std
    return ds, x, ds.train_labels


def _lr(optimizer: str) -> float:
    # momentum 0.9 takes steps of about lr / (1 − 0.9): 0.01 is plain SGD's 0.05 doubled. At 0.05 with
    # momentum, training sits at the edge of stability, where any rounding difference grows ~20× per 50
    # steps (measured: 1e-7 at step 50, 1e-2 at step 200), like two runs of a chaotic system
    return {"sgd": 0.05, "momentum": 0.01}.get(optimizer, 1e-3)


def train(spec: ModelSpec, data, optimizer: str, *, engine: bool, schedule: str = "constant", weight_decay: float = 1e-3,
          lr: float | None = None, steps: int = STEPS, seed: int = 1):
    """``steps`` steps from build_model(seed=0) over fixed batches of the MNIST sample; (net, losses)."""
    _, x_all, y_all = data
    lr = _lr(optimizer) if lr is None else lr
    net = build_model(spec, seed=0).train()
    opt = make_optimizer(optimizer, net.parameters(), lr, weight_decay)
    eng = DenseEngine(net, opt) if engine else None
    perm = torch.randperm(len(y_all), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(seed)  # dropout masks
    losses = []
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * lr_factor(schedule, step + 1, steps)
        idx = perm[step * BATCH : (step + 1) * BATCH]
        x, y = x_all[idx], y_all[idx]
        if eng is not None:
            loss, _ = eng.forward_backward(x, y)
            eng.update()
        else:
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        losses.append(loss.item())
    return net, opt, losses


def gap(spec: ModelSpec, a: torch.nn.Module, b: torch.nn.Module) -> tuple[float, float]:
    """(largest |W_a − W_b|, largest distance a weight of ``a`` moved from the initialisation)."""
    start = build_model(spec, seed=0)
    diff = max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))
    moved = max((p - q).abs().max().item() for p, q in zip(a.parameters(), start.parameters()))
    return diff, moved


def assert_same_training(spec: ModelSpec, data, optimizer: str, **kwargs) -> None:
    auto, _, auto_losses = train(spec, data, optimizer, engine=False, **kwargs)
    dense, _, dense_losses = train(spec, data, optimizer, engine=True, **kwargs)
    diff, moved = gap(spec, auto, dense)
    assert moved > 0.01  # it did train
    assert diff <= TOLERANCE * moved, (diff, moved)
    assert dense_losses == pytest.approx(auto_losses, rel=1e-3, abs=1e-4)


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_engine_matches_autograd_for_every_activation_and_optimizer(mnist, activation, optimizer):
    # two hidden layers, so δ passes through f′ twice; weight decay on (coupled, or decoupled for AdamW)
    assert_same_training(dense_spec([48, 24], activation), mnist, optimizer)


@pytest.mark.parametrize("schedule", list(SCHEDULES))
@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
def test_engine_matches_autograd_for_every_schedule(mnist, schedule, optimizer):
    assert_same_training(dense_spec([64], "relu"), mnist, optimizer, schedule=schedule, weight_decay=0.0)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_weight_decay_is_applied_as_autograd_applies_it(mnist, optimizer):
    spec = dense_spec([64], "tanh")
    assert_same_training(spec, mnist, optimizer, weight_decay=0.1)
    with_decay, _, _ = train(spec, mnist, optimizer, engine=True, weight_decay=0.1)
    without, _, _ = train(spec, mnist, optimizer, engine=True, weight_decay=0.0)
    diff, moved = gap(spec, with_decay, without)
    assert diff > TOLERANCE * moved  # the decay did something the comparison would notice


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_dropout_draws_the_same_masks_as_autograd(mnist, activation):
    spec = ModelSpec(layers=(LayerSpec(units=64, activation=activation, dropout=0.3),
                             LayerSpec(units=32, activation=activation, dropout=0.5)))
    assert_same_training(spec, mnist, "adam")
    # the masks matter: other masks (another seed) give other weights
    a, _, _ = train(spec, mnist, "adam", engine=True, seed=1)
    b, _, _ = train(spec, mnist, "adam", engine=True, seed=2)
    diff, moved = gap(spec, a, b)
    assert diff > TOLERANCE * moved


def test_the_tolerance_catches_a_one_percent_change(mnist):
    spec = dense_spec([64], "relu")
    auto, _, _ = train(spec, mnist, "sgd", engine=False, lr=0.05)
    dense, _, _ = train(spec, mnist, "sgd", engine=True, lr=0.0505)
    diff, moved = gap(spec, auto, dense)
    assert diff > TOLERANCE * moved


def test_engine_shares_the_models_tensors_and_the_optimizers_state(mnist):
    spec = dense_spec([32], "relu")
    net, opt, _ = train(spec, mnist, "adam", engine=True, steps=20)
    params = list(net.parameters())
    state = opt.state_dict()["state"]
    assert len(state) == len(params)
    for i, p in enumerate(params):
        assert p.grad is not None
        assert p.grad.shape == p.shape
        assert p.grad.abs().sum() > 0
        assert state[i]["step"].item() == 20
        assert state[i]["exp_avg"].abs().sum() > 0
    # the optimiser keeps training the same weights with autograd after a state-dict round trip
    clone = build_model(spec, seed=0)
    clone.load_state_dict(net.state_dict())
    opt2 = make_optimizer("adam", clone.parameters(), 1e-3, 1e-3)
    opt2.load_state_dict(opt.state_dict())
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), clone.parameters()))


def test_only_dense_networks_use_the_engine():
    assert supports(build_model(dense_spec([16], "gelu")))
    assert supports(build_model(ModelSpec(layers=())))  # softmax regression: only the output layer
    conv = ModelSpec(layers=(LayerSpec(kind="conv2d", units=4, kernel=3, padding=1),
                             LayerSpec(kind="maxpool", kernel=2, stride=2), LayerSpec(units=16)))
    assert not supports(build_model(conv))
    assert not supports(build_model(ModelSpec(layers=(LayerSpec(kind="batchnorm"), LayerSpec(units=16)))))
    with pytest.raises(ValueError, match="dense layers only"):
        DenseEngine(build_model(conv), torch.optim.SGD(build_model(conv).parameters(), lr=0.1))


# ----- in a run -----------------------------------------------------------------------------------

def _session(spec: ModelSpec, ds, engine: str, callbacks=(), **config) -> TrainingSession:
    cfg = TrainConfig(**{"optimizer": "adam", "lr": 1e-3, "batch_size": 32, "epochs": 2, "seed": 3,
                         "train_size": 1000, **config})
    session = TrainingSession(spec, cfg, ds, "cpu", callbacks=callbacks, engine=engine, sync_every=10)
    session.start()
    assert session.join(120)
    assert session.status == "done", session.snapshot().progress
    return session


def test_a_run_trains_with_the_engine_and_matches_a_forced_autograd_run(mnist):
    ds = mnist[0]
    spec = ModelSpec(layers=(LayerSpec(units=64, activation="relu", dropout=0.2), LayerSpec(units=32, activation="tanh")))
    dense = _session(spec, ds, "auto", schedule="cosine")
    auto = _session(spec, ds, "autograd", schedule="cosine")
    assert dense.engine is not None
    assert dense.snapshot().progress.engine == "dense"
    assert auto.engine is None
    assert auto.snapshot().progress.engine == "autograd"
    a, b = dense.snapshot(), auto.snapshot()
    assert len(a.losses) == len(b.losses) == 2 * 32
    assert a.losses == pytest.approx(b.losses, rel=1e-3, abs=1e-4)
    for x, y in zip(a.epochs, b.epochs):
        assert x.test_acc == pytest.approx(y.test_acc, abs=0.002)
        assert x.train_acc == pytest.approx(y.train_acc, abs=0.002)
    copy = dense.model_copy()
    assert all(torch.equal(p, q) for p, q in zip(copy.parameters(), dense.model.parameters()))


def test_a_convolutional_run_falls_back_to_autograd(mnist):
    spec = ModelSpec(layers=(LayerSpec(kind="conv2d", units=4, kernel=3, padding=1),
                             LayerSpec(kind="maxpool", kernel=2, stride=2), LayerSpec(units=16)))
    session = _session(spec, mnist[0], "auto", epochs=1, train_size=256)
    assert session.engine is None
    assert session.engine_name == "autograd"
    assert session.snapshot().progress.engine == "autograd"


def test_the_probe_reads_delta_and_gradients_from_the_engine(mnist):
    """Every probe statistic (δ norms included) of an engine run equals the autograd run's."""
    ds = mnist[0]
    spec = dense_spec([64, 32], "sigmoid")
    probes = {}
    for engine in ("auto", "autograd"):
        probe = Probe(every=7, probe_images=32)
        _session(spec, ds, engine, callbacks=[probe], epochs=1)
        probes[engine] = probe.snapshot()
    a, b = probes["auto"], probes["autograd"]
    assert a.probes == b.probes > 3
    assert list(a.steps) == list(b.steps)
    for metric in ("grad_w", "grad_b", "delta", "update_ratio", "weight_norm", "act_mean", "act_std"):
        values = a.values[:, :, M[metric]]
        if metric not in ("act_mean", "act_std"):
            assert (values > 0).all(), metric  # measured on every layer, at every probe
        assert values == pytest.approx(b.values[:, :, M[metric]], rel=2e-3, abs=1e-7), metric


@pytest.mark.parametrize("name", [n for n, a in ACTIVATIONS.items() if a.backward is not None])
def test_the_registrys_one_kernel_backward_is_g_times_the_derivative(name):
    entry = ACTIVATIONS[name]
    z = torch.linspace(-6, 6, 1201).reshape(1, -1)
    g = torch.randn(z.shape, generator=torch.Generator().manual_seed(0))
    a = entry.module()(z)
    assert entry.backward(g, z, a) == pytest.approx(g * entry.derivative(z), abs=1e-6)


def test_the_run_record_says_which_engine_trained(mnist):
    from dlplay.classify.runs import RunRecord, record_from_session, run_fields

    session = _session(dense_spec([16], "relu"), mnist[0], "auto", epochs=1, train_size=256)
    record = record_from_session(session)
    assert record is not None
    assert record.engine == "dense"
    assert run_fields(record)["engine"] == "dense"
    assert RunRecord.from_json(record.to_json()).engine == "dense"
    older = record.to_dict()
    del older["engine"]  # runs saved before the engine existed
    assert RunRecord.from_dict(older).engine == ""
    assert run_fields(RunRecord.from_dict(older))["engine"] == "—"


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_the_autograd_runs_update_is_the_optimisers_step(mnist, optimizer):
    """optimizers.make_update (the fused kernel called directly, with autograd's new gradients every
    step) against ``optimizer.step()``: the same weights and state after 60 steps of a small CNN."""
    _, x_all, y_all = mnist
    spec = ModelSpec(layers=(LayerSpec("conv2d", 4, "relu", kernel=3, stride=1, padding=1),
                             LayerSpec("maxpool", 1, "identity", kernel=2, stride=2), LayerSpec("dense", 16, "tanh")))
    nets = [build_model(spec, seed=0).train() for _ in range(2)]
    opts = [make_optimizer(optimizer, net.parameters(), _lr(optimizer), 1e-3) for net in nets]
    update = make_update(opts[1], list(nets[1].parameters()))
    for step in range(60):
        x, y = x_all[step * BATCH: (step + 1) * BATCH].unsqueeze(1), y_all[step * BATCH: (step + 1) * BATCH]
        for i, (net, opt) in enumerate(zip(nets, opts)):
            for group in opt.param_groups:  # a schedule and set_lr write the group: the update reads it
                group["lr"] = _lr(optimizer) * lr_factor("cosine", step + 1, 60)
            loss = F.cross_entropy(net(x), y)
            for p in net.parameters():
                p.grad = None
            loss.backward()
            opt.step() if i == 0 else update()
    for (name, p), q in zip(nets[0].named_parameters(), nets[1].parameters()):
        torch.testing.assert_close(q, p, rtol=0, atol=1e-6, msg=name)
        assert not torch.equal(p, build_model(spec, seed=0).get_parameter(name)), name  # it trained
    for p, q in zip(nets[0].parameters(), nets[1].parameters()):
        for key, value in opts[0].state[p].items():
            torch.testing.assert_close(opts[1].state[q][key], value, rtol=0, atol=1e-6, msg=key)


def test_a_step_without_a_gradient_falls_back_to_the_optimisers_step_with_the_right_count():
    """The fast Adam update shares one step counter between parameters; a step where a parameter has
    no gradient goes through ``optimizer.step()``, which must count each parameter once."""
    nets = [torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    opts = [make_optimizer("adam", net.parameters(), 1e-2, 0.0) for net in nets]
    update = make_update(opts[1], list(nets[1].parameters()))
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    for step in range(6):
        for i, (net, opt) in enumerate(zip(nets, opts)):
            for p in net.parameters():
                p.grad = None
            net(x).square().mean().backward()
            if step == 3:
                net[1].bias.grad = None  # this step: no gradient for one parameter
            opt.step() if i == 0 else update()
    for p, q in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(q, p, rtol=0, atol=1e-6)
        assert float(opts[1].state[q]["step"]) == float(opts[0].state[p]["step"])
