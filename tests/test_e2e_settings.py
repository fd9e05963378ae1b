"""In a real headless Chromium: the Train sidebar is drawn from the settings table, and it does not change
under the learner (issue 33): after a fork the learner's preset and learning rate stay, also after
leaving the page, and the next Start trains with them; the slider shows a preset's own rate."""
import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from e2e_util import click_button, metric_value, open_app_page, set_pace, wait_for_idle

SLOW_MS = 120_000
# a widget's label and value: a select box holds its choice in its input's value, a slider in its text
SHOWN_JS = """(key) => { const w = document.querySelector('.st-key-' + key);
  return w ? (w.innerText + ' ' + [...w.querySelectorAll('input')].map(i => i.value).join(' ')).replace(/\\s+/g, ' ')
           : null; }"""


def wait_shown(page, key: str, text: str, timeout_ms: int = SLOW_MS) -> None:
    """Wait until the widget with ``key`` shows ``text`` (a rerun redraws it); else fail saying what it shows."""
    try:
        page.wait_for_function(f"([key, text]) => ({SHOWN_JS})(key)?.includes(text)", arg=[key, text],
                               timeout=timeout_ms)
    except PlaywrightTimeout:
        raise AssertionError(f"{key} shows {page.evaluate(SHOWN_JS, key)!r}, not {text!r}") from None


def wait_status(page, status: str) -> None:
    page.wait_for_function(
        """(status) => [...document.querySelectorAll('[data-testid=stMetric]')].some(m =>
             m.innerText.includes('Status') && m.innerText.includes(status))""", arg=status, timeout=SLOW_MS)


def choose(page, key: str, option: str) -> None:
    """Pick ``option`` in the select box ``key`` and wait until the box shows it."""
    wanted = page.locator("[role=option]").filter(has_text=re.compile(f"^{re.escape(option)}$")).first
    for attempt in range(10):  # a click may only focus the box, or a polling rerun may close the list: again
        if attempt:
            page.keyboard.press("Escape")
        page.locator(f".st-key-{key} [role=combobox]").first.click()
        try:
            wanted.wait_for(timeout=5_000)
            wanted.click(timeout=5_000)
            break
        except PlaywrightTimeout:
            continue
    wait_shown(page, key, option)
    wait_for_idle(page, SLOW_MS)


def go(page, path: str, heading: str) -> None:
    """Open another page from the sidebar's navigation and wait for its title."""
    page.locator(f'[data-testid=stSidebarNav] a[href$="/{path}"]').first.click()
    page.wait_for_function("(h) => [...document.querySelectorAll('h1')].some(e => e.innerText.includes(h))",
                           arg=heading, timeout=SLOW_MS)
    wait_for_idle(page, SLOW_MS)


@pytest.mark.browser
@pytest.mark.slow
def test_after_a_fork_the_sidebar_keeps_the_learners_preset_and_rate(streamlit_server, browser_context):
    tutorial = "The tutorial's model (784 → 128 ReLU → 10)"
    page = open_app_page(browser_context, streamlit_server, "train")
    set_pace(page, 20)  # the fork and the last run still train when Stop is pressed (full speed: ~3 s each)
    # a preset's own rate is on the slider: the LSTM trains at 0.002 (the slider showed 0.003)
    choose(page, "tw_preset", "LSTM reading rows (LSTM 128)")
    wait_shown(page, "tw_lr", "Learning rate 0.002")
    choose(page, "tw_preset", tutorial)
    wait_shown(page, "tw_lr", "Learning rate 0.001")
    # one step, then a fork of it at a ten times higher learning rate
    click_button(page, "train_step")
    wait_status(page, "paused")
    wait_for_idle(page, SLOW_MS)
    choose(page, "fork_kind", "learning rate")
    wait_shown(page, "fork_value_lr", "0.01", 30_000)  # the fork's rate, ten times the run's, shown before Fork is pressed
    click_button(page, "fork_go")
    page.wait_for_function("() => document.body.innerText.includes('Forked from run')", timeout=SLOW_MS)
    click_button(page, "train_stop")
    wait_status(page, "stopped")
    wait_for_idle(page, SLOW_MS)
    for _ in range(2):  # right after the fork, and after leaving the page and coming back
        wait_shown(page, "tw_preset", tutorial, 30_000)  # (issue 33: "Custom")
        wait_shown(page, "tw_lr", "Learning rate 0.001", 30_000)  # (issue 33: the fork's rate)
        note = page.locator("[data-testid=stSidebar]").get_by_text("The current run is a fork")
        assert "learning rate: 0.01" in note.inner_text()  # the fork's rate is said, the sidebar keeps the learner's
        go(page, "draw", "Draw a digit")
        go(page, "train", "Train a neural network")
    choose(page, "tw_preset", tutorial)
    wait_shown(page, "tw_lr", "Learning rate 0.001", 30_000)
    click_button(page, "train_start")
    wait_status(page, "training")
    click_button(page, "train_stop")
    wait_status(page, "stopped")
    assert metric_value(page, "Status") == "stopped"
    assert page.locator("[data-testid=stSidebar]").get_by_text("The current run is a fork").count() == 0
    # the run that Start made trained at the sidebar's 0.001 (the Runs page names each run with its rate)
    go(page, "runs", "Runs")
    page.wait_for_function("() => /#3 [^\\n]*Adam 0\\.001/.test(document.body.innerText)", timeout=SLOW_MS)
    assert re.search(r"#2 [^\n]*Adam 0\.01\b", page.locator("body").inner_text())  # the fork
    page.close()
