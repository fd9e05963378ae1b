"""Issue #33 section 2, the smaller items: the fork overlay's loss axis after a spike, the pinned digits'
log step axis, the Dynamics hint at the end of a cosine schedule, a quick offline failure of the download,
the queued run's reason, share links checked value by value, and the LSTM's link without its activation."""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dlplay.classify.fork import RunCurves
from dlplay.classify.pins import PinsSnapshot
from dlplay.classify.probe import M, Probe
from dlplay.figures.fork import fork_figure
from dlplay.figures.pins import pin_figure
from dlplay.learn import hints as H
from dlplay.nn.spec import TrainConfig, dense_spec
from helpers import train_to_end
from test_hints import healthy, snapshot

APP = str(Path(__file__).resolve().parents[1] / "app.py")


# ----------------------------------------------------------------------------------- the fork overlay
def _curves(losses: np.ndarray, start: float = 1.0) -> RunCurves:
    x = start + np.arange(1, len(losses) + 1) / 300.0
    empty = np.zeros(0)
    return RunCurves(x, np.asarray(losses, dtype=float), empty, empty, empty, empty)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_forks_spike_does_not_flatten_the_original_run(lang):
    rng = np.random.default_rng(0)
    parent = 0.3 + 0.05 * rng.random(600)  # the original run: about 0.3
    fork = 0.3 + 0.05 * rng.random(600)
    fork[20:40] = np.linspace(5, 45, 20)  # the fork's spike (a learning rate of 10), then it recovers
    fig = fork_figure(_curves(parent), _curves(fork), "loss", 1.0, lang)
    top = fig.layout.yaxis.range[1]
    assert top < 1.0, top
    assert parent.max() / top > 0.5, top  # the original run fills the chart, not a line at 0
    marks = [t for t in fig.data if t.customdata is not None]
    assert len(marks) == 1
    assert max(marks[0].customdata) == pytest.approx(45)  # the spike, on the top edge
    assert set(marks[0].y) == {top}
    notes = " ".join(a.text for a in fig.layout.annotations)
    assert "45" in notes
    assert ("off the chart" if lang == "en" else "超出图表") in notes
    calm = fork_figure(_curves(parent), _curves(parent[::-1]), "loss", 1.0, lang)
    assert calm.layout.yaxis.range is None  # no spike: plotly's own range, nothing marked


# ----------------------------------------------------------------------------------- pinned digits
def test_the_pinned_digits_log_step_axis_reads_as_plain_numbers():
    steps = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3000])
    probs = np.full((len(steps), 1, 10), 0.1)
    snap = PinsSnapshot(np.zeros((1, 28, 28), np.uint8), np.array([7]), steps, probs, 1)
    axis = pin_figure(snap, 0, [str(d) for d in range(10)]).layout.xaxis
    assert axis.type == "log"
    assert list(axis.ticktext) == ["1", "10", "100", "1,000"]  # not plotly's "3 4 5 … 9 1000 2 3"
    assert list(axis.tickvals) == [1, 10, 100, 1000]
    short = PinsSnapshot(snap.images, snap.labels, steps[:9], probs[:9], 1)  # up to step 256
    axis = pin_figure(short, 0, [str(d) for d in range(10)]).layout.xaxis
    assert list(axis.ticktext) == ["1", "2", "5", "10", "20", "50", "100", "200"]


