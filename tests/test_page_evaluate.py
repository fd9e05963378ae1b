"""The Evaluate and Runs pages (AppTest) on briefly trained real sessions, and the share-link UI helper."""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from dlplay.classify.checkpoint import checkpoint_from_session, load_checkpoint
from dlplay.classify.evaluation import build_report, mistake_indices, predict_session
from dlplay.classify.runs import RunHistory, RunRecorder, RunStore, record_from_session
from dlplay.classify.train import TrainingSession
from dlplay.i18n import translate
from dlplay.nn.spec import LayerSpec, ModelSpec, TrainConfig, dense_spec
from helpers import train_to_end

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 120


def train(mnist, hidden=(32,), **config) -> TrainingSession:
    cfg = TrainConfig(**{"epochs": 1, "batch_size": 100, "train_size": 2000, "seed": 0, **config})
    return train_to_end(mnist, dense_spec(list(hidden)), cfg, timeout=120)


@pytest.fixture(scope="module")
def session(mnist) -> TrainingSession:
    return train(mnist)


@pytest.fixture(scope="module")
def report(session):
    return build_report(predict_session(session))


def open_page(page: str, session: TrainingSession | None, **state) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT)
    at.session_state["train_session"] = session
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at: AppTest, label: str) -> str:
    values = [m.value for m in at.metric if m.label == label]
    assert len(values) == 1, [m.label for m in at.metric]
    return values[0]


def button(at: AppTest, key: str):
    return at.button(key=key)


# ------------------------------------------------------------------ Evaluate

def test_without_a_model_the_page_explains_and_offers_an_upload():
    at = open_page("views/evaluate.py", None)
    assert any("no trained model" in i.value for i in at.info)
    assert len(at.file_uploader) == 1
    assert not at.metric


def test_results_match_the_model(session, report):
    at = open_page("views/evaluate.py", session)
    _, acc = session.evaluate("test")
    assert metric(at, "Test accuracy") == f"{acc:.2%}"
    assert metric(at, "Mistakes") == f"{report.mistakes:,}"
    assert metric(at, "Calibration error (ECE)") == f"{report.calibration.ece:.2%}"
    table = at.dataframe[0].value
    assert table["Test images"].sum() == 10_000
    np.testing.assert_allclose(table["Accuracy (recall)"].to_numpy(), report.classes.accuracy * 100)
    np.testing.assert_allclose(table["Precision"].to_numpy(), report.classes.precision * 100)
    top = report.pairs[0]
    texts = [m.value for m in at.markdown]
    assert any(f"{top.true} taken for {top.predicted}: {top.count} times" in x for x in texts)


def test_a_confused_pair_opens_the_filtered_gallery(session, report):
    at = open_page("views/evaluate.py", session)
    button(at, "eval_pair_0").click()
    at.run()
    assert not at.exception
    top = report.pairs[0]
    assert at.selectbox(key="eval_filter_true").value == top.true
    assert at.selectbox(key="eval_filter_pred").value == top.predicted
    captions = [c for img in at.image for c in img.captions]
    assert len(captions) == min(top.count, 24)
    expected = mistake_indices(report.preds, top.true, top.predicted)[:24]
    assert captions[0].startswith(f"#{expected[0]} · true {top.true} · guess {top.predicted}")


def test_gallery_filters_pages_and_inspect(session, report):
    at = open_page("views/evaluate.py", session, eval_tabs="Mistakes")
    all_mistakes = mistake_indices(report.preds)
    assert any(f"{len(all_mistakes):,} misclassified" in m.value for m in at.markdown)
    captions = [c for img in at.image for c in img.captions]
    assert len(captions) == 24
    assert captions[0].startswith(f"#{all_mistakes[0]} ")
    at.number_input(key="eval_gallery_page").set_value(2).run()
    captions = [c for img in at.image for c in img.captions]
    assert captions[0].startswith(f"#{all_mistakes[24]} ")
    at.selectbox(key="eval_filter_true").set_value(7).run()
    sevens = mistake_indices(report.preds, true_class=7)
    captions = [c for img in at.image for c in img.captions]
    assert len(captions) == min(24, len(sevens))
    assert all(" · true 7 · " in c for c in captions)
    first = int(sevens[0])
    at.button(key=f"eval_inspect_{first}").click().run()
    assert [x.value for x in at.title] == [translate("inside.title")]  # now on the Inside page
    assert at.number_input(key="inside_index").value == first  # showing that test image


def test_calibration_tab(session, report):
    at = open_page("views/evaluate.py", session, eval_tabs="Calibration")
    wrong = ~report.preds.correct & (report.preds.confidence > 0.9)
    assert any(f"{int(wrong.sum()):,} wrong answers" in m.value for m in at.markdown)


