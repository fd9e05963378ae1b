"""The Train page in Streamlit's AppTest: settings become a config, Start trains, the charts appear."""
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from helpers import click, wait_for, wait_for_step

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def open_train(lang="en"):
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["lang"] = lang
    at.run()
    at.switch_page("views/train.py")
    at.run()
    assert not at.exception, at.exception
    return at


def test_train_page_starts_and_shows_live_charts():
    at = open_train()
    assert at.title[0].value == "Train a neural network"
    assert at.sidebar.selectbox(key="tw_preset").value == "tutorial"
    at.sidebar.number_input(key="tw_epochs").set_value(1)
    at.run()
    assert at.session_state["config"].epochs == 1
    at.button(key="train_start").click()
    at.run()
    session = at.session_state["train_session"]
    assert session is not None
    assert session.config.epochs == 1
    assert session.join(120)
    time.sleep(0.2)
    at.run()
    assert not at.exception, at.exception
    assert session.status == "done"
    labels = {m.label: m.value for m in at.metric}
    assert labels["Status"] == "finished"
    assert labels["Epochs done"] == "1/1"
    assert labels["Test accuracy"].endswith("%")
    charts = [c for c in at.get("plotly_chart")]
    assert len(charts) == 3


def test_invalid_learning_rate_change_mid_run_and_layers_control():
    at = open_train()
    at.sidebar.number_input(key="tw_layers").set_value(3)
    at.run()
    spec = at.session_state["spec"]
    assert [layer.units for layer in spec.layers] == [128, 128, 128]
    assert at.sidebar.selectbox(key="tw_preset").value == "custom"
    at.sidebar.select_slider(key="tw_lr").set_value(0.01)
    at.run()
    assert at.session_state["config"].lr == 0.01
    at.button(key="train_step").click()
    at.run()
    session = at.session_state["train_session"]
    wait_for_step(session, 1, timeout=20)
    assert wait_for(lambda: session.status == "paused", timeout=20)  # the gate pauses it after its one step
    at.sidebar.select_slider(key="tw_lr").set_value(0.1)
    at.run()
    at.button(key="train_resume").click()
    at.run()
    wait_for(lambda: session.snapshot().lr_changes, timeout=20)
    assert session.snapshot().lr_changes[-1][1] == 0.1
    at.button(key="train_stop").click()
    at.run()
    assert session.join(10)
    assert session.status == "stopped"


def test_train_page_in_chinese():
    at = open_train("zh")
    assert at.title[0].value == "训练神经网络"
    assert at.button(key="train_start").label == "开始"


def test_evaluate_mistake_opens_on_inside_page(mnist):
    from dlplay.classify.train import TrainingSession
    from dlplay.nn.spec import TrainConfig, dense_spec

    session = TrainingSession(dense_spec([16]), TrainConfig(epochs=1, train_size=1000), mnist, "cpu")
    session.start()
    assert session.join(60)
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["lang"] = "en"
    at.session_state["train_session"] = session
    at.session_state["inside_test_index"] = 1234
    at.run()
    at.switch_page("views/inside.py")
    at.run()
    assert not at.exception, at.exception
    assert at.number_input(key="inside_index").value == 1234
    assert "inside_test_index" not in at.session_state


def test_a_run_started_on_train_is_probed_for_the_dynamics_page():
    from dlplay.classify.probe import Probe

    at = open_train()
    at.button(key="train_step").click()
    at.run()
    session = at.session_state["train_session"]
    assert any(isinstance(cb, Probe) for cb in session.callbacks)
    session.stop()
    assert session.join(10)


def test_a_preset_or_another_page_changing_the_settings_shows_in_every_widget():
    at = open_train()
    at.sidebar.selectbox(key="tw_preset").set_value("deep_sigmoid").run()
    assert at.session_state["config"].optimizer == "sgd"
    shown = {w.key: w.value for w in (*at.sidebar.selectbox, *at.sidebar.select_slider, *at.sidebar.number_input)}
    assert shown["tw_opt"] == "sgd"
    assert shown["tw_lr"] == 0.1
    assert shown["tw_epochs"] == 10
    assert shown["tw_layers"] == 6
    assert shown["tw_units"] == 64
    assert shown["tw_act"] == "sigmoid"
    at.sidebar.selectbox(key="tw_preset").set_value("small_cnn").run()
    shown = {w.key: w.value for w in (*at.sidebar.selectbox, *at.sidebar.select_slider, *at.sidebar.number_input)}
    assert shown["tw_preset"] == "small_cnn"
    assert shown["tw_sched"] == "cosine"
    assert shown["tw_lr"] == 0.003
    assert shown["tw_epochs"] == 5
    assert "tw_layers" not in shown  # a layer-by-layer model: no uniform controls
    # the settings changed elsewhere (the Build page, a share link): the widgets follow
    from dlplay.nn.spec import TrainConfig
    at.session_state["config"] = TrainConfig(optimizer="rmsprop", lr=0.03, batch_size=128, epochs=7, seed=3)
    at.run()
    shown = {w.key: w.value for w in (*at.sidebar.selectbox, *at.sidebar.select_slider, *at.sidebar.number_input)}
    assert (shown["tw_opt"], shown["tw_lr"], shown["tw_batch"], shown["tw_epochs"], shown["tw_seed"]) == ("rmsprop", 0.03, 128, 7, 3)
    assert shown["tw_preset"] == "custom"
    assert not at.exception


