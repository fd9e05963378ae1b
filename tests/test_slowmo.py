"""One training step in slow motion (dlplay/learn/slowmo.py): every phase's numbers equal autograd's for the
same step (Adam's moments too), the recorded step is the run's actual next step, and a hand edit changes
exactly the edited entry and the run carries on from it."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from dlplay.classify.fork import SnapshotKeeper
from dlplay.classify.train import TrainingSession
from dlplay.errors import UserError
from dlplay.learn import slowmo as sm
from dlplay.nn.optimizers import OPTIMIZERS
from dlplay.nn.spec import TrainConfig, dense_spec
from helpers import stop_and_join, wait_for_status, wait_for_step

# 640 images, batch 32: 20 steps an epoch; snapshots every 7 steps, so most records need a replay
CONFIG = TrainConfig(batch_size=32, epochs=2, train_size=640, seed=5, val_share=0.0)
LRS = {"sgd": 0.1, "momentum": 0.05, "adam": 3e-3, "adamw": 3e-3, "rmsprop": 1e-3}


def paused_run(mnist, spec, config, start=None) -> TrainingSession:
    run = TrainingSession(spec, config, mnist, "cpu", callbacks=[SnapshotKeeper(every=7)], start_from=start)
    run.start(paused=True)
    assert wait_for_status(run, "paused")
    return run


def autograd_step(record: sm.StepRecord, spec, optimizer: str, opt_state: dict, lr: float, weight_decay: float):
    """The same step by autograd and torch.optim (its plain, non-fused implementation)."""
    net = sm.net_from(spec, record.state_before())
    zs = []
    a = record.x
    blocks = list(net.blocks)
    for i, block in enumerate(blocks):
        z = block.op(a)
        z.retain_grad()
        zs.append(z)
        a = block.act(z)
        if record.layers[i].mask is not None:
            a = a * record.layers[i].mask
    loss = F.cross_entropy(zs[-1], record.labels)
    loss.backward()
    opt = OPTIMIZERS[optimizer].make(list(net.parameters()), lr, weight_decay, foreach=False)
    if opt_state.get("state"):
        opt.load_state_dict(opt_state)
    for group in opt.param_groups:
        group["lr"], group["fused"], group["foreach"] = lr, False, False
    grads = [(b.op.weight.grad.clone(), b.op.bias.grad.clone()) for b in blocks]
    opt.step()
    return net, zs, loss, grads, opt


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "momentum", "adamw", "rmsprop"])
def test_every_phase_equals_autograd_and_the_run_lands_on_the_replay(mnist, optimizer):
    spec = dense_spec([24, 12], "relu", dropout=0.2 if optimizer == "sgd" else 0.0)
    config = CONFIG.with_changes(optimizer=optimizer, lr=LRS[optimizer],
                                 weight_decay=1e-3 if optimizer in ("adamw", "momentum") else 0.0)
    run = paused_run(mnist, spec, config)
    try:
        run.step(9)  # some optimiser state: Adam's moments and step count, momentum's buffer
        assert wait_for_step(run, 9)
        assert wait_for_status(run, "paused")
        assert run.snapshot().progress.global_step == 9
        record = sm.record_next_step(run)
        assert record.step == 10
        assert record.t == (10 if optimizer in ("adam", "adamw") else record.t)
        state = run.resume_state(9)
        net, zs, loss, grads, opt = autograd_step(record, spec, optimizer, state.optimizer_state, record.lr,
                                                  config.weight_decay)
        # forward: z and a of every layer; the loss
        for layer, z in zip(record.layers, zs):
            torch.testing.assert_close(layer.z, z.detach(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(record.layers[0].a, torch.relu(zs[0]).detach(), rtol=1e-5, atol=1e-6)
        assert record.loss == pytest.approx(loss.item(), rel=1e-6)
        torch.testing.assert_close(record.probs, torch.softmax(zs[-1], 1).detach(), rtol=1e-5, atol=1e-7)
        # backward: δ = ∂J/∂z of every layer; the gradients
        for layer, z, (gw, gb) in zip(record.layers, zs, grads):
            torch.testing.assert_close(layer.delta, z.grad, rtol=1e-4, atol=1e-8)
            torch.testing.assert_close(layer.weight.grad, gw, rtol=1e-4, atol=1e-7)
            torch.testing.assert_close(layer.bias.grad, gb, rtol=1e-4, atol=1e-7)
        # the update, and the optimiser's state after it (Adam: m, v and the bias-corrected step)
        params = list(net.parameters())
        ups = [u for layer in record.layers for u in (layer.weight, layer.bias)]
        for p, u in zip(params, ups):
            torch.testing.assert_close(u.after, p.detach(), rtol=1e-5, atol=1e-7)
            st = opt.state[p]
            if optimizer in ("adam", "adamw"):
                torch.testing.assert_close(u.state["m"], st["exp_avg"], rtol=1e-5, atol=1e-8)
                torch.testing.assert_close(u.state["v"], st["exp_avg_sq"], rtol=1e-5, atol=1e-12)
                assert int(st["step"]) == record.t == 10
                b1, b2 = record.hyper["beta1"], record.hyper["beta2"]
                torch.testing.assert_close(u.state["m_hat"], st["exp_avg"] / (1 - b1**10))
                torch.testing.assert_close(u.state["v_hat"], st["exp_avg_sq"] / (1 - b2**10))
            elif optimizer == "momentum":
                torch.testing.assert_close(u.state["buf"], st["momentum_buffer"], rtol=1e-5, atol=1e-8)
            elif optimizer == "rmsprop":
                torch.testing.assert_close(u.state["v"], st["square_avg"], rtol=1e-5, atol=1e-12)
        # the run takes this very step (its dense engine, its fused kernel) and lands on the replay
        assert sm.take_step(run, record) <= sm.TOLERANCE
        assert run.snapshot().progress.global_step == 10
    finally:
        stop_and_join(run)


def test_the_recorded_steps_are_the_runs_next_steps_across_an_epoch_boundary(mnist):
    """22 steps in a row, each recorded then taken by the run (dropout masks included), over the end of the
    first epoch (a fresh permutation) and a snapshot-free step (a replay from the nearest snapshot)."""
    spec = dense_spec([16], "tanh", dropout=0.3)
    run = paused_run(mnist, spec, CONFIG.with_changes(optimizer="adam", lr=1e-3))
    try:
        _images, labels, _ = run.split_data("train")
        for _ in range(22):
            record = sm.record_next_step(run)
            assert torch.equal(record.labels, labels[record.indices])
            assert sm.take_step(run, record) <= sm.TOLERANCE
        assert record.epoch == 1
        assert record.step == 22
        before = run.state_dict()
        with pytest.raises(UserError):  # a stale record (the run moved on) is refused, the run untouched
            sm.take_step(run, record)
        assert all(torch.equal(before[k], v) for k, v in run.state_dict().items())
    finally:
        stop_and_join(run)


def test_a_record_needs_a_paused_dense_run(mnist):
    from dlplay.nn.spec import LayerSpec, ModelSpec

    cnn = ModelSpec(layers=(LayerSpec("conv2d", 2, "relu", kernel=3, stride=2), LayerSpec("dense", 8, "relu")))
    run = paused_run(mnist, cnn, CONFIG)
    try:
        with pytest.raises(UserError) as err:
            sm.record_next_step(run)
        assert err.value.key == "slowmo.not_dense"
    finally:
        stop_and_join(run)


def test_a_hand_edit_changes_exactly_that_entry_and_the_run_continues_from_it(mnist):
    spec = dense_spec([16], "relu")
    run = paused_run(mnist, spec, CONFIG.with_changes(optimizer="adam", lr=1e-3))
    fork = None
    try:
        run.step(5)
        assert wait_for_step(run, 5)
        assert wait_for_status(run, "paused")
        assert run.snapshot().progress.global_step == 5
        record = sm.record_next_step(run)
        editor = sm.NeuronEditor(spec, record.state_before(), record.x, record.labels, layer=0, unit=3)
        first = editor.view()
        old = editor.value(200)
        view = editor.set(200, old + 2.0)
        # z of the edited neuron moves by exactly 2 · a_prev[:, 200]; the downstream numbers follow
        torch.testing.assert_close(torch.as_tensor(view.z - first.z), 2.0 * editor.a_prev[:, 200], rtol=1e-4, atol=1e-5)
        full = sm.net_from(spec, editor.state())
        with torch.no_grad():
            logits = full(record.x)
        assert view.loss == pytest.approx(float(F.cross_entropy(logits, record.labels)), rel=1e-6)
        editor.set(None, 0.7)
        editor.undo()  # the bias goes back
        assert editor.changed() == [("blocks.0.op.weight", (3, 200))]
        assert editor.undo().loss == pytest.approx(first.loss)
        assert editor.changed() == []
        editor.set(200, old + 2.0)
        with pytest.raises(UserError):
            editor.set(10_000, 1.0)

        plan = sm.give_back(run, editor)
        assert plan.origin[:3] == (run.run_id, 5, "edit")
        assert plan.start.step == 5
        fork = paused_run(mnist, plan.spec, plan.config, plan.start)
        assert fork.forked_from == plan.origin
        original, edited = run.state_dict(), fork.state_dict()
        diff = [(k, tuple(i)) for k in original for i in torch.nonzero(original[k] != edited[k]).tolist()]
        assert diff == [("blocks.0.op.weight", (3, 200))]
        assert edited["blocks.0.op.weight"][3, 200].item() == pytest.approx(old + 2.0)
        # the fork's next step: the parent's next batch, from the edited weights, with the same Adam state
        nxt = sm.record_next_step(fork)
        assert nxt.step == 6
        assert torch.equal(nxt.indices, record.indices)
        assert nxt.t == record.t
        assert all(torch.equal(v, edited[k]) for k, v in nxt.state_before().items())
        assert sm.take_step(fork, nxt) <= sm.TOLERANCE
    finally:
        stop_and_join(*(r for r in (run, fork) if r is not None))


def test_phase_order_and_formulas_carry_the_recorded_numbers(mnist):
    from dlplay.learn.latex import num

    spec = dense_spec([8], "sigmoid")
    run = paused_run(mnist, spec, CONFIG.with_changes(optimizer="adam", lr=1e-3))
    try:
        record = sm.record_next_step(run)
        kinds = [(p.kind, p.layer) for p in record.phases]
        assert kinds == [("forward", 0), ("forward", 1), ("loss", -1), ("backward", 1), ("backward", 0),
                         ("grad", 1), ("grad", 0), ("update", 0), ("update", 1)]
        fwd = " ".join(sm.phase_latex(record, sm.Phase("forward", 0), 0, 2, example=1))
        assert num(float(record.layers[0].z[1, 2])) in fwd
        assert num(float(record.layers[0].a[1, 2])) in fwd
        back = " ".join(sm.phase_latex(record, sm.Phase("backward", 0), 0, 2, example=1))
        assert num(float(record.layers[0].delta[1, 2])) in back
        i = sm.top_input(record, 1, 4)
        upd = " ".join(sm.phase_latex(record, sm.Phase("update", 1), 1, 4))
        assert num(float(record.layers[1].weight.after[4, i])) in upd
        assert num(float(record.layers[1].weight.state["m_hat"][4, i])) in upd
        assert sm.neuron_value(record, sm.Phase("forward", 0), 1) is None  # the output is not computed yet
        assert sm.shown_kind(record, sm.Phase("grad", 1), 1) == "grad"
    finally:
        stop_and_join(run)


def test_record_does_not_disturb_the_runs_dropout_masks(mnist):
    """Recording (building networks, replaying) leaves the global generator the run's masks come from alone."""
    spec = dense_spec([16], "relu", dropout=0.5)
    config = CONFIG.with_changes(optimizer="sgd", lr=0.1)
    plain = paused_run(mnist, spec, config)  # one run at a time: concurrent runs share the global generator
    try:
        plain.step(3)
        assert wait_for_step(plain, 3)
        assert wait_for_status(plain, "paused")
        a = plain.state_dict()
    finally:
        stop_and_join(plain)
    watched = paused_run(mnist, spec, config)
    try:
        for _ in range(3):
            record = sm.record_next_step(watched)
            assert sm.take_step(watched, record) <= sm.TOLERANCE
        b = watched.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
    finally:
        stop_and_join(watched)


def test_give_back_refuses_without_an_edit(mnist):
    spec = dense_spec([8], "relu")
    run = paused_run(mnist, spec, CONFIG)
    try:
        record = sm.record_next_step(run)
        editor = sm.NeuronEditor(spec, record.state_before(), record.x, record.labels, 0, 0)
        with pytest.raises(UserError):
            sm.give_back(run, editor)
        assert dataclasses.is_dataclass(record)
    finally:
        stop_and_join(run)