# ----------------------------------------------------------------------------------- the Dynamics hint
def test_small_steps_at_the_end_of_a_cosine_schedule_are_not_called_a_low_learning_rate():
    v = healthy()
    v[:, :, M["update_ratio"]] = 5e-5  # tiny steps
    snap = snapshot(v)
    assert [h.key for h in H.find_hints(snap)] == ["dynamics.hint_update_low"]  # no schedule known: as before
    assert [h.key for h in H.find_hints(snap, lr_share=1.0)] == ["dynamics.hint_update_low"]  # a constant rate
    (hint,) = H.find_hints(snap, lr_share=0.01)  # the schedule has lowered the rate to 1 %
    assert hint.key == "dynamics.hint_update_annealed"
    assert hint.level == "info"
    assert "1.0%" in hint.text("en")
    assert "too low" not in hint.text("en").split(".")[0]
    assert "1.0%" in hint.text("zh")
    v[:, :, M["update_ratio"]] = 5e-8  # tiny even at the chosen rate: the rate is too low after all
    assert [h.key for h in H.find_hints(snapshot(v), lr_share=0.01)] == ["dynamics.hint_update_low"]
    total = 300
    assert H.schedule_share("constant", snap, total) == 1.0
    assert H.schedule_share("cosine", snap, total) > 0.9  # steps 10..50 of 300: the start of the schedule
    late = snapshot(v)
    late = type(late)(**{**late.__dict__, "steps": np.arange(281, 301, 4)})
    assert H.schedule_share("cosine", late, total) < H.ANNEALED_SHARE


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_dynamics_page_does_not_warn_at_the_end_of_a_cosine_schedule(mnist, lang):
    """A real run: Adam at 0.001 with a cosine schedule, trained to its end, probed every 10 steps."""
    config = TrainConfig(optimizer="adam", lr=1e-3, batch_size=32, epochs=1, train_size=32 * 300, seed=0,
                         schedule="cosine")
    session = train_to_end(mnist, dense_spec([128], "relu"), config, callbacks=[Probe(every=10)], timeout=120)
    probe = session.probe_snapshot()
    assert H.find_hints(probe)[-1].key == "dynamics.hint_update_low"  # the steps are tiny at the end: it did warn
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["lang"] = lang
    at.session_state["train_session"] = session
    at.run()
    at.switch_page("views/dynamics.py")
    at.run()
    assert not at.exception, at.exception
    low = H.Hint("dynamics.hint_update_low", (("ratio", "x"),)).text(lang).split("x")[-1]
    assert not any(low in w.value for w in at.warning)
    annealed = H.Hint("dynamics.hint_update_annealed", (("ratio", "x"), ("share", "y"))).text(lang).split("y")[-1]
    assert any(annealed in i.value for i in at.info), [i.value for i in at.info]


