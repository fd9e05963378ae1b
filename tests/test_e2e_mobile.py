"""A phone in a real headless Chromium (a 390×844 viewport, touch emulated through the DevTools protocol): a digit
drawn with a finger on Draw is guessed without the page scrolling, Train starts and shows its charts without
horizontal scrolling, and every page is photographed at 390×844 (to $DLPLAY_SHOTS, e.g. docs/screenshots)."""
from __future__ import annotations

import itertools
import math
import os
import tempfile
from pathlib import Path

import pytest

from dlplay.ui.nav import PAGES
from e2e_util import wait_for_charts, wait_for_idle

WIDTH, HEIGHT = 390, 844
SLOW_MS = 120_000
SHOTS = Path(os.environ.get("DLPLAY_SHOTS") or tempfile.gettempdir())
CANVAS = "canvas.dlc-canvas"  # dlplay/ui/canvas_widget.py
NO_SIDEWAYS_JS = f"() => document.documentElement.scrollWidth <= {WIDTH}"
SCROLL_JS = "() => [window.scrollY, ...[...document.querySelectorAll('[data-testid=stMain], section')].map(e => e.scrollTop)]"


def open_on_phone(context, base_url: str, path: str, lang: str = "en"):
    """A new tab with a phone's screen and a touch screen (set before the page loads), on ``/<path>?lang=..`` after its
    first script run. The shared context is a persistent one (no per-page is_mobile/has_touch): the viewport is
    Playwright's, touch comes through the DevTools protocol (DevTools' mobile metrics override left pages half drawn)."""
    page = context.new_page()
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    cdp = context.new_cdp_session(page)
    cdp.send("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
    page.goto(f"{base_url}/{path}?lang={lang}")
    page.wait_for_selector("[data-testid=stMainBlockContainer] h1", timeout=90_000)
    wait_for_idle(page)
    return page, cdp


def drawn(page) -> None:
    """Charts and images drawn, and no placeholder left (Streamlit shows a grey skeleton for a button until its
    icon font has loaded, and for a component until its script runs)."""
    wait_for_charts(page, SLOW_MS)
    page.wait_for_function("() => !document.querySelector('[data-testid=stSkeleton]')", timeout=SLOW_MS)


def touch_stroke(cdp, points: list[tuple[float, float]]) -> None:
    """One finger down at the first point, through the others, lifted at the last (pointer events of type touch)."""
    def touch(kind: str, p: tuple[float, float] | None) -> None:
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": p[0], "y": p[1]}] if p else []})

    touch("touchStart", points[0])
    for a, b in itertools.pairwise(points):
        steps = max(1, int(math.dist(a, b) / 6))
        for i in range(1, steps + 1):
            touch("touchMove", (a[0] + (b[0] - a[0]) * i / steps, a[1] + (b[1] - a[1]) * i / steps))
    touch("touchEnd", None)


@pytest.mark.browser
@pytest.mark.slow
def test_a_digit_drawn_with_a_finger_is_guessed(streamlit_server, browser_context):
    page, cdp = open_on_phone(browser_context, streamlit_server, "draw")
    try:
        drawn(page)  # on the narrow screen the button took a while to get its size
        # :visible: at this width the page also holds a zero-sized copy of the button (Playwright: "not visible")
        page.locator(".st-key-draw_quick_train button:visible").first.click(timeout=SLOW_MS)
        page.wait_for_selector(".st-key-draw_model_ready", timeout=SLOW_MS)
        canvas = page.locator(CANVAS).first
        canvas.scroll_into_view_if_needed()
        wait_for_idle(page, SLOW_MS)
        assert canvas.evaluate("e => getComputedStyle(e).touchAction") == "none"  # (in the component's shadow DOM)
        box = canvas.bounding_box()
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= WIDTH  # the whole canvas is on the screen
        before_sig = page.locator(".dl-guess").first.get_attribute("data-sig") or ""
        scroll = page.evaluate(SCROLL_JS)
        size = min(box["width"], box["height"])
        one = [(0.47, 0.14), (0.5, 0.5), (0.52, 0.86)]  # a "1", written downwards: it would scroll the page
        touch_stroke(cdp, [(box["x"] + x * size, box["y"] + y * size) for x, y in one])
        page.wait_for_function("old => { const e = document.querySelector('.dl-guess'); return e && e.dataset.sig !== old; }",
                               arg=before_sig, timeout=SLOW_MS)
        assert page.evaluate(SCROLL_JS) == scroll  # drawing did not move the page
        guess = page.locator(".dl-guess-digit").first
        guess.wait_for(timeout=SLOW_MS)
        assert guess.inner_text().strip() == "1"
        page.wait_for_function(NO_SIDEWAYS_JS)
    finally:
        page.close()


@pytest.mark.browser
@pytest.mark.slow
def test_train_starts_on_a_phone_with_its_charts_and_no_sideways_scrolling(streamlit_server, browser_context):
    page, cdp = open_on_phone(browser_context, streamlit_server, "train")
    try:
        start = page.locator(".st-key-train_start button").first
        start.scroll_into_view_if_needed()
        box = start.bounding_box()
        touch_stroke(cdp, [(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)])  # a tap
        page.wait_for_function(
            """() => { const p = document.querySelector('.st-key-train_loss_chart .js-plotly-plot');
                       return p && p._fullData && p._fullData.length && p._fullData[0]._length > 0; }""",
            timeout=SLOW_MS)
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3",
                               timeout=SLOW_MS)
        widths = page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')].map(p => "
                               "p.getBoundingClientRect().right)")
        assert widths, widths
        assert max(widths) <= WIDTH, widths
        assert page.evaluate(NO_SIDEWAYS_JS), page.evaluate("() => document.documentElement.scrollWidth")
        stop = page.locator(".st-key-train_stop button").first
        if stop.is_enabled():  # it is not once the run has ended
            stop.click(timeout=SLOW_MS)
    finally:
        page.close()


PHOTOGRAPHED = [url for _, url, _, _ in PAGES if url != "admin"]


@pytest.mark.browser
@pytest.mark.slow
def test_every_page_on_a_phone(streamlit_server, browser_context):
    """390×844 screenshots of every page in English (and a few in Chinese); no page scrolls sideways."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    sideways = {}
    for lang, urls in (("en", PHOTOGRAPHED), ("zh", ["home", "train", "draw", "inside"])):
        for url in urls:
            page, _ = open_on_phone(browser_context, streamlit_server, url, lang)
            try:
                drawn(page)
                width = page.evaluate("() => document.documentElement.scrollWidth")
                if width > WIDTH:
                    sideways[f"{url}-{lang}"] = width
                page.screenshot(path=str(SHOTS / f"mobile-{url}-{lang}.png"))
            finally:
                page.close()
    assert not sideways, sideways
