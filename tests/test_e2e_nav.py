"""The navigation in a real browser: /home opens Home, and Admin is not offered without a token."""
from __future__ import annotations

import pytest

from e2e_util import SCRIPT_RUNS_JS, open_app_page, wait_for_idle


@pytest.mark.browser
def test_home_by_its_name_and_no_admin_without_a_token(streamlit_server, browser_context):
    # the not-found notice showed from the second tab on (the first one's URL became the root)
    for lang, title in (("en", "dlplay — a deep-learning playground"), ("zh", "dlplay —— 深度学习游乐场"), ("en", None)):
        page = open_app_page(browser_context, streamlit_server, "home", lang)
        try:
            page.wait_for_function(f"() => ({SCRIPT_RUNS_JS})() >= 1")  # the notice comes with the first script run
            wait_for_idle(page)
            assert page.get_by_text("Page not found").count() == 0
            if title:
                assert page.locator("[data-testid=stMainBlockContainer] h1").first.inner_text() == title
            nav = page.locator("[data-testid=stSidebarNav]").inner_text()
            assert "Admin" not in nav
            assert "admin_panel_settings" not in nav  # the README: only with a token
        finally:
            page.close()