def test_downloads_give_a_checkpoint_that_loads_back(session, mnist):
    at = open_page("views/evaluate.py", session, eval_tabs="Keep & share")
    keys = {"eval_download_ckpt", "eval_download_onnx", "eval_download_torchscript"}
    assert keys <= {b.key for b in at.download_button}
    assert any("torch.jit.load" in c.value for c in at.code)
    # the page's checkpoint is what checkpoint_from_session writes
    ckpt = load_checkpoint(checkpoint_from_session(session))
    assert torch.equal(ckpt.model()(session.normalize(mnist.test_images[:20])),
                       session.model_copy()(session.normalize(mnist.test_images[:20])))
    link = [c.value for c in at.code if "net=d32" in c.value]
    assert link
    assert "lr=0.001" in link[0]
    assert "bs=100" in link[0]
    assert "n=2000" in link[0]


def test_an_export_that_cannot_run_says_why_instead_of_doing_nothing(session, monkeypatch):
    """Without the onnx package (the README's install once lacked it) the ONNX button is off and says why."""
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    at = open_page("views/evaluate.py", session, eval_tabs="Keep & share")
    assert at.download_button(key="eval_download_onnx").disabled
    assert not at.download_button(key="eval_download_torchscript").disabled
    errors = [e.value for e in at.error]
    assert any("onnx" in e and "pip install -r requirements.txt" in e for e in errors), errors
    at = open_page("views/evaluate.py", session, eval_tabs=translate("eval.tab_keep", "zh"), lang="zh")
    assert any("requirements.txt" in e.value and "没有安装" in e.value for e in at.error), [e.value for e in at.error]


def test_an_export_failing_when_clicked_shows_the_reason_on_the_page(session, monkeypatch):
    from streamlit.runtime.media_file_manager import MediaFileManager

    import dlplay.classify.checkpoint

    made = {}
    real_add = MediaFileManager.add_deferred

    def capture(self, data, *args, **kwargs):  # the callable the browser's click would run
        made[len(made)] = data
        return real_add(self, data, *args, **kwargs)

    def broken(*args, **kwargs):
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(MediaFileManager, "add_deferred", capture)
    monkeypatch.setattr(dlplay.classify.checkpoint, "export_torchscript", broken)
    at = open_page("views/evaluate.py", session, eval_tabs="Keep & share")
    assert not at.error
    torchscript = made[2]  # checkpoint, ONNX, TorchScript
    with pytest.raises(RuntimeError):
        torchscript()
    at.run()
    assert any("TorchScript export failed" in e.value and "exporter exploded" in e.value for e in at.error)


class Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.mark.parametrize("case", ["malicious", "truncated", "wrong_shape", "not_checkpoint"])
def test_bad_uploads_show_a_clear_message(case, session, tmp_path):
    marker = tmp_path / "pwned"
    good = checkpoint_from_session(session)
    if case == "malicious":
        data, text = _torch_bytes({"format": "dlplay-checkpoint", "spec": Evil(marker)}), "could run code"
    elif case == "truncated":
        data, text = good[: len(good) // 2], "damaged or incomplete"
    elif case == "wrong_shape":
        obj = torch.load(io.BytesIO(good), weights_only=True)
        obj["state_dict"]["blocks.0.op.weight"] = obj["state_dict"]["blocks.0.op.weight"].t().contiguous()
        data, text = _torch_bytes(obj), "has shape [784, 32]"
    else:
        data, text = pickle.dumps({"hello": 1}), "not a dlplay checkpoint"
    at = open_page("views/evaluate.py", None)
    at.file_uploader(key="eval_upload").set_value(("model.pt", data, "application/octet-stream")).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1, errors
    assert text in errors[0], errors
    assert not any(b.key == "eval_use_ckpt" for b in at.button)
    assert at.session_state["train_session"] is None
    assert not marker.exists()


def test_uploaded_checkpoint_becomes_the_current_model(session, mnist):
    data = checkpoint_from_session(session, run=record_from_session(session))
    at = open_page("views/evaluate.py", None)
    at.file_uploader(key="eval_upload").set_value(("model.pt", data, "application/octet-stream")).run()
    assert not at.exception
    assert not at.error
    assert any("Checkpoint OK: 784-32-10" in s.value for s in at.success)
    at.button(key="eval_use_ckpt").click().run()
    assert not at.exception
    loaded = at.session_state["train_session"]
    assert loaded is not session
    assert loaded.status == "done"
    assert at.session_state["spec"] == session.spec
    x = session.normalize(mnist.test_images[:100])
    assert torch.equal(loaded.model_copy()(x), session.model_copy()(x))
    _, acc = session.evaluate("test")
    assert metric(at, "Test accuracy") == f"{acc:.2%}"
    history = at.session_state["run_history"]
    assert len(history) == 1
    assert history.records()[0].source == "checkpoint"


def test_a_diverged_run_is_not_evaluated(mnist):
    cfg = TrainConfig(optimizer="sgd", lr=10.0, epochs=1, batch_size=100, train_size=2000, seed=0)
    spec = ModelSpec(layers=(LayerSpec("dense", 64, "identity"), LayerSpec("dense", 64, "identity")), init="normal")
    diverged = TrainingSession(spec, cfg, mnist, "cpu", sync_every=1)
    with torch.no_grad():
        for p in diverged.model.parameters():
            p.mul_(1e20)
    diverged.start()
    assert diverged.join(60)
    assert diverged.status == "diverged"
    at = open_page("views/evaluate.py", diverged)
    assert any("diverged" in w.value for w in at.warning)
    assert not at.metric


# ------------------------------------------------------------------ Runs

@pytest.fixture(scope="module")
def two_runs(mnist):
    history = RunHistory()
    sessions = []
    for lr in (1e-3, 1e-2):
        cfg = TrainConfig(lr=lr, epochs=2, batch_size=100, train_size=2000, seed=0)
        s = TrainingSession(dense_spec([16]), cfg, mnist, "cpu", callbacks=[RunRecorder(history)])
        s.start()
        assert s.join(120)
        sessions.append(s)
    return history, sessions


def test_runs_page_without_runs():
    at = open_page("views/runs.py", None)
    assert any("No runs yet" in i.value for i in at.info)


def test_runs_page_compares_and_shows_what_differed(two_runs, tmp_path, monkeypatch):
    monkeypatch.setenv("DLPLAY_RUNS_DIR", str(tmp_path / "runs"))
    history, _sessions = two_runs
    at = open_page("views/runs.py", None, run_history=history)
    records = history.records()
    assert at.multiselect(key="runs_selected").value == [r.run_id for r in records]
    diff = at.dataframe[0].value
    assert list(diff.index) == ["Learning rate"]
    assert diff.iloc[0].tolist() == ["0.001", "0.01"]
    results = at.dataframe[1].value
    assert results.loc["Test accuracy"].tolist() == [f"{r.test_acc:.2%}" for r in records]
    at.segmented_control(key="runs_metric").set_value("step_loss").run()
    assert not at.exception
    at.toggle(key="runs_show_all").set_value(True).run()
    assert "Optimizer" in list(at.dataframe[0].value.index)
    # use the first run's settings
    at.selectbox(key="runs_manage").set_value(records[0].run_id).run()
    at.button(key="runs_use").click().run()
    assert at.session_state["config"] == records[0].config
    assert at.session_state["spec"] == records[0].spec
    # save it to the runs folder, then delete it
    at.button(key="runs_save").click().run()
    assert not at.exception
    assert RunStore(tmp_path / "runs").load(records[0].run_id).to_json() == records[0].to_json()
    at.button(key="runs_unsave").click().run()
    assert RunStore(tmp_path / "runs").saved_ids() == set()


def test_the_draw_pages_quick_training_is_recorded_and_kept_on_disk(tmp_path, monkeypatch):
    """Every run goes into the history where it is created (here: Draw's quick training), not patched in later."""
    monkeypatch.setenv("DLPLAY_RUNS_DIR", str(tmp_path / "runs"))
    config = TrainConfig(epochs=3, batch_size=100, train_size=2000, seed=0)
    at = open_page("views/draw.py", None, spec=dense_spec([32]), config=config)
    at.button(key="draw_quick_train").click().run()
    session = at.session_state["train_session"]
    assert session.join(120)
    assert session.status == "done"
    at.switch_page("views/runs.py")
    at.run()
    assert not at.exception
    history = at.session_state["run_history"]
    assert len(history) == 1
    rec = history.records()[0]
    assert rec.run_id == session.run_id
    assert rec.spec == session.spec
    assert rec.steps == 20
    assert rec.config == config.with_changes(epochs=1, val_share=0.0, patience=0)  # quick: on every training image
    at.run()  # not recorded twice
    assert len(at.session_state["run_history"]) == 1
    at.button(key="runs_save_all").click().run()
    assert RunStore(tmp_path / "runs").saved_ids() == {rec.run_id}
    # a fresh browser session loads it back from disk
    other = open_page("views/runs.py", None)
    other.button(key="runs_load_saved").click().run()
    assert [r.run_id for r in other.session_state["run_history"].records()] == [rec.run_id]


def test_runs_disk_can_be_switched_off(two_runs, monkeypatch):
    monkeypatch.setenv("DLPLAY_RUNS_DIR", "off")
    at = open_page("views/runs.py", None, run_history=two_runs[0])
    assert not any(b.key in ("runs_save", "runs_save_all") for b in at.button)
    assert any("switched off" in c.value for c in at.caption)


# ------------------------------------------------------------------ share link

def _share_app():
    import streamlit as st

    from dlplay.ui.share import apply_query_params_once, share_link
    from dlplay.ui.state import get_config, get_spec, init_state

    init_state()
    apply_query_params_once()
    st.write(get_spec().to_json())
    st.write(get_config().to_json())
    st.code(share_link(get_spec(), get_config()))


def test_apply_query_params_once_sets_spec_and_config():
    at = AppTest.from_function(_share_app, default_timeout=TIMEOUT)
    for k, v in {"v": "1", "net": "d64-tanh,d32", "o": "sgd", "lr": "0.05", "bs": "64", "ep": "3", "s": "7",
                 "ds": "mnist", "lang": "zh"}.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception
    spec, config = at.session_state["spec"], at.session_state["config"]
    assert spec == ModelSpec(layers=(LayerSpec("dense", 64, "tanh"), LayerSpec("dense", 32, "relu")))
    assert config == TrainConfig(optimizer="sgd", lr=0.05, batch_size=64, epochs=3, seed=7, val_share=0.0)  # no "val" in the link: none
    assert dict(at.query_params) == {"lang": "zh"}  # the configuration left the address
    assert "net=d64-tanh,d32" in at.code[0].value
    assert "lang=zh" in at.code[0].value
    # only once: later edits are not overwritten by a link
    at.session_state["config"] = TrainConfig(lr=0.5)
    at.run()
    assert at.session_state["config"] == TrainConfig(lr=0.5)


def test_a_bad_link_changes_nothing():
    at = AppTest.from_function(_share_app, default_timeout=TIMEOUT)
    at.query_params["net"] = "zz9"
    at.run()
    assert not at.exception
    assert at.session_state["spec"] == dense_spec([128])
    assert at.session_state["config"] == TrainConfig()
    assert any("does not understand" in e.value and "nothing changed" in e.value for e in at.error)


def _open_link(**params) -> AppTest:
    at = AppTest.from_function(_share_app, default_timeout=TIMEOUT)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception
    return at


def test_a_link_is_checked_against_the_dataset_and_the_guardrails():
    """Each value that does not fit is left out (the rest applies), named in a note that stays (issue #33)."""
    at = _open_link(net="d64", nc="3")  # accepted before, then Start failed with "IndexError: Target 4 ..."
    assert at.session_state["spec"] == dense_spec([64])
    assert any("3 classes" in w.value and "Used instead: `10`" in w.value for w in at.warning), [w.value for w in at.warning]
    at = _open_link(net="d64", ep="150")  # the spec allows 200, the server's guardrail 100
    assert at.session_state["config"].epochs == 10
    assert any("150 epochs" in w.value and "Used instead: `10`" in w.value for w in at.warning), [w.value for w in at.warning]
    at = _open_link(net="d999999", lang="zh")  # its only value: nothing is applied
    assert any("个神经元太多了" in e.value and "4096" in e.value for e in at.error), [e.value for e in at.error]


def test_a_link_without_net_applies_its_settings():
    at = _open_link(lr="0.01", ep="3")
    assert at.session_state["spec"] == dense_spec([128])
    assert at.session_state["config"] == TrainConfig(lr=0.01, epochs=3, val_share=0.0)
    assert any("Opened the shared configuration" in t.value for t in at.toast)


def test_a_link_training_on_a_subset_says_so_on_the_train_page():
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update({"net": "d32", "n": "5", "lang": "en"})
    at.run()
    at.switch_page("views/train.py")
    at.run()
    assert not at.exception
    assert any("first 5 training images" in i.value for i in at.sidebar.info), [i.value for i in at.sidebar.info]
    at.sidebar.button(key="tw_all_data").click().run()
    assert at.session_state["config"].train_size is None
    assert not any("first 5" in i.value for i in at.sidebar.info)


def _new_session_app():
    import streamlit as st

    from dlplay.nn.spec import TrainConfig
    from dlplay.ui.state import init_state, new_session, set_config

    init_state()
    if "trained" not in st.session_state:
        set_config(TrainConfig(epochs=1, batch_size=100, train_size=1000, seed=0))
        session = new_session()
        session.start()
        session.join(120)
        st.session_state["trained"] = session.status
    st.write(f"runs: {len(st.session_state['run_history'])}")


def test_every_new_session_is_recorded_when_it_ends():
    at = AppTest.from_function(_new_session_app, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    assert at.session_state["trained"] == "done"
    assert at.markdown[0].value == "runs: 1"
    record = at.session_state["run_history"].records()[0]
    assert record.steps == 10
    assert record.config.train_size == 1000
