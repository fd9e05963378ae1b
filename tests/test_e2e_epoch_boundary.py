"""In a real headless Chromium (issue 21): the Train page never looks frozen at an epoch boundary.

The small CNN preset's end-of-epoch test evaluation takes seconds on a CPU; the progress line must
keep changing through it (steps, then the evaluation's share, then the next epoch's steps).
"""
import dataclasses
import time

import pytest

from dlplay.presets import PRESETS
from dlplay.share import share_url
from e2e_util import click_button, wait_for_idle
from test_e2e_watch import stop_run, wait_status

PROGRESS_JS = """() => {
  const bar = document.querySelector('[data-testid=stProgress]');
  return bar ? bar.innerText.trim() : '';
}"""
SAMPLE_S = 0.25
MAX_STILL_S = 1.0 + SAMPLE_S  # at least one change a second, measured at the sampling's resolution


@pytest.mark.browser
def test_progress_keeps_moving_through_the_cnn_epoch_boundary(streamlit_server, browser_context):
    preset = PRESETS["small_cnn"]
    # 2000 training images: a short first epoch, then the whole test set's evaluation (10k images)
    config = dataclasses.replace(preset.config, epochs=2, train_size=2000)
    page = browser_context.new_page()
    page.goto(share_url(f"{streamlit_server}/train", preset.spec, config, {"lang": "en"}))
    page.wait_for_selector("[data-testid=stMainBlockContainer] h1", timeout=90_000)
    wait_for_idle(page)
    try:
        click_button(page, "train_start")
        wait_status(page, "training")
        page.wait_for_function("() => /Epoch 1\\/2 · step [1-9]/.test(document.querySelector("
                               "'[data-testid=stProgress]')?.innerText || '')", timeout=60_000)
        samples: list[tuple[float, str]] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            samples.append((time.monotonic(), page.evaluate(PROGRESS_JS)))
            text = samples[-1][1]
            if text.startswith("Epoch 2/2") and "evaluating" not in text and any(
                    s.startswith("Epoch 2/2") for _, s in samples[:-4]):
                break  # well into the second epoch
            page.wait_for_timeout(SAMPLE_S * 1000)
        texts = [s for _, s in samples]
        assert any("evaluating" in s for s in texts), "the boundary's evaluation was never shown"
        assert texts[-1].startswith("Epoch 2/2"), texts[-5:]
        # the longest stretch without a change of the progress line
        still, longest, since = samples[0][1], 0.0, samples[0][0]
        for t, s in samples[1:]:
            if s != still:
                still, since = s, t
            longest = max(longest, t - since)
        assert longest <= MAX_STILL_S, f"the progress line stood still for {longest:.2f} s: {texts}"
    finally:
        stop_run(page)
        page.close()
