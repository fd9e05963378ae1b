"""In a real headless Chromium (issue 19 #1 and #5): the overfitting preset's three curves and its hint;
a click on a confusion-matrix cell shows its images, one is marked mislabelled, the retrained run's
settings list the edit. Screenshots in English and Chinese: docs/screenshots/validation-*.png, fixdata-*.png."""
import dataclasses
import os
import tempfile
from pathlib import Path

import pytest

from dlplay.nn.presets import PRESETS
from dlplay.server.share import share_url
from e2e_util import click_button, rerun_after, wait_for_charts, wait_for_idle
from test_e2e_i18n import choose_language
from test_e2e_watch import stop_run, wait_status

SHOTS = Path(os.environ.get("DLPLAY_SHOTS") or tempfile.mkdtemp(prefix="dlplay-shots-"))  # docs/screenshots: set DLPLAY_SHOTS
SLOW_MS = 120_000
TRACES_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(gd => (gd.data || []).map(t => t.name))"""


def open_link(context, base_url: str, page_path: str, spec, config):
    page = context.new_page()
    page.goto(share_url(f"{base_url}/{page_path}", spec, config, {"lang": "en"}))
    page.wait_for_selector("[data-testid=stMainBlockContainer] h1", timeout=90_000)
    wait_for_idle(page)
    return page


def go(page, path: str) -> None:
    """To another page in the same tab (same Streamlit session), by the sidebar's link."""
    rerun_after(page, page.locator(f"[data-testid=stSidebarNav] a[href$='/{path}']").first.click, SLOW_MS)


def switch_language(page, label: str) -> None:
    """The sidebar's language switch, tried twice (a rerun that lands while the list opens closes it)."""
    try:
        choose_language(page, label)
    except Exception:  # noqa: BLE001 - a second try after the page settles
        page.keyboard.press("Escape")
        wait_for_idle(page, SLOW_MS)
        choose_language(page, label)


def shoot(page, name: str, selector: str | None = None) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    wait_for_charts(page, SLOW_MS)
    if selector:  # that element at the top of the view
        page.locator(selector).first.evaluate("e => e.scrollIntoView({block: 'start'})")
        page.wait_for_function("sel => { const r = document.querySelector(sel).getBoundingClientRect();"
                               " return Math.abs(r.top) < 200 || (r.top >= 0 && r.bottom <= window.innerHeight); }",
                               arg=selector)  # at the top, or wholly in view (the sidebar's last part cannot rise higher)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


@pytest.mark.browser
def test_the_overfitting_preset_shows_three_curves_and_the_hint(streamlit_server, browser_context):
    preset = PRESETS["overfit"]
    config = dataclasses.replace(preset.config, epochs=7)  # the preset, briefly: its gap opens by epoch 5
    page = open_link(browser_context, streamlit_server, "train", preset.spec, config)
    try:
        click_button(page, "train_start")
        wait_status(page, "finished", timeout_ms=240_000)
    finally:
        stop_run(page)
    wait_for_idle(page, SLOW_MS)
    assert ["training set", "validation set", "test set"] in page.evaluate(TRACES_JS)  # per-epoch figures
    hint = page.locator(".st-key-train_overfitting")
    hint.wait_for(timeout=30_000)
    assert "Overfitting since epoch" in hint.inner_text()
    shoot(page, "validation-en", ".st-key-train_overfitting")
    shoot(page, "validation-settings-en", ".st-key-tw_val")  # the sidebar's validation settings
    switch_language(page, "简体中文")
    page.wait_for_function("() => document.documentElement.lang === 'zh-CN'", timeout=SLOW_MS)
    wait_for_idle(page, SLOW_MS)
    assert "过拟合" in page.locator(".st-key-train_overfitting").inner_text()
    assert ["训练集", "验证集", "测试集"] in page.evaluate(TRACES_JS)
    shoot(page, "validation-zh", ".st-key-train_overfitting")
    shoot(page, "validation-settings-zh", ".st-key-tw_val")
    assert not page.locator("[data-testid=stException]").count()


GRID_JS = """(text) => [...document.querySelectorAll('[data-testid=stDataFrame] [role=gridcell], [data-testid=stDataFrame] td')]
  .some(cell => cell.textContent.includes(text))"""
