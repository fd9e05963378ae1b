"""Fork a run and pinned digits in AppTest: the Train page forks a finished run and overlays the two;
a drawing pinned on the Draw page, or a test image pinned on the Train page, gets its probability chart."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from dlplay.nn.spec import TrainConfig, dense_spec
from helpers import click, stop_and_join, wait_for
from test_page_draw import canvas_rgba, draw

APP = str(Path(__file__).resolve().parents[1] / "app.py")
SMALL = TrainConfig(epochs=2, batch_size=128, train_size=1280, seed=0)  # 10 steps per epoch


def open_page(page: str, lang: str = "en", **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["lang"] = lang
    at.run()
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def train_to_end(at: AppTest):
    click(at, "train_start")
    session = at.session_state["train_session"]
    assert session.join(120), session.status
    assert session.status == "done", session.status
    time.sleep(0.1)
    at.run()
    assert not at.exception, at.exception
    return session


def test_fork_a_finished_run_on_the_train_page_and_see_the_overlay():
    at = open_page("views/train.py", spec=dense_spec([32]), config=SMALL)
    parent = train_to_end(at)
    at.slider(key="fork_step").set_value(7)
    at.selectbox(key="fork_kind").set_value("lr")
    at.run()
    at.select_slider(key="fork_value_lr").set_value(0.1)
    click(at, "fork_go")
    child = at.session_state["train_session"]
    assert child is not parent
    assert child.forked_from == (parent.run_id, 7, "lr", "0.001", "0.1")
    # issue 33: the sidebar keeps the learner's own settings (the next Start trains at 0.001, not the fork's 0.1)
    assert at.session_state["config"] == SMALL
    assert at.session_state["spec"] == dense_spec([32])
    assert child.config.lr == 0.1
    assert child.join(120)
    assert child.status == "done"
    time.sleep(0.1)
    at.run()
    assert not at.exception, at.exception
    text = " ".join(c.value for c in at.caption)
    assert f"Forked from run {parent.run_id} at step 7, changed: learning rate 0.001 → 0.1" in text
    assert at.sidebar.select_slider(key="tw_lr").value == 0.001
    notes = [c.value for c in at.sidebar.caption if "fork" in c.value]
    assert notes == ["The current run is a fork (learning rate: 0.1). The sidebar keeps your own settings for the next Start."]
    assert len(at.get("plotly_chart")) == 3 + 3  # the run's own three, and the overlay's loss, accuracy, gradient norm
    losses = child.snapshot()
    assert losses.steps[0] == 8
    assert losses.steps[-1] == 20
    # the Runs page says where the fork came from
    at.switch_page("views/runs.py")
    at.run()
    assert not at.exception, at.exception
    assert any("Forked from run" in c.value for c in at.caption)


def test_after_a_fork_the_sidebar_keeps_the_learners_preset_and_start_trains_with_it():
    """Issue 33: after a fork the sidebar silently took the fork's settings (preset "Custom", learning rate
    0.1), so the next Start trained at 0.1. The learner's preset stays, also after leaving the page."""
    at = open_page("views/train.py")
    at.sidebar.selectbox(key="tw_preset").set_value("deep_sigmoid").run()
    at.sidebar.selectbox(key="tw_preset").set_value("tutorial").run()  # the learner's pick
    click(at, "train_step")
    parent = at.session_state["train_session"]
    assert wait_for(lambda: parent.status == "paused", timeout=60)
    at.run()
    at.selectbox(key="fork_kind").set_value("lr").run()
    at.select_slider(key="fork_value_lr").set_value(0.1)
    click(at, "fork_go")
    child = at.session_state["train_session"]
    assert child is not parent
    assert child.config.lr == 0.1
    stop_and_join(child)
    at.run()
    for _ in range(2):  # on the page, then after leaving it and coming back
        assert at.sidebar.selectbox(key="tw_preset").value == "tutorial"
        assert at.sidebar.select_slider(key="tw_lr").value == 0.001
        assert any("learning rate: 0.1" in c.value for c in at.sidebar.caption)  # said, not silent
        at.switch_page("views/draw.py").run()
        at.switch_page("views/train.py").run()
        assert not at.exception, at.exception
    at.sidebar.selectbox(key="tw_preset").set_value("tutorial").run()
    assert at.sidebar.selectbox(key="tw_preset").value == "tutorial"
    click(at, "train_start")
    run = at.session_state["train_session"]
    try:
        assert run is not child
        assert run.config.lr == 0.001
        assert run.forked_from is None
    finally:
        stop_and_join(run)


def test_a_failed_fork_says_why_and_keeps_the_run(monkeypatch):
    import dlplay.ui.fork as fork_ui
    from dlplay.errors import UserError

    at = open_page("views/train.py", spec=dense_spec([16]), config=SMALL.with_changes(epochs=1))
    parent = train_to_end(at)

    def refuse(*args, **kwargs):
        raise UserError("fork.replay_failed", step=3)

    monkeypatch.setattr(fork_ui, "plan_fork", refuse)
    click(at, "fork_go")
    assert at.session_state["train_session"] is parent
    assert any("The state at step 3 could not be rebuilt" in e.value for e in at.error)
    monkeypatch.undo()
    at.selectbox(key="fork_kind").set_value("batch_size")
    at.run()
    at.select_slider(key="fork_value_batch_size").set_value(256)
    click(at, "fork_go")  # this one works: the message goes
    child = at.session_state["train_session"]
    assert child is not parent
    assert child.forked_from[2:] == ("batch_size", "128", "256")
    assert child.join(60)
    assert child.status == "done"
    at.run()
    assert not any("could not be rebuilt" in e.value for e in at.error)


def test_a_pinned_drawing_gets_its_probability_chart_while_training(mnist):
    digit = mnist.test_images[0].numpy()  # a 7
    at = open_page("views/draw.py", spec=dense_spec([32]), config=SMALL)
    draw(at, canvas_rgba(digit))
    at.selectbox(key="pins_draw_label").set_value(7)
    click(at, "pins_draw_add")
    images, labels = at.session_state["pins"]
    assert images.shape == (1, 28, 28)
    assert labels.tolist() == [7]
    assert "1 of at most" in " ".join(c.value for c in at.caption)
    at.switch_page("views/train.py")
    at.run()
    session = train_to_end(at)
    snap = session.pins_snapshot()
    assert len(snap) == 1
    assert snap.steps.tolist() == [1, 2, 4, 8, 16, 20]  # the probe every 100 steps: 1, the last; 2, 4, ...
    assert len(at.get("plotly_chart")) == 3 + 1  # the run's three, and the pinned digit's
    # a test image pinned on the Train page joins it (the history starts again with the next run)
    at.number_input(key="pins_test_index").set_value(1)
    at.run()
    click(at, "pins_test_add")
    images, labels = at.session_state["pins"]
    assert len(images) == 2
    assert labels[1] == int(mnist.test_labels[1])
    assert np.array_equal(images[1], mnist.test_images[1].numpy())
    click(at, "pins_remove_0")
    assert len(at.session_state["pins"][0]) == 1
    click(at, "pins_clear")
    assert at.session_state["pins"] is None
    stop_and_join(session)
