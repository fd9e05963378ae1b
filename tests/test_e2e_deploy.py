"""In a real headless Chromium: quick-train on Draw, draw a 7, take the run's code from Evaluate's Code
tab, then serve the model from the Deploy page, send the drawn digit to the server and see both
answers (the server's and the app's) side by side."""
from __future__ import annotations

from pathlib import Path

import pytest

from e2e_util import click_button, open_app_page, wait_for_idle
from test_e2e_draw import CANVAS, DIGITS

SERVER_ANSWER, APP_ANSWER = ".dl-deploy-server-answer", ".dl-deploy-app-answer"


def _go(page, title: str) -> None:
    """Open a page from the sidebar (the same browser session) and wait for its first run to end."""
    link = page.locator("[data-testid=stSidebarNav] a").filter(has_text=title).first
    more = page.locator("[data-testid=stSidebarNavViewButton]")
    if not link.is_visible() and more.count():  # the sidebar lists the first pages until "View more"
        more.first.click()
    link.click()
    page.wait_for_function("t => { const h = document.querySelector('[data-testid=stMainBlockContainer] h1');"
                           " return h && h.innerText.includes(t); }", arg=title, timeout=90_000)
    wait_for_idle(page)


def _draw(page, strokes) -> None:
    box = page.locator(CANVAS).first.bounding_box()
    size = min(box["width"], box["height"])
    before = page.locator(".dl-guess").first.get_attribute("data-sig")
    for stroke in strokes:
        page.mouse.move(box["x"] + stroke[0][0] * size, box["y"] + stroke[0][1] * size)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * size, box["y"] + y * size, steps=12)
        page.mouse.up()
    page.wait_for_function("old => { const e = document.querySelector('.dl-guess'); return e && e.dataset.sig !== old; }",
                           arg=before, timeout=60_000)


@pytest.mark.browser
@pytest.mark.slow
def test_deploy_serves_the_drawn_digit_and_the_code_tab_downloads(streamlit_server, browser_context, tmp_path):
    page = open_app_page(browser_context, streamlit_server, "draw")
    try:
        page.wait_for_selector(CANVAS)
        click_button(page, "draw_quick_train")
        page.wait_for_selector(".st-key-draw_model_ready", timeout=180_000)
        _draw(page, DIGITS[7])
        guess = page.locator(".dl-guess-digit").first
        guess.wait_for()
        drawn_guess = guess.inner_text().strip()

        _go(page, "Evaluate")
        page.get_by_role("tab", name="Code").click()
        button = page.locator(".st-key-eval_code_download_pytorch button").first
        button.wait_for(timeout=90_000)
        with page.expect_download(timeout=60_000) as download:
            button.click()
        assert download.value.suggested_filename == "dlplay_run.py"
        source = Path(download.value.path()).read_text(encoding="utf-8")
        compile(source, "dlplay_run.py", "exec")
        assert "def forward_backward(x, y):" in source
        assert "z = W a + b" in source
        page.locator(".st-key-eval_code_download_notebook button").first.wait_for()
        page.locator(".st-key-eval_code_download_keras button").first.wait_for()

        _go(page, "Deploy")
        click_button(page, "deploy_start")
        page.locator(".dl-deploy-url").first.wait_for(timeout=120_000)
        url = page.locator(".dl-deploy-url").first.inner_text().strip()
        assert url.startswith("http://127.0.0.1:")
        click_button(page, "deploy_send")  # the Draw page's digit is the default image
        page.locator(SERVER_ANSWER).first.wait_for(timeout=60_000)
        server = page.locator(SERVER_ANSWER).first.inner_text().strip()
        app = page.locator(APP_ANSWER).first.inner_text().strip()
        print(f"Draw page guessed {drawn_guess}; server: {server}; app: {app}")
        assert server.split()[0] == app.split()[0] == drawn_guess
        assert not page.locator("[data-testid=stException]").count()
    finally:
        if page.locator(".st-key-deploy_stop button").count():
            click_button(page, "deploy_stop")
            page.locator(".st-key-deploy_start button").first.wait_for(timeout=60_000)
        page.close()
