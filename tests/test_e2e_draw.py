"""Draw page in a real headless Chromium: quick-train, draw digits with the mouse, read the guesses.

Also measures the time from the end of a stroke (mouse up) to the new guess on the page, and prints it.
"""
from __future__ import annotations

import itertools
import math
import statistics
import tempfile
import time
from pathlib import Path

import pytest

from e2e_util import click_button, open_app_page, wait_for_idle

Point = tuple[float, float]


def _arc(cx: float, cy: float, rx: float, ry: float, start_deg: float, end_deg: float, n: int = 24) -> list[Point]:
    """Points on an ellipse, angles in degrees (0 = right, 90 = down, as on screen)."""
    return [
        (cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
        for a in (start_deg + (end_deg - start_deg) * i / n for i in range(n + 1))
    ]


# Stroke paths in a unit square (x right, y down), drawn the way people write these digits.
DIGITS: dict[int, list[list[Point]]] = {
    0: [_arc(0.5, 0.5, 0.27, 0.38, -90, 270, 36)],
    1: [[(0.47, 0.14), (0.5, 0.5), (0.52, 0.86)]],
    2: [[*_arc(0.5, 0.34, 0.22, 0.19, 200, 370, 14), (0.6, 0.56), (0.44, 0.72), (0.28, 0.85), (0.76, 0.85)]],
    3: [_arc(0.48, 0.32, 0.21, 0.17, 200, 450, 16) + _arc(0.48, 0.67, 0.23, 0.19, -90, 160, 16)],
    4: [[(0.56, 0.14), (0.26, 0.62), (0.8, 0.62)], [(0.63, 0.34), (0.63, 0.88)]],
    5: [[(0.72, 0.16), (0.36, 0.16), (0.32, 0.46), *_arc(0.5, 0.64, 0.22, 0.2, -120, 150, 16)]],
    6: [[(0.66, 0.13), (0.46, 0.3), (0.33, 0.52), *_arc(0.5, 0.66, 0.19, 0.2, 180, 540, 24)]],
    7: [[(0.24, 0.18), (0.77, 0.18), (0.58, 0.5), (0.44, 0.86)]],
    8: [[(0.5 + 0.2 * math.sin(2 * t), 0.5 - 0.36 * math.cos(t)) for t in (i * math.pi / 24 for i in range(49))]],
    9: [[*_arc(0.5, 0.34, 0.2, 0.19, 0, 360, 24), (0.7, 0.34), (0.68, 0.6), (0.65, 0.88)]],
}
CANVAS, CLEAR = "canvas.dlc-canvas", ".dlc-toolbar [data-act=clear]"  # dlplay/ui/canvas_widget.py
# With the quick-trained tutorial model these came out right in every run (80-99 % sure); 2, 6 and 8
# were recognised too, but in some runs (or drawn slightly differently) with 40-70 %, so they are only printed.
MUST_RECOGNISE = (0, 1, 3, 4, 5, 7, 9)
UNDO = ".dlc-toolbar [data-act=undo]"


def _draw_strokes(page, strokes: list[list[Point]], box: dict) -> None:
    """Draw all strokes but keep the mouse down at the end of the last one (the caller releases it)."""
    size = min(box["width"], box["height"])

    def at(p: Point) -> tuple[float, float]:
        return box["x"] + p[0] * size, box["y"] + p[1] * size

    for i, stroke in enumerate(strokes):
        page.mouse.move(*at(stroke[0]))
        page.mouse.down()
        for a, b in itertools.pairwise(stroke):
            steps = max(1, int(math.dist(a, b) * 20))  # the canvas draws straight lines between points
            page.mouse.move(*at(b), steps=steps)
        if i < len(strokes) - 1:
            before = _guess_sig(page)
            page.mouse.up()
            _wait_sig_change(page, before)


def _guess_sig(page) -> str:
    return page.locator(".dl-guess").first.get_attribute("data-sig") or ""


def _wait_sig_change(page, old: str, timeout_ms: int = 30_000) -> None:
    """Wait until the guess box shows a different drawing than ``old``."""
    page.locator(".dl-guess").first.wait_for()
    page.wait_for_function(
        "old => { const e = document.querySelector('.dl-guess'); return e && e.dataset.sig !== old; }",
        arg=old, polling="raf", timeout=timeout_ms,
    )


# In the page: time from the pointer lifting to the guess box showing the new drawing (performance.now()).
ARM_TIMER = """old => {
  const timer = window.__dlTimer = {t0: null, t1: null};
  window.addEventListener('pointerup', () => { timer.t0 = performance.now(); }, {capture: true, once: true});
  const observer = new MutationObserver(() => {
    const e = document.querySelector('.dl-guess');
    if (timer.t0 !== null && e && e.dataset.sig !== old) { timer.t1 = performance.now(); observer.disconnect(); }
  });
  observer.observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
}"""


def _clear(page) -> None:
    if _guess_sig(page) == "empty":
        return
    page.locator(CLEAR).first.click()
    page.wait_for_function(
        "() => { const e = document.querySelector('.dl-guess'); return e && e.dataset.sig === 'empty'; }",
        polling="raf", timeout=30_000,
    )


@pytest.mark.browser
@pytest.mark.slow
def test_draw_digits_and_get_guesses(streamlit_server, browser_context) -> None:
    """Quick-train the tutorial model (1 epoch on the sample), draw ten digits, read the guesses."""
    started = time.perf_counter()
    page = open_app_page(browser_context, streamlit_server, "draw")
    page.wait_for_selector(CANVAS)
    ready = time.perf_counter()
    assert "Draw a digit" in page.locator(".dl-guess").first.inner_text()
    click_button(page, "draw_quick_train")
    page.wait_for_selector(".st-key-draw_model_ready", timeout=120_000)
    trained = time.perf_counter()
    print(f"page ready {ready - started:.1f} s, quick training {trained - ready:.1f} s")

    canvas = page.locator(CANVAS).first
    box = canvas.bounding_box()
    guesses: dict[int, str] = {}
    latencies: list[float] = []  # seconds, measured by the test (includes the browser round trips)
    in_page: list[float] = []  # milliseconds, measured in the page
    for digit, strokes in DIGITS.items():
        _clear(page)
        _draw_strokes(page, strokes, box)
        before = _guess_sig(page)
        page.evaluate(ARM_TIMER, before)
        t0 = time.perf_counter()
        page.mouse.up()
        _wait_sig_change(page, before)
        latencies.append(time.perf_counter() - t0)
        page.wait_for_function("() => window.__dlTimer.t1 !== null")
        in_page.append(page.evaluate("() => window.__dlTimer.t1 - window.__dlTimer.t0"))
        guess = page.locator(".dl-guess-digit").first
        guess.wait_for()
        guesses[digit] = guess.inner_text().strip()
        confidence = page.locator(".dl-guess-conf").first.inner_text()
        print(f"drew {digit}: guessed {guesses[digit]} ({confidence})")
    # what the network sees and its forward pass are on the page: probabilities, dense1, output
    page.wait_for_selector("[data-testid=stImage]")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=stPlotlyChart]').length === 3")
    wait_for_idle(page)
    page.screenshot(path=str(Path(tempfile.gettempdir()) / "dlplay-draw-e2e.png"))
    # Undo takes back the last stroke: an extra stroke over the 9, then Undo, gives the 9 back exactly
    nine = _guess_sig(page)
    _draw_strokes(page, [[(0.2, 0.5), (0.8, 0.5)]], box)
    page.mouse.up()
    _wait_sig_change(page, nine)
    page.locator(UNDO).first.click()
    page.wait_for_function(
        "sig => { const e = document.querySelector('.dl-guess'); return e && e.dataset.sig === sig; }",
        arg=nine, polling="raf", timeout=30_000,
    )
    assert page.locator(".dl-guess-digit").first.inner_text().strip() == guesses[9]
    _clear(page)  # Clear: back to "Draw a digit", no guess
    assert page.locator(".dl-guess-digit").count() == 0
    assert "Draw a digit" in page.locator(".dl-guess").first.inner_text()
    ms = sorted(x * 1000 for x in latencies)
    page_ms = sorted(in_page)
    print(f"stroke end -> guess shown, in the page: median {statistics.median(page_ms):.0f} ms, "
          f"min {page_ms[0]:.0f} ms, max {page_ms[-1]:.0f} ms; seen from the test: median "
          f"{statistics.median(ms):.0f} ms, min {ms[0]:.0f}, max {ms[-1]:.0f} ({len(ms)} strokes)")
    print(f"drawing ten digits: {time.perf_counter() - trained:.1f} s")
    correct = [d for d, g in guesses.items() if g == str(d)]
    print(f"recognised {len(correct)}/10: {correct}")
    for digit in MUST_RECOGNISE:
        assert guesses[digit] == str(digit), f"drew {digit}, the page guessed {guesses[digit]}"