CELL_JS = """() => {
  const gd = document.querySelector('.st-key-eval_cm_val .js-plotly-plot');
  if (!gd || !gd.data || gd.data.length < 2) return null;
  const counts = gd.data[1].customdata.map(row => row[0]);
  const n = Math.round(Math.sqrt(counts.length));
  let best = -1;
  counts.forEach((c, k) => { if (Math.floor(k / n) !== k % n && (best < 0 || c > counts[best])) best = k; });
  const point = gd.querySelectorAll('.scatterlayer path.point')[best];
  const box = point.getBoundingClientRect();
  return {k: best, n: n, count: counts[best], x: box.x + box.width / 2, y: box.y + box.height / 2};
}"""


@pytest.mark.browser
def test_a_confusion_cell_opens_its_images_and_an_edit_retrains(streamlit_server, browser_context):
    preset = PRESETS["tutorial"]
    config = dataclasses.replace(preset.config, epochs=1, train_size=1000, val_share=0.1)
    page = open_link(browser_context, streamlit_server, "train", preset.spec, config)
    try:
        click_button(page, "train_start")
        wait_status(page, "finished")
    finally:
        stop_run(page)
    go(page, "evaluate")
    page.locator(".st-key-fx_split button").filter(has_text="Validation set").first.click()
    wait_for_idle(page, SLOW_MS)
    page.wait_for_function("() => !!document.querySelector('.st-key-eval_cm_val .scatterlayer path.point')",
                           timeout=SLOW_MS)
    page.locator(".st-key-eval_cm_val").first.scroll_into_view_if_needed()
    cell = page.evaluate(CELL_JS)
    assert cell is not None, cell
    assert cell["count"] > 0, cell
    page.mouse.click(cell["x"], cell["y"])
    images = page.locator(".st-key-fx_cell_images")
    images.wait_for(timeout=SLOW_MS)
    wait_for_idle(page, SLOW_MS)
    true, pred = divmod(cell["k"], cell["n"])
    assert f"label {true}, guessed {pred} ({cell['count']} images)" in images.inner_text()
    images.locator("img").first.wait_for(timeout=SLOW_MS)
    assert images.locator("img").count() == min(cell["count"], 18)
    first = images.locator("[class*=st-key-fx_edit_]").first
    index = next(c for c in first.get_attribute("class").split() if c.startswith("st-key-fx_edit_")).removeprefix(
        "st-key-fx_edit_")
    first.locator("[role=combobox]").click()
    page.keyboard.type(f"is a {pred}")  # the list is long: filter it as a learner can
    page.locator("[role=option]").filter(has_text=f"is a {pred}").first.click()
    panel = page.locator(".st-key-fx_edits_panel")
    panel.wait_for(timeout=SLOW_MS)
    wait_for_idle(page, SLOW_MS)
    assert f"image #{index}: label becomes {pred}" in panel.inner_text()
    shoot(page, "fixdata-en", ".st-key-fx_edits_panel")
    switch_language(page, "简体中文")
    page.wait_for_function("() => document.documentElement.lang === 'zh-CN'", timeout=SLOW_MS)
    wait_for_idle(page, SLOW_MS)
    page.locator(".st-key-fx_cell_images").wait_for(timeout=SLOW_MS)
    assert "标签" in page.locator(".st-key-fx_cell_images").inner_text()
    shoot(page, "fixdata-zh", ".st-key-fx_edits_panel")
    switch_language(page, "English")
    page.wait_for_function("() => document.documentElement.lang === 'en'", timeout=SLOW_MS)
    wait_for_idle(page, SLOW_MS)
    page.locator(".st-key-fx_retrain").wait_for(timeout=SLOW_MS)
    click_button(page, "fx_retrain")  # a new run with the edit; the page moves to Train
    page.locator(".st-key-train_start").wait_for(timeout=SLOW_MS)
    try:
        wait_status(page, "finished", timeout_ms=SLOW_MS)
    finally:
        stop_run(page)
    go(page, "runs")
    page.locator("[data-testid=stDataFrame]").first.wait_for(timeout=SLOW_MS)
    page.locator("[data-testid=stDataFrame]").first.scroll_into_view_if_needed()
    shoot(page, "fixdata-runs-en")
    page.wait_for_function(GRID_JS, arg=f"{index}:{pred}", timeout=SLOW_MS)  # the settings table lists the edit
    assert not page.locator("[data-testid=stException]").count()
