"""In a real headless Chromium, in English and Chinese: fork a finished short run and see the overlay of
the two runs; pin a drawing on the Draw page, train on the Train page and see its probability chart
grow. Screenshots go to docs/screenshots/fork-*.png and pins-*.png."""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest

from dlplay.i18n import translate
from e2e_util import (
    choose_option,
    click_button,
    commit_input,
    open_app_page,
    set_pace,
    wait_for_charts,
    wait_for_idle,
)
from test_e2e_draw import CANVAS, DIGITS, _draw_strokes

SHOTS = Path(os.environ.get("DLPLAY_SHOTS") or tempfile.mkdtemp(prefix="dlplay-shots-"))  # docs/screenshots: set DLPLAY_SHOTS
SLOW_MS = 180_000  # a loaded CI machine

POINTS_JS = """sel => {
  const plot = document.querySelector(sel + ' .js-plotly-plot');
  return plot && plot._fullData && plot._fullData.length ? Math.max(...plot._fullData.map(d => d._length || 0)) : 0;
}"""


def points(page, selector: str) -> int:
    return page.evaluate(POINTS_JS, selector)


def status_is(page, lang: str, status: str) -> None:
    label, value = translate("train.m_status", lang), translate(f"train.status_{status}", lang)
    page.wait_for_function(
        """([label, value]) => [...document.querySelectorAll('[data-testid=stMetric]')].some(m =>
             m.innerText.includes(label) && m.innerText.includes(value))""",
        arg=[label, value], timeout=SLOW_MS,
    )


def set_number(page, key: str, value: int) -> None:
    commit_input(page, page.locator(f".st-key-{key} input").first, str(value))


def choose(page, key: str, option: str) -> None:
    page.keyboard.press("Escape")  # an open dropdown elsewhere makes the rest of the page inert
    choose_option(page, key, re.compile(f"^{re.escape(option)}$"))


def go_to(page, path: str) -> None:
    """Through the sidebar's navigation: the same browser session (a new URL would start a new one)."""
    page.locator(f"[data-testid=stSidebarNav] a[href*='/{path}']").first.click()
    page.wait_for_selector(f".st-key-{'train_start' if path == 'train' else 'pins_draw_add'}", timeout=SLOW_MS)
    wait_for_idle(page)


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_fork_a_finished_run_and_see_the_overlay(streamlit_server, browser_context, lang):
    page = open_app_page(browser_context, streamlit_server, "train", lang)
    set_number(page, "tw_epochs", 2)
    click_button(page, "train_start")
    status_is(page, lang, "done")
    wait_for_charts(page)  # the run's end reruns the page once more (polling stops)
    page.wait_for_selector(".st-key-fork_go button")  # the expander opens by itself before the first fork
    choose(page, "fork_kind", translate("fork.change_lr", lang))
    page.wait_for_selector(".st-key-fork_value_lr")
    expander = page.locator("[data-testid=stExpander]").filter(has=page.locator(".st-key-fork_go")).first
    expander.scroll_into_view_if_needed()
    expander.screenshot(path=str(SHOTS / f"fork-panel-{lang}.png"))
    click_button(page, "fork_go")
    page.wait_for_selector(".st-key-fork_overlay .js-plotly-plot", timeout=SLOW_MS)
    status_is(page, lang, "done")
    wait_for_charts(page)  # the last poll redraws the overlay with the fork's final epoch
    overlay = page.locator(".st-key-fork_overlay")
    assert overlay.locator(".js-plotly-plot").count() == 3
    # both runs are drawn from the fork point on: the original (blue) and the fork (orange)
    names = page.evaluate("""() => [...document.querySelectorAll('.st-key-fork_overlay .js-plotly-plot')]
        .map(p => p._fullData.filter(d => d._length > 0).map(d => d.name))""")
    parent, fork = translate("fork.fig_parent", lang), translate("fork.fig_fork", lang)
    assert all(parent in n and fork in n for n in names), names
    caption = page.get_by_text(translate("fork.overlay_caption", lang), exact=False).first.inner_text()
    assert "0.001 → 0.01" in caption
    page.locator("h3").filter(has_text=translate("fork.overlay_title", lang)).first.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / f"fork-overlay-{lang}.png"), full_page=False)
    page.close()


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_pin_a_drawing_train_and_see_its_chart_grow(streamlit_server, browser_context, lang):
    page = open_app_page(browser_context, streamlit_server, "draw", lang)
    page.wait_for_selector(CANVAS)
    canvas = page.locator(CANVAS).first
    _draw_strokes(page, DIGITS[7], canvas.bounding_box())
    page.mouse.up()
    page.wait_for_function("() => !document.querySelector('.st-key-pins_draw_add button').disabled", timeout=SLOW_MS)
    wait_for_idle(page)
    choose(page, "pins_draw_label", "7")
    click_button(page, "pins_draw_add")
    count = translate("pins.pinned_count", lang, n=1, max=8)
    page.get_by_text(count).first.wait_for(timeout=SLOW_MS)
    page.locator(".st-key-pins_draw").first.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / f"pins-draw-{lang}.png"))

    go_to(page, "train")
    set_number(page, "tw_epochs", 3)  # ~900 steps
    set_pace(page, 50)  # ~18 s to watch (at full speed the run can end before the chart is first read)
    click_button(page, "train_start")
    chart = ".st-key-pins_charts"
    page.wait_for_function(f"() => ({POINTS_JS})('{chart}') >= 2", timeout=SLOW_MS)
    first = points(page, chart)
    page.wait_for_function(f"() => ({POINTS_JS})('{chart}') > {first}", timeout=SLOW_MS)  # it grows as it trains
    status_is(page, lang, "done")
    wait_for_charts(page)
    assert points(page, chart) >= 7 + 5  # steps 1, 2, 4, ..., 64; every 100th; the last (3 epochs of the training split)
    title = translate("pins.fig_title_label", lang, n=1, label="7")
    assert page.locator(f"{chart} .js-plotly-plot").count() == 1
    assert title in page.locator(f"{chart} .js-plotly-plot").first.inner_text()
    page.locator(chart).first.scroll_into_view_if_needed()
    page.locator(chart).first.screenshot(path=str(SHOTS / f"pins-train-{lang}.png"))
    page.close()
