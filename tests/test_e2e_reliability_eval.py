"""Issue 33 section 2 in a real headless Chromium, as a learner meets it, in English and Chinese:
Evaluate's checkpoint box (the limit said before uploading, a file over the limit refused in words, a GAN
checkpoint named), the image-set choice clicked twice (it crashed), every label naming the images
measured, Draw's upload of a model file and its "sure" explained, the sidebar listing every page, and
Home without the server's folders. Screenshots: docs/screenshots/reliability-*.png (set DLPLAY_SHOTS)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from dlplay.classify.checkpoint import checkpoint_from_session
from dlplay.classify.runs import record_from_session
from dlplay.gan.mnist import GanConfig, GanSpec, build_gan, save_gan_checkpoint
from dlplay.i18n import translate
from dlplay.nn.spec import TrainConfig, dense_spec
from dlplay.ui.nav import PAGES, ROOT
from e2e_util import DATA_DIR, app_server, open_app_page, wait_for_idle
from helpers import train_to_end
from test_e2e_draw import CANVAS, DIGITS, _draw_strokes
from test_e2e_validation import switch_language

SHOTS = Path(os.environ.get("DLPLAY_SHOTS") or tempfile.mkdtemp(prefix="dlplay-shots-"))
SLOW_MS = 120_000
EXCEPTION = "[data-testid=stException]"
HEADER_JS = """(text) => [...document.querySelectorAll('[data-testid=stDataFrame] [role=columnheader], [data-testid=stDataFrame] th')]
  .some(cell => cell.textContent.trim() === text)"""
ACTIVE_OPTION = "[aria-checked=true], [data-testid=stBaseButton-segmented_controlActive]"  # required / optional


def shoot(page, name: str, selector: str | None = None) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    wait_for_idle(page, SLOW_MS)
    if selector:  # that element at the top of the view
        page.locator(selector).first.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def to_language(page, lang: str) -> None:
    switch_language(page, "简体中文" if lang == "zh" else "English")
    page.wait_for_function(f"() => document.documentElement.lang === '{'zh-CN' if lang == 'zh' else 'en'}'",
                           timeout=SLOW_MS)
    wait_for_idle(page, SLOW_MS)


def go(page, path: str) -> None:
    """To another page in the same tab (same Streamlit session), by the sidebar's link."""
    page.locator(f"[data-testid=stSidebarNav] a[href$='/{path}']").first.click()
    page.wait_for_function(f"() => location.pathname.endsWith('/{path}')", timeout=SLOW_MS)
    wait_for_idle(page, SLOW_MS)


def open_tab(page, name: str) -> None:
    page.locator("[role=tab]").filter(has_text=name).first.click()
    wait_for_idle(page, SLOW_MS)


def upload(page, key: str, path: Path) -> None:
    page.locator(f".st-key-{key} input[type=file]").set_input_files(str(path))


def remove_files(page, key: str) -> None:
    """Every file chip of the uploader ``key`` removed (its × buttons), as a learner clears the box."""
    chips = page.locator(f".st-key-{key} [data-testid=stFileChipDeleteBtn] button")
    while chips.count():
        chips.first.click()
        wait_for_idle(page, SLOW_MS)


def link_text(link) -> str:
    """A sidebar link's label (its icon's ligature name comes first)."""
    return link.inner_text().strip().splitlines()[-1].strip()


def metric_labels(page) -> list[str]:
    return [s.strip() for s in page.locator("[data-testid=stMetricLabel]").all_inner_texts()]


