"""Keyboard only, in a real headless Chromium: Train (Tab to Start, Enter, Pause, Step, Stop) and Inside's Try it
(train, open the tab, type an answer, check it), with a visible focus on every control reached. No mouse."""
from __future__ import annotations

import pytest

from dlplay.i18n import catalog
from e2e_util import open_app_page, press_until, wait_for_idle

SLOW_MS = 120_000
LAST_STEP_JS = """() => {
  const plot = document.querySelector('.st-key-train_loss_chart .js-plotly-plot');
  const x = plot && plot._fullData && plot._fullData.length ? plot._fullData[0].x : null;
  return x && x.length ? Number(x[x.length - 1]) : 0;
}"""
# the focused element is drawn with an outline a learner can see (dlplay/ui/a11y.py), reached by the keyboard
FOCUS_VISIBLE_JS = """() => { const e = document.activeElement; const s = e && getComputedStyle(e);
  return !!e && e.matches(':focus-visible') && s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2; }"""


def tab_to(page, selector: str, presses: int = 250) -> None:
    """Press Tab until the focused element matches ``selector``; it must show a visible focus."""
    for _ in range(presses):
        if page.evaluate("s => !!document.activeElement && document.activeElement.matches(s)", selector):
            assert page.evaluate(FOCUS_VISIBLE_JS), f"no visible focus on {selector}"
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def status_is(page, text: str) -> None:
    page.wait_for_function(
        """t => [...document.querySelectorAll('[data-testid=stMetric]')].some(m =>
             m.innerText.includes('Status') && m.innerText.includes(t))""", arg=text, timeout=SLOW_MS)


def type_and_enter(page, text: str) -> None:
    page.keyboard.press("Control+A")
    page.keyboard.type(text)
    page.keyboard.press("Enter")


@pytest.mark.browser
@pytest.mark.slow
def test_train_with_the_keyboard_alone(streamlit_server, browser_context):
    page = open_app_page(browser_context, streamlit_server, "train")
    try:
        # a slower pace (the arrow keys on its slider: full speed → 200 → 100 → 50 steps/s): still running at Pause
        tab_to(page, ".st-key-train_pace input[type=range]")
        press_until(page, "ArrowLeft", ".st-key-train_pace", "50", timeout_ms=SLOW_MS)
        tab_to(page, ".st-key-train_start button")
        page.keyboard.press("Enter")
        status_is(page, "training")
        tab_to(page, ".st-key-train_pause button")
        page.keyboard.press("Enter")
        status_is(page, "paused")
        page.wait_for_function(f"() => ({LAST_STEP_JS})() > 0", timeout=SLOW_MS)
        wait_for_idle(page, SLOW_MS)
        before = page.evaluate(LAST_STEP_JS)
        tab_to(page, ".st-key-train_step button")
        page.keyboard.press("Enter")
        page.wait_for_function(f"() => ({LAST_STEP_JS})() > {before}", timeout=SLOW_MS)  # one step, by the keyboard
        status_is(page, "paused")
        # the screen readers' polite region says the status
        assert "paused" in page.locator(".dl-live-progress").first.inner_text()
        tab_to(page, ".st-key-train_stop button")
        page.keyboard.press("Enter")
        status_is(page, "stopped")
    finally:
        page.close()


@pytest.mark.browser
@pytest.mark.slow
def test_try_it_with_the_keyboard_alone(streamlit_server, browser_context):
    texts = catalog("en")
    page = open_app_page(browser_context, streamlit_server, "inside")
    try:
        tab_to(page, ".st-key-inside_quick_train button")
        page.keyboard.press("Enter")
        paused = texts["inside.weights_of"].split("{")[0]
        page.locator("[data-testid=stCaptionContainer]").filter(has_text=paused).filter(
            has_text=texts["inside.status_paused"]).first.wait_for(timeout=SLOW_MS)
        wait_for_idle(page, SLOW_MS)
        # the tab list: Tab reaches it, the arrow keys move between its tabs, Enter opens one
        tab_to(page, "[role=tab]")
        for _ in range(10):
            if page.evaluate("() => document.activeElement.innerText.trim()") == "Try it":
                break
            page.keyboard.press("ArrowRight")
        page.keyboard.press("Enter")
        page.locator(".st-key-tryit_answer_0 input").wait_for(timeout=SLOW_MS)
        wait_for_idle(page, SLOW_MS)
        tab_to(page, ".st-key-tryit_answer_0 input")
        type_and_enter(page, "1000")
        wait_for_idle(page, SLOW_MS)
        tab_to(page, ".st-key-tryit_check_0 button")
        page.keyboard.press("Enter")
        page.locator("[data-testid=stAlert]").filter(has_text="Not quite").first.wait_for(timeout=SLOW_MS)
        steps = page.locator("table").filter(has_text="➜").first
        last_value = steps.locator("tbody tr").last.locator("td").nth(3).inner_text().strip().strip("*")
        tab_to(page, ".st-key-tryit_answer_0 input")
        type_and_enter(page, last_value)
        wait_for_idle(page, SLOW_MS)
        tab_to(page, ".st-key-tryit_check_0 button")
        page.keyboard.press("Enter")
        page.locator("[data-testid=stAlert]").filter(has_text="Right:").first.wait_for(timeout=SLOW_MS)
    finally:
        page.close()
