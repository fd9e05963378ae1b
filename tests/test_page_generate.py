"""The Generate page in Streamlit's AppTest: both modes in English and Chinese, a short 2-D run stepped
and started from the buttons, and a drawn distribution too small to learn gets a message."""
from __future__ import annotations

import base64
import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from dlplay.i18n import translate
from helpers import click, wait_for

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def open_page(lang: str = "en", mode: str = "lab") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["lang"] = lang
    at.session_state["gen_mode"] = mode
    at.run()
    at.switch_page("views/generate.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest, kinds: tuple[str, ...] = ("markdown", "caption", "info", "warning", "error")) -> str:
    return " ".join(str(e.value) for kind in kinds for e in at.get(kind))


def stop_runs(at: AppTest) -> None:
    for key in ("gen_lab_run", "gen_digits_run"):
        run = at.session_state.get(key, None)
        if run is not None:
            run.stop()
            run.join(10)


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("mode", ["lab", "digits"])
def test_both_modes_render_in_both_languages(lang, mode):
    at = open_page(lang, mode)
    assert at.title[0].value == translate("generate.title", lang)
    assert at.radio(key="gen_mode").value == mode
    start = "gen_lab_start" if mode == "lab" else "gen_digits_start"
    assert at.button(key=start).label == translate("generate.start", lang)
    assert "{" not in texts(at)
    if mode == "lab":
        assert {f"gen_lab_step_{k}" for k in ("d", "g", "both")} <= {b.key for b in at.button}
        assert at.get("plotly_chart"), "the plane shows the real shape before any run"
        assert "V(D,G)" in texts(at, ("latex",))


def test_a_short_2d_run_steps_and_trains():
    at = open_page("en", "lab")
    try:
        at.selectbox(key="gen_shape").set_value("ring").run()
        click(at, "gen_lab_step_d")
        run = at.session_state["gen_lab_run"]
        assert at.metric[1].value == "1"  # the click waits for its step: the page after it shows the step taken
        assert wait_for(lambda: run.snapshot().progress.global_step >= 1 and run.status == "paused", 30)
        snap = run.snapshot()
        assert snap.d_updates == 1
        assert snap.g_updates == 0  # Step D updated D only
        at.run()  # the page as it is now the run is paused (while a step runs, the step buttons are disabled)
        click(at, "gen_lab_step_g")
        assert wait_for(lambda: run.snapshot().g_updates == 1 and run.status == "paused", 30)
        assert run.snapshot().d_updates == 1
        at.run()
        click(at, "gen_lab_step_both")
        assert wait_for(lambda: run.snapshot().g_updates == 2 and run.status == "paused", 30)
        assert run.snapshot().d_updates == 1 + run.config.d_steps
        at.run()
        assert at.metric[1].value == "3"  # the step counter
        heat = [c for c in at.get("plotly_chart") if '"heatmap"' in c.proto.spec]
        assert heat, "D's heatmap is drawn once there is a run"
        assert "V = " in texts(at, ("latex",))  # the min-max loss with numbers
        # Start: a new run at the chosen pace (full speed here), trains on its own
        at.select_slider(key="gen_lab_pace").set_value(0).run()
        click(at, "gen_lab_start")
        new = at.session_state["gen_lab_run"]
        assert new is not run
        assert run.status == "stopped"
        assert wait_for(lambda: new.snapshot().progress.global_step >= 30, 60)
        time.sleep(0.6)
        at.run()
        assert int(at.metric[1].value.replace(",", "")) >= 30
        div = at.session_state["gen_lab_context"].divergence
        assert div
        assert all(0.0 <= d <= np.log(2) + 1e-9 for d in div)
        click(at, "gen_lab_reset")
        assert at.session_state["gen_lab_run"] is None
        assert new.join(10)
        assert new.status == "stopped"
    finally:
        stop_runs(at)


def canvas_png(rgba: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def drawing(marks: list[tuple[slice, slice]]) -> np.ndarray:
    """A white 280x280 canvas with green ink where ``marks`` say."""
    rgba = np.full((280, 280, 4), 255, dtype=np.uint8)
    for rows, cols in marks:
        rgba[rows, cols, :3] = (44, 160, 44)
    return rgba


def test_a_drawing_too_small_gets_a_message_and_no_run():
    at = open_page("en", "lab")
    at.selectbox(key="gen_shape").set_value("drawn").run()
    at.button(key="gen_lab_start").click().run()  # nothing drawn yet
    assert at.session_state["gen_lab_run"] is None
    assert [e.value for e in at.error] + [w.value for w in at.warning] == [translate("generate.drawn_empty", "en")]
    at.session_state["gen_canvas"] = {"drawing": {"png": canvas_png(drawing([(slice(100, 106), slice(100, 106))])),
                                                  "strokes": 1, "version": 1}}
    at.run()
    n = len(at.session_state["gen_drawn_points"])
    assert 0 < n < 20
    # one current message: the new one replaces "Nothing is drawn yet" (issue 33 saw both, the stale one above)
    assert [e.value for e in at.error] + [w.value for w in at.warning] == [
        translate("generate.drawn_too_few", "en", n=n, min=20)]
    at.button(key="gen_lab_step_both").click().run()  # stepping refuses it too
    assert at.session_state["gen_lab_run"] is None
    assert [e.value for e in at.error] + [w.value for w in at.warning] == [
        translate("generate.drawn_too_few", "en", n=n, min=20)]
    assert translate("generate.drawn_too_few", "en", n=n, min=20) in [e.value for e in at.error]  # refused: an error


def test_the_drawing_message_in_chinese():
    """(AppTest formats option labels on the test side in English: in Chinese, state is injected, no clicks.)"""
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["lang"] = "zh"
    at.session_state["gen_mode"] = "lab"
    at.session_state["gen_shape"] = "drawn"
    at.session_state["gen_canvas"] = {"drawing": {"png": canvas_png(drawing([(slice(0, 4), slice(0, 8))])),
                                                  "strokes": 1, "version": 1}}
    at.run()
    at.switch_page("views/generate.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    n = len(at.session_state["gen_drawn_points"])
    assert translate("generate.drawn_too_few", "zh", n=n, min=20) in [w.value for w in at.warning]


def test_a_drawn_distribution_is_learned_from():
    at = open_page("en", "lab")
    try:
        at.selectbox(key="gen_shape").set_value("drawn").run()
        stroke = drawing([(slice(60, 76), slice(40, 240)), (slice(200, 216), slice(40, 240))])  # two bars
        at.session_state["gen_canvas"] = {"drawing": {"png": canvas_png(stroke), "strokes": 2, "version": 1}}
        at.run()
        points = at.session_state["gen_drawn_points"]
        assert len(points) >= 100
        assert not at.warning
        assert (points[:, 1] > 0.3).any()
        assert (points[:, 1] < -0.3).any()  # top bar up, bottom bar down
        assert np.abs(points).max() <= 1.0
        click(at, "gen_lab_step_both")
        run = at.session_state["gen_lab_run"]
        assert wait_for(lambda: run.snapshot().progress.global_step >= 1, 30)
        real = at.session_state["gen_lab_context"].real
        assert np.abs(np.abs(real[:, 1]) - 0.6).max() < 0.2  # the real points are the drawn bars
    finally:
        stop_runs(at)


def test_mnist_gan_trains_and_is_graded_and_checked():
    """Start the MLP GAN, see frames arrive, pause; grade 1,000 samples (no classifier in the session: one
    is trained on the spot, and the page says so) and look for the nearest training images."""
    at = open_page("en", "digits")
    try:
        click(at, "gen_digits_start")
        run = at.session_state["gen_digits_run"]
        film = at.session_state["gen_digits_context"].film
        assert wait_for(lambda: len(film.frames()) >= 2, 120), run.status  # frame 0 and a trained one
        at.run()  # the buttons follow the run's state
        click(at, "gen_digits_pause")
        assert wait_for(lambda: run.status == "paused", 30)
        at.run()
        assert at.get("plotly_chart")
        assert not at.error
        click(at, "gen_grade")
        result = at.session_state["gen_digits_context"].grade
        assert result is not None
        assert result.grade.n == 1000
        assert result.classifier is None
        assert sum(result.grade.histogram) == 1000
        assert any(translate("generate.grade_by_quick", "en", acc=f"{result.quick_accuracy * 100:.1f}",
                             step=f"{result.step:,}") == i.value for i in at.info)
        if result.grade.collapse:  # (early in training it usually is)
            assert any(str(result.grade.missing[0]) in e.value for e in at.error)
        click(at, "gen_memo")
        memo = at.session_state["gen_digits_context"].memo
        assert memo is not None
        assert len(memo.distances) == 8
        assert memo.nearest.shape == (8, 28, 28)
        assert all(d > 0 for d in memo.distances)
    finally:
        stop_runs(at)


def test_the_chosen_mode_and_settings_survive_a_visit_to_another_page():
    """Issue 33: back on Generate after another page, the page showed the 2-D lab again, hiding a GAN that was
    still training on MNIST digits. The mode, the settings and the run must all still be there."""
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["lang"] = "en"
    at.run()
    at.switch_page("views/generate.py")
    at.run()
    assert at.radio(key="gen_mode").value == "lab"
    at.select_slider(key="gen_lab_steps").set_value(10_000).run()
    at.radio(key="gen_mode").set_value("digits").run()
    at.toggle(key="gen_conditional").set_value(True).run()
    try:
        click(at, "gen_digits_start")
        run = at.session_state["gen_digits_run"]
        assert run is not None
        for page in ("views/home.py", "views/train.py"):
            at.switch_page(page)
            at.run()
            assert not at.exception, [e.value for e in at.exception]
        at.switch_page("views/generate.py")
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.radio(key="gen_mode").value == "digits"
        assert at.toggle(key="gen_conditional").value is True
        assert at.session_state["gen_digits_run"] is run
        assert run.status in ("running", "queued", "done")
        assert any(b.key == "gen_digits_stop" and not b.disabled for b in at.button)  # the run is shown, still training
        at.radio(key="gen_mode").set_value("lab").run()
        assert at.select_slider(key="gen_lab_steps").value == 10_000
    finally:
        stop_runs(at)


def test_the_lab_says_its_step_limit_before_and_after():
    """Issue 33: the lab said "finished" at step 3,000 without ever saying that 3,000 was its limit. The limit
    is chosen in the sidebar, shown under the buttons from the start, and named when the contest ends."""
    at = open_page("en", "lab")
    try:
        assert at.select_slider(key="gen_lab_steps").value == 3_000
        assert f"{translate('generate.progress', 'en', step='0', total='3,000')}" in [p.proto.text for p in at.get("progress")]
        at.select_slider(key="gen_lab_steps").set_value(1_000).run()
        assert translate("generate.progress", "en", step="0", total="1,000") in [p.proto.text for p in at.get("progress")]
        at.select_slider(key="gen_lab_pace").set_value(0).run()  # full speed
        click(at, "gen_lab_start")
        run = at.session_state["gen_lab_run"]
        assert run.total_steps == 1_000
        assert run.join(120)
        assert run.status == "done"
        at.run()
        assert translate("generate.progress", "en", step="1,000", total="1,000") in [p.proto.text for p in at.get("progress")]
        assert translate("generate.lab_finished", "en", total="1,000") in [i.value for i in at.info]
    finally:
        stop_runs(at)
