"""Keyboard only, in a real headless Chromium (no mouse): Draw (quick-train, choose a test image instead of
drawing, read the guess), Guess (pick a guess, run, read the answer) and Generate (step the 2-D lab, switch to
digits, train, see the generated digits). Every control reached shows a visible focus."""
from __future__ import annotations

import pytest

from dlplay.i18n import catalog
from e2e_util import open_app_page, wait_for_idle

SLOW_MS = 180_000
# The focused element, reached by the keyboard, is drawn with an outline a learner can see (dlplay/ui/a11y.py): its
# own, or for the hidden input of a radio or checkbox, its label's.
FOCUS_VISIBLE_JS = """() => { const e = document.activeElement;
  if (!e || !e.matches(':focus-visible')) return false;
  const shown = e.matches('input[type=radio], input[type=checkbox]') ? e.closest('label') : e;
  const s = shown && getComputedStyle(shown); const r = shown && shown.getBoundingClientRect();
  return !!s && s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2 && r.width >= 8 && r.height >= 8; }"""


def tab_to(page, selector: str, presses: int = 250) -> None:
    """Press Tab until the focused element matches ``selector``; it must show a visible focus."""
    for _ in range(presses):
        if page.evaluate("s => !!document.activeElement && document.activeElement.matches(s)", selector):
            assert page.evaluate(FOCUS_VISIBLE_JS), f"no visible focus on {selector}"
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


SELECTED_RADIO_JS = "sel => document.querySelector(sel + ' input[type=radio]:checked')?.closest('label')?.innerText.trim()"


def arrow_to_radio(page, selector: str, text: str, presses: int = 6) -> None:
    """Focus the radio group inside ``selector`` (Tab) and move its choice with the arrow keys to ``text``."""
    tab_to(page, f"{selector} input[type=radio]")
    for _ in range(presses):
        if page.evaluate(SELECTED_RADIO_JS, selector) == text:
            break
        before = page.evaluate(SELECTED_RADIO_JS, selector)
        page.keyboard.press("ArrowRight")
        page.wait_for_function(f"([sel, old]) => ({SELECTED_RADIO_JS})(sel) !== old", arg=[selector, before],
                               timeout=SLOW_MS)
        assert page.evaluate(FOCUS_VISIBLE_JS), f"no visible focus on the radio group {selector}"
    assert page.evaluate(SELECTED_RADIO_JS, selector) == text
    wait_for_idle(page, SLOW_MS)


@pytest.mark.browser
@pytest.mark.slow
def test_draw_with_the_keyboard_alone(streamlit_server, browser_context):
    texts = catalog("en")
    page = open_app_page(browser_context, streamlit_server, "draw")
    try:
        tab_to(page, ".st-key-draw_quick_train button")
        page.keyboard.press("Enter")
        page.wait_for_selector(".st-key-draw_model_ready", timeout=SLOW_MS)
        wait_for_idle(page, SLOW_MS)
        # instead of drawing: the input's radio (arrow keys), then a test image from the list (arrows, Enter)
        arrow_to_radio(page, ".st-key-draw_source", texts["drawtest.source"])
        box = ".st-key-draw_test_index input"
        page.wait_for_selector(box, timeout=SLOW_MS)
        page.wait_for_selector(".st-key-draw_guess .dl-guess-digit", timeout=SLOW_MS)  # No. 1's guess
        tab_to(page, box)  # the list of test images is reached by Tab, with a visible focus
        wait_for_idle(page, SLOW_MS)
        guess = page.locator(".st-key-draw_guess .dl-guess-digit").first.inner_text().strip()
        assert guess.isdigit(), guess
        assert texts["draw.guess_label"].split("{")[0] in page.locator(".st-key-draw_guess").inner_text()
        assert page.locator(".st-key-draw_probs_box .js-plotly-plot").count() == 1  # its probabilities
        assert "no. 1, labelled" in page.locator(".st-key-draw_test_label").inner_text()
    finally:
        page.close()


@pytest.mark.browser
@pytest.mark.slow
def test_guess_with_the_keyboard_alone(streamlit_server, browser_context):
    texts = catalog("en")
    page = open_app_page(browser_context, streamlit_server, "guesses")
    try:
        choices = ".st-key-guess_choice_lr"
        tab_to(page, f"{choices} input[type=radio]")
        page.keyboard.press("Space")  # the first choice: "It blows up"
        page.wait_for_function(f"sel => !!({SELECTED_RADIO_JS})(sel)", arg=choices, timeout=SLOW_MS)
        assert page.evaluate(SELECTED_RADIO_JS, choices) == texts["guesses.lr.choice_blows_up"]
        wait_for_idle(page, SLOW_MS)
        tab_to(page, ".st-key-guess_run button")
        page.keyboard.press("Enter")
        says = texts["guesses.right"].split(": ")[0].removeprefix("Right! ")  # "The run says"
        answered = page.locator("[data-testid=stAlert]").filter(has_text=says).first
        answered.wait_for(timeout=SLOW_MS)
        wait_for_idle(page, SLOW_MS)
        assert texts["guesses.lr.choice_blows_up"].split(" (")[0] in answered.inner_text()
        tally = page.locator("[data-testid=stCaptionContainer]").filter(has_text=" of 1").first.inner_text()
        assert "1 of 1" in tally, tally  # a learning rate of 3 blows up: the guess was right
        tab_to(page, ".st-key-guess_again button")  # and the next question is one key away
    finally:
        page.close()


@pytest.mark.browser
@pytest.mark.slow
def test_generate_with_the_keyboard_alone(streamlit_server, browser_context):
    texts = catalog("en")
    page = open_app_page(browser_context, streamlit_server, "generate")
    try:
        # the 2-D lab: one step of both networks; the plane then shows D's verdict and the generated points
        tab_to(page, ".st-key-gen_lab_step_both button")
        page.keyboard.press("Enter")
        page.wait_for_function("() => !!document.querySelector('.st-key-gen_plane .hm image, "
                               ".st-key-gen_plane .heatmaplayer image')", timeout=SLOW_MS)
        wait_for_idle(page, SLOW_MS)
        # MNIST digits: the mode's radio (arrow keys), Start (Enter), the filmstrip of generated digits, Stop
        arrow_to_radio(page, "[data-testid=stMainBlockContainer] [data-testid=stRadio]:first-of-type",
                       texts["generate.mode_digits"])
        page.wait_for_selector(".st-key-gen_digits_start button", timeout=SLOW_MS)
        wait_for_idle(page, SLOW_MS)
        tab_to(page, ".st-key-gen_digits_start button")
        page.keyboard.press("Enter")
        page.wait_for_selector(".st-key-gen_filmstrip .js-plotly-plot .main-svg", timeout=SLOW_MS)
        page.wait_for_function("() => !!document.querySelector('.st-key-gen_filmstrip .js-plotly-plot image, "
                               ".st-key-gen_filmstrip .js-plotly-plot .heatmaplayer')", timeout=SLOW_MS)
        tab_to(page, ".st-key-gen_digits_stop button")
        page.keyboard.press("Enter")
        page.wait_for_selector(".st-key-gen_digits_start button:not([disabled])", timeout=SLOW_MS)
        wait_for_idle(page, SLOW_MS)
        assert page.locator(".st-key-gen_filmstrip .js-plotly-plot").count() == 1  # the generated digits stay
        status = page.locator("[data-testid=stMetric]").filter(has_text=texts["generate.m_status"]).first
        assert texts["train.status_stopped"] in status.inner_text()
    finally:
        page.close()
