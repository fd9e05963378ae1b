"""In a real headless Chromium: the example zip on My data, "Use this dataset", trained from Train, and
Evaluate's Code tab downloads one zip of code and data (the button builds it on click); its files are the
scripts, the notebook and the dataset as plain numpy arrays. Screenshots in English and Chinese
(DLPLAY_SHOTS=docs/screenshots)."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from e2e_util import click_button, wait_for_idle
from test_e2e_owndata import open_my_data
from test_e2e_validation import SLOW_MS, go, shoot, switch_language
from test_e2e_watch import stop_run, wait_status


@pytest.mark.browser
@pytest.mark.slow
def test_a_run_on_own_data_downloads_its_code_with_the_data(streamlit_server, browser_context):
    page = open_my_data(browser_context, streamlit_server)
    click_button(page, "own_example_zip")
    page.wait_for_function("() => (document.querySelector('.st-key-own_preview') || {}).innerText"
                           "?.includes('180 images in 3 classes')", timeout=SLOW_MS)
    click_button(page, "own_use")
    page.locator(".st-key-own_in_use").wait_for(timeout=SLOW_MS)
    go(page, "train")
    try:
        click_button(page, "train_start")
        wait_status(page, "finished", timeout_ms=240_000)
    finally:
        stop_run(page)
    go(page, "evaluate")
    page.get_by_role("tab", name="Code").click()
    button = page.locator(".st-key-eval_code_download_zip button").first
    button.wait_for(timeout=SLOW_MS)
    wait_for_idle(page, SLOW_MS)
    with page.expect_download(timeout=SLOW_MS) as download:
        button.click()
    assert download.value.suggested_filename == "dlplay_run.zip"
    with zipfile.ZipFile(download.value.path()) as archive:
        names = set(archive.namelist())
        assert {"dlplay_run/dlplay_run.py", "dlplay_run/dlplay_run.ipynb", "dlplay_run/data/train.npz",
                "dlplay_run/data/test.npz", "dlplay_run/data/classes.json"} <= names
        assert json.loads(archive.read("dlplay_run/data/classes.json")) == ["0", "1", "7"]
        with np.load(io.BytesIO(archive.read("dlplay_run/data/test.npz")), allow_pickle=False) as npz:
            assert npz["images"].shape == (36, 28, 28)
            assert np.bincount(npz["labels"]).tolist() == [12, 12, 12]
    page.mouse.move(700, 60)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    shoot(page, "export-owndata-en", "[class*=st-key-eval_code_lang]")
    switch_language(page, "简体中文")
    page.wait_for_function("() => document.documentElement.lang === 'zh-CN'", timeout=SLOW_MS)
    wait_for_idle(page, SLOW_MS)
    tab = page.get_by_role("tab", name="代码")
    if tab.get_attribute("aria-selected") != "true":  # the tabs' names changed with the language
        tab.click()
    page.locator(".st-key-eval_code_download_zip button").first.wait_for(timeout=SLOW_MS)
    assert "代码和数据（zip）" in page.locator(".st-key-eval_code_download_zip").inner_text()
    shoot(page, "export-owndata-zh", "[class*=st-key-eval_code_lang]")
    assert not page.locator("[data-testid=stException]").count()
    page.close()
