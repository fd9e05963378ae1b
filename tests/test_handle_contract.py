"""The run-handle contract, run against both backends: the in-process thread (TrainingSession) and
the Ray backend (RayRunHandle, the run in a worker actor of a real local Ray instance).

Every test takes ``backend`` and makes its runs through it, so the same assertions hold for both;
what differs (a thread here, a process there) stays inside the Backend helpers below.
"""
from __future__ import annotations

import time
from typing import Any

import pytest
import torch

from dlplay.classify.handle import RunHandle
from dlplay.classify.train import TrainingSession
from dlplay.errors import UserError
from dlplay.nn.model import Net
from dlplay.nn.spec import TrainConfig, dense_spec
from dlplay.run.control import protocol_members
from dlplay.run.status import FINISHED, Status
from dlplay.server.guardrails import Limits
from dlplay.server.slots import SlotPool
from helpers import wait_for
from test_handle import MEMBERS

SMALL = TrainConfig(epochs=1, batch_size=100, train_size=1000, seed=0)
LONG = TrainConfig(epochs=50, batch_size=100, train_size=2000, seed=0)


class ThreadBackend:
    name = "thread"

    def __init__(self, mnist: Any):
        self.mnist = mnist
        self.pool: SlotPool | None = None
        self.runs: list[TrainingSession] = []

    def make(self, spec, config, *, probe_every: int | None = None, heartbeat_timeout: float | None = None) -> RunHandle:
        from dlplay.classify.probe import Probe

        callbacks = [] if probe_every is None else [Probe(every=probe_every)]
        run = TrainingSession(spec, config, self.mnist, "cpu", callbacks=callbacks, slot_pool=self.pool,
                              heartbeat_timeout=heartbeat_timeout)
        self.runs.append(run)
        return run

    def set_limit(self, limit: int | None) -> None:
        self.pool = None if limit is None else SlotPool(limit)

    def close(self) -> None:
        for run in self.runs:
            run.stop()
            run.join(10)


class RayBackendForTests:
    name = "ray"

    def __init__(self, backend: Any):
        self.backend = backend
        self.runs: list[Any] = []
        self.limit = backend.slots.limit

    def make(self, spec, config, *, probe_every: int | None = None, heartbeat_timeout: float | None = None) -> RunHandle:
        run = self.backend.create_run(spec, config, limits=Limits(), heartbeat_timeout=heartbeat_timeout,
                                      probe_every=probe_every)
        self.runs.append(run)
        return run

    def set_limit(self, limit: int | None) -> None:
        self.backend.slots.set_limit(limit or self.limit)

    def close(self) -> None:
        for run in self.runs:
            run.stop()
        for run in self.runs:
            wait_for(lambda run=run: not run.is_alive, 15)
        self.backend.slots.set_limit(self.limit)


def _backend(kind: str, request) -> Any:
    if kind == "thread":
        return ThreadBackend(request.getfixturevalue("mnist"))
    return RayBackendForTests(request.getfixturevalue("ray_backend"))


@pytest.fixture(params=["thread", "ray"])
def backend(request):
    b = _backend(request.param, request)
    yield b
    b.close()


@pytest.fixture(scope="module", params=["thread", "ray"])
def trained(request) -> RunHandle:
    """One small run trained to the end on each backend (with a probe every 5 steps)."""
    b = _backend(request.param, request)
    run = b.make(dense_spec([16]), SMALL, probe_every=5)
    run.start()
    assert finished(run, 120), run.snapshot().progress
    assert run.status == "done", run.snapshot().progress
    return run


def finished(run: RunHandle, timeout: float = 60) -> bool:
    return wait_for(lambda: run.status in FINISHED and not run.is_alive, timeout)


def reference_losses(mnist) -> list[float]:
    run = TrainingSession(dense_spec([16]), SMALL, mnist, "cpu")
    run.start()
    assert run.join(60)
    return run.snapshot().losses.tolist()


# ------------------------------------------------------------------ the interface itself
def test_a_run_is_a_run_handle_with_every_member(trained):
    assert isinstance(trained, RunHandle)
    assert sorted(name for name in MEMBERS if not hasattr(trained, name)) == []
    methods = {name for name, kind in protocol_members(RunHandle).items() if kind == "method"}
    assert all(callable(getattr(trained, name)) for name in methods)


def test_reads_are_plain_values(trained, mnist):
    assert len(trained.run_id) == 12
    assert int(trained.run_id, 16) >= 0
    assert isinstance(trained.status, Status)
    assert trained.status is Status.DONE
    assert trained.status == "done"
    assert trained.device_name == "cpu"
    assert not trained.is_alive
    assert trained.dataset_info == mnist.info
    assert trained.config == SMALL
    assert trained.spec == dense_spec([16])
    assert trained.total_steps == 10 == trained.steps_per_epoch
    assert trained.created_at <= trained.started_at <= trained.finished_at <= time.time()
    images, labels = trained.test_split()
    assert images.dtype == torch.uint8
    assert images.device.type == "cpu"
    assert torch.equal(labels, mnist.test_labels)
    test = trained.split_data("test")
    assert torch.equal(test[0], images)
    assert torch.equal(test[1], labels)
    assert torch.equal(test[2], torch.arange(len(labels)))
    train_images, train_labels, train_idx = trained.split_data("train")
    assert train_images.dtype == torch.uint8
    assert len(train_images) == len(train_labels) == len(train_idx) > 0
    assert torch.equal(train_labels, mnist.train_labels[train_idx])
    snap = trained.snapshot()
    assert snap.progress.global_step == 10
    assert len(snap.losses) == 10
    assert len(snap.epochs) == 1
    assert trained.evaluate("test")[1] == snap.epochs[-1].test_acc


