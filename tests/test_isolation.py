"""Many learners, one server: separate sessions, the shared queue, heartbeat cleanup, a registry that forgets."""
import gc
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from dlplay.classify.train import TrainingSession
from dlplay.nn.spec import TrainConfig, dense_spec
from dlplay.server.admin import keep_connected_runs_alive
from dlplay.server.registry import SessionRegistry, training_threads
from dlplay.ui import server
from helpers import wait_for

APP = str(Path(__file__).resolve().parents[1] / "app.py")



def open_train():
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["lang"] = "en"
    at.run()
    at.switch_page("views/train.py")
    at.run()
    assert not at.exception, at.exception
    return at


def click(at, key):
    next(b for b in at.button if b.key == key).click()
    at.run()
    assert not at.exception, at.exception


def metrics(at):
    return {m.label: m.value for m in at.metric}


class Limit:
    """Set the server pool's limit for a test and put it back afterwards."""

    def __init__(self, limit):
        self.limit = limit

    def __enter__(self):
        self.pool = server.slot_pool()
        self.saved = self.pool.limit
        self.pool.set_limit(self.limit)
        return self.pool

    def __exit__(self, *exc):
        self.pool.set_limit(self.saved)


def test_two_sessions_train_different_models_at_once_without_sharing_anything():
    before = set(training_threads())
    with Limit(2):
        a, b = open_train(), open_train()
        a.sidebar.number_input(key="tw_layers").set_value(1)
        a.sidebar.select_slider(key="tw_units").set_value(32)
        a.sidebar.number_input(key="tw_epochs").set_value(50)
        a.run()
        b.sidebar.number_input(key="tw_layers").set_value(2)
        b.sidebar.select_slider(key="tw_units").set_value(64)
        b.sidebar.select_slider(key="tw_lr").set_value(0.01)
        b.sidebar.number_input(key="tw_epochs").set_value(50)
        b.run()
        click(a, "train_start")
        click(b, "train_start")
        sa, sb = a.session_state["train_session"], b.session_state["train_session"]
        assert sa is not sb
        assert sa.metrics is not sb.metrics
        assert sa.model is not sb.model
        assert [layer.units for layer in sa.spec.layers] == [32]
        assert [layer.units for layer in sb.spec.layers] == [64, 64]
        assert (sa.config.lr, sb.config.lr) == (1e-3, 0.01)
        assert a.session_state["spec"] == sa.spec
        assert b.session_state["spec"] == sb.spec
        assert wait_for(lambda: sa.status == "running" and sb.status == "running")
        assert wait_for(lambda: sa.snapshot().progress.global_step > 0 and sb.snapshot().progress.global_step > 0)

        registry = server.registry()
        ra, rb = a.session_state["_dlplay_browser"], b.session_state["_dlplay_browser"]
        assert ra.id != rb.id
        assert {ra.id, rb.id} <= {r.id for r in registry.browsers()}
        owners = {e.run_id: e.browser_id for e in registry.runs()}
        assert owners[registry.run_id(sa)] == ra.id
        assert owners[registry.run_id(sb)] == rb.id

        click(a, "train_stop")
        assert sa.join(10)
        assert sa.status == "stopped"
        step = sb.snapshot().progress.global_step
        assert wait_for(lambda: sb.snapshot().progress.global_step > step), "the other session keeps training"
        assert sb.status == "running"
        a.run()
        b.run()
        assert metrics(a)["Status"] == "stopped"
        assert metrics(b)["Status"] == "training"
        # drawing-related state is per session too
        a.session_state["canvas_probe"] = "mine"
        b.run()
        assert "canvas_probe" not in b.session_state
        click(b, "train_stop")
        assert sb.join(10)
        assert sb.status == "stopped"
    assert set(training_threads()) - before == set()


def test_over_the_limit_a_session_waits_in_the_queue_and_stop_leaves_it():
    with Limit(1) as pool:
        a, b = open_train(), open_train()
        for at in (a, b):
            at.sidebar.number_input(key="tw_epochs").set_value(50)
            at.run()
        click(a, "train_start")
        sa = a.session_state["train_session"]
        assert wait_for(lambda: sa.status == "running")
        click(b, "train_start")
        sb = b.session_state["train_session"]
        assert wait_for(lambda: sb.snapshot().progress.queue_position == 1)
        b.run()
        assert metrics(b)["Status"] == "queued"  # short enough for its column; the box below says why it waits
        assert any("number 1 in the queue" in i.value for i in b.info), [i.value for i in b.info]
        assert pool.state().queued == (sb,)
        assert pool.state().running == (sa,)
        click(b, "train_stop")
        assert sb.join(10)
        assert sb.status == "stopped"
        assert sb.started_at is None
        assert pool.state().queued == ()
        assert sa.status == "running"
        click(a, "train_stop")
        assert sa.join(10)
        assert wait_for(lambda: pool.state().running == ())