# ----------------------------------------------------------------------------------- no network
class SilentServer:
    """A TCP server that accepts connections and never answers (a network that swallows requests)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)

    def close(self) -> None:
        self._closed = True
        self.sock.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture
def silent():
    server = SilentServer()
    yield server
    server.close()


def test_a_download_with_no_answer_fails_in_seconds_not_minutes(tmp_path, silent):
    """Before: every file on every mirror waited out the 30 s timeout (4 files x 2 mirrors: 4 minutes)."""
    from dlplay.data import datasets as data
    from dlplay.errors import UserError

    started = time.monotonic()
    with pytest.raises(UserError) as err:
        data.download("mnist", tmp_path / "dl", mirrors=[silent.url + "/a/", silent.url + "/b/"], timeout=30)
    took = time.monotonic() - started
    assert took < 20, took  # the probe gives up after PROBE_TIMEOUT_S (3 s); one file's timeout alone is 30 s
    urls = err.value.params["urls"]
    assert err.value.key == "data.download_failed", urls
    assert "timed out" in urls or "no answer within 3 s" in urls, urls
    assert not any(p.name.endswith(".part") for p in (tmp_path / "dl").iterdir())
    with pytest.raises(UserError) as err:  # what the Train page's Start shows: where to put the four files
        data.load_dataset("mnist", paths=data.SearchPaths(cache_dir=tmp_path / "cache", system_dirs=()),
                          mirrors=[silent.url + "/"], timeout=30)
    assert err.value.key == "data.not_found_offline"
    assert str(tmp_path / "cache" / "mnist") in err.value.params["folder"]


# ----------------------------------------------------------------------------------- a queued run
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_queued_run_says_why_it_waits_and_its_place(mnist, lang):
    from dlplay.classify.train import TrainingSession
    from dlplay.i18n import translate
    from dlplay.server.slots import SlotPool
    from helpers import stop_and_join, wait_for

    pool = SlotPool(1)
    config = TrainConfig(epochs=1, train_size=500, batch_size=50)
    first = TrainingSession(dense_spec([16]), config, mnist, "cpu", slot_pool=pool)
    second = TrainingSession(dense_spec([16]), config, mnist, "cpu", slot_pool=pool)
    third = TrainingSession(dense_spec([16]), config, mnist, "cpu", slot_pool=pool)
    try:
        first.start(paused=True)
        assert wait_for(lambda: first.status == "paused")
        second.start()
        third.start()
        assert wait_for(lambda: third.snapshot().progress.queue_position == 2)
        p = third.snapshot().progress
        assert p.status == "queued"
        assert p.message == "slots.queued_single"
        text = translate(p.message, lang, **dict(p.message_params))
        assert ("number 2 in the queue" if lang == "en" else "第 2 位") in text
        assert ("another tab" if lang == "en" else "另一个标签页") in text  # why: who may hold the place
        assert translate("train.status_queued", lang) in ("queued", "排队中")  # the status metric's short word
        first.stop()
        assert wait_for(lambda: second.status in ("running", "done"))
        assert second.snapshot().progress.message == ""  # it has its place: no word about waiting
        assert wait_for(lambda: third.snapshot().progress.queue_position in (1, None))
    finally:
        stop_and_join(first, second, third)
    many = SlotPool(3)
    run = TrainingSession(dense_spec([16]), config, mnist, "cpu", slot_pool=many)
    from dlplay.server import slots

    slots._set_position(run, 1, 3)
    assert run.snapshot().progress.message == "slots.queued_many"
    assert "3" in translate("slots.queued_many", lang, **dict(run.snapshot().progress.message_params))


# ----------------------------------------------------------------------------------- share links
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_share_link_is_checked_when_it_opens_and_its_note_stays(lang):
    """``le=9999999:3`` opened without a word and failed only at Start: now each value is checked when the
    link opens, the bad one is left out, and a note that stays until closed says what and what is used."""
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in {"le": "9999999:3", "lr": "0.01", "bs": "0", "lang": lang}.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    config = at.session_state["config"]
    assert config.label_edits == ()
    assert config.lr == 0.01
    assert config.batch_size == 32  # the rest of the link applies
    (note,) = [w.value for w in at.warning if "9999999" in w.value]
    assert "10000" in note.replace(",", "")  # why: the training set has 10,000 images (the sample)
    assert ("Used instead: `32`" if lang == "en" else "改用：`32`") in note  # the batch size: 0 is out of its range
    assert ("Used instead: `none (the default)`" if lang == "en" else "改用：`无（默认值）`") in note
    assert not at.toast or all("9999999" not in t.value for t in at.toast)
    at.run()  # not a vanishing toast: it is still there on the next run
    assert any("9999999" in w.value for w in at.warning)
    at.button(key="share_report_dismiss").click().run()
    assert not any("9999999" in w.value for w in at.warning)


def test_an_lstm_link_leaves_out_the_cells_own_activation_and_old_links_still_read():
    from dlplay.nn.presets import PRESETS
    from dlplay.server.share import from_params, read_link, to_params

    spec = PRESETS["lstm_rows"].spec
    link = to_params(spec, TrainConfig())
    assert link["net"] == "lstm128"
    assert "identity" not in "".join(link.values())
    assert from_params(link)[0] == spec
    assert from_params({**link, "net": "lstm128-identity"})[0] == spec  # a link made before still opens the same
    gru = from_params({"net": "gru64"})[0]
    assert gru.layers[0].activation == "identity"
    assert to_params(gru, TrainConfig())["net"] == "gru64"
    rnn = from_params({"net": "r64-tanh"})[0]  # a plain RNN's activation is a choice: written
    assert to_params(rnn, TrainConfig())["net"] == "r64-tanh"
    parsed, problems = read_link({"net": "lstm128", "ep": "0"})
    assert parsed[0] == spec
    assert [p.key for p in problems] == ["ep"]


# ----------------------------------------------------------------------------------- the Runs page
def test_the_runs_page_shares_each_runs_settings(mnist, monkeypatch, tmp_path):
    from dlplay.classify.runs import RunHistory, record_from_session
    from dlplay.classify.train import TrainingSession
    from dlplay.server.share import from_params

    session = TrainingSession(dense_spec([16], "tanh"), TrainConfig(epochs=1, train_size=500, lr=0.003, seed=5),
                              mnist, "cpu")
    session.start()
    assert session.join(60)
    record = record_from_session(session)
    monkeypatch.setenv("DLPLAY_RUNS_DIR", str(tmp_path))
    history = RunHistory()
    history.add(record)
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["lang"] = "zh"
    at.session_state["run_history"] = history
    at.run()
    at.switch_page("views/runs.py")
    at.run()
    assert not at.exception, at.exception
    links = [c.value for c in at.code if "net=" in c.value]
    assert len(links) == 1
    assert "lang=zh" in links[0]
    from urllib.parse import parse_qsl, urlparse

    url = urlparse(links[0])
    assert url.path == "/build"
    spec, config = from_params(dict(parse_qsl(url.query)))
    assert spec == record.spec
    assert config == record.config  # the run's own settings, exactly
