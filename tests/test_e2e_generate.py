"""The Generate page in a real headless Chromium: the 2-D lab steps D and G and its heatmap shows;
the MNIST GAN trains from the page, its filmstrip grows, and the 8×8 grid downloads as a 224×224 PNG.
With DLPLAY_SHOTS set, screenshots of both modes in English and Chinese go to that folder
(docs/screenshots/generate-*.png in the repository)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from e2e_util import click_button, metric_value, open_app_page, wait_for_idle

SHOTS = os.environ.get("DLPLAY_SHOTS")
SLOW_MS = 120_000


def shot(page, name: str) -> None:
    if not SHOTS:
        return
    folder = Path(SHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    wait_for_idle(page, SLOW_MS)
    page.screenshot(path=str(folder / f"generate-{name}.png"), full_page=True)


def step_count(page, label: str) -> int:
    return int(metric_value(page, label).replace(",", "") or 0)


def plane_has_heatmap(page) -> bool:
    return page.locator(".st-key-gen_plane .heatmaplayer image, .st-key-gen_plane .hm image").count() > 0


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_2d_lab_steps_and_shows_the_heatmap(streamlit_server, browser_context, lang):
    from dlplay.i18n import translate

    page = open_app_page(browser_context, streamlit_server, "generate", lang)
    try:
        step_label = translate("generate.m_step", lang)
        page.wait_for_selector(".st-key-gen_plane .js-plotly-plot", timeout=SLOW_MS)  # the real shape, before any run
        click_button(page, "gen_lab_step_d")
        page.wait_for_function("() => !!document.querySelector('.st-key-gen_plane .hm image, .st-key-gen_plane .heatmaplayer image')",
                               timeout=SLOW_MS)
        click_button(page, "gen_lab_step_g")
        wait_for_idle(page, SLOW_MS)
        click_button(page, "gen_lab_step_both")
        page.wait_for_function(
            """(label) => [...document.querySelectorAll('[data-testid=stMetric]')].some(m =>
                 m.querySelector('[data-testid=stMetricLabel]')?.innerText.trim() === label &&
                 m.querySelector('[data-testid=stMetricValue]')?.innerText.trim() === '3')""",
            arg=step_label, timeout=SLOW_MS)
        assert plane_has_heatmap(page)
        assert page.locator("[data-testid=stException]").count() == 0
        click_button(page, "gen_lab_start")  # runs on its own at the default watchable pace
        page.wait_for_function(
            """(label) => [...document.querySelectorAll('[data-testid=stMetric]')].some(m =>
                 m.querySelector('[data-testid=stMetricLabel]')?.innerText.trim() === label &&
                 parseInt((m.querySelector('[data-testid=stMetricValue]')?.innerText || '0').replace(/,/g, '')) >= 40)""",
            arg=step_label, timeout=SLOW_MS)
        assert plane_has_heatmap(page)
        shot(page, f"lab-{lang}")
        click_button(page, "gen_lab_pause")
        wait_for_idle(page, SLOW_MS)
    finally:
        page.close()