def test_a_closed_tab_stops_its_run_by_heartbeat_and_frees_the_slot(monkeypatch):
    monkeypatch.setenv("DLPLAY_HEARTBEAT_S", "3")  # longer than one script run of the page
    with Limit(1) as pool:
        at = open_train()
        at.sidebar.number_input(key="tw_epochs").set_value(50)
        at.run()
        click(at, "train_start")
        session = at.session_state["train_session"]
        assert session.heartbeat_timeout == 3.0

        def tab_open():  # what the page's polling does while the tab is open
            session.heartbeat()
            return session.status == "running" and session.snapshot().progress.global_step > 0

        assert wait_for(tab_open)
        # the tab is gone: nothing calls the page any more
        assert session.join(30), "the run must stop by itself"
        assert session.status == "stopped"
        assert session.snapshot().progress.message == "train.msg_abandoned"
        assert session not in pool.state().running
        at.run()
        assert "Training stopped because the browser tab was closed." in [i.value for i in at.info]


def test_registry_forgets_sessions_whose_state_is_gone():
    registry = server.registry()
    at = open_train()
    record_id = at.session_state["_dlplay_browser"].id
    assert record_id in {r.id for r in registry.browsers()}
    del at
    gc.collect()
    assert record_id not in {r.id for r in registry.browsers()}


def test_registry_holds_runs_only_while_something_else_does(mnist):
    registry = SessionRegistry()
    browser = registry.open_browser("client-1")
    run = TrainingSession(dense_spec([8]), TrainConfig(epochs=50), mnist, "cpu")
    run_id = registry.add_run(browser, run)
    other = TrainingSession(dense_spec([8]), TrainConfig(epochs=1), mnist, "cpu")
    registry.add_run(browser, other)
    assert [e.run_id for e in registry.runs()] == [run_id, "r2"]
    run.start()
    assert wait_for(lambda: run.status == "running")  # noqa: F821 (runs before the `del run` below)
    assert [e.run_id for e in registry.runs(active_only=True)] == [run_id]
    del run  # the training thread still holds it: still listed, still stoppable
    gc.collect()
    assert registry.find(run_id) is not None
    assert registry.stop_all() == 1
    live = registry.find(run_id)
    assert live.join(10)
    assert live.status == "stopped"
    del live, other
    gc.collect()
    assert registry.runs() == []
    assert [b.id for b in registry.browsers()] == [browser.id]
    assert registry.forgotten == 0
    del browser
    gc.collect()
    assert registry.browsers() == []
    assert registry.forgotten == 1
    assert not registry.stop_run(run_id)


def test_runs_of_connected_tabs_are_kept_alive_by_the_server(mnist, monkeypatch):
    registry = SessionRegistry()
    open_tab, closed_tab = registry.open_browser("open"), registry.open_browser("closed")
    kept = TrainingSession(dense_spec([8]), TrainConfig(epochs=50), mnist, "cpu", heartbeat_timeout=1.0)
    dropped = TrainingSession(dense_spec([8]), TrainConfig(epochs=50), mnist, "cpu", heartbeat_timeout=1.0)
    registry.add_run(open_tab, kept)
    registry.add_run(closed_tab, dropped)
    connected = lambda record: record.client_id == "open"  # noqa: E731
    for run in (kept, dropped):
        run.start()
    end = time.monotonic() + 3.0  # three heartbeat timeouts with no page polling at all
    while time.monotonic() < end:
        keep_connected_runs_alive(registry, connected)
        time.sleep(0.1)
    assert dropped.join(10)
    assert dropped.status == "stopped"
    assert dropped.snapshot().progress.message == "train.msg_abandoned"
    assert kept.status == "running"
    assert keep_connected_runs_alive(registry, connected) == 1
    kept.stop()
    assert kept.join(10)
