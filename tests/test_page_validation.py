"""Validation and fixing the data in AppTest: the Train page's settings, curves and overfitting hint; the
Evaluate page's confusion cell, an edit, the retrained run and its settings on the Runs page."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dlplay.classify.evaluation import build_report, predict_session
from dlplay.classify.runs import RunHistory, RunRecorder
from dlplay.i18n import translate
from dlplay.nn.spec import TrainConfig, dense_spec
from helpers import stop_and_join, train_to_end, wait_for

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def open_page(page: str, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["lang"] = "en"
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture(scope="module")
def overfitted(mnist):
    """200 images, a wide network, a high learning rate: the validation loss turns up by epoch 3."""
    config = TrainConfig(epochs=4, train_size=200, batch_size=20, lr=1e-2, val_share=0.1, seed=0)
    return train_to_end(mnist, dense_spec([256, 256]), config, timeout=120)


def test_train_page_shows_three_curves_and_names_the_overfitting(overfitted):
    at = open_page("views/train.py", train_session=overfitted, config=overfitted.config, spec=overfitted.spec)
    assert at.select_slider(key="tw_val").value == 0.1
    names = [[trace.get("name") for trace in json.loads(c.proto.spec)["data"]] for c in at.get("plotly_chart")]
    assert ["training set", "validation set", "test set"] in names  # the per-epoch figures
    warnings = [w.value for w in at.warning]
    assert any("Overfitting since epoch" in w for w in warnings), warnings


def test_validation_settings_change_the_config():
    at = open_page("views/train.py")
    at.number_input(key="tw_patience").set_value(3).run()
    assert at.session_state["config"].patience == 3
    at.select_slider(key="tw_val").set_value(0.0).run()
    config = at.session_state["config"]
    assert config.val_share == 0.0
    assert config.patience == 0  # early stopping needs a validation split
    assert at.number_input(key="tw_patience").disabled


@pytest.fixture(scope="module")
def finished(mnist):
    history = RunHistory()
    config = TrainConfig(epochs=1, batch_size=100, train_size=1000, val_share=0.1, seed=0)
    session = train_to_end(mnist, dense_spec([16]), config, callbacks=[RunRecorder(history)], timeout=120)
    return session, history


def test_a_confusion_cell_shows_its_images_and_an_edit_retrains(finished, monkeypatch, tmp_path):
    monkeypatch.setenv("DLPLAY_RUNS_DIR", str(tmp_path))
    session, history = finished
    report = build_report(predict_session(session, "val"))
    cm = report.confusion.copy()
    np.fill_diagonal(cm, 0)
    true, pred = np.unravel_index(int(cm.argmax()), cm.shape)  # the most confused pair of the validation images
    at = open_page("views/evaluate.py", train_session=session, run_history=history, spec=session.spec,
                   config=session.config, fx_split="val", fx_cell=("val", int(true), int(pred)))
    assert at.session_state["fx_cell"] == ("val", true, pred)
    titles = [s.value for s in at.subheader]
    assert any(f"label {true}, guessed {pred} ({cm[true, pred]} images)" in s for s in titles), titles
    edits = [s for s in at.selectbox if s.key and s.key.startswith("fx_edit_")]
    assert len(edits) == min(cm[true, pred], 18)
    index = int(edits[0].key.removeprefix("fx_edit_"))
    _, labels, ids = session.split_data("val")
    assert labels[ids.tolist().index(index)] == true  # the image is one of this cell's
    edits[0].set_value(int(pred)).run()  # "mislabelled: it is a <pred>"
    assert at.session_state["fx_edits"] == {index: int(pred)}
    assert any("label becomes" in m.value for m in at.markdown)
    at.button(key="fx_retrain").click().run()
    new = at.session_state["train_session"]
    try:
        assert new is not session
        assert new.config.label_edits == ((index, int(pred)),)
        assert new.config.with_changes(label_edits=()) == session.config
        assert new.spec == session.spec
        assert new.split_data("val")[1][ids.tolist().index(index)] == pred  # the retrained run's data has the edit
        assert wait_for(lambda: history.get(new.run_id) is not None, timeout=120)
    finally:
        stop_and_join(new)
    runs = AppTest.from_file(APP, default_timeout=60)
    runs.session_state["lang"] = "en"
    runs.session_state["run_history"] = history
    runs.switch_page("views/runs.py")
    runs.run()
    runs.toggle(key="runs_show_all").set_value(True).run()
    label = translate("runs.field_label_edits", "en")
    table = next(d.value for d in runs.dataframe if label in d.value.index)  # the settings table
    row = table.loc[label]
    assert f"{index}:{int(pred)}" in list(row)  # the new run's settings list the edit


def test_test_images_are_shown_but_not_edited(finished):
    session, history = finished
    at = open_page("views/evaluate.py", train_session=session, run_history=history, fx_split="test",
                   fx_cell=("test", 4, 9))
    assert not [s for s in at.selectbox if s.key and s.key.startswith("fx_edit_")]
    assert any("shown, not edited" in c.value for c in at.caption)


def test_train_page_says_where_early_stopping_stopped_and_which_weights_it_kept(mnist):
    config = TrainConfig(epochs=6, train_size=200, batch_size=20, lr=1e-2, val_share=0.1, patience=1, seed=0)
    session = train_to_end(mnist, dense_spec([256, 256]), config, timeout=120)
    info = session.snapshot().extras["early_stop"]
    assert info.stopped_at is not None
    assert info.stopped_at < 6
    for lang, words in (("en", f"stopped after epoch {info.stopped_at}"), ("zh", f"第 {info.stopped_at} 轮后停止")):
        at = open_page("views/train.py", train_session=session, config=config, spec=session.spec, lang=lang)
        notes = [i.value for i in at.info]
        assert any(words in n and str(info.best_epoch) in n for n in notes), notes