def test_numbers_above_their_limit_are_brought_back_and_the_limit_is_said():
    at = open_train()
    layers = at.sidebar.number_input(key="tw_layers")
    assert "0 to 8" in layers.help
    layers.set_value(50).run()  # typed 50: the field used to show 50 while the model stayed at 8
    assert not at.exception
    assert len(at.session_state["spec"].layers) == 8
    assert at.sidebar.number_input(key="tw_layers").value == 8
    assert any("50 is more than the 8 allowed" in w.value for w in at.sidebar.warning)
    epochs = at.sidebar.number_input(key="tw_epochs")
    assert "1 to 100" in epochs.help  # the server's guardrail (100) is below the model's limit (200)
    epochs.set_value(150).run()
    assert at.session_state["config"].epochs == 100
    assert at.sidebar.number_input(key="tw_epochs").value == 100
    assert any("150 is more than the 100 allowed for “Epochs”" in w.value for w in at.sidebar.warning)


def test_the_model_line_shows_the_image_shape_for_a_cnn():
    from dlplay.nn.presets import small_cnn_spec
    from dlplay.nn.spec import dense_spec
    from dlplay.ui.training import spec_text

    assert spec_text(dense_spec([128])).startswith("784 → Dense 128")
    assert spec_text(dense_spec([])) == "784 → 10"
    cnn = spec_text(small_cnn_spec())
    assert cnn.startswith("1×28×28 → Conv")
    assert not cnn.startswith("784")


def test_the_pace_slider_sets_the_runs_pace_and_shows_it():
    """Issue 15 #10: the pace lives in the run; the slider sets it (also mid-run) and shows the run's."""
    at = open_train()
    pace = at.select_slider(key="train_pace")
    assert pace.value == 0
    assert "full speed" in pace.format_func(pace.value)  # full speed by default
    pace.set_value(5).run()
    click(at, "train_start")
    at.run()
    session = at.session_state["train_session"]
    assert session.pace == 5.0
    at.select_slider(key="train_pace").set_value(20).run()
    assert session.pace == 20.0  # changed while it runs
    session.set_pace(None)  # changed elsewhere (another page): the slider follows the run
    at.run()
    assert at.select_slider(key="train_pace").value == 0
    click(at, "train_stop")
    at.run()
    assert session.join(10)


def test_speed_shows_only_while_the_run_trains():
    """A finished run does not keep showing its last speed as if it were still training."""
    at = open_train()
    at.sidebar.number_input(key="tw_epochs").set_value(1)
    at.run()
    click(at, "train_start")
    session = at.session_state["train_session"]
    assert session.join(120)
    time.sleep(0.2)
    at.run()
    assert session.snapshot().progress.samples_per_s > 0  # the run measured a speed ...
    assert {m.label: m.value for m in at.metric}["Images per second"] == "–"  # ... which is not shown when done


def test_a_limited_run_says_how_many_images_it_trains_on_and_how_many_it_holds_out():
    """The sidebar's numbers are the run's own: with a validation share (and an image dropped on the
    Evaluate page) a limit of 9,500 images trains on fewer, and the held-out images are counted."""
    from dlplay.nn.spec import DROP, TrainConfig

    def sidebar_note(lang, opening):
        at = AppTest.from_file(APP, default_timeout=60)
        at.session_state["lang"] = lang
        at.session_state["config"] = TrainConfig(epochs=1, train_size=9_500, val_share=0.1, seed=0,
                                                 label_edits=((3, DROP),))
        at.run()
        at.switch_page("views/train.py")
        at.run()
        assert not at.exception, at.exception
        notes = [i.value for i in at.sidebar.info if i.value.startswith(opening)]
        assert len(notes) == 1, [i.value for i in at.sidebar.info]
        return at, notes[0]

    at, note = sidebar_note("en", "Trains on")
    click(at, "train_step")  # the run itself: how many images does it train on, how many validate?
    session = at.session_state["train_session"]
    try:
        trained, held_out = f"{session.train_size:,}", f"{len(session.split.val):,}"
    finally:
        session.stop()
        session.join(10)
    assert session.train_size < 9_500
    assert "9,500" not in note
    assert f"Trains on {trained} training images" in note
    assert f"{held_out} images (10%" in note
    _, note_zh = sidebar_note("zh", "只用")  # (AppTest clicks only in English: the Chinese page is read)
    assert f"只用 {trained} 张训练图像" in note_zh
    assert f"另有 {held_out} 张" in note_zh


def test_the_lr_slider_shows_exactly_the_rate_the_run_uses():
    """Issue 33: the LSTM preset trains at 0.002 and the slider showed 0.003 (it had no 0.002 stop)."""
    at = open_train()
    at.sidebar.selectbox(key="tw_preset").set_value("lstm_rows").run()
    assert at.session_state["config"].lr == 0.002
    assert at.sidebar.select_slider(key="tw_lr").value == 0.002
    assert at.sidebar.select_slider(key="tw_lr").format_func(0.002) == "0.002"
    from dlplay.nn.spec import TrainConfig
    at.session_state["config"] = TrainConfig(lr=0.005, batch_size=100)  # e.g. a shared link: no stop at either
    at.run()
    assert not at.exception, at.exception
    assert at.sidebar.select_slider(key="tw_lr").value == 0.005
    assert "0.005" in at.sidebar.select_slider(key="tw_lr").options
    assert at.sidebar.select_slider(key="tw_batch").value == 100
    assert at.session_state["config"].lr == 0.005
    assert at.session_state["config"].batch_size == 100  # unchanged
