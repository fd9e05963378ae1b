"""In a real headless Chromium: the sidebar language switch, ?lang=zh links and the browser's own language,
on every page; screenshots of both languages (CJK glyphs must render, not as empty boxes)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from dlplay.i18n import translate
from dlplay.ui.nav import available_pages
from e2e_util import open_app_page, running_app, wait_for_idle
from test_i18n import english_words

PAGES = [(url, nav_key) for _, url, nav_key, _ in available_pages()]
SHOTS = os.environ.get("DLPLAY_I18N_SHOTS")
SLOW_MS = 90_000  # a heavy page (Build's diagram) can keep a loaded 2-core machine's browser busy for ~20 s  # a folder to keep the screenshots in (to look at them)


@pytest.fixture(scope="module")
def streamlit_server():
    """A server of this module's own: runs that other browser tests left behind (holding the
    server's training slots, polling) do not slow or block these page-by-page checks."""
    with running_app() as url:
        yield url


def title_key(url: str) -> str:
    return {"evaluate": "eval.title", "step": "slowmo.title"}.get(url, f"{url}.title")


def heading(page) -> str:
    return page.locator("[data-testid=stMainBlockContainer] h1").first.inner_text().strip()


def wait_for_heading(page, text: str) -> None:
    page.wait_for_function(
        """(text) => { const h = document.querySelector('[data-testid=stMainBlockContainer] h1');
                       return h && h.innerText.trim() === text; }""",
        arg=text, timeout=SLOW_MS,
    )
    wait_for_idle(page, SLOW_MS)


def choose_language(page, label: str) -> None:
    """Pick ``label`` ("English" / "简体中文") in the sidebar's "Language / 语言" selectbox."""
    wait_for_idle(page, SLOW_MS)
    page.keyboard.press("Escape")  # an open dropdown elsewhere makes the rest of the page inert
    combo = page.locator(".st-key-lang_select [role=combobox]")
    option = page.locator("[role=option]").filter(has_text=label).first
    for _ in range(3):  # on a loaded machine a click during a rerun may not open the list: try again
        combo.click(timeout=SLOW_MS)
        try:
            option.wait_for(timeout=10_000)
            break
        except Exception:  # noqa: BLE001 - playwright's timeout: the list did not open
            page.keyboard.press("Escape")
            wait_for_idle(page, SLOW_MS)
    option.click(timeout=SLOW_MS)


def nav_labels(page) -> list[str]:
    # a link's text is "<icon name>\n\n<label>"
    return [a.inner_text().strip().split("\n")[-1].strip() for a in page.locator("[data-testid=stSidebarNav] a").all()]


def url_lang(page) -> str | None:
    from urllib.parse import parse_qs, urlparse

    return parse_qs(urlparse(page.url).query).get("lang", [None])[0]


def stale_labels(page) -> list[str]:
    """Select boxes (other than the language switch) that still show an English label."""
    values = [box.input_value() for box in page.locator("[role=combobox]").all()]
    return [v for v in values if v not in ("English", "简体中文") and english_words(v)]


def no_error(page) -> None:
    assert page.locator("[data-testid=stException]").count() == 0, page.locator("[data-testid=stException]").first.inner_text()


def screenshot(page, tmp_path: Path, name: str) -> Path:
    folder = Path(SHOTS) if SHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def heading_fonts(context, page) -> list[tuple[str, int]]:
    """(font family, glyph count) that the browser really used to draw the page title."""
    cdp = context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "[data-testid=stMainBlockContainer] h1"})
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})["fonts"]
    cdp.detach()
    return [(f["familyName"], f["glyphCount"]) for f in fonts]


def assert_drawn_in_chinese_glyphs(context, page, title: str) -> None:
    """Every character of the title has a glyph, the CJK ones from a Simplified Chinese font (with
    <html lang="zh-CN">; a page marked "en" gets the Japanese forms of the same characters)."""
    page.wait_for_function("() => document.documentElement.lang === 'zh-CN'", timeout=SLOW_MS)
    fonts = heading_fonts(context, page)
    assert sum(count for _, count in fonts) == len(title), (fonts, title)  # spaces count too
    cjk = [name for name, count in fonts if count and re.search(r"CJK|Hei|Song|Kai|PingFang|YaHei|SC|Hans", name)]
    assert cjk, fonts
    assert not any(re.search(r"\b(JP|KR|TC|HK)\b|CJK (jp|kr|tc)", name) for name in cjk), fonts


UPLOADER_TEXTS_JS = """() => [...document.querySelectorAll(
  '[data-testid=stFileUploaderDropzone] button p, [data-testid=stFileUploaderDropzoneInstructions] span')]
  .map(e => getComputedStyle(e, '::after').content)"""