@pytest.fixture(scope="module")
def files(mnist, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("uploads")
    config = TrainConfig(epochs=1, batch_size=100, train_size=2000, val_share=0.1, seed=0)
    session = train_to_end(mnist, dense_spec([32]), config, timeout=120)
    g, d = build_gan(GanSpec(), seed=0)
    paths = {"good": folder / "model.pt", "gan": folder / "gan.pt", "big": folder / "big.pt"}
    paths["good"].write_bytes(checkpoint_from_session(session, run=record_from_session(session)))
    paths["gan"].write_bytes(save_gan_checkpoint(g, d, GanConfig(), steps=0))
    with open(paths["big"], "wb") as f:  # over the server's 24 MB: the browser refuses it
        f.seek(30 * 2**20)
        f.write(b"\0")
    return paths


@pytest.mark.browser
@pytest.mark.slow
def test_evaluate_and_draw_as_a_learner_meets_them(streamlit_server, browser_context, files):
    page = open_app_page(browser_context, streamlit_server, "evaluate")
    try:
        # --- no model yet: the page points to what is on it, and says the limit before any upload
        page.locator(".st-key-eval_upload_box").wait_for(timeout=SLOW_MS)
        info = page.locator("[data-testid=stAlertContentInfo]").first.inner_text()
        assert "Keep & share" not in info, info
        assert "Load a checkpoint" in info, info
        box = page.locator(".st-key-eval_upload_box")
        page.get_by_text("A checkpoint file (.pt) of at most 24 MB").first.wait_for(timeout=SLOW_MS)  # said before
        refused = page.locator(".dl-refused-eval_upload_box")
        assert not refused.is_visible()
        upload(page, "eval_upload", files["good"])
        ok = page.locator(".st-key-eval_upload_outcome [data-testid=stAlertContentSuccess]")
        ok.wait_for(timeout=SLOW_MS)
        assert "Checkpoint OK" in ok.inner_text()
        # --- a file over the limit: refused in words, and the box no longer describes model.pt
        upload(page, "eval_upload", files["big"])
        box.locator("[data-testid=stFileChip][aria-invalid=true]").wait_for(timeout=SLOW_MS)
        refused.wait_for(state="visible", timeout=SLOW_MS)
        assert "larger than 24 MB" in refused.inner_text()
        assert not page.locator(".st-key-eval_upload_outcome").first.is_visible()
        shoot(page, "reliability-upload-refused-en", ".st-key-eval_upload_box")
        to_language(page, "zh")
        page.wait_for_function("() => document.querySelector('.dl-refused-eval_upload_box')?.innerText.includes('超过了 24 MB')",
                               timeout=SLOW_MS)
        assert refused.is_visible()
        assert not page.locator(".st-key-eval_upload_outcome").first.is_visible()
        shoot(page, "reliability-upload-refused-zh", ".st-key-eval_upload_box")
        to_language(page, "en")
        remove_files(page, "eval_upload")
        # --- a GAN checkpoint: named, with where to open it
        upload(page, "eval_upload", files["gan"])
        error = page.locator(".st-key-eval_upload_outcome [data-testid=stAlertContentError]")
        error.wait_for(timeout=SLOW_MS)
        text = error.inner_text()
        assert "GAN checkpoint from the Generate page" in text, text
        assert "not a dlplay checkpoint" not in text, text
        assert not refused.is_visible()
        shoot(page, "reliability-upload-gan-en", ".st-key-eval_upload_box")
        to_language(page, "zh")
        error.wait_for(timeout=SLOW_MS)
        assert "生成对抗网络检查点" in error.inner_text()
        assert "生成" in error.inner_text()
        shoot(page, "reliability-upload-gan-zh", ".st-key-eval_upload_box")
        to_language(page, "en")
        # --- the model in use; the image-set choice clicked twice keeps it (it crashed)
        remove_files(page, "eval_upload")
        upload(page, "eval_upload", files["good"])
        page.locator(".st-key-eval_use_ckpt button").first.click()
        page.locator(".st-key-fx_split").wait_for(timeout=SLOW_MS)
        wait_for_idle(page, SLOW_MS)
        for lang, option, accuracy, column, measured in (
            ("en", "Training images", "Training accuracy", "Training images", "training images this run trains on"),
            ("zh", "训练图像", "训练准确率", "训练图像", "张训练图像上测得"),
        ):
            if lang == "zh":
                to_language(page, "zh")
            for _ in range(2):  # the second click on the chosen option used to raise in the page
                page.locator(".st-key-fx_split button").filter(has_text=option).first.click(no_wait_after=True)
                wait_for_idle(page, SLOW_MS)
                assert page.locator(EXCEPTION).count() == 0, page.locator(EXCEPTION).first.inner_text()
                page.wait_for_function(
                    "([sel, text]) => [...document.querySelector('.st-key-fx_split').querySelectorAll(sel)]"
                    ".some(b => b.innerText.trim() === text)", arg=[ACTIVE_OPTION, option], timeout=SLOW_MS)
            page.wait_for_function("t => [...document.querySelectorAll('[data-testid=stMetricLabel]')]"
                                   ".some(e => e.innerText.trim() === t)", arg=accuracy, timeout=SLOW_MS)
            labels = metric_labels(page)
            assert accuracy in labels, labels
            assert "Test accuracy" not in labels, labels
            assert "测试准确率" not in labels, labels
            assert measured in page.locator("[data-testid=stMain]").inner_text()
            page.locator("[data-testid=stDataFrame]").first.scroll_into_view_if_needed()
            page.wait_for_function(HEADER_JS, arg=column, timeout=SLOW_MS)  # the per-class table's column
            shoot(page, f"reliability-eval-training-{lang}", ".st-key-fx_split")
        # --- Draw (still in Chinese): a model file dropped on the picture upload, then a drawn digit
        go(page, "draw")
        nav = link_text(page.locator("[data-testid=stSidebarNav] a[href$='/draw']").first)
        title = page.locator("[data-testid=stMainBlockContainer] h1").first.inner_text()
        assert title.startswith(nav), (nav, title)  # the sidebar's name is the page's
        page.locator(".st-key-draw_source label").filter(has_text="上传图片").first.click()
        page.locator(".st-key-draw_upload").wait_for(timeout=SLOW_MS)
        wait_for_idle(page, SLOW_MS)
        assert "PNG、JPEG" in page.locator("[data-testid=stMain]").inner_text()  # what Draw accepts, before
        upload(page, "draw_upload", files["good"])
        page.locator("[data-testid=stAlertContentError]").filter(has_text="模型文件").first.wait_for(timeout=SLOW_MS)
        assert "评估" in page.locator("[data-testid=stAlertContentError]").first.inner_text()
        shoot(page, "reliability-draw-model-file-zh", ".st-key-draw_source")
        to_language(page, "en")
        page.locator(".st-key-draw_source label").filter(has_text="Draw").first.click()
        page.wait_for_selector(CANVAS, timeout=SLOW_MS)
        wait_for_idle(page, SLOW_MS)
        canvas = page.locator(CANVAS).first
        canvas.scroll_into_view_if_needed()
        _draw_strokes(page, DIGITS[1], canvas.bounding_box())
        page.mouse.up()
        note = page.locator(".st-key-draw_confidence_note")
        note.wait_for(timeout=SLOW_MS)
        conf = page.locator(".dl-guess-conf").first.inner_text()
        assert conf.endswith("sure"), conf
        assert "100%" not in conf, conf
        assert "reliability diagram" in note.inner_text()
        assert note.locator("a[href*='evaluate']").count() == 1
        shoot(page, "reliability-draw-sure-en", "[data-testid=stMainBlockContainer] h1")
        to_language(page, "zh")
        page.wait_for_function("() => document.querySelector('.st-key-draw_confidence_note')?.innerText.includes('可靠性图')",
                               timeout=SLOW_MS)
        conf = page.locator(".dl-guess-conf").first.inner_text()
        assert conf.startswith("把握"), conf
        assert "100%" not in conf, conf
        shoot(page, "reliability-draw-sure-zh", "[data-testid=stMainBlockContainer] h1")
        assert page.locator(EXCEPTION).count() == 0
    finally:
        page.close()


@pytest.mark.browser
def test_the_sidebar_lists_every_page_and_home_keeps_the_servers_folders_to_itself(browser_context):
    """With an admin token the server offers 13 pages: Streamlit folded the last three (Explore, Runs,
    Admin) behind an English "View 3 more"; the README lists them as pages."""
    offered = [p for p in PAGES if (ROOT / p[0]).exists()]
    assert len(offered) > 12  # more than Streamlit shows unfolded by default
    with app_server(env={"DLPLAY_ADMIN_TOKEN": "reliability-test-token"}) as (url, _):
        for lang in ("en", "zh"):
            page = open_app_page(browser_context, url, "home", lang)
            try:
                nav = page.locator("[data-testid=stSidebarNav]")
                page.wait_for_function("n => document.querySelectorAll('[data-testid=stSidebarNav] a').length >= n",
                                       arg=len(offered) - 3, timeout=SLOW_MS)
                links = [link_text(a) for a in nav.locator("a").all() if a.is_visible()]
                assert links == [translate(key, lang) for _, _, key, _ in offered], links
                assert "View" not in nav.inner_text()
                assert "more" not in nav.inner_text()  # nothing folded away
                page.get_by_text(translate("home.dataset_found", lang, name="MNIST"), exact=True).first.wait_for(
                    timeout=SLOW_MS)  # the datasets are checked after the rest of the page is drawn
                wait_for_idle(page, SLOW_MS)
                main = page.locator("[data-testid=stMain]").inner_text()
                assert str(DATA_DIR) not in main
                assert "/work/" not in main
                shoot(page, f"reliability-home-sidebar-{lang}")
            finally:
                page.close()
