"""In a real headless Chromium: a zip of image folders (real MNIST digits of 3 classes, packed here) uploaded
on My data, "Use this dataset", trained from Train, and Evaluate's confusion matrix names the 3 classes.
Screenshots of the page with the example loaded, in English and Chinese (DLPLAY_SHOTS=docs/screenshots)."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from dlplay.data import datasets as data
from e2e_util import click_button, wait_for_idle
from test_e2e_validation import SLOW_MS, go, shoot, switch_language
from test_e2e_watch import stop_run, wait_status

CLASSES = {0: "ring", 1: "stick", 7: "hook"}  # folder names: not digits, so the matrix's labels are the folders'
PER_CLASS = 40
TICKS_JS = """() => {
  const gd = document.querySelector('[class*=st-key-eval_cm_] .js-plotly-plot');
  if (!gd || !gd._fullLayout) return [];
  return [...gd.querySelectorAll('.xtick text, .ytick text')].map(t => t.textContent);
}"""


def digits_zip(path) -> None:
    mnist = data.load_dataset("mnist", download=False)
    images, labels = mnist.train_images.numpy(), mnist.train_labels.numpy()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for digit, name in CLASSES.items():
            for k, i in enumerate(np.flatnonzero(labels == digit)[:PER_CLASS]):
                png = io.BytesIO()
                Image.fromarray(images[i]).save(png, format="PNG")
                archive.writestr(f"shapes/{name}/{k}.png", png.getvalue())


def open_my_data(context, base_url: str):
    page = context.new_page()
    page.goto(f"{base_url}/mydata?lang=en")
    page.wait_for_selector("[data-testid=stMainBlockContainer] h1", timeout=90_000)
    wait_for_idle(page, SLOW_MS)
    return page


@pytest.mark.browser
@pytest.mark.slow
def test_upload_a_zip_train_on_it_and_see_its_classes_in_the_confusion_matrix(streamlit_server, browser_context,
                                                                              tmp_path):
    upload = tmp_path / "shapes.zip"
    digits_zip(upload)
    page = open_my_data(browser_context, streamlit_server)
    assert "at most 20,000 images" in page.locator("[data-testid=stAlert]").first.inner_text()  # before the upload
    page.locator(".st-key-own_upload_box input[type=file]").set_input_files(str(upload))
    preview = page.locator(".st-key-own_preview")
    preview.wait_for(timeout=SLOW_MS)
    page.wait_for_function("() => (document.querySelector('.st-key-own_preview') || {}).innerText"
                           "?.includes('120 images in 3 classes')", timeout=SLOW_MS)
    for name in CLASSES.values():
        assert f"{name} · {PER_CLASS}" in preview.inner_text()
    click_button(page, "own_use")
    in_use = page.locator(".st-key-own_in_use")
    in_use.wait_for(timeout=SLOW_MS)
    assert "96 training and 24 test images, 3 classes" in in_use.inner_text()
    go(page, "train")
    assert page.locator(".st-key-tw_dataset [role=combobox]").input_value() == "shapes"  # the chosen dataset
    try:  # the tutorial preset's 10 epochs over 96 images: 30 steps, seconds
        click_button(page, "train_start")
        wait_status(page, "finished", timeout_ms=240_000)
    finally:
        stop_run(page)
    go(page, "evaluate")
    page.wait_for_function(f"() => ({TICKS_JS})().length >= 6", timeout=SLOW_MS)
    ticks = set(page.evaluate(TICKS_JS))
    assert set(CLASSES.values()) <= ticks, ticks
    assert not ticks & {"0", "1", "7", "9"}  # the learner's classes, not MNIST's digits
    assert not page.locator("[data-testid=stException]").count()
    page.close()


@pytest.mark.browser
@pytest.mark.slow
def test_the_example_previewed_in_english_and_chinese(streamlit_server, browser_context):
    page = open_my_data(browser_context, streamlit_server)
    click_button(page, "own_example_zip")
    page.wait_for_function("() => (document.querySelector('.st-key-own_preview') || {}).innerText"
                           "?.includes('180 images in 3 classes')", timeout=SLOW_MS)
    page.mouse.move(700, 60)  # no tooltip over the page (the button keeps it while focused or hovered)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.locator("[role=tooltip]").first.wait_for(state="hidden", timeout=SLOW_MS)
    shoot(page, "mydata-example-en")
    switch_language(page, "简体中文")
    page.wait_for_function("() => document.documentElement.lang === 'zh-CN'", timeout=SLOW_MS)
    wait_for_idle(page, SLOW_MS)
    assert "3 个类别共 180 张图片" in page.locator(".st-key-own_preview").inner_text()
    shoot(page, "mydata-example-zh")
    page.locator(".st-key-own_preview").evaluate("e => e.scrollIntoView({block: 'start'})")
    shoot(page, "mydata-preview-zh")
    assert not page.locator("[data-testid=stException]").count()
    page.close()
