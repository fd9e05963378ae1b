"""Run records: made from real runs, kept in a history, saved to and read from a runs folder, compared."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from dlplay.classify.runs import (
    MAX_LOSS_POINTS,
    RunHistory,
    RunRecord,
    RunRecorder,
    RunStore,
    architecture_label,
    default_runs_dir,
    differing_fields,
    new_run_id,
    record_from_session,
    result_fields,
    run_fields,
)
from dlplay.classify.train import TrainingSession
from dlplay.nn.spec import LayerSpec, ModelSpec, TrainConfig, dense_spec
from dlplay.run.metrics import EpochRecord
from helpers import wait_for_step


def _record(**changes) -> RunRecord:
    base = RunRecord(
        run_id=new_run_id(), created_at=1_700_000_000.0, spec=dense_spec([128]), config=TrainConfig(epochs=2),
        device="cpu", device_name="CPU (2 cores)", status="done", duration_s=3.5, steps=626, params=101_770,
        epochs=(EpochRecord(1, 0.5, 0.85, 0.3, 0.9, 1.6, 6000.0), EpochRecord(2, 0.25, 0.93, 0.22, 0.935, 1.5, 6500.0)),
        test_acc=0.935, test_loss=0.22, loss_steps=(50, 100), loss_values=(1.2, float("nan")), lr_changes=((300, 0.0005),),
    )
    return replace(base, **changes)


@pytest.fixture(scope="module")
def recorded(mnist):
    history = RunHistory()
    recorder = RunRecorder(history)
    config = TrainConfig(epochs=2, batch_size=100, train_size=2000, seed=3)
    session = TrainingSession(dense_spec([16]), config, mnist, "cpu", sync_every=5, callbacks=[recorder])
    session.start()
    assert session.join(120)
    return session, history, recorder


def test_recorder_records_a_real_run(recorded):
    session, history, recorder = recorded
    assert len(history) == 1
    rec = history.records()[0]
    assert rec is recorder.record
    assert rec.status == "done"
    assert rec.spec == session.spec
    assert rec.config == session.config
    assert rec.seed == 3
    assert rec.dataset == "mnist"
    assert rec.device == "cpu"
    assert rec.device_name.startswith("CPU")
    assert rec.steps == 40
    assert len(rec.epochs) == 2
    assert rec.params == 784 * 16 + 16 + 16 * 10 + 10
    assert rec.test_acc == session.snapshot().epochs[-1].test_acc
    assert rec.test_acc == pytest.approx(session.evaluate("test")[1])
    assert rec.loss_steps[-1] == 40
    assert len(rec.loss_steps) == len(rec.loss_values) == 40
    assert rec.duration_s > 0
    assert rec.created_at == session.started_at


def test_a_run_stopped_mid_epoch_is_evaluated_once_more(mnist):
    config = TrainConfig(epochs=50, batch_size=100, train_size=2000, seed=4)
    session = TrainingSession(dense_spec([16]), config, mnist, "cpu", sync_every=1)
    session.step(7)
    wait_for_step(session, 7, timeout=60)
    session.stop()
    assert session.join(60)
    rec = record_from_session(session)
    assert rec.status == "stopped"
    assert rec.steps == 7
    assert rec.epochs == ()
    loss, acc = session.evaluate("test")
    assert rec.test_acc == pytest.approx(acc)
    assert rec.test_loss == pytest.approx(loss)


def test_a_run_that_never_stepped_is_not_recorded(mnist):
    session = TrainingSession(dense_spec([8]), TrainConfig(epochs=1, train_size=100), mnist, "cpu")
    assert record_from_session(session) is None
    history = RunHistory()
    RunRecorder(history).on_end(session)
    assert len(history) == 0


def test_long_loss_curves_are_downsampled(mnist):
    config = TrainConfig(epochs=1, batch_size=4, train_size=2000, seed=0)
    session = TrainingSession(dense_spec([8]), config, mnist, "cpu", sync_every=100)
    session.start()
    assert session.join(120)
    rec = record_from_session(session)
    assert len(rec.loss_steps) <= MAX_LOSS_POINTS + 1
    assert rec.loss_steps[-1] == 500
    assert list(rec.loss_steps) == sorted(rec.loss_steps)


def test_record_json_round_trip_keeps_everything():
    rec = _record(label="first try")
    back = RunRecord.from_json(rec.to_json())
    assert back.to_json() == rec.to_json()  # NaN survives as NaN
    assert back.spec == rec.spec
    assert back.config == rec.config
    assert back.epochs == rec.epochs
    assert back.lr_changes == rec.lr_changes
    assert back.label == "first try"


@pytest.mark.parametrize("breakage", [
    lambda d: d.update(format="other"),
    lambda d: d.update(version=99),
    lambda d: d.update(run_id="../../etc/passwd"),
    lambda d: d.update(epochs=[[1, 2]]),
    lambda d: d.update(loss_values=[1.0]),
    lambda d: d.update(loss_values=["x", "y"]),
    lambda d: d["spec"]["layers"][0].update(units=-3),
])
def test_malformed_records_are_rejected(breakage):
    data = _record().to_dict()
    breakage(data)
    with pytest.raises(ValueError):  # noqa: PT011 - each breakage has its own message; the type is the contract
        RunRecord.from_dict(data)


def test_store_saves_loads_deletes(tmp_path):
    store = RunStore(tmp_path / "runs")
    assert store.load_all() == ([], 0)
    a, b = _record(created_at=2.0), _record(created_at=1.0)
    path = store.save(a)
    store.save(b)
    assert path == tmp_path / "runs" / f"{a.run_id}.json"
    assert json.loads(path.read_text())["run_id"] == a.run_id
    records, bad = store.load_all()
    assert [r.run_id for r in records] == [b.run_id, a.run_id]
    assert bad == 0
    assert store.saved_ids() == {a.run_id, b.run_id}
    store.save(replace(a, label="renamed"))  # saving again replaces the file
    assert store.load(a.run_id).label == "renamed"
    (tmp_path / "runs" / "0123456789ab.json").write_text("{not json")
    (tmp_path / "runs" / "notes.json").write_text("{}")
    records, bad = store.load_all()
    assert len(records) == 2
    assert bad == 2
    assert store.delete(a.run_id)
    assert not store.delete(a.run_id)
    assert [r.run_id for r in store.load_all()[0]] == [b.run_id]
    assert not list((tmp_path / "runs").glob("*.tmp"))
    with pytest.raises(ValueError, match="bad run id"):
        store.path_for("../evil")


def test_runs_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DLPLAY_RUNS_DIR", str(tmp_path / "mine"))
    assert default_runs_dir() == tmp_path / "mine"
    assert RunStore().folder == tmp_path / "mine"
    monkeypatch.delenv("DLPLAY_RUNS_DIR")
    monkeypatch.delenv("DLPLAY_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_runs_dir() == tmp_path / "xdg" / "dlplay" / "runs"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_runs_dir() == tmp_path / "home" / ".cache" / "dlplay" / "runs"


def test_history_dedups_and_limits():
    history = RunHistory(limit=3)
    recs = [_record() for _ in range(4)]
    for r in recs:
        history.add(r)
    assert [r.run_id for r in history.records()] == [r.run_id for r in recs[1:]]
    history.add(replace(recs[2], label="x"))
    assert [r.run_id for r in history.records()] == [recs[1].run_id, recs[3].run_id, recs[2].run_id]
    assert history.get(recs[2].run_id).label == "x"
    history.remove(recs[1].run_id)
    assert len(history) == 2
    assert history.get(recs[1].run_id) is None


def test_architecture_labels():
    assert architecture_label(dense_spec([128])) == "784-128-10"
    assert architecture_label(dense_spec([])) == "784-10"
    conv = ModelSpec(layers=(LayerSpec("conv2d", 8, kernel=5), LayerSpec("maxpool", kernel=2, stride=2),
                             LayerSpec("batchnorm"), LayerSpec("dense", 64)))
    assert architecture_label(conv) == "C8k5-MP2-BN-64-10"


def test_differing_fields_name_exactly_what_changed():
    a = _record()
    b = replace(_record(), config=a.config.with_changes(lr=0.01, seed=5))
    c = replace(_record(), spec=dense_spec([64]), params=50_890)
    assert differing_fields([a, b]) == ["lr", "seed"]
    assert differing_fields([a, c]) == ["architecture", "layers", "params"]
    assert differing_fields([a, replace(a, run_id=new_run_id())]) == []
    assert differing_fields([]) == []
    fields = run_fields(a)
    assert fields["lr"] == "0.001"
    assert fields["lr_changes"] == "0.0005@300"
    assert fields["architecture"] == "784-128-10"
    assert fields["device"] == "CPU"
    assert run_fields(_record(device="cuda", device_name="NVIDIA H200"))["device"] == "NVIDIA H200"
    assert run_fields(_record(spec=dense_spec([64], dropout=0.5)))["layers"] == "Dense 64 relu + Dropout 0.5"
    results = result_fields(a)
    assert results["test_acc"] == "93.50%"
    assert results["epochs_done"] == "2"
    assert result_fields(_record(test_acc=None, epochs=()))["test_acc"] == "—"


def test_compare_figure_overlays_runs():
    from dlplay.figures.evaluation import compare_figure

    a, b = _record(), _record(epochs=_record().epochs[:1])
    fig = compare_figure([a, b], ["A", "B"], "test_acc")
    assert [t.name for t in fig.data] == ["A", "B"]
    assert list(fig.data[0].y) == [0.9, 0.935]
    assert list(fig.data[1].x) == [1]
    fig = compare_figure([a], ["A"], "step_loss", lang="zh")
    assert list(fig.data[0].x) == [50]
    assert list(fig.data[0].y) == [1.2]  # the NaN point is left out
    assert fig.layout.title.text == "每一步的训练损失"
    fig = compare_figure([a], ["A"], "train_loss")
    assert list(fig.data[0].y) == [0.5, 0.25]
