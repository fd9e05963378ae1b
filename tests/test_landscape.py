"""The loss landscape (dlplay/learn/landscape.py): filter-normalised directions, the grid's centre is the current
loss, projections, the time budget and cancel, and a run's path with its fork."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dlplay.classify.fork import Change, SnapshotKeeper, plan_fork
from dlplay.classify.train import TrainingSession
from dlplay.learn import landscape as L
from dlplay.nn.spec import TrainConfig, dense_spec
from helpers import stop_and_join

SPEC = dense_spec([32], "relu")
CONFIG = TrainConfig(batch_size=64, epochs=1, train_size=1280, seed=2, lr=3e-3, val_share=0.0)


@pytest.fixture(scope="module")
def run(mnist):
    session = TrainingSession(SPEC, CONFIG, mnist, "cpu", callbacks=[SnapshotKeeper(every=5)])
    session.start()
    assert session.join(120)
    assert session.status == "done"
    return session


def test_directions_are_filter_normalised(run):
    state = run.state_dict()
    d = L.filter_normalized(state, seed=3)
    for key, w in state.items():
        if w.dim() == 1:  # biases: 0 (Li et al.'s ignore-biasbn)
            assert torch.count_nonzero(d[key]) == 0
        else:  # each filter (a neuron's incoming weights) has the norm of the weights' filter
            torch.testing.assert_close(d[key].norm(dim=1), w.norm(dim=1), rtol=1e-5, atol=1e-6)
            assert not torch.allclose(d[key], w)
    other = L.filter_normalized(state, seed=4)
    assert not torch.equal(other["blocks.0.op.weight"], d["blocks.0.op.weight"])


def test_the_centre_of_the_grid_is_the_current_loss(run):
    x, y = L.subset(run, 300, seed=1)
    plane = L.random_plane(run.state_dict(), seed=0)
    res = L.compute(run.spec, plane, x, y, n=5, budget_s=60)
    assert res.complete
    assert res.loss.shape == (5, 5)
    assert np.isfinite(res.loss).all()
    current = L.loss_at(run.model_copy(), run.state_dict(), x, y)
    assert res.center_loss == pytest.approx(current, rel=1e-5)
    with torch.no_grad():  # and that is the network's own cross-entropy on those images
        own = float(torch.nn.functional.cross_entropy(run.model_copy()(x), y))
    assert current == pytest.approx(own, rel=1e-5)
    assert res.loss.max() > res.center_loss  # the trained weights sit lower than the grid's corners
    # a point of the grid is the loss at θ + α d₁ + β d₂
    j, i = 0, 4
    far = L.loss_at(run.model_copy(), plane.point(res.alphas[i], res.betas[j]), x, y)
    assert res.loss[j, i] == pytest.approx(far, rel=1e-5)
    whole = L.compute(run.spec, plane, x, y, n=5, budget_s=60, shortcut=False)  # every point through the network
    np.testing.assert_allclose(whole.loss, res.loss, rtol=1e-5)


def test_cancel_and_the_time_budget_stop_the_grid(run):
    x, y = L.subset(run, 100)
    plane = L.random_plane(run.state_dict())
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 7

    seen = []
    res = L.compute(run.spec, plane, x, y, n=5, cancel=cancel, progress=seen.append)
    assert res.cancelled
    assert not res.complete
    assert res.done == 7
    assert np.isfinite(res.loss).sum() == 7
    assert np.isnan(res.loss).sum() == 25 - 7
    assert seen
    assert seen[-1] == pytest.approx(7 / 25)
    late = L.compute(run.spec, plane, x, y, n=5, budget_s=0.0)
    assert late.out_of_time
    assert late.done == 0


def test_projection_recovers_a_point_of_the_plane(run):
    plane = L.random_plane(run.state_dict(), seed=1)
    alpha, beta = L.project(plane, plane.point(0.3, -0.2))
    assert (alpha, beta) == (pytest.approx(0.3, abs=1e-5), pytest.approx(-0.2, abs=1e-5))


def test_a_run_and_its_fork_on_the_plane_of_the_path(mnist, run):
    plan = plan_fork(run, 10, Change("lr", 0.03))
    fork = TrainingSession(plan.spec, plan.config, mnist, "cpu", callbacks=[SnapshotKeeper(every=5)], start_from=plan.start)
    fork.start()
    try:
        assert fork.join(120)
        assert fork.status == "done"
        job = L.LandscapeJob([("fork", fork), ("parent", run)], kind="pca", n=7, n_images=200)
        job.start()
        assert job.join(120)
        assert job.error is None
        assert job.result is not None
        assert job.result.complete
        mine, parent = job.paths
        assert mine.fork_step == 10
        assert mine.steps[0] == 10
        assert parent.steps[0] == 0
        assert mine.steps[-1] == parent.steps[-1] == run.total_steps
        # the fork's last point is the centre (its current weights); both paths start at the same weights
        np.testing.assert_allclose(mine.coords[-1], [0.0, 0.0], atol=1e-4)
        at_fork = L.project(job.result.plane, run.resume_state(10).model_state)
        np.testing.assert_allclose(at_fork, mine.coords[0], atol=1e-4)
        assert job.result.center_loss == pytest.approx(L.loss_at(fork.model_copy(), fork.state_dict(),
                                                                 *L.subset(fork, 200)), rel=1e-5)
        # a cancelled job stops early
        slow = L.LandscapeJob([("fork", fork)], n=41, n_images=2000)
        slow.start()
        slow.cancel()
        assert slow.join(60)
        assert slow.cancelled
        assert slow.result is None or not slow.result.complete
    finally:
        stop_and_join(fork)
