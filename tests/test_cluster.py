"""The Ray backend beyond the shared contract (tests/test_handle_contract.py): the cluster-wide slot
ledger, the settings, the backend switch, and a worker killed mid-run (real local Ray)."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from dlplay.classify.runs import RunHistory, RunRecorder
from dlplay.cluster import ENV_RAY_ADDRESS, backend_from_env, ray_address
from dlplay.cluster.ledger import SlotLedger
from dlplay.cluster.settings import BROKER_NAME, NAMESPACE, ClusterSettings
from dlplay.nn.spec import TrainConfig, dense_spec
from dlplay.run.status import FINISHED
from dlplay.server.guardrails import Limits
from helpers import wait_for


# ------------------------------------------------------------------ the ledger (no Ray)
def test_the_ledger_grants_in_arrival_order_up_to_the_limit():
    ledger = SlotLedger(2)
    assert ledger.poll("a", "w1") == 0
    assert ledger.poll("b", "w2") == 0
    assert ledger.poll("c", "w1") == 1
    assert ledger.poll("d", "w2") == 2
    assert ledger.poll("d", "w2") == 2  # asking again keeps the place
    ledger.leave("a")
    assert ledger.poll("d", "w2") == 2  # not its turn: c is first
    assert ledger.poll("c", "w1") == 0
    assert ledger.poll("d", "w2") == 1
    state = ledger.state()
    assert state.running == ("b", "c")
    assert state.queued == ("d",)
    assert state.limit == 2
    ledger.set_limit(3)
    assert ledger.poll("d", "w2") == 0
    with pytest.raises(ValueError, match="limit must be at least 1"):
        ledger.set_limit(0)


def test_a_lost_worker_frees_its_slots_by_lease_or_at_once():
    ledger = SlotLedger(1, lease_s=0.2)
    assert ledger.poll("a", "w1") == 0
    assert ledger.poll("b", "w2") == 1
    time.sleep(0.25)
    ledger.renew("w2", [])  # w2 is alive; w1 never renewed
    assert ledger.poll("b", "w2") == 0
    assert ledger.state().running == ("b",)
    assert ledger.drop_worker("w2") == 1
    assert ledger.state().running == ()


def test_a_new_ledger_learns_the_holders_from_the_renewals():
    ledger = SlotLedger(1)  # e.g. the broker was restarted, empty
    ledger.renew("w1", ["a"])
    assert ledger.state().running == ("a",)
    assert ledger.poll("b", "w2") == 1


def test_a_paused_holder_yields_only_to_a_waiting_run_after_the_grace():
    ledger = SlotLedger(1)
    assert ledger.poll("a", "w1") == 0
    assert not ledger.yield_if_waited_for("a", 100.0, 10.0)  # nobody waits
    assert ledger.poll("b", "w1") == 1
    assert not ledger.yield_if_waited_for("a", 5.0, 10.0)
    assert ledger.yield_if_waited_for("a", 10.0, 10.0)
    assert ledger.poll("b", "w1") == 0


# ------------------------------------------------------------------ settings and the switch
def test_settings_from_the_environment():
    s = ClusterSettings.from_env({"DLPLAY_RAY_WORKERS": "3", "DLPLAY_RAY_WORKER_CPUS": "4"})
    assert (s.workers, s.runs_each, s.run_limit, s.threads_per_run) == (3, 4, 12, 1)
    gpu = ClusterSettings.from_env({"DLPLAY_RAY_WORKER_GPUS": "0.25", "DLPLAY_MAX_RUNS": "6"})
    assert (gpu.worker_gpus, gpu.runs_each, gpu.run_limit, gpu.threads_per_run) == (0.25, 4, 6, 1)
    assert ClusterSettings.from_env({}).worker_name(1) == "dlplay-worker-1"
    for bad in ({"DLPLAY_RAY_WORKERS": "0"}, {"DLPLAY_RAY_WORKER_GPUS": "half"}):
        with pytest.raises(ValueError, match="must be a number"):
            ClusterSettings.from_env(bad)


def test_without_the_variable_runs_stay_in_process(monkeypatch):
    monkeypatch.delenv(ENV_RAY_ADDRESS, raising=False)
    assert ray_address() is None
    assert backend_from_env() is None
    monkeypatch.setenv(ENV_RAY_ADDRESS, "  ")
    assert backend_from_env() is None


# ------------------------------------------------------------------ a worker dies mid-run
def test_a_killed_worker_fails_its_runs_and_the_next_run_trains(ray_backend):
    import ray

    baseline_threads = {t.ident for t in threading.enumerate()}
    history = RunHistory()
    slow = TrainConfig(epochs=50, train_size=2000)
    victim = ray_backend.create_run(dense_spec([16]), slow, limits=Limits(), heartbeat_timeout=30, probe_every=10,
                                    callbacks=[RunRecorder(history)])
    victim.set_pace(50.0)
    victim.start()
    assert wait_for(lambda: victim.snapshot().progress.global_step >= 5)
    # the other worker's run must not notice
    bystander = ray_backend.create_run(dense_spec([16]), slow, limits=Limits(), heartbeat_timeout=30, probe_every=None)
    bystander.set_pace(50.0)
    bystander.start()
    assert bystander.worker_name != victim.worker_name
    assert bystander.worker_pid != victim.worker_pid
    assert victim.worker_pid != os.getpid()
    assert wait_for(lambda: bystander.snapshot().progress.global_step >= 5)

    os.kill(victim.worker_pid, signal.SIGKILL)
    assert wait_for(lambda: victim.status == "failed", 30)
    p = victim.snapshot().progress
    assert p.message == "cluster.worker_lost"
    assert dict(p.message_params)["worker"] == victim.worker_name
    assert not victim.is_alive
    assert victim.lost
    assert [r.status for r in history.records()] == ["failed"]  # recorded like any run that ended
    victim.stop()  # commands to a lost run are no-ops, not errors
    victim.heartbeat()
    before = bystander.snapshot().progress.global_step
    assert wait_for(lambda: bystander.snapshot().progress.global_step > before + 5)
    assert bystander.status == "running"

    # the pool re-creates the lost worker; the next run trains to the end
    fresh = ray_backend.create_run(dense_spec([16]), TrainConfig(epochs=1, train_size=1000), limits=Limits(),
                                   heartbeat_timeout=30, probe_every=None)
    fresh.start()
    assert wait_for(lambda: fresh.status in FINISHED and not fresh.is_alive, 60)
    assert fresh.status == "done"
    bystander.stop()
    assert wait_for(lambda: not bystander.is_alive, 15)
    rows = ray_backend.workers()
    assert all(row.info is not None for row in rows)
    assert victim.worker_pid not in {row.info.pid for row in rows}
    assert all(row.info.train_threads == 0 and row.info.runs_active == 0 for row in rows)
    named = {a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["namespace"] == NAMESPACE}
    assert named == {BROKER_NAME, "dlplay-worker-0", "dlplay-worker-1"}  # none left behind, none twice
    assert ray_backend.slots.state().running == ()
    # the handles start no threads in the app process
    assert not [t for t in threading.enumerate() if t.ident not in baseline_threads and t.name.startswith("dlplay")]


def test_a_checkpoint_becomes_a_finished_run_in_a_worker_and_guardrails_refuse_there(ray_backend, trained_tutorial):
    """An uploaded checkpoint (read here with weights_only=True) goes to the worker as tensors; the
    worker's guardrails refuse a run with the page's message key."""
    import torch

    from dlplay.classify.checkpoint import load_checkpoint, save_checkpoint
    from dlplay.errors import UserError

    ckpt = load_checkpoint(save_checkpoint(trained_tutorial.model, trained_tutorial.spec, trained_tutorial.config))
    run = ray_backend.create_run(ckpt.spec, ckpt.config, limits=Limits(), heartbeat_timeout=30, probe_every=None,
                                 checkpoint=ckpt)
    assert run.status == "done"
    assert run.snapshot().progress.message == "eval.ckpt_msg_loaded"
    assert all(torch.equal(v, ckpt.state_dict[k]) for k, v in run.state_dict().items())
    assert run.evaluate()[1] == pytest.approx(trained_tutorial.evaluate()[1], abs=1e-4)
    with pytest.raises(UserError) as refused:
        ray_backend.create_run(dense_spec([16]), TrainConfig(epochs=5), limits=Limits(max_epochs=2),
                               heartbeat_timeout=30, probe_every=None)
    assert refused.value.key == "admin.limit_epochs"


def test_a_fork_of_a_run_in_a_worker_continues_it_exactly(ray_backend):
    """Fork on the Ray backend: the worker replays the parent's state; a fork with no change repeats the
    parent's losses after the fork point, bit for bit, and the fork says where it came from."""
    from dlplay.classify.fork import Change, plan_fork

    config = TrainConfig(epochs=1, train_size=640, batch_size=32, val_share=0.0)
    parent = ray_backend.create_run(dense_spec([16]), config, limits=Limits(), heartbeat_timeout=30, probe_every=None)
    parent.start()
    assert wait_for(lambda: parent.status in FINISHED and not parent.is_alive, 60)
    assert parent.status == "done"
    plan = plan_fork(parent, 7, Change())
    fork = ray_backend.create_run(plan.spec, plan.config, limits=Limits(), heartbeat_timeout=30, probe_every=None,
                                  start_from=plan.start)
    assert fork.forked_from is not None
    assert fork.forked_from[:2] == (parent.run_id, 7)
    fork.start()
    assert wait_for(lambda: fork.status in FINISHED and not fork.is_alive, 60)
    assert fork.status == "done"
    mine, theirs = fork.snapshot(), parent.snapshot()
    after = [(s, v) for s, v in zip(theirs.steps.tolist(), theirs.losses.tolist()) if s > 7]
    assert len(after) == 20 - 7
    assert after == [(s, v) for s, v in zip(mine.steps.tolist(), mine.losses.tolist()) if s > 7]