def test_the_same_seed_trains_the_same_losses_on_either_backend(trained, mnist):
    assert trained.snapshot().losses.tolist() == reference_losses(mnist)


def test_state_dict_is_a_cpu_copy_and_model_copy_is_built_from_it(trained, mnist):
    state = trained.state_dict()
    assert set(state) == set(Net(trained.spec).state_dict())
    assert all(v.device.type == "cpu" for v in state.values())
    key = next(iter(state))
    before = state[key].clone()
    state[key].add_(1.0)  # changing the copy leaves the run alone
    assert torch.equal(trained.state_dict()[key], before)
    rng = torch.get_rng_state()
    model = trained.model_copy()
    assert torch.equal(torch.get_rng_state(), rng)  # the training thread draws its dropout masks from it
    assert not model.training
    assert model.spec == trained.spec
    # the copy here scores what the run's own evaluation scored
    images, labels = trained.test_split()
    info = trained.dataset_info
    with torch.no_grad():
        x = (images.float() / 255.0 - info.mean) / info.std
        acc = (model(x).argmax(1) == labels).float().mean().item()
    assert acc == pytest.approx(trained.evaluate("test")[1], abs=2e-3)


def test_probe_reads_and_the_interval(trained):
    snap = trained.probe_snapshot()
    assert snap is not None
    assert snap.probes > 0
    assert snap.steps.tolist() == trained.snapshot().extras["probe"].steps.tolist()
    assert trained.probe_every() == 5
    trained.set_probe_every(20)
    assert trained.probe_every() == 20
    trained.set_probe_every(5)


def test_a_run_without_a_probe(backend):
    bare = backend.make(dense_spec([8]), TrainConfig(epochs=1))
    assert bare.probe_snapshot() is None
    assert bare.probe_every() is None
    bare.set_probe_every(10)  # a run without a probe ignores it
    assert bare.probe_every() is None


# ------------------------------------------------------------------ commands
def test_pace_and_heartbeat(backend):
    run = backend.make(dense_spec([8]), TrainConfig(epochs=1))
    assert run.pace is None
    assert run.status == "ready"
    run.set_pace(5.0)
    assert run.pace == 5.0
    run.set_pace(None)
    assert run.pace is None
    with pytest.raises(UserError):
        run.set_pace(0)
    time.sleep(0.05)
    assert run.seconds_since_heartbeat() >= 0.05
    run.heartbeat()
    assert run.seconds_since_heartbeat() < 0.05


def test_step_pause_resume_stop(backend):
    s = backend.make(dense_spec([16]), LONG)
    s.step(1)
    assert wait_for(lambda: s.snapshot().progress.global_step == 1 and s.status == "paused")
    s.step(3)
    assert wait_for(lambda: s.snapshot().progress.global_step == 4)
    time.sleep(0.3)
    assert s.snapshot().progress.global_step == 4
    assert len(s.snapshot().losses) == 4  # stays paused
    s.resume()
    assert wait_for(lambda: s.snapshot().progress.global_step > 50)
    s.pause()
    assert wait_for(lambda: s.status == "paused")
    frozen = s.snapshot().progress.global_step
    time.sleep(0.4)
    assert s.snapshot().progress.global_step == frozen
    s.stop()
    assert finished(s, 15)
    assert s.status == "stopped"
    assert s.finished_at is not None


def test_learning_rate_changes_mid_run(backend):
    s = backend.make(dense_spec([16]), TrainConfig(epochs=50, lr=1e-3, train_size=2000))
    s.start()
    assert wait_for(lambda: s.snapshot().progress.global_step > 20)
    s.set_lr(0.05)
    assert wait_for(lambda: bool(s.snapshot().lr_changes))
    step, lr = s.snapshot().lr_changes[0]
    assert lr == 0.05
    assert step > 20
    assert wait_for(lambda: s.snapshot().progress.lr == 0.05)
    for bad in (-1, float("nan")):
        with pytest.raises(UserError):
            s.set_lr(bad)
    s.stop()
    assert finished(s, 15)


def test_heartbeat_timeout_stops_an_abandoned_run(backend):
    s = backend.make(dense_spec([8]), TrainConfig(epochs=100), heartbeat_timeout=0.5)
    s.start()
    assert finished(s, 20)
    p = s.snapshot().progress
    assert p.status == "stopped"
    assert p.message == "train.msg_abandoned"


def test_the_run_limit_queues_the_next_run(backend):
    backend.set_limit(1)
    first = backend.make(dense_spec([8]), LONG)
    second = backend.make(dense_spec([8]), LONG)
    first.start()
    assert wait_for(lambda: first.status == "running")
    second.start()
    assert wait_for(lambda: second.status == "queued" and second.snapshot().progress.queue_position == 1)
    time.sleep(0.5)
    assert second.snapshot().progress.global_step == 0
    first.stop()
    assert wait_for(lambda: second.snapshot().progress.global_step > 0, 20)  # the freed slot went to it
    assert second.snapshot().progress.queue_position is None
    second.stop()
    assert finished(first)
    assert finished(second)
