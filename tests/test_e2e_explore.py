"""In a real headless Chromium: the augmentation preview on the Train page, the Explore page's robustness
curves and embeddings map (a click on a point opens that image on Inside), in English and Chinese, with
screenshots in docs/screenshots/."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from dlplay.i18n import translate
from e2e_util import click_button, open_app_page, wait_for_charts, wait_for_idle
from test_e2e_draw import CANVAS, DIGITS, _draw_strokes
from test_e2e_i18n import choose_language, wait_for_heading

SHOTS = Path(os.environ.get("DLPLAY_SHOTS") or tempfile.mkdtemp(prefix="dlplay-shots-"))  # docs/screenshots: set DLPLAY_SHOTS
SLOW_MS = 120_000
MEDIUM = "?aug=s2.5_r12_z0.1_e1_n0.05"  # a share link with the medium augmentation level


def _shot(page, name: str) -> None:
    wait_for_charts(page, SLOW_MS)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def _open_tab(page, label: str) -> None:
    wait_for_idle(page, SLOW_MS)
    tab = page.get_by_role("tab", name=label)
    for _ in range(5):  # a click during a rerun can be lost: click until the tab is the selected one
        tab.click()
        try:
            page.wait_for_selector(f"[role=tab][aria-selected=true]:has-text('{label}')", timeout=5_000)
            break
        except Exception:  # noqa: BLE001
            continue
    wait_for_idle(page, SLOW_MS)


def _nav(page, lang: str, key: str) -> None:
    label = translate(key, lang)
    page.locator("[data-testid=stSidebarNav] a").filter(has_text=label).first.click()


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_augmentation_preview_shows(streamlit_server, browser_context, lang: str) -> None:
    page = browser_context.new_page()
    page.goto(f"{streamlit_server}/train{MEDIUM}&lang={lang}")
    wait_for_heading(page, translate("train.title", lang))
    preview = page.locator(".st-key-aug_preview img")
    preview.first.wait_for(timeout=SLOW_MS)
    box = preview.first.bounding_box()
    assert box is not None
    assert box["width"] > 150
    first = preview.first.get_attribute("src")
    click_button(page, "aug_preview_new")  # new random versions of the same digits
    page.wait_for_function(
        "old => { const i = document.querySelector('.st-key-aug_preview img'); return i && i.src !== old; }",
        arg=first, timeout=SLOW_MS)
    _shot(page, f"augment-{lang}.png")
    page.close()


@pytest.mark.browser
@pytest.mark.slow
def test_explore_robustness_and_embeddings(streamlit_server, browser_context) -> None:
    page = open_app_page(browser_context, streamlit_server, "draw")
    click_button(page, "draw_quick_train")
    page.wait_for_selector(".st-key-draw_model_ready", timeout=SLOW_MS)
    canvas = page.locator(CANVAS).first
    _draw_strokes(page, DIGITS[3], canvas.bounding_box())
    page.mouse.up()
    page.wait_for_selector(".dl-guess-digit", timeout=SLOW_MS)

    _nav(page, "en", "nav.explore")
    wait_for_heading(page, translate("explore.title", "en"))
    click_button(page, "rob_measure")
    page.wait_for_selector(".st-key-rob_charts [data-testid=stPlotlyChart] .scatterlayer .trace", timeout=SLOW_MS)
    assert page.locator(".st-key-rob_charts [data-testid=stPlotlyChart]").count() == 4
    page.locator(".st-key-rob_drawing img").first.wait_for(timeout=SLOW_MS)  # the drawing under each level
    _shot(page, "robustness-en.png")

    _open_tab(page, translate("explore.tab_embeddings", "en"))
    points = page.locator(".st-key-emb_map_box .scatterlayer .trace .points path")
    points.first.wait_for(timeout=SLOW_MS)
    assert points.count() > 500  # the default 1,000 test images, and the drawing's star
    _shot(page, "embeddings-en.png")

    choose_language(page, "简体中文")
    wait_for_heading(page, translate("explore.title", "zh"))
    _open_tab(page, translate("explore.tab_embeddings", "zh"))
    page.locator(".st-key-emb_map_box .scatterlayer .trace .points path").first.wait_for(timeout=SLOW_MS)
    _shot(page, "embeddings-zh.png")
    _open_tab(page, translate("explore.tab_robustness", "zh"))
    page.locator(".st-key-rob_charts [data-testid=stPlotlyChart]").first.wait_for(timeout=SLOW_MS)
    _shot(page, "robustness-zh.png")

    # a click on a point of the map opens that test image on the Inside page
    _open_tab(page, translate("explore.tab_embeddings", "zh"))
    point = page.locator(".st-key-emb_map_box .scatterlayer .trace .points path").nth(10)
    point.click(force=True)
    wait_for_heading(page, translate("inside.title", "zh"))
    page.close()
