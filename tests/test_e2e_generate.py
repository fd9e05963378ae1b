"""The Generate page in a real headless Chromium: the 2-D lab steps D and G and its heatmap shows;
the MNIST GAN trains from the page, its filmstrip grows, and the 8×8 grid downloads as a 224×224 PNG.
With DLPLAY_SHOTS set, screenshots of both modes in English and Chinese go to that folder
(docs/screenshots/generate-*.png in the repository)."""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from e2e_util import click_button, measure_for, metric_value, wait_for_charts, wait_for_idle

SHOTS = os.environ.get("DLPLAY_SHOTS")
SLOW_MS = 120_000


def shot(page, name: str, height: int = 2000) -> None:
    """A screenshot of the whole page (Streamlit scrolls inside its own container: a tall viewport)."""
    if not SHOTS:
        return
    folder = Path(SHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1400, "height": height})
    wait_for_charts(page, SLOW_MS)
    page.screenshot(path=str(folder / f"generate-{name}.png"))
    page.set_viewport_size({"width": 1400, "height": 1000})


def step_count(page, label: str) -> int:
    return int(metric_value(page, label).replace(",", "") or 0)


def wait_for_steps(page, label: str, n: int) -> None:
    """Until the step metric reads ``n``."""
    page.wait_for_function(
        """([label, n]) => [...document.querySelectorAll('[data-testid=stMetric]')].some(m =>
             m.querySelector('[data-testid=stMetricLabel]')?.innerText.trim() === label &&
             m.querySelector('[data-testid=stMetricValue]')?.innerText.trim() === String(n))""",
        arg=[label, n], timeout=SLOW_MS)


# counts the messages the server sends the page: each rerun of the live fragment sends some
COUNT_FRAMES_JS = """window.__frames = 0;
window.WebSocket = class extends window.WebSocket {
  constructor(...args) { super(...args); this.addEventListener('message', () => { window.__frames += 1; }); }
};"""


def open_counting(context, base_url: str, lang: str):
    """The Generate page (as open_app_page) in a tab that counts the messages the server sends it."""
    page = context.new_page()
    page.add_init_script(COUNT_FRAMES_JS)
    page.goto(f"{base_url}/generate?lang={lang}")
    page.wait_for_selector("[data-testid=stMainBlockContainer] h1", timeout=90_000)
    wait_for_idle(page)
    return page


def messages_in(page, ms: int) -> int:
    """How many messages the page receives in the next ``ms`` milliseconds."""
    before = page.evaluate("() => window.__frames")
    measure_for(ms / 1000)
    return page.evaluate("() => window.__frames") - before


def falls_silent(page, window_ms: int = 3000, windows: int = 8) -> bool:
    """Whether the page, once the reruns after a click are through, receives nothing for ``window_ms``
    (a page that polls every 0.5 s never does)."""
    return any(messages_in(page, window_ms) == 0 for _ in range(windows))


def plane_has_heatmap(page) -> bool:
    return page.locator(".st-key-gen_plane .heatmaplayer image, .st-key-gen_plane .hm image").count() > 0


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_2d_lab_steps_and_shows_the_heatmap(streamlit_server, browser_context, lang):
    from dlplay.i18n import translate

    page = open_counting(browser_context, streamlit_server, lang)
    try:
        step_label = translate("generate.m_step", lang)
        page.wait_for_selector(".st-key-gen_plane .js-plotly-plot", timeout=SLOW_MS)  # the real shape, before any run
        for n, key in enumerate(("gen_lab_step_d", "gen_lab_step_g", "gen_lab_step_both"), start=1):
            # each step once the page shows the previous one (while a step runs, the step buttons are disabled)
            wait_for_idle(page, SLOW_MS)
            page.wait_for_selector(f".st-key-{key} button:not([disabled])", timeout=SLOW_MS)
            click_button(page, key)
            wait_for_steps(page, step_label, n)
        page.wait_for_function("() => !!document.querySelector('.st-key-gen_plane .hm image, .st-key-gen_plane .heatmaplayer image')",
                               timeout=SLOW_MS)
        assert plane_has_heatmap(page)
        assert page.locator("[data-testid=stException]").count() == 0
        click_button(page, "gen_lab_start")  # runs on its own at the default watchable pace
        page.wait_for_function(
            """(label) => [...document.querySelectorAll('[data-testid=stMetric]')].some(m =>
                 m.querySelector('[data-testid=stMetricLabel]')?.innerText.trim() === label &&
                 parseInt((m.querySelector('[data-testid=stMetricValue]')?.innerText || '0').replace(/,/g, '')) >= 40)""",
            arg=step_label, timeout=SLOW_MS)
        # the live fragment redraws the plane while it trains: wait for a drawn one, not a snapshot mid-redraw
        page.wait_for_function("() => !!document.querySelector('.st-key-gen_plane .hm image, .st-key-gen_plane .heatmaplayer image')",
                               timeout=SLOW_MS)
        assert messages_in(page, 2000) > 5  # while it trains, the live fragment redraws the plane
        click_button(page, "gen_lab_pause")
        wait_for_idle(page, SLOW_MS)
        assert falls_silent(page)  # paused: drawn once, then no more reruns (it was ~100 messages a second)
        page.wait_for_function("() => !!document.querySelector('.st-key-gen_plane .hm image, .st-key-gen_plane .heatmaplayer image')",
                               timeout=SLOW_MS)
        shot(page, f"lab-{lang}")
    finally:
        page.close()


