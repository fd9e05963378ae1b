"""Issue 33, section 2, in a real headless Chromium (English and Chinese): what a new learner hit on Generate,
Inside's Try it and Sequences.

- The 2-D lab on its default shape shows the contest (D's heatmap has structure, the losses leave 1.386 and
  0.693), says its step limit from the start and names it when the contest ends; the Show pills are not cut;
  Plotly's mode bar does not cover a chart's title.
- The MNIST GAN's sidebar says what the preset does in a sentence or two (no benchmark notes); the chosen mode
  and the running GAN survive a visit to another page; a bad checkpoint's message appears under the uploader.
- Try it names the slip of an answer that left out the products shown, and refuses 5,000 digits.
- The Chinese Sequences info box joins its presets with "、".

With DLPLAY_SHOTS set, screenshots go to that folder (docs/screenshots/reliability-*.png in the repository).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from dlplay.i18n import translate
from e2e_util import click_button, metric_value, open_app_page, wait_for_idle

SHOTS = os.environ.get("DLPLAY_SHOTS")
SLOW_MS = 180_000


def shot(page, name: str, height: int = 2000, sidebar: bool = False) -> None:
    """A screenshot of the whole window (a tall one: Streamlit scrolls inside its own container)."""
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1400, "height": height})
    wait_for_idle(page, SLOW_MS)
    page.wait_for_function("() => !document.querySelector('[data-stale=true]')", timeout=SLOW_MS)
    page.screenshot(path=str(Path(SHOTS) / f"reliability-{name}.png"))
    page.set_viewport_size({"width": 1400, "height": 1000})


def step_at_least(page, label: str, n: int) -> None:
    page.wait_for_function(
        """([label, n]) => [...document.querySelectorAll('[data-testid=stMetric]')].some(m =>
             m.querySelector('[data-testid=stMetricLabel]')?.innerText.trim() === label &&
             parseInt((m.querySelector('[data-testid=stMetricValue]')?.innerText || '0').replace(/,/g, '')) >= n)""",
        arg=[label, n], timeout=SLOW_MS)


def boxes_overlap(a: dict, b: dict) -> bool:
    return a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"] and \
        a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"]


def title_and_modebar(page, selector: str) -> tuple[dict, dict]:
    """The bounding boxes of a Plotly chart's title and of its mode bar (present, shown on hover)."""
    chart = page.locator(f"{selector} .js-plotly-plot").first
    chart.wait_for(timeout=SLOW_MS)
    chart.hover()
    page.locator(f"{selector} .modebar").first.wait_for(state="attached", timeout=SLOW_MS)
    title = page.locator(f"{selector} .gtitle").first.bounding_box()
    bar = page.locator(f"{selector} .modebar").first.bounding_box()
    assert title, (title, bar)
    assert bar, (title, bar)
    return title, bar


