"""In a real headless Chromium (issue 15 #1): Evaluate's ONNX export downloads a real model, with the app's
requirements only (onnx is pinned in requirements.txt; tests/test_requirements.py checks every import)."""

from pathlib import Path

import numpy as np
import pytest

from e2e_util import click_button, open_app_page, rerun_after
from test_e2e_watch import set_epochs, stop_run, wait_status


@pytest.mark.browser
def test_onnx_export_downloads_a_model_that_runs(streamlit_server, browser_context):
    import onnx
    import onnxruntime

    page = open_app_page(browser_context, streamlit_server, "train")
    try:
        set_epochs(page, 1)
        click_button(page, "train_start")
        wait_status(page, "finished")
    finally:
        stop_run(page)
    link = page.locator("[data-testid=stSidebarNav] a").filter(has_text="Evaluate").first
    rerun_after(page, link.click)  # same session
    page.get_by_role("tab", name="Keep & share").click()
    button = page.locator(".st-key-eval_download_onnx button").first
    button.wait_for(timeout=60_000)
    assert button.is_enabled()
    with page.expect_download(timeout=120_000) as download:
        button.click()
    data = Path(download.value.path()).read_bytes()
    assert download.value.suggested_filename.endswith(".onnx")
    model = onnx.load_model_from_string(data)
    onnx.checker.check_model(model)
    # the exported network classifies: float pixels in [0, 1] (normalisation is part of the export), 10 scores out
    runner = onnxruntime.InferenceSession(data)
    feed = runner.get_inputs()[0]
    shape = [1 if not isinstance(d, int) else d for d in feed.shape]
    scores = runner.run(None, {feed.name: np.zeros(shape, dtype=np.float32)})[0]
    assert scores.shape[-1] == 10
    assert np.isfinite(scores).all()
    assert not page.locator("[data-testid=stException]").count()
