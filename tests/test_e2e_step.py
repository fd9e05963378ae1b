"""One step page in a real headless Chromium: a step of the tutorial network played in slow motion, the
run taking it, a hand edit of one neuron (its latency printed) given back to training, and the landscape.
Screenshots go to $DLPLAY_SHOTS (or the test's temporary folder)."""
from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import pytest

from e2e_util import click_button, open_app_page, wait_for_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SLOW_MS = 120_000


def text_of(page, key: str) -> str:
    return page.locator(f".st-key-{key}").first.inner_text()


def wait_text(page, key: str, needle: str, timeout: int = SLOW_MS) -> None:
    """Wait until the element keyed ``key`` shows ``needle``; on a timeout say what it showed."""
    try:
        page.wait_for_function(
            "([key, needle]) => { const el = document.querySelector('.st-key-' + key);"
            " return el && el.innerText.includes(needle); }", arg=[key, needle], timeout=timeout)
    except Exception:
        shown = page.locator(f".st-key-{key}").all_inner_texts()
        page.screenshot(path=str(Path(os.environ.get("DLPLAY_SHOTS", "/tmp")) / f"failed-{key}.png"), full_page=True)
        raise AssertionError(f"{key} never showed {needle!r}; it shows {shown}") from None


def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("DLPLAY_SHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def type_value(page, key: str, value: float) -> None:
    box = page.locator(f".st-key-{key} input").first
    box.fill(f"{value}")
    box.press("Enter")


def test_a_step_in_slow_motion_and_a_hand_edit(streamlit_server, browser_context, tmp_path):
    out = shots(tmp_path)
    page = open_app_page(browser_context, streamlit_server, "step")
    page.set_viewport_size({"width": 1400, "height": 1500})  # the whole page in the screenshots
    try:
        click_button(page, "slowmo_start")
        wait_text(page, "slowmo_phase_label", "Phase 1 of 9")
        click_button(page, "slowmo_next")
        wait_text(page, "slowmo_phase_label", "Phase 2 of 9")
        click_button(page, "slowmo_play")  # plays to the last phase by itself
        wait_text(page, "slowmo_phase_label", "Phase 9 of 9")
        wait_idle_and(page)
        click_button(page, "slowmo_prev")
        wait_text(page, "slowmo_phase_label", "Phase 8 of 9")
        wait_text(page, "slowmo_formula", "update")
        page.screenshot(path=str(out / "step-slowmo-en.png"), full_page=True)
        # a click on neuron 5 of the output layer (the third trace: layer 1, the ring round neuron 0, layer 2)
        point = page.locator(".st-key-slowmo_diagram .scatterlayer .trace").nth(2).locator("path.point").nth(5)
        box = point.bounding_box()  # plotly's drag layer lies over the points: click where the point is
        assert box is not None
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_function("() => document.querySelector('.st-key-slowmo_unit input')?.value === '5'",
                               timeout=SLOW_MS)
        wait_text(page, "slowmo_formula", "Neuron 5 of layer 2")
        click_button(page, "slowmo_take")
        wait_text(page, "slowmo_check", "took step 1 itself")
        wait_text(page, "slowmo_phase_label", "Phase 1 of 9")

        page.get_by_role("tab", name="Edit a weight").click()
        page.wait_for_selector(".st-key-slowmo_edit_state")
        wait_text(page, "slowmo_edit_state", "0 edits")
        latencies = []
        for n, value in enumerate((2.5, -1.5, 4.0), start=1):
            t0 = time.perf_counter()
            type_value(page, "slowmo_edit_value", value)
            wait_text(page, "slowmo_edit_state", f"{n} edits")
            latencies.append(time.perf_counter() - t0)
        print(f"\nedit typed -> page updated: median {statistics.median(latencies) * 1000:.0f} ms "
              f"(of {[round(x * 1000) for x in latencies]} ms)")
        assert "4.00000" in text_of(page, "slowmo_edit_state")
        page.screenshot(path=str(out / "step-edit-en.png"), full_page=True)
        click_button(page, "slowmo_undo")
        wait_text(page, "slowmo_edit_state", "2 edits")
        assert "-1.50000" in text_of(page, "slowmo_edit_state")
        click_button(page, "slowmo_give_back")
        wait_text(page, "slowmo_given", "weights edited by hand")
        wait_text(page, "slowmo_phase_label", "Phase 1 of 9")  # the new run's next step is ready to replay

        page.get_by_role("tab", name="Loss landscape").click()
        click_button(page, "slowmo_land_go")
        wait_text(page, "slowmo_land_status", "625 points", timeout=240_000)
        page.wait_for_selector(".st-key-slowmo_land_figure .js-plotly-plot", timeout=SLOW_MS)
        page.screenshot(path=str(out / "step-landscape-en.png"), full_page=True)
    finally:
        page.close()


def wait_idle_and(page) -> None:
    wait_for_idle(page, SLOW_MS)


def test_the_page_in_chinese(streamlit_server, browser_context, tmp_path):
    out = shots(tmp_path)
    page = open_app_page(browser_context, streamlit_server, "step", lang="zh")
    page.set_viewport_size({"width": 1400, "height": 1500})
    try:
        click_button(page, "slowmo_start")
        wait_text(page, "slowmo_phase_label", "第 1 / 9 阶段")
        for i in (2, 3, 4, 5):
            click_button(page, "slowmo_next")
            wait_text(page, "slowmo_phase_label", f"第 {i} / 9 阶段")
        wait_text(page, "slowmo_formula", "δ")
        page.screenshot(path=str(out / "step-slowmo-zh.png"), full_page=True)
        page.get_by_role("tab", name="修改权重").click()
        type_value(page, "slowmo_edit_value", 1.5)
        wait_text(page, "slowmo_edit_state", "已修改 1 次")
        page.screenshot(path=str(out / "step-edit-zh.png"), full_page=True)
        click_button(page, "slowmo_undo")
        wait_text(page, "slowmo_edit_state", "已修改 0 次")
        page.get_by_role("tab", name="慢放").click()
        for step in (1, 2, 3):  # three steps taken by the run: a path to draw
            click_button(page, "slowmo_take")
            wait_text(page, "slowmo_check", f"训练自己走了第 {step} 步")
        page.get_by_role("tab", name="损失地形").click()
        page.locator(".st-key-slowmo_land_kind").get_by_text("路径的两个主方向").click()  # the path's plane
        page.wait_for_function("() => document.querySelectorAll('.st-key-slowmo_land_kind input:checked').length === 1"
                               " && document.querySelectorAll('.st-key-slowmo_land_kind input')[1].checked",
                               timeout=SLOW_MS)
        wait_for_idle(page, SLOW_MS)
        click_button(page, "slowmo_land_go")
        wait_text(page, "slowmo_land_status", "625", timeout=240_000)
        page.wait_for_selector(".st-key-slowmo_land_figure .js-plotly-plot", timeout=SLOW_MS)
        assert "路径的第一主方向" in text_of(page, "slowmo_land_figure")  # the PCA plane's axis
        page.screenshot(path=str(out / "step-landscape-zh.png"), full_page=True)
    finally:
        page.close()
