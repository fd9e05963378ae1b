"""Accessibility in a real browser: axe-core (axe-playwright-python) on every page, in English and Chinese.

One server for the module; each page opens in a new tab, is drawn (charts and images), then axe runs on the
whole document. Every violation is printed (rule, impact, nodes); the test fails on serious or critical ones.
Exclusions are exact rule + selector pairs that live in Streamlit's own markup (see EXCLUDED), never whole rules.
"""
from __future__ import annotations

import time

import pytest

from dlplay.ui.nav import PAGES
from e2e_util import open_app_page, wait_for_charts

FAILING_IMPACTS = ("serious", "critical")

# (rule id, a CSS selector fragment of the node's target): violations inside Streamlit's own markup that the
# app cannot change. Each with its reason.
EXCLUDED: tuple[tuple[str, str], ...] = ()


def _excluded(rule: str, target: str) -> bool:
    return any(rule == r and fragment in target for r, fragment in EXCLUDED)


def _why(node: dict) -> str:
    """What axe measured for a node (a contrast finding: the colours and the ratio), to find its cause."""
    data = [check.get("data") for check in node.get("any", []) if isinstance(check.get("data"), dict)]
    if data and "contrastRatio" in data[0]:
        d = data[0]
        return f" [{d.get('fgColor')} on {d.get('bgColor')}: {d.get('contrastRatio')}:1, {d.get('messageKey') or ''}]"
    return ""


def axe_violations(page) -> list[tuple[str, str, str, str]]:
    """(rule, impact, target, html) of every violation axe finds on ``page``, exclusions removed."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page).response
    found = []
    for violation in results["violations"]:
        for node in violation["nodes"]:
            target = " ".join(str(t) for t in node["target"])
            if not _excluded(violation["id"], target):
                found.append((violation["id"], node.get("impact") or violation["impact"] or "", target,
                              node.get("html", "")[:160] + _why(node)))
    return found


# Settled: no script run in progress (Streamlit's own state on its root), every element drawn (a Playwright trace of
# a failed run under load: the run was over and the heading shown, but the sidebar and the event container still
# held Streamlit's loading skeletons, so the app's CSS and script were not there yet: faint captions, a formula out
# of the tab order), the fonts loaded (KaTeX's widen a formula after it is drawn) and the app's accessibility
# script set up.
SETTLED_JS = """() => document.querySelector('[data-testid=stApp]')?.dataset.testScriptState === 'notRunning'
  && !document.querySelector('[data-testid=stSkeleton]') && !!document.querySelector('.dl-script-runs')
  && document.fonts.status === 'loaded' && !!document.getElementById('dlplay-a11y-css') && !!window.dlplayA11y"""


def wait_until_settled(page, timeout_ms: int = 120_000) -> None:
    wait_for_charts(page, timeout_ms)
    page.wait_for_function(SETTLED_JS, timeout=timeout_ms, polling=100)
    wait_for_charts(page, timeout_ms)  # (a rerun that had started: drawn again)


def open_page(context, base_url: str, url: str, lang: str):
    """``open_app_page``, once more in a new tab if the first one's first run never shows (seen twice on the loaded
    2-core machine, a different page each time: the heading was there but Playwright's wait never returned)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        return open_app_page(context, base_url, url, lang)
    except PlaywrightTimeout:
        for stale in context.pages:
            if f"/{url}?lang={lang}" in stale.url:
                stale.close()
        return open_app_page(context, base_url, url, lang)


PAGE_URLS = [url for path, url, _, _ in PAGES if url != "admin"]


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_no_serious_accessibility_violations_on_any_page(streamlit_server, browser_context, lang):
    failing: list[str] = []
    for url in PAGE_URLS:
        started = time.monotonic()
        page = open_page(browser_context, streamlit_server, url, lang)
        try:
            wait_until_settled(page)
            html_lang = page.evaluate("document.documentElement.lang")
            if html_lang != ("zh-CN" if lang == "zh" else "en"):  # a screen reader reads Chinese as Chinese
                failing.append(f"[{lang}] /{url}: <html lang={html_lang!r}>")
            for rule, impact, target, html in axe_violations(page):
                line = f"[{lang}] /{url}: {rule} ({impact}) {target} :: {html}"
                print(line)
                if impact in FAILING_IMPACTS:
                    failing.append(line)
        finally:
            page.close()
        print(f"[{lang}] /{url}: checked in {time.monotonic() - started:.0f} s")
    assert not failing, "\n".join(failing)
