"""In a real headless Chromium: pick the LSTM preset on Train, start it, draw a digit on Draw, open
Sequences, see the gradient-through-time chart update while it trains and the early-prediction curve
for the drawing; screenshots in English and Chinese to /work/shots/seq-*.png (or DLPLAY_SHOTS)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from e2e_util import choose_option, click_button, open_app_page, rerun_after, set_pace, wait_for_charts, wait_for_idle
from test_e2e_draw import CANVAS, DIGITS, _draw_strokes
from test_e2e_i18n import choose_language

SLOW_MS = 120_000
SHOTS = Path(os.environ.get("DLPLAY_SHOTS") or tempfile.mkdtemp(prefix="dlplay-shots-"))  # docs/screenshots: set DLPLAY_SHOTS
TGRAD_STEP_JS = """() => {
  const plot = document.querySelector('.st-key-seq_tgrad_chart .js-plotly-plot');
  return plot && plot.layout && plot.layout.title ? plot.layout.title.text : '';
}"""
EARLY_POINTS_JS = """() => {
  const plot = document.querySelector('.st-key-seq_early_chart .js-plotly-plot');
  return plot && plot._fullData ? plot._fullData.length * (plot._fullData[0] ? plot._fullData[0]._length : 0) : 0;
}"""


def go(page, label: str) -> None:
    """Follow the sidebar link ``label`` (the same Streamlit session, so the run and the drawing stay)."""
    wait_for_idle(page, SLOW_MS)
    page.keyboard.press("Escape")
    rerun_after(page, page.locator("[data-testid=stSidebarNav] a").filter(has_text=label).first.click, SLOW_MS)


def pick(page, key: str, option: str) -> None:
    choose_option(page, key, option, SLOW_MS)


def shot(page, name: str) -> None:
    """The whole page (Streamlit scrolls inside its own container: a tall window shows all of it)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1300, "height": 5200})
    wait_for_charts(page, SLOW_MS)
    page.screenshot(path=str(SHOTS / f"seq-{name}.png"))
    page.set_viewport_size({"width": 1300, "height": 900})


@pytest.mark.browser
@pytest.mark.slow
def test_lstm_preset_trains_and_the_sequences_page_follows(streamlit_server, browser_context):
    page = open_app_page(browser_context, streamlit_server, "train")
    page.set_viewport_size({"width": 1300, "height": 900})
    pick(page, "tw_preset", "LSTM reading rows")
    set_pace(page, 50)  # still training while the other pages are visited
    click_button(page, "train_start")
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid=stMetric]')].some(m =>
             m.innerText.includes('Status') && m.innerText.includes('training'))""", timeout=SLOW_MS)

    go(page, "Draw")  # a 7, drawn with the mouse
    page.wait_for_selector(CANVAS, timeout=SLOW_MS)
    box = page.locator(CANVAS).first.bounding_box()
    _draw_strokes(page, DIGITS[7], box)
    before = page.locator(".dl-guess").first.get_attribute("data-sig") or ""
    page.mouse.up()
    page.wait_for_function(
        "old => { const e = document.querySelector('.dl-guess'); return e && e.dataset.sig !== old; }",
        arg=before, timeout=SLOW_MS)  # the guess shows the drawing
    wait_for_idle(page, SLOW_MS)

    go(page, "Sequences")
    page.wait_for_function(f"() => ({TGRAD_STEP_JS})() !== ''", timeout=SLOW_MS)
    first = page.evaluate(TGRAD_STEP_JS)
    page.wait_for_function(f"() => {{ const t = ({TGRAD_STEP_JS})(); return t !== '' && t !== {first!r}; }}",
                           timeout=SLOW_MS)  # the probe measured again: the chart followed by itself
    rerun_after(page, page.locator(".st-key-seq_source label").filter(has_text="my drawing").first.click, SLOW_MS)
    assert "Your drawing" in page.locator("[data-testid=stMainBlockContainer]").inner_text()
    page.wait_for_function(f"() => ({EARLY_POINTS_JS})() >= 10 * 28", timeout=SLOW_MS)  # ten classes × 28 rows
    shot(page, "en")

    choose_language(page, "简体中文")
    page.wait_for_function("() => document.querySelector('h1') && document.querySelector('h1').innerText.includes('序列')",
                           timeout=SLOW_MS)
    wait_for_idle(page, SLOW_MS)
    page.wait_for_function(f"() => ({EARLY_POINTS_JS})() >= 10 * 28", timeout=SLOW_MS)
    shot(page, "zh")
    go(page, "训练")
    click_button(page, "train_stop")
    page.close()
