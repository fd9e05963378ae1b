"""SlotPool: the server-wide limit on concurrent runs and its first-come, first-served queue, with real runs."""
import threading
import time

import pytest
import torch

from dlplay.classify.train import TrainingSession
from dlplay.nn.spec import TrainConfig, dense_spec
from dlplay.server.registry import training_threads
from dlplay.server.slots import SlotPool, default_max_runs, max_runs_from_env, threads_per_run
from helpers import wait_for


def short_run(mnist, pool, units=16, **kwargs):
    """A run that finishes in well under a second once it has a slot."""
    return TrainingSession(dense_spec([units]), TrainConfig(epochs=1, train_size=500, batch_size=50), mnist, "cpu",
                           slot_pool=pool, **kwargs)


def long_run(mnist, pool, units=16, **kwargs):
    return TrainingSession(dense_spec([units]), TrainConfig(epochs=100), mnist, "cpu", slot_pool=pool, **kwargs)


def holding(mnist, pool):
    """A run that holds a slot, paused, until resumed or stopped."""
    first = short_run(mnist, pool)
    first.start(paused=True)
    assert wait_for(lambda: first.status == "paused")
    return first


def test_defaults_from_the_device_and_environment():
    assert default_max_runs("cpu", cores=2) == 1
    assert default_max_runs("cpu", cores=1) == 1
    assert default_max_runs("cpu", cores=8) == 7
    assert default_max_runs("cuda", cores=2) == 2
    assert default_max_runs("cuda", cores=64) == 8
    assert threads_per_run(1, "cpu", cores=2) == 1
    assert threads_per_run(1, "cpu", cores=8) == 7
    assert threads_per_run(3, "cpu", cores=8) == 2
    assert threads_per_run(7, "cpu", cores=8) == 1
    assert threads_per_run(4, "cuda", cores=8) == 1
    assert max_runs_from_env("cpu", {"DLPLAY_MAX_RUNS": "3"}) == 3
    assert max_runs_from_env("cpu", {}) == default_max_runs("cpu")
    for bad in ("0", "-1", "two"):
        with pytest.raises(ValueError, match="DLPLAY_MAX_RUNS"):
            max_runs_from_env("cpu", {"DLPLAY_MAX_RUNS": bad})


def test_limit_one_second_run_waits_in_place_one_and_starts_when_the_first_finishes(mnist):
    pool = SlotPool(1)
    first = holding(mnist, pool)
    second = short_run(mnist, pool, units=8)
    second.start()
    assert wait_for(lambda: second.snapshot().progress.queue_position == 1)
    assert second.status == "queued"
    assert pool.position(second) == 1
    state = pool.state()
    assert state.running == (first,)
    assert state.queued == (second,)
    assert second.snapshot().progress.global_step == 0
    first.resume()
    assert first.join(60)
    assert first.status == "done"
    assert second.join(60)
    assert second.status == "done"
    assert second.started_at >= first.finished_at
    assert second.snapshot().progress.queue_position is None
    assert pool.state().running == ()
    assert pool.state().queued == ()


def test_queue_is_first_come_first_served(mnist):
    pool = SlotPool(1)
    first = holding(mnist, pool)
    waiting = []
    for units in (8, 12, 20):
        run = short_run(mnist, pool, units=units)
        run.start()
        assert wait_for(lambda: run.snapshot().progress.queue_position == len(waiting) + 1)  # noqa: B023 (called at once)
        waiting.append(run)
    assert [r.snapshot().progress.queue_position for r in waiting] == [1, 2, 3]
    first.resume()
    for run in waiting:
        assert run.join(60)
        assert run.status == "done"
    starts = [r.started_at for r in waiting]
    assert starts == sorted(starts)
    assert waiting[1].started_at >= waiting[0].finished_at


def test_stop_while_queued_leaves_the_queue_and_the_others_move_up(mnist):
    pool = SlotPool(1)
    first = holding(mnist, pool)
    second, third = short_run(mnist, pool, units=8), short_run(mnist, pool, units=12)
    second.start()
    assert wait_for(lambda: second.snapshot().progress.queue_position == 1)
    third.start()
    assert wait_for(lambda: third.snapshot().progress.queue_position == 2)
    second.stop()
    assert second.join(10)
    assert second.status == "stopped"
    assert second.started_at is None
    assert second.snapshot().progress.global_step == 0
    assert wait_for(lambda: third.snapshot().progress.queue_position == 1)
    assert pool.state().queued == (third,)
    assert first.status == "paused"
    assert pool.state().running == (first,)
    first.stop()
    assert third.join(60)
    assert third.status == "done"


