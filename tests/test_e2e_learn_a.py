"""In a real headless Chromium: the Inside page's Try-it tab (a wrong answer gets the worked steps, the
right one read off them is accepted) and the Guess page (a guess, the run answers it). Screenshots in
English and Chinese to $DLPLAY_SHOTS (docs/screenshots/tryit-*.png, guess-*.png when it points there)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from dlplay.i18n import catalog
from e2e_util import click_button, commit_input, open_app_page, rerun_after, wait_for_charts, wait_for_idle

SLOW_MS = 120_000
SHOTS = Path(os.environ.get("DLPLAY_SHOTS") or tempfile.gettempdir())
TEXT = {
    "en": {"tab": "Try it", "wrong": "Not quite", "right": "Right:", "run": "It learns anyway", "says": "The run says",
           "tally": "Your intuition so far"},
    "zh": {"tab": "动手算", "wrong": "还不对", "right": "答对了", "run": "照样能学会", "says": "训练的结果",
           "tally": "你的直觉目前"},
}


def shot(page, name: str, height: int = 2600) -> None:
    """The page's main column (Streamlit scrolls inside its own container: a tall window shows all of it)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1300, "height": height})
    wait_for_charts(page, SLOW_MS)
    page.locator("[data-testid=stMainBlockContainer]").screenshot(path=str(SHOTS / f"{name}.png"))
    page.set_viewport_size({"width": 1300, "height": 1000})


def alert(page, text: str):
    return page.locator("[data-testid=stAlert]").filter(has_text=text).first


def type_answer(page, index: int, text: str) -> None:
    commit_input(page, page.locator(f".st-key-tryit_answer_{index} input").first, text, SLOW_MS)
    click_button(page, f"tryit_check_{index}")  # the caller waits for the verdict


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_try_it_wrong_then_right(streamlit_server, browser_context, lang):
    words = TEXT[lang]
    page = open_app_page(browser_context, streamlit_server, "inside", lang=lang)
    page.set_viewport_size({"width": 1300, "height": 1000})
    click_button(page, "inside_quick_train")  # one epoch of the tutorial model, then it waits
    page.get_by_role("tab", name=words["tab"]).wait_for(timeout=SLOW_MS)
    # while the epoch trains the page redraws every second: wait for the pause after it
    paused = catalog(lang)["inside.weights_of"].split("{")[0]
    page.locator("[data-testid=stCaptionContainer]").filter(has_text=paused).filter(
        has_text=catalog(lang)["inside.status_paused"]).first.wait_for(timeout=SLOW_MS)
    wait_for_idle(page, SLOW_MS)
    page.get_by_role("tab", name=words["tab"]).click()
    page.locator(".st-key-tryit_answer_0 input").wait_for(timeout=SLOW_MS)
    # a wrong answer: the worked steps, the learner's number at the step where it parts
    type_answer(page, 0, "1000")
    alert(page, words["wrong"]).wait_for(timeout=SLOW_MS)
    steps = page.locator("table").filter(has_text="➜").first
    steps.wait_for(timeout=SLOW_MS)
    assert "1000" in steps.inner_text()
    if lang == "zh":
        shot(page, "tryit-wrong-zh")
    # the right answer, read off the worked steps' last value (computed from the shown numbers)
    last_value = steps.locator("tbody tr").last.locator("td").nth(3).inner_text().strip().strip("*")
    type_answer(page, 0, last_value)
    alert(page, words["right"]).wait_for(timeout=SLOW_MS)
    assert page.locator(".st-key-tryit_next button").count() == 1
    shot(page, f"tryit-right-{lang}")
    if lang == "en":
        click_button(page, "tryit_next")
        page.locator(".st-key-tryit_answer_1 input").wait_for(timeout=SLOW_MS)
        wait_for_idle(page, SLOW_MS)
        type_answer(page, 1, "-5")
        alert(page, words["wrong"]).wait_for(timeout=SLOW_MS)
        shot(page, "tryit-wrong-en")
        page.locator(".st-key-tryit_pick label").filter(has_text="3 ·").first.click()  # the backward pass: δ
        page.locator(".st-key-tryit_answer_2 input").wait_for(timeout=SLOW_MS)
        type_answer(page, 2, "0.5")
        alert(page, words["wrong"]).wait_for(timeout=SLOW_MS)
        shot(page, "tryit-delta-en", 3000)
    page.close()


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_guess_then_run(streamlit_server, browser_context, lang):
    words = TEXT[lang]
    page = open_app_page(browser_context, streamlit_server, "guesses", lang=lang)
    page.set_viewport_size({"width": 1300, "height": 1000})
    rerun_after(page, page.locator(".st-key-guess_choice_lr label").filter(has_text=words["run"]).first.click,
                SLOW_MS)
    if lang == "en":
        shot(page, "guess-ask-en", 1400)
    click_button(page, "guess_run")
    answered = page.locator("[data-testid=stAlert]").filter(has_text=words["says"]).first
    answered.wait_for(timeout=SLOW_MS)
    wait_for_idle(page, SLOW_MS)
    page.locator(".js-plotly-plot").first.wait_for(timeout=SLOW_MS)  # the run's loss curve
    assert page.locator(".js-plotly-plot").count() == 1
    tally = page.locator("[data-testid=stCaptionContainer]").filter(has_text=words["tally"]).first.inner_text()
    assert ("0 of 1" in tally) or ("1 次猜测中猜对 0" in tally), tally  # "learns" is wrong: lr 3 blows up
    shot(page, f"guess-answer-{lang}", 1800)
    page.close()
