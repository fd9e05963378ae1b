"""Draw page with AppTest: quick training, a drawn (injected) digit, uploads, empty canvas, Chinese."""
from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from dlplay.classify.predict import predict_batch
from dlplay.classify.train import TrainingSession
from dlplay.data.canvas import preprocess
from dlplay.nn.spec import LayerSpec, ModelSpec, TrainConfig, dense_spec
from helpers import stop_and_join, wait_for, wait_for_status

REPO = Path(__file__).resolve().parents[1]
CANVAS_KEY = "draw_canvas"


def draw_page(session: TrainingSession | None = None, lang: str = "en") -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.session_state["lang"] = lang
    if session is not None:
        at.session_state["train_session"] = session
    at.run()
    at.switch_page("views/draw.py")
    at.run()
    assert not at.exception, at.exception
    return at


def canvas_rgba(digit: np.ndarray) -> np.ndarray:
    """A real 28x28 digit drawn large on the black 280x280 canvas, as the canvas sends it."""
    big = np.asarray(Image.fromarray(digit).resize((224, 224), Image.Resampling.BICUBIC))
    rgba = np.zeros((280, 280, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[28:252, 28:252, :3] = big[..., None]
    return rgba


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def draw(at: AppTest, rgba: np.ndarray | None) -> None:
    """Put a drawing into the canvas widget's state (what the browser sends on mouse up) and rerun."""
    data = None if rgba is None else "data:image/png;base64," + base64.b64encode(png_bytes(rgba)).decode()
    at.session_state[CANVAS_KEY] = {"drawing": {"png": data, "strokes": 1, "version": 1}}
    at.run()
    assert not at.exception, at.exception


def guess_html(at: AppTest) -> str:
    return next(m.value for m in at.markdown if 'class="dl-guess"' in m.value)


def guessed_digit(at: AppTest) -> str | None:
    html = guess_html(at)
    if "dl-guess-digit" not in html:
        return None
    return html.split('class="dl-guess-digit">')[1].split("<")[0]


def charts(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


def test_first_visit_offers_quick_training_and_asks_for_a_digit() -> None:
    at = draw_page()
    assert at.title[0].value == "Draw a digit"
    assert at.button(key="draw_quick_train").label == "Train quickly (1 epoch)"
    assert "Draw a digit" in guess_html(at)
    assert charts(at) == 0
    assert at.session_state["drawing28"] is None
    # drawing without a model: the 28x28 is prepared and kept, the page asks for training
    draw(at, canvas_rgba(np.eye(28, dtype=np.uint8) * 255))
    assert at.session_state["drawing28"].shape == (28, 28)
    assert "Train a network" in guess_html(at)
    assert charts(at) == 0


def test_quick_train_trains_one_epoch_without_changing_the_settings() -> None:
    at = draw_page()
    settings = at.session_state["config"]
    at.button(key="draw_quick_train").click()
    at.run()
    assert not at.exception, (at.exception, at.error)
    assert not at.error, (at.exception, at.error)
    session = at.session_state["train_session"]
    assert session.config == settings.with_changes(epochs=1, val_share=0.0, patience=0)  # on every training image
    assert at.session_state["config"] == settings  # the user's epochs are untouched
    assert session.heartbeat_timeout is not None
    assert session.join(timeout=300)
    assert session.status == "done"
    at.run()
    assert not at.exception, at.exception
    ready = at.success[0].value
    assert "epochs trained: 1," in ready
    assert "test accuracy" in ready
    assert all(b.key != "draw_quick_train" for b in at.button)


def test_drawn_digits_are_guessed_and_shared_with_the_inside_page(trained_tutorial, mnist) -> None:
    images, labels = mnist.test_images[:40].numpy(), mnist.test_labels[:40].numpy()
    info = mnist.info
    sure = predict_batch(trained_tutorial.model_copy(), images, info.mean, info.std).argmax(1) == labels
    picks = [i for i in range(40) if sure[i]][:6]  # digits the network gets right in MNIST's own form
    at = draw_page(trained_tutorial)
    assert "Guessing with your network 784 → Dense 128 relu → 10" in at.success[0].value
    right = 0
    for i in picks:
        rgba = canvas_rgba(images[i])
        draw(at, rgba)
        np.testing.assert_array_equal(at.session_state["drawing28"], preprocess(rgba).image28)
        right += guessed_digit(at) == str(labels[i])
        assert "sure" in guess_html(at)
    assert right >= len(picks) - 1, f"{right}/{len(picks)} redrawn test digits recognised"
    assert charts(at) == 3  # probabilities, dense1, output
    assert [s.value for s in at.subheader] == ["The forward pass of your digit"]
    headings = " ".join(m.value for m in at.markdown)
    assert "**dense1**: 128 neurons, activation relu." in headings
    assert "**output**: 10 scores" in headings


def test_model_copy_is_reused_until_training_moves_on(trained_tutorial, mnist) -> None:
    at = draw_page(trained_tutorial)
    draw(at, canvas_rgba(mnist.test_images[0].numpy()))
    first = at.session_state["draw_model_cache"]
    draw(at, canvas_rgba(mnist.test_images[1].numpy()))
    assert at.session_state["draw_model_cache"][1] is first[1]


def test_empty_canvas_shows_no_prediction(trained_tutorial) -> None:
    at = draw_page(trained_tutorial)
    draw(at, np.zeros((280, 280, 4), dtype=np.uint8) + np.array([0, 0, 0, 255], dtype=np.uint8))
    assert "Draw a digit" in guess_html(at)
    assert guessed_digit(at) is None
    assert charts(at) == 0
    assert at.session_state["drawing28"] is None
    dot = np.zeros((280, 280, 4), dtype=np.uint8)
    dot[..., 3] = 255
    dot[140:144, 140:144, :3] = 255  # a tiny dot is not a digit
    draw(at, dot)
    assert guessed_digit(at) is None
    assert at.session_state["drawing28"] is None


def test_uploaded_pictures_are_guessed_and_bad_files_explained(trained_tutorial, mnist) -> None:
    at = draw_page(trained_tutorial)
    at.radio(key="draw_source").set_value("upload").run()
    assert "Upload a picture of one digit" in guess_html(at)
    assert not at.error
    # a photo-like upload: dark ink on white paper, larger than the canvas
    digit = mnist.test_images[0].numpy()
    paper = 255 - np.asarray(Image.fromarray(digit).resize((400, 400), Image.Resampling.BICUBIC))
    at.file_uploader(key="draw_upload").set_value(("seven.png", png_bytes(paper), "image/png")).run()
    assert not at.exception, at.exception
    assert guessed_digit(at) == str(int(mnist.test_labels[0]))
    assert at.session_state["drawing28"].shape == (28, 28)
    at.file_uploader(key="draw_upload").set_value(("fake.png", b"this is not a picture", "image/png")).run()
    assert "not an image that can be read" in at.error[0].value
    assert "Try another picture" in guess_html(at)
    assert guessed_digit(at) is None
    assert at.session_state["drawing28"] is None
    at.file_uploader(key="draw_upload").set_value(("huge.png", b"\x89PNG" + bytes(6_000_000), "image/png")).run()
    assert "too large" in at.error[0].value
    blank = np.full((200, 200), 255, dtype=np.uint8)  # white paper, no digit
    at.file_uploader(key="draw_upload").set_value(("blank.png", png_bytes(blank), "image/png")).run()
    assert "No digit found" in guess_html(at)
    assert not at.error


def test_a_chosen_test_image_is_guessed_like_a_drawing(trained_tutorial, mnist) -> None:
    images, labels = mnist.test_images[:100].numpy(), mnist.test_labels[:100].numpy()
    info = mnist.info
    guesses = predict_batch(trained_tutorial.model_copy(), images, info.mean, info.std).argmax(1)
    at = draw_page(trained_tutorial)
    at.radio(key="draw_source").set_value("test").run()
    assert not at.exception, at.exception
    box = at.selectbox(key="draw_test_index")
    assert len(box.options) == 100
    assert box.options[0] == f"No. 1: {int(labels[0])}"
    for i in (0, 7, 42):
        box.set_value(i).run()
        assert not at.exception, at.exception
        np.testing.assert_array_equal(at.session_state["drawing28"], images[i])  # the test image itself
        assert guessed_digit(at) == str(int(guesses[i]))  # the network's own guess for it
        assert f"no. {i + 1}, labelled “{int(labels[i])}”" in " ".join(c.value for c in at.caption)
    assert charts(at) == 3  # probabilities, dense1, output
    at.session_state["lang"] = "zh"
    at.run()
    assert at.selectbox(key="draw_test_index").options[0] == f"第 1 张：{int(labels[0])}"


def test_conv_network_shows_feature_maps(mnist) -> None:
    spec = ModelSpec(layers=(LayerSpec("conv2d", 4, "relu", kernel=5), LayerSpec("maxpool", kernel=2, stride=2)))
    session = TrainingSession(spec, TrainConfig(epochs=1, train_size=256, batch_size=64), mnist, "cpu")
    session.start()
    assert session.join(timeout=120)
    assert session.status == "done"
    at = draw_page(session)
    draw(at, canvas_rgba(mnist.test_images[3].numpy()))
    headings = " ".join(m.value for m in at.markdown)
    assert "**conv2d1**: 4 feature maps of 24 × 24" in headings
    assert "**maxpool1**: 4 feature maps of 12 × 12" in headings
    assert charts(at) == 4  # probabilities, conv2d1, maxpool1, output


def test_page_in_chinese(trained_tutorial, mnist) -> None:
    at = draw_page(trained_tutorial, lang="zh")
    assert at.title[0].value == "手写识别：写一个数字"  # the sidebar's name for the page, then what to do
    assert "请写一个数字" in guess_html(at)
    draw(at, canvas_rgba(mnist.test_images[0].numpy()))
    assert "神经网络认为这是" in guess_html(at)
    assert "把握" in guess_html(at)
    assert [s.value for s in at.subheader] == ["你写的数字的前向传播"]


def test_paused_first_epoch_points_to_the_train_page(mnist) -> None:
    session = TrainingSession(dense_spec([16]), TrainConfig(epochs=1), mnist, "cpu")
    session.step(1)  # starts paused after one step: no finished epoch yet
    assert wait_for_status(session, "paused")
    try:
        at = draw_page(session)
        assert "paused before finishing its first epoch" in at.info[0].value
        assert all(b.key != "draw_quick_train" for b in at.button)
    finally:
        stop_and_join(session)


def test_queued_quick_training_says_it_waits(mnist) -> None:
    from dlplay.server.slots import SlotPool

    pool = SlotPool(1)
    holder = TrainingSession(dense_spec([16]), TrainConfig(epochs=1), mnist, "cpu", slot_pool=pool)
    waiting = TrainingSession(dense_spec([16]), TrainConfig(epochs=1), mnist, "cpu", slot_pool=pool)
    holder.start(paused=True)  # takes the only place, then waits
    assert wait_for_status(holder, "paused")
    waiting.start()
    assert wait_for_status(waiting, "queued")
    try:
        at = draw_page(waiting)
        assert "position 1 in the queue" in at.info[0].value
        assert all(b.key != "draw_quick_train" for b in at.button)
    finally:
        stop_and_join(waiting, holder)


def test_canvas_png_decoding_and_cache(mnist) -> None:
    from dlplay.ui.canvas_widget import decode_png_data_url
    from dlplay.ui.drawing import digit_from_png

    rgba = canvas_rgba(mnist.test_images[0].numpy())
    url = "data:image/png;base64," + base64.b64encode(png_bytes(rgba)).decode()
    np.testing.assert_array_equal(decode_png_data_url(url), rgba)
    assert decode_png_data_url(None) is None
    assert decode_png_data_url("data:image/png;base64,!!!not base64") is None
    assert decode_png_data_url("data:image/png;base64," + base64.b64encode(b"not a png").decode()) is None
    first = digit_from_png(url)
    assert first is digit_from_png(url)
    assert not first.flags.writeable  # cached, shared, read-only
    np.testing.assert_array_equal(first, preprocess(rgba).image28)
    assert digit_from_png(None) is None


def test_a_run_still_training_is_used_and_followed(mnist) -> None:
    """A run from the Train page guesses as soon as one epoch is done, and newer weights are picked up."""
    session = TrainingSession(dense_spec([32]), TrainConfig(epochs=100, train_size=1000), mnist, "cpu",
                              heartbeat_timeout=120)
    session.start()
    assert wait_for(lambda: session.metrics.progress.epoch >= 1, timeout=120)
    try:
        at = draw_page(session)
        assert "It is still training" in at.success[0].value
        draw(at, canvas_rgba(mnist.test_images[0].numpy()))
        assert guessed_digit(at) is not None
        first_key, first_model = at.session_state["draw_model_cache"]
        step = first_key[1]
        assert wait_for(lambda: session.metrics.progress.global_step > step, timeout=120)
        at.run()  # the page polls while the run trains; AppTest needs an explicit rerun
        key, model = at.session_state["draw_model_cache"]
        assert key[1] > step
        assert model is not first_model
    finally:
        stop_and_join(session)