@pytest.mark.slow
@pytest.mark.browser
def test_every_page_opens_in_chinese_and_switches_both_ways(streamlit_server, browser_context, tmp_path):
    """?lang=zh opens each page in Chinese (CJK glyphs drawn); the sidebar switch goes to English and back."""
    for url, nav_key in PAGES:
        zh_title, en_title = translate(title_key(url), "zh"), translate(title_key(url), "en")
        page = open_app_page(browser_context, streamlit_server, url, "zh")
        assert heading(page) == zh_title, url
        labels = nav_labels(page)
        assert translate(nav_key, "zh") in labels, labels
        assert translate("nav.train", "zh") in labels, labels
        assert_drawn_in_chinese_glyphs(browser_context, page, zh_title)
        assert not stale_labels(page), (url, stale_labels(page))
        no_error(page)
        screenshot(page, tmp_path, f"{url}-zh")

        choose_language(page, "English")
        wait_for_heading(page, en_title)
        assert url_lang(page) == "en"
        assert translate(nav_key, "en") in nav_labels(page)
        page.wait_for_function("() => document.documentElement.lang === 'en'", timeout=SLOW_MS)
        no_error(page)
        screenshot(page, tmp_path, f"{url}-en")

        choose_language(page, "简体中文")
        wait_for_heading(page, zh_title)
        assert url_lang(page) == "zh", page.url
        assert translate(nav_key, "zh") in nav_labels(page)
        assert not stale_labels(page), (url, stale_labels(page))
        no_error(page)
        page.close()


@pytest.mark.browser
def test_chinese_stays_when_moving_between_pages(streamlit_server, browser_context):
    page = open_app_page(browser_context, streamlit_server, "", "en")
    assert heading(page) == translate("home.title", "en")
    choose_language(page, "简体中文")
    wait_for_heading(page, translate("home.title", "zh"))
    assert url_lang(page) == "zh"
    for url, nav_key in PAGES:
        if url == "home":
            continue
        page.locator("[data-testid=stSidebarNav] a").filter(has_text=translate(nav_key, "zh")).first.click(timeout=SLOW_MS)
        wait_for_heading(page, translate(title_key(url), "zh"))
        assert url_lang(page) == "zh", (url, page.url)
        assert page.locator(".st-key-lang_select [role=combobox]").input_value() == "简体中文"
        for text in page.evaluate(UPLOADER_TEXTS_JS):  # Streamlit's own uploader texts, redrawn in Chinese
            assert re.search(r"[\u4e00-\u9fff]", text), (url, text)
            assert not english_words(text), (url, text)
    page.close()


@pytest.mark.browser
def test_browser_language_is_the_default(streamlit_server, browser_context):
    """Without ?lang=, a browser set to Chinese gets Chinese (and the URL then says so)."""
    page = browser_context.new_page()
    cdp = browser_context.new_cdp_session(page)
    cdp.send("Network.enable")
    user_agent = page.evaluate("() => navigator.userAgent")
    cdp.send("Network.setUserAgentOverride", {"userAgent": user_agent, "acceptLanguage": "zh-CN"})
    cdp.send("Emulation.setLocaleOverride", {"locale": "zh-CN"})
    page.goto(f"{streamlit_server}/train")
    assert page.evaluate("() => navigator.language") == "zh-CN"
    wait_for_heading(page, translate("train.title", "zh"))
    page.wait_for_function("() => location.search.includes('lang=zh')", timeout=SLOW_MS)
    page.close()


KIND_BOXES = "[class*=st-key-build_l][class*=_kind] [role=combobox]"


def layer_kinds(page) -> list[str]:
    return [box.input_value() for box in page.locator(KIND_BOXES).all()]


def add_layer(page, count_before: int) -> None:
    page.locator(".st-key-build_add button").first.click(timeout=SLOW_MS)
    page.wait_for_function(f"() => document.querySelectorAll({KIND_BOXES!r}).length > {count_before}",
                           timeout=SLOW_MS)
    wait_for_idle(page, SLOW_MS)


@pytest.mark.browser
def test_switching_language_keeps_the_chosen_options(streamlit_server, browser_context):
    """Keyed select boxes keep their choice and show it in the new language. (Streamlit keeps the old label
    in the browser unless the page sends the new one, and would later hand the stale label to a callback.)"""
    page = open_app_page(browser_context, streamlit_server, "build", "en")
    page.locator(".st-key-build_new_kind [role=combobox]").click(timeout=SLOW_MS)
    page.locator("[role=option]").filter(has_text=translate("build.kind_conv2d", "en")).first.click(timeout=SLOW_MS)
    page.wait_for_function("() => document.querySelector('.st-key-build_new_kind [role=combobox]').value"
                           f" === {translate('build.kind_conv2d', 'en')!r}", timeout=SLOW_MS)
    wait_for_idle(page, SLOW_MS)
    before = len(layer_kinds(page))
    add_layer(page, before)
    kinds = layer_kinds(page)
    assert translate("build.kind_conv2d", "en") in kinds, kinds
    choose_language(page, "简体中文")
    wait_for_heading(page, translate("build.title", "zh"))
    labels = {translate(f"build.kind_{k}", "en"): translate(f"build.kind_{k}", "zh") for k in ("dense", "conv2d")}
    assert layer_kinds(page) == [labels[k] for k in kinds]
    add_layer(page, len(kinds))  # the browser now sends back the Chinese labels: no stale value, no error
    no_error(page)
    assert layer_kinds(page).count(translate("build.kind_conv2d", "zh")) == 2, layer_kinds(page)
    assert not stale_labels(page)
    page.close()