def heatmap_range(page) -> float:
    """max − min of D's heatmap as drawn (the z of the plane's heatmap trace)."""
    return page.evaluate("""() => {
        const gd = document.querySelector('.st-key-gen_plane .js-plotly-plot');
        const hm = (gd?.data || []).find(t => t.type === 'heatmap');
        if (!hm) return -1;
        const z = hm.z.flat();
        return Math.max(...z) - Math.min(...z); }""")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_lab_shows_the_contest_and_its_step_limit(streamlit_server, browser_context, lang):
    page = open_app_page(browser_context, streamlit_server, "generate", lang)
    try:
        # the limit, before any run
        page.get_by_text(translate("generate.progress", lang, step="0", total="3,000")).first.wait_for(timeout=SLOW_MS)
        # the Show pills fit: nothing scrolled out of sight ("gradient a…")
        page.locator(".st-key-gen_layers button").last.wait_for(timeout=SLOW_MS)
        hidden = page.evaluate("""() => { const bar = document.querySelector('.st-key-gen_layers [role=toolbar]');
                                          return bar.scrollWidth - bar.clientWidth; }""")
        assert hidden <= 1, hidden
        click_button(page, "gen_lab_start")  # the default shape (the ring) at the default pace
        step_label = translate("generate.m_step", lang)
        step_at_least(page, step_label, 60)
        page.locator(".st-key-gen_lab_pause button:not([disabled])").wait_for(timeout=SLOW_MS)
        click_button(page, "gen_lab_pause")
        page.locator(".st-key-gen_lab_resume button").wait_for(timeout=SLOW_MS)
        wait_for_idle(page, SLOW_MS)
        page.wait_for_function("() => !!document.querySelector('.st-key-gen_plane .hm image, .st-key-gen_plane .heatmaplayer image')",
                               timeout=SLOW_MS)
        # the contest: D tells real from generated (before: D(x) = 0.500 everywhere, D loss 1.386, G loss 0.693)
        assert heatmap_range(page) > 0.2
        d_loss = float(metric_value(page, translate("generate.m_d_loss", lang)))
        g_loss = float(metric_value(page, translate("generate.m_g_loss", lang)))
        assert abs(d_loss - 1.386) > 0.03 or abs(g_loss - 0.693) > 0.03, (d_loss, g_loss)
        # the mode bar never covers a title (it covered D(real)/D(fake) before)
        title, bar = title_and_modebar(page, ".st-key-gen_lab_dout_fig")
        assert not boxes_overlap(title, bar), (title, bar)
        shot(page, f"lab-contest-{lang}")
        # a contest of 1,000 steps at full speed: it ends, and the page says the limit was reached
        page.locator(".st-key-gen_lab_steps input[type=range]").first.press("Home")  # the first choice: 1,000
        page.wait_for_function("""() => document.querySelector('.st-key-gen_lab_steps input[type=range]')
                                              ?.getAttribute('aria-valuetext') === '1,000'""", timeout=SLOW_MS)
        wait_for_idle(page, SLOW_MS)
        page.locator(".st-key-gen_lab_pace input[type=range]").first.press("End")  # full speed
        full = translate("train.pace_full", lang)
        page.wait_for_function("""(full) => document.querySelector('.st-key-gen_lab_pace input[type=range]')
                                              ?.getAttribute('aria-valuetext') === full""", arg=full, timeout=SLOW_MS)
        wait_for_idle(page, SLOW_MS)
        click_button(page, "gen_lab_start")
        page.locator(".st-key-gen_lab_finished").wait_for(timeout=SLOW_MS)
        text = page.locator(".st-key-gen_lab_finished").inner_text()
        assert translate("generate.lab_finished", lang, total="1,000") in text.replace("\n", "")
        page.get_by_text(translate("generate.progress", lang, step="1,000", total="1,000")).first.wait_for(timeout=SLOW_MS)
        assert page.locator("[data-testid=stException]").count() == 0
    finally:
        page.close()


