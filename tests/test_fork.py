"""Fork a run (dlplay/classify/fork.py): the state at any step, replayed from the nearest snapshot, starts a new
run that continues exactly as the original would have (bitwise on the CPU), unless something changed."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dlplay.classify.fork import Change, ResumeState, SnapshotKeeper, apply_change, curves, epochs_at, plan_fork
from dlplay.classify.probe import Probe
from dlplay.classify.runs import RunHistory, RunRecord, RunRecorder, record_from_session
from dlplay.classify.train import TrainingSession
from dlplay.errors import UserError
from dlplay.nn.spec import LayerSpec, ModelSpec, TrainConfig, dense_spec

# small runs: 1,000 images, batch 50 -> 20 steps per epoch, 2 epochs; snapshots every 7 steps but
# flushes (where snapshots are taken) every 5 steps, so most fork points need a replay
CONFIG = TrainConfig(epochs=2, batch_size=50, train_size=1000, lr=0.01, seed=3)


def run(mnist, spec, config, start: ResumeState | None = None, *, every: int = 7) -> TrainingSession:
    session = TrainingSession(spec, config, mnist, "cpu", sync_every=5, start_from=start,
                              callbacks=[SnapshotKeeper(every=every), Probe(every=4)])
    session.start()
    assert session.join(120), session.status
    assert session.status == "done", session.status
    return session


def losses(session: TrainingSession) -> dict[int, float]:
    snap = session.snapshot()
    return dict(zip(snap.steps.tolist(), snap.losses.tolist()))


NO_CHANGE = Change()


def fork(mnist, parent: TrainingSession, step: int, change: Change = NO_CHANGE) -> TrainingSession:
    plan = plan_fork(parent, step, change)
    return run(mnist, plan.spec, plan.config, plan.start)


@pytest.fixture(scope="module")
def dense(mnist):
    """The dense engine, dropout (the masks come from the global generator) and Adam."""
    return run(mnist, dense_spec([32], "relu", dropout=0.2), CONFIG)


@pytest.fixture(scope="module")
def cnn(mnist):
    """Autograd: a small convolutional network in channels-last memory, SGD with momentum and a schedule."""
    spec = ModelSpec(layers=(LayerSpec("conv2d", 4, "relu", kernel=3, stride=2), LayerSpec("maxpool", kernel=2, stride=2),
                             LayerSpec("dense", 16, "relu", dropout=0.1)))
    config = CONFIG.with_changes(optimizer="momentum", schedule="cosine", epochs=1, train_size=600)
    return run(mnist, spec, config)


@pytest.mark.parametrize("step", [0, 5, 13, 20, 27])
def test_a_fork_without_a_change_continues_the_original_curve_bitwise(mnist, dense, step):
    parent = losses(dense)
    child = fork(mnist, dense, step)
    got = losses(child)
    assert min(got) == step + 1
    assert max(got) == dense.total_steps == child.total_steps
    assert got == {s: v for s, v in parent.items() if s > step}  # every loss, bit for bit
    assert child.snapshot().epochs[-1] == dataclasses.replace(dense.snapshot().epochs[-1],
                                                              seconds=child.snapshot().epochs[-1].seconds,
                                                              samples_per_s=child.snapshot().epochs[-1].samples_per_s)
    for k, v in dense.state_dict().items():
        assert torch.equal(v, child.state_dict()[k]), k


def test_autograd_and_a_schedule_fork_exactly_too(mnist, cnn):
    got = losses(fork(mnist, cnn, 9))
    assert got == {s: v for s, v in losses(cnn).items() if s > 9}


def test_forking_twice_with_the_same_change_gives_the_same_curves(mnist, dense):
    a = fork(mnist, dense, 13, Change("lr", 0.1))
    b = fork(mnist, dense, 13, Change("lr", 0.1))
    assert losses(a) == losses(b)
    pa, pb = a.probe_snapshot(), b.probe_snapshot()
    assert np.array_equal(pa.steps, pb.steps)
    assert np.array_equal(pa.values, pb.values, equal_nan=True)
    assert [e.test_acc for e in a.snapshot().epochs] == [e.test_acc for e in b.snapshot().epochs]


def test_a_changed_learning_rate_changes_the_curve_from_the_step_after_the_fork(mnist, dense):
    parent, child = losses(dense), losses(fork(mnist, dense, 13, Change("lr", 0.1)))
    assert child[14] == parent[14]  # step 14's loss is computed before its update
    assert all(child[s] != parent[s] for s in range(15, 20))


@pytest.mark.parametrize("change", [Change("optimizer", "sgd"), Change("dropout", 0.5), Change("schedule", "step")])
def test_each_change_forks_a_run_that_differs(mnist, dense, change):
    child = fork(mnist, dense, 10, change)
    parent, got = losses(dense), losses(child)
    assert min(got) == 11
    assert child.status == "done"
    assert any(got[s] != parent[s] for s in range(12, 41))


def test_a_batch_size_change_keeps_the_remaining_images_in_order(mnist, dense):
    """At step 13 of 20 (batch 50) 650 images of the epoch are done: the other 350 go in batches of 100
    (4 steps, the last of 50), then the second epoch's 10 steps: the same permutations as the parent's."""
    plan = plan_fork(dense, 13, Change("batch_size", 100))
    assert plan.start.consumed == 650
    assert plan.start.perm is not None
    child = run(mnist, plan.spec, plan.config, plan.start)
    assert child.total_steps == 13 + 4 + 10 == max(losses(child))
    # the same images as the parent's remaining ones: replay the parent's permutation and compare
    seen: list[torch.Tensor] = []
    original = torch.index_select

    def spy(images, dim, idx):
        if images.dtype == torch.uint8 and images.dim() == 3 and len(images) == 1000:  # batches of the 1,000
            seen.append(idx.clone())
        return original(images, dim, idx)

    torch.index_select = spy  # type: ignore[assignment]
    try:
        run(mnist, plan.spec, plan.config, plan.start)
    finally:
        torch.index_select = original  # type: ignore[assignment]
    assert [len(i) for i in seen[:4]] == [100, 100, 100, 50]
    assert torch.equal(torch.cat(seen[:4]), plan.start.perm[650:])
    gen = torch.Generator().manual_seed(CONFIG.seed)
    torch.randperm(1000, generator=gen)
    assert torch.equal(torch.cat(seen[4:14]), torch.randperm(1000, generator=gen))  # epoch 2 as the parent's


def test_the_live_learning_rate_changes_of_the_parent_are_replayed(mnist):
    spec = dense_spec([16], "tanh")
    session = TrainingSession(spec, CONFIG, mnist, "cpu", sync_every=5, callbacks=[SnapshotKeeper(every=100)])
    session.step(8)
    assert _wait(lambda: session.snapshot().progress.global_step == 8 and session.status == "paused")
    session.set_lr(0.05)
    session.resume()
    assert session.join(60)
    assert session.status == "done"
    assert session.snapshot().lr_changes == ((9, 0.05),)
    child = fork(mnist, session, 15)  # replayed from step 0, the change at step 9 on the way
    assert losses(child) == {s: v for s, v in losses(session).items() if s > 15}


def _wait(predicate, timeout: float = 30.0) -> bool:
    from helpers import wait_for

    return wait_for(predicate, timeout)


def test_snapshots_are_bounded_and_thinned(mnist):
    keeper = SnapshotKeeper(every=1, max_bytes=60_000)
    session = TrainingSession(dense_spec([16]), CONFIG.with_changes(epochs=1), mnist, "cpu", sync_every=1,
                              callbacks=[keeper])
    session.start()
    assert session.join(60)
    steps = keeper.steps()
    assert steps[0] == 0
    assert steps[-1] == 20
    assert sum(s.nbytes for s in keeper._snaps) <= 60_000 + keeper._snaps[-1].nbytes
    assert keeper.every > 1
    assert len(steps) < 21
    assert losses(fork(mnist, session, 11)) == {s: v for s, v in losses(session).items() if s > 11}


def test_bad_forks_get_clear_messages(mnist, dense):
    with pytest.raises(UserError) as err:
        plan_fork(dense, 999, Change())
    assert err.value.key == "fork.bad_step"
    for change, key in [(Change("lr", 50.0), "spec.lr_range"), (Change("batch_size", 0), "fork.bad_batch"),
                        (Change("dropout", 1.5), "fork.bad_dropout"), (Change("optimizer", "lbfgs"), "spec.unknown_optimizer"),
                        (Change("colour", 1), "fork.bad_change")]:
        with pytest.raises(UserError) as err:
            apply_change(dense.spec, dense.config, change)
        assert err.value.key == key
    plain = TrainingSession(dense.spec, CONFIG, mnist, "cpu")
    with pytest.raises(UserError) as err:
        plain.resume_state(0)
    assert err.value.key == "fork.no_snapshots"


def test_the_record_says_where_the_fork_came_from(mnist, dense):
    history = RunHistory()
    plan = plan_fork(dense, 13, Change("lr", 0.1))
    child = TrainingSession(plan.spec, plan.config, mnist, "cpu", start_from=plan.start,
                            callbacks=[RunRecorder(history), SnapshotKeeper()])
    child.start()
    assert child.join(60)
    record = history.get(child.run_id)
    assert record.fork == (dense.run_id, 13, "lr", "0.01", "0.1") == child.forked_from
    assert RunRecord.from_json(record.to_json()).fork == record.fork
    assert record_from_session(dense).fork is None
    # a fork of a fork starts from the fork's own snapshots
    grandchild = fork(mnist, child, 20)
    assert losses(grandchild) == {s: v for s, v in losses(child).items() if s > 20}


def test_the_overlay_curves_share_an_epochs_axis(mnist, dense):
    plan = plan_fork(dense, 13, Change("batch_size", 100))
    assert epochs_at(np.array([0, 13, 20, 40]), 1000, 50).tolist() == [0.0, 0.65, 1.0, 2.0]
    assert epochs_at(np.array([13, 14, 17, 18, 27]), 1000, 100, plan.start).tolist() == [0.65, 0.75, 1.0, 1.1, 2.0]
    child = run(mnist, plan.spec, plan.config, plan.start)
    a = curves(dense.snapshot(), dense.probe_snapshot(), 1000, 50, from_step=13)
    b = curves(child.snapshot(), child.probe_snapshot(), 1000, 100, plan.start, from_step=13)
    assert a.loss_x[0] > 0.65
    assert b.loss_x[0] > 0.65
    assert a.loss_x[-1] == b.loss_x[-1] == 2.0
    assert a.acc_x.tolist() == b.acc_x.tolist() == [1.0, 2.0]
    assert len(a.grad)
    assert len(b.grad)
    assert np.all(np.isfinite(b.grad))
