"""The Runs page in AppTest: a button's confirmation shows where the button is, not inside the
collapsed "Saved runs" box (issue 15 #4)."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dlplay.classify.runs import record_from_session
from dlplay.classify.train import TrainingSession
from dlplay.nn.spec import TrainConfig, dense_spec

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture(scope="module")
def record(mnist):
    session = TrainingSession(dense_spec([16]), TrainConfig(epochs=1, train_size=500, lr=0.003), mnist, "cpu")
    session.start()
    assert session.join(60)
    return record_from_session(session)


def open_runs(record, monkeypatch, tmp_path):
    from dlplay.classify.runs import RunHistory

    monkeypatch.setenv("DLPLAY_RUNS_DIR", str(tmp_path))
    history = RunHistory()
    history.add(record)
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["lang"] = "en"
    at.session_state["run_history"] = history
    at.run()
    at.switch_page("views/runs.py")
    at.run()
    assert not at.exception, at.exception
    return at


def in_box(at, text: str) -> bool:
    return any(text in s.value for s in at.expander[0].success)


def shown_outside_box(at, text: str) -> bool:
    return any(text in s.value for s in at.success) and not in_box(at, text)


def test_use_these_settings_confirms_next_to_the_button(record, monkeypatch, tmp_path):
    at = open_runs(record, monkeypatch, tmp_path)
    at.button(key="runs_use").click().run()
    assert at.session_state["config"].lr == 0.003
    assert shown_outside_box(at, "settings")


def test_save_to_disk_confirms_next_to_the_button(record, monkeypatch, tmp_path):
    at = open_runs(record, monkeypatch, tmp_path)
    at.button(key="runs_save").click().run()
    assert list(tmp_path.glob("*.json"))
    assert shown_outside_box(at, "Saved")


def test_save_all_in_the_box_confirms_outside_it(record, monkeypatch, tmp_path):
    """The box's title counts the saved runs, so saving redraws it closed: its message goes below it."""
    at = open_runs(record, monkeypatch, tmp_path)
    at.button(key="runs_save_all").click().run()
    assert list(tmp_path.glob("*.json"))
    assert shown_outside_box(at, "Saved")
