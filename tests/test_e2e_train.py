"""In a real headless Chromium: press Start on the tutorial preset and watch the charts update live."""

import pytest

from e2e_util import click_button, commit_input, measure_for, metric_value, open_app_page, set_pace, wait_for_charts

LOSS_POINTS_JS = """() => {
  const plot = document.querySelector('.st-key-train_loss_chart .js-plotly-plot');
  return plot && plot._fullData && plot._fullData.length ? plot._fullData[0]._length : 0;
}"""


LAST_STEP_JS = """() => {
  const plot = document.querySelector('.st-key-train_loss_chart .js-plotly-plot');
  const x = plot && plot._fullData && plot._fullData.length ? plot._fullData[0].x : null;
  return x && x.length ? Number(x[x.length - 1]) : 0;
}"""  # the chart's last step: it grows even when downsampling keeps the number of points constant


def loss_points(page) -> int:
    return page.evaluate(LOSS_POINTS_JS)


@pytest.mark.browser
def test_start_training_and_see_the_charts_update(streamlit_server, browser_context):
    page = open_app_page(browser_context, streamlit_server, "train")
    assert page.locator("h1").first.inner_text() == "Train a neural network"
    # the tutorial's 10 epochs on the sample take ~8 s on an idle CPU: long enough a run to press Stop in
    epochs = page.locator(".st-key-tw_epochs input").first
    commit_input(page, epochs, "100")
    set_pace(page, 200)  # 141 s at most: it is still training when the test looks (full speed: ~25 s)
    click_button(page, "train_start")
    page.wait_for_function(f"() => ({LOSS_POINTS_JS})() > 0", timeout=120_000)
    first = page.evaluate(LAST_STEP_JS)
    page.wait_for_function(f"() => ({LAST_STEP_JS})() > {first}", timeout=60_000)  # the chart grows by itself
    assert metric_value(page, "Status") == "training"
    # the tutorial's dense network trains with the dense engine, and the page says so
    assert page.get_by_text("Trained by dlplay's dense engine").count() == 1
    # an epoch completes: the accuracy metric and the epoch chart fill in without a reload
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid=stMetric]')].some(m =>
             m.innerText.includes('Test accuracy') && m.innerText.includes('%'))""",
        timeout=90_000,
    )
    accuracy = float(metric_value(page, "Test accuracy").rstrip("%"))
    assert 50 < accuracy <= 100
    click_button(page, "train_stop")
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid=stMetric]')].some(m =>
             m.innerText.includes('Status') && m.innerText.includes('stopped'))""",
        timeout=30_000,
    )
    wait_for_charts(page)  # the last redraw has landed
    stopped_at = loss_points(page)
    measure_for(2.0)
    assert loss_points(page) == stopped_at  # Stop really stops
    page.close()