def test_tab_closed_while_queued_leaves_the_queue(mnist):
    pool = SlotPool(1)
    first = holding(mnist, pool)
    orphan = short_run(mnist, pool, heartbeat_timeout=0.3)
    orphan.start()
    assert orphan.join(20), "a queued run without heartbeat must give up waiting"
    assert orphan.status == "stopped"
    assert orphan.started_at is None
    assert pool.state().queued == ()
    first.stop()
    assert first.join(10)


def test_a_run_that_loses_its_heartbeat_frees_its_slot_for_the_next(mnist):
    pool = SlotPool(1)
    orphan = long_run(mnist, pool, heartbeat_timeout=1.0)
    nxt = short_run(mnist, pool, units=8)
    orphan.start()
    assert wait_for(lambda: orphan.heartbeat() or orphan.status == "running")  # its page polls until ...
    nxt.start()
    assert wait_for(lambda: orphan.heartbeat() or nxt.snapshot().progress.queue_position == 1)
    # ... the tab closes: no more heartbeats
    assert orphan.join(20)
    assert orphan.status == "stopped"
    assert orphan.snapshot().progress.message == "train.msg_abandoned"
    assert nxt.join(60)
    assert nxt.status == "done"


def test_raising_the_limit_starts_queued_runs(mnist):
    pool = SlotPool(1)
    first = holding(mnist, pool)
    second = long_run(mnist, pool, units=8)
    second.start()
    assert wait_for(lambda: second.status == "queued" and pool.position(second) == 1)
    pool.set_limit(2)
    assert wait_for(lambda: second.status == "running")
    assert set(pool.state().running) == {first, second}
    with pytest.raises(ValueError, match="limit must be at least 1"):
        pool.set_limit(0)
    for run in (first, second):
        run.stop()
        assert run.join(10)


def test_each_run_uses_the_pools_torch_thread_count(mnist):
    seen = []

    class Probe:
        def on_start(self, session):
            seen.append(torch.get_num_threads())

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        pool = SlotPool(1, threads_per_run=1)
        run = short_run(mnist, pool, callbacks=[Probe()])
        run.start()
        assert run.join(60)
        assert run.status == "done"
    finally:
        torch.set_num_threads(before)
    assert seen == [1]


def test_no_training_thread_is_left_after_runs_end(mnist):
    before = set(training_threads())  # threads of other test modules' runs are not this test's business
    pool = SlotPool(2)
    runs = [long_run(mnist, pool, units=u) for u in (8, 16, 24)]
    for run in runs:
        run.start()
    assert wait_for(lambda: sum(r.status == "running" for r in runs) == 2)
    assert wait_for(lambda: runs[2].status == "queued" and pool.position(runs[2]) == 1)
    assert len(set(training_threads()) - before) == 3
    for run in runs:
        run.stop()
    for run in runs:
        assert run.join(10)
    assert set(training_threads()) - before == set()
    assert not {t for t in threading.enumerate() if t.name == "dlplay-train"} - before
    assert pool.state().running == ()
    assert pool.state().queued == ()


def test_a_paused_run_yields_its_slot_to_a_waiting_run_and_queues_again_on_resume(mnist):
    """A closed tab's paused run held the only slot for the whole heartbeat period."""
    pool = SlotPool(1, paused_grace_s=0.5)
    first = holding(mnist, pool)
    time.sleep(0.8)  # paused past the grace, but nobody waits: it keeps its slot
    assert pool.state().running == (first,)
    second = long_run(mnist, pool, units=8)
    second.start()
    assert wait_for(lambda: second.status == "running", 20)  # within the grace, not after a heartbeat period
    assert first.status == "paused"
    assert pool.state().running == (second,)
    first.resume()  # back in the queue, behind nobody: it waits for the slot the other run holds
    assert wait_for(lambda: first.status == "queued" and first.snapshot().progress.queue_position == 1, 20)
    assert first.snapshot().progress.global_step == 0
    second.stop()
    assert second.join(20)
    assert first.join(60)
    assert first.status == "done"
    assert first.snapshot().progress.global_step == first.total_steps
    assert pool.state().running == ()
    assert pool.state().queued == ()


def test_a_short_pause_keeps_the_slot_while_others_wait(mnist):
    pool = SlotPool(1, paused_grace_s=30)
    first = holding(mnist, pool)
    second = short_run(mnist, pool, units=8)
    second.start()
    assert wait_for(lambda: second.snapshot().progress.queue_position == 1)
    time.sleep(1.0)
    assert pool.state().running == (first,)
    assert second.status == "queued"
    first.resume()
    assert first.join(60)
    assert first.status == "done"
    assert second.join(60)
    assert second.status == "done"
