"""In a real headless Chromium (issue 15): a blown-up run says so and its loss chart stays readable (#2),
the buttons follow the run's state by themselves (#3), a pace slow enough to watch (#10)."""
import time

import pytest

from e2e_util import (
    app_server,
    click_button,
    commit_input,
    measure_for,
    open_app_page,
    press_until,
    set_pace,
    wait_for_idle,
)

LOSS_POINTS_JS = """() => {
  const plot = document.querySelector('.st-key-train_loss_chart .js-plotly-plot');
  return plot && plot._fullData && plot._fullData.length ? plot._fullData[0]._length : 0;
}"""
STATUS_JS = """(text) => [...document.querySelectorAll('[data-testid=stMetric]')].some(m =>
    m.querySelector('[data-testid=stMetricLabel]').innerText.trim() === 'Status'
    && m.querySelector('[data-testid=stMetricValue]').innerText.trim() === text)"""


def wait_status(page, text: str, timeout_ms: int = 120_000) -> None:
    page.wait_for_function(STATUS_JS, arg=text, timeout=timeout_ms)


def stop_run(page) -> None:
    """Stop the tab's run if it still goes (a failed test must not leave a run holding a server slot)."""
    try:
        if page.locator(".st-key-train_stop button").first.is_enabled():
            click_button(page, "train_stop")
            wait_for_idle(page)
    except Exception:  # noqa: BLE001 - cleaning up after a failure
        pass


def set_epochs(page, n: int) -> None:
    epochs = page.locator(".st-key-tw_epochs input").first
    commit_input(page, epochs, str(n))


@pytest.mark.browser
def test_adam_at_learning_rate_10_warns_and_the_loss_chart_stays_readable(streamlit_server, browser_context):
    page = browser_context.new_page()
    page.goto(f"{streamlit_server}/train?net=d128&o=adam&lr=10&bs=32&ep=2&lang=en")
    page.wait_for_selector("[data-testid=stMainBlockContainer] h1", timeout=90_000)
    wait_for_idle(page)
    click_button(page, "train_start")
    wait_status(page, "finished")
    warning = page.locator(".st-key-train_warning")
    warning.wait_for(timeout=10_000)
    text = warning.inner_text()
    assert "no better than guessing" in text
    assert "10× smaller" in text
    assert "step" in text
    # the chart is redrawn as the run ends: wait for a drawn one rather than read it mid-redraw
    top = page.wait_for_function("""() => {
        const plot = document.querySelector('.st-key-train_loss_chart .js-plotly-plot');
        return plot && plot._fullLayout && plot._fullLayout.yaxis ? plot._fullLayout.yaxis.range[1] : null;
    }""", timeout=30_000).json_value()
    assert top < 100  # the later loss (about 3) is readable, not flattened under a 10^6 axis
    page.locator(".st-key-train_loss_chart").get_by_text("off the chart").first.wait_for(timeout=30_000)
    page.close()


@pytest.mark.browser
def test_pause_turns_into_resume_without_another_click(streamlit_server, browser_context):
    page = open_app_page(browser_context, streamlit_server, "train")
    set_epochs(page, 100)
    set_pace(page, 200)  # still training when Pause is pressed
    click_button(page, "train_start")
    wait_status(page, "training")
    page.locator(".st-key-train_pause button").wait_for()
    click_button(page, "train_pause")
    # within a second, no further click: Resume replaces Pause and Step is enabled
    try:
        page.locator(".st-key-train_resume button").wait_for(timeout=5_000)  # 1 s of polling, plus a loaded CI machine (the old page never showed it)
        # the old button goes when that script run ends (slow on a loaded machine)
        page.wait_for_function("() => !document.querySelector('.st-key-train_pause')", timeout=10_000)
        assert page.locator(".st-key-train_step button").first.is_enabled()
        wait_status(page, "paused", 5_000)
        click_button(page, "train_resume")
        page.locator(".st-key-train_pause button").wait_for(timeout=5_000)
        page.wait_for_function("() => document.querySelector('.st-key-train_step button').disabled", timeout=10_000)
        click_button(page, "train_stop")
        wait_status(page, "stopped", 5_000)
        page.wait_for_function("() => document.querySelector('.st-key-train_stop button').disabled", timeout=10_000)
    finally:
        stop_run(page)
        page.close()


@pytest.mark.browser
def test_a_watchable_pace_moves_the_chart_step_by_step(streamlit_server, browser_context):
    page = open_app_page(browser_context, streamlit_server, "train")
    set_epochs(page, 100)  # at full speed later: ~25 s, still going when Stop is pressed (10 epochs: ~3 s)
    slider = page.locator(".st-key-train_pace input[type=range]").first
    slider.wait_for(state="attached")
    assert "full speed" in page.locator(".st-key-train_pace").inner_text()  # the default
    press_until(page, "Home", ".st-key-train_pace", "1 step/s")
    press_until(page, "ArrowRight", ".st-key-train_pace", "5 steps/s")  # 2, 3, 5 steps/s
    assert "5 steps/s" in page.locator(".st-key-train_pace").inner_text()
    click_button(page, "train_start")
    try:
        wait_status(page, "training")
        page.wait_for_function(f"() => ({LOSS_POINTS_JS})() > 0", timeout=60_000)
        wait_for_idle(page)
        samples = []  # (seconds, points on the chart)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 4.0:
            samples.append((time.monotonic() - t0, page.evaluate(LOSS_POINTS_JS)))
            measure_for(0.4)
        (t_first, first), (t_last, last) = samples[0], samples[-1]
        assert 0 < (last - first) / (t_last - t_first) <= 8  # about 5 steps a second (full speed: thousands)
        # the chart moves as it learns, step by step: a new point on most ticks
        assert len({n for _, n in samples}) >= 5
        # changed while it runs: to full speed
        slider.focus()
        page.keyboard.press("End")
        page.wait_for_function(f"() => ({LOSS_POINTS_JS})() > 300", timeout=30_000)
        click_button(page, "train_stop")
        wait_status(page, "stopped", 30_000)  # a full-speed run on a loaded two-core CI machine: the page can lag
    finally:
        stop_run(page)
        page.close()


@pytest.mark.browser
def test_the_buttons_follow_a_stop_by_the_admin_in_another_tab(browser_context):
    """Whoever changes the run's state: here the Admin, from another browser session."""
    with app_server(env={"DLPLAY_ADMIN_TOKEN": "e2e-secret"}) as (url, _):
        learner = open_app_page(browser_context, url, "train")
        set_epochs(learner, 100)
        set_pace(learner, 200)  # still training when the Admin has signed in and stops it
        click_button(learner, "train_start")
        wait_status(learner, "training")
        admin = open_app_page(browser_context, url, "admin")
        admin.locator(".st-key-admin_token_input input").fill("e2e-secret")
        admin.locator(".st-key-admin_token_input input").press("Enter")
        wait_for_idle(admin)
        click_button(admin, "admin_sign_in")
        admin.locator(".st-key-admin_stop_all button").wait_for(timeout=60_000)
        click_button(admin, "admin_stop_all")
        # the learner's tab, untouched: the status and the buttons follow within a second or so
        wait_status(learner, "stopped", 15_000)
        learner.wait_for_function("() => document.querySelector('.st-key-train_stop button').disabled", timeout=10_000)
        assert learner.locator(".st-key-train_start button").first.is_enabled()
        assert learner.locator(".st-key-train_pause button").first.is_disabled()
        admin.close()
        learner.close()