def nav_to(page, path: str) -> None:
    page.locator(f"[data-testid=stSidebarNav] a[href$='/{path}']").first.click()
    page.wait_for_url(re.compile(f"/{path}"), timeout=SLOW_MS)
    wait_for_idle(page, SLOW_MS)


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_digits_mode_stays_and_says_little_and_its_upload_errors_sit_by_the_uploader(
        streamlit_server, browser_context, lang, tmp_path):
    page = open_app_page(browser_context, streamlit_server, "generate", lang)
    try:
        page.get_by_text(translate("generate.mode_digits", lang), exact=True).click(timeout=SLOW_MS)
        page.locator(".st-key-gen_digits_start button").first.wait_for(timeout=SLOW_MS)
        wait_for_idle(page, SLOW_MS)
        # the sidebar: what the preset does and how good it gets, no benchmark notes
        sidebar = page.locator("[data-testid=stSidebar]")
        preset_text = translate("gan_mnist.preset.mlp.text", lang)
        sidebar.get_by_text(preset_text[:20]).first.wait_for(timeout=SLOW_MS)
        text = sidebar.inner_text()
        assert "bench/" not in text
        assert "28%" not in text
        assert "38%" not in text
        assert len(preset_text) < 320
        shot(page, f"digits-sidebar-{lang}", height=1000)
        # a GAN trains; the learner visits two other pages and comes back
        click_button(page, "gen_digits_start")
        page.locator(".st-key-gen_digits_stop button:not([disabled])").first.wait_for(timeout=SLOW_MS)
        nav_to(page, "train")
        nav_to(page, "evaluate")
        nav_to(page, "generate")
        digits = page.get_by_role("radio", name=translate("generate.mode_digits", lang))
        digits.wait_for(timeout=SLOW_MS)
        assert digits.is_checked()  # before: the 2-D lab again
        page.locator(".st-key-gen_digits_stop button:not([disabled])").first.wait_for(timeout=SLOW_MS)  # still training
        click_button(page, "gen_digits_stop")
        page.locator(".st-key-gen_digits_start button:not([disabled])").first.wait_for(timeout=SLOW_MS)
        wait_for_idle(page, SLOW_MS)
        # a file that is no checkpoint: the message right under the uploader (it was ~900 px above)
        page.get_by_role("tab", name=translate("generate.tab_save", lang)).click()
        bad = tmp_path / "not-a-gan.pt"
        bad.write_bytes(b"this is not a checkpoint" * 10)
        page.locator(".st-key-gen_ckpt_upload input[type=file]").set_input_files(str(bad))
        page.locator(".st-key-gen_ckpt_error [data-testid=stAlert]").wait_for(timeout=SLOW_MS)
        uploader = page.locator(".st-key-gen_ckpt_upload").bounding_box()
        message = page.locator(".st-key-gen_ckpt_error").bounding_box()
        assert uploader
        assert message
        gap = message["y"] - (uploader["y"] + uploader["height"])
        assert 0 <= gap < 80, (uploader, message)
        assert page.locator("[data-testid=stException]").count() == 0
    finally:
        page.close()


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_try_it_names_the_products_left_out_and_refuses_5000_digits(streamlit_server, browser_context, lang):
    page = open_app_page(browser_context, streamlit_server, "inside", lang)
    try:
        click_button(page, "inside_quick_train")  # one epoch of the tutorial's model, then it waits
        tab = page.get_by_role("tab", name=translate("exercises.tab", lang))
        tab.wait_for(timeout=SLOW_MS)
        paused = translate("inside.weights_of", lang).split("{")[0]
        page.locator("[data-testid=stCaptionContainer]").filter(has_text=paused).filter(
            has_text=translate("inside.status_paused", lang)).first.wait_for(timeout=SLOW_MS)
        wait_for_idle(page, SLOW_MS)
        tab.click()
        box = page.locator(".st-key-tryit_answer_0 input")
        box.wait_for(timeout=SLOW_MS)

        def check(text: str) -> None:
            box.fill(text)
            box.press("Enter")
            wait_for_idle(page, SLOW_MS)
            click_button(page, "tryit_check_0")
            wait_for_idle(page, SLOW_MS)

        check("1000")  # far off: the worked steps appear, with the shown numbers
        steps = page.locator("table").filter(has_text="➜").first
        steps.wait_for(timeout=SLOW_MS)
        calcs = [r.locator("td").nth(2).inner_text() for r in steps.locator("tbody tr").all()]
        assert len(calcs) == 6, calcs  # four products, the rest, the bias
        added = [float(re.search(r"\+ \((-?[0-9.]+)\) =", c).group(1)) for c in calcs[4:]]  # type: ignore[union-attr]
        decimals = len(calcs[5].split("(")[-1].split(")")[0].split(".")[-1])
        check(f"{sum(added):.{decimals}f}")  # the rest plus the bias: the four products left out
        diagnosis = page.locator(".st-key-tryit_diagnosis")
        start = translate("exercises.diag_no_terms", lang, k=4, steps="1–4", kept="\u0000").split("\u0000")[0]
        page.locator(".st-key-tryit_diagnosis").filter(has_text=start).wait_for(timeout=SLOW_MS)
        assert translate("exercises.diag_closest", lang, step=6, what="").split("(")[0] not in diagnosis.inner_text()
        shot(page, f"tryit-diagnosis-{lang}", height=2600)
        check("9" * 5000)  # read as infinity and graded before
        page.locator("[data-testid=stAlert]").filter(
            has_text=translate("exercises.answer_too_long", lang, n="5,000", max=40)[:15]).first.wait_for(timeout=SLOW_MS)
        assert "5,000" in page.locator("[data-testid=stAlert]").filter(has_text="5,000").first.inner_text()
        assert page.locator("[data-testid=stException]").count() == 0
    finally:
        page.close()


@pytest.mark.browser
def test_the_chinese_sequences_box_joins_presets_with_the_enumeration_comma(streamlit_server, browser_context):
    page = open_app_page(browser_context, streamlit_server, "sequences", "zh")
    try:
        info = page.locator("[data-testid=stAlert]").filter(has_text="LSTM").first
        info.wait_for(timeout=SLOW_MS)
        text = info.inner_text()
        assert "”、“" in text, text
        assert "”, “" not in text, text
    finally:
        page.close()