def frame_count(page) -> int:
    slider = page.locator(".st-key-gen_frame input[type=range]")
    return int(slider.first.get_attribute("max") or 0) if slider.count() else 0


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_mnist_gan_trains_from_the_page_and_its_grid_downloads(streamlit_server, browser_context, lang, tmp_path):
    from dlplay.i18n import translate

    page = open_counting(browser_context, streamlit_server, lang)
    try:
        page.get_by_text(translate("generate.mode_digits", lang), exact=True).click()
        page.wait_for_selector(".st-key-gen_digits_start button", timeout=SLOW_MS)
        wait_for_idle(page, SLOW_MS)
        click_button(page, "gen_digits_start")
        page.wait_for_selector(".st-key-gen_filmstrip .js-plotly-plot", timeout=SLOW_MS)  # the first frame
        page.wait_for_function("() => { const s = document.querySelector('.st-key-gen_frame input[type=range]');"
                               " return s && parseInt(s.getAttribute('max')) >= 3; }", timeout=SLOW_MS)
        first = frame_count(page)
        page.wait_for_function("(n) => { const s = document.querySelector('.st-key-gen_frame input[type=range]');"
                               " return s && parseInt(s.getAttribute('max')) > n; }", arg=first, timeout=SLOW_MS)
        assert frame_count(page) > first  # the filmstrip grows while it trains
        assert step_count(page, translate("generate.m_step", lang)) > 0
        click_button(page, "gen_digits_stop")  # the page stops polling: downloads from a still page
        page.wait_for_selector(".st-key-gen_digits_start button:not([disabled])", timeout=SLOW_MS)
        wait_for_idle(page, SLOW_MS)
        assert falls_silent(page)  # stopped: no more polling
        page.get_by_role("tab").nth(4).click()  # Download and save
        with page.expect_download(timeout=SLOW_MS) as download:
            click_button(page, "gen_grid_png")
        path = tmp_path / "grid.png"
        download.value.save_as(path)
        with Image.open(io.BytesIO(path.read_bytes())) as grid:
            assert grid.size == (224, 224)
            assert grid.mode == "L"
            assert grid.getextrema()[1] > 100  # white ink somewhere, on black
        if lang == "en":  # both networks saved and loaded back through the page
            with page.expect_download(timeout=SLOW_MS) as download:
                click_button(page, "gen_ckpt_download")
            ckpt = tmp_path / "gan.pt"
            download.value.save_as(ckpt)
            page.locator(".st-key-gen_ckpt_upload input[type=file]").set_input_files(str(ckpt))
            page.get_by_text(translate("generate.loaded", lang, steps="").split("(")[0].strip()).first.wait_for(timeout=SLOW_MS)
            page.get_by_role("tab").nth(1).click()  # Grade with a classifier
            click_button(page, "gen_grade")
            page.wait_for_selector(".st-key-gen_grade_fig .js-plotly-plot", timeout=SLOW_MS)
        wait_for_idle(page, SLOW_MS)
        assert page.locator("[data-testid=stException]").count() == 0
        shot(page, f"digits-{lang}", height=2600)
    finally:
        page.close()
