"""In a real headless Chromium, with the app on the Ray backend (DLPLAY_RAY_ADDRESS pointing at the
tests' local Ray instance): a run started on the Train page trains in a Ray worker process, not in
the app's; the Admin page lists the workers; a worker killed mid-run makes the page say the run
failed because its worker was lost, and the next run trains. Screenshots in English and Chinese."""
from __future__ import annotations

import os
import signal
import socket
import tempfile
from pathlib import Path

import pytest

from dlplay.i18n import translate
from e2e_util import (
    app_server,
    click_button,
    commit_input,
    metric_value,
    open_app_page,
    set_pace,
    wait_for_charts,
    wait_for_idle,
)
from helpers import wait_for
from test_e2e_train import LOSS_POINTS_JS

TOKEN = "ray backend test token"
SHOTS = Path(os.environ.get("DLPLAY_SHOTS") or tempfile.mkdtemp(prefix="dlplay-shots-"))  # docs/screenshots: set DLPLAY_SHOTS
SLOW_MS = 120_000
CELL_JS = """(text) => [...document.querySelectorAll('[data-testid=stDataFrame] td, [data-testid=stDataFrame] [role=gridcell]')]
    .some(cell => cell.textContent.trim() === text)"""


@pytest.fixture(scope="module")
def ray_app(ray_cluster):
    env = {"DLPLAY_RAY_ADDRESS": ray_cluster, "DLPLAY_ADMIN_TOKEN": TOKEN, "DLPLAY_RAY_WORKERS": "2",
           "DLPLAY_RAY_RUNS_PER_WORKER": "2", "DLPLAY_HEARTBEAT_S": "8"}
    with app_server(env=env) as (url, proc):
        yield url, proc


def workers() -> list:
    """Every dlplay worker actor's info, asked through Ray from the test process."""
    import ray

    from dlplay.cluster.settings import NAMESPACE, WORKER_PREFIX

    names = sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                   if a["namespace"] == NAMESPACE and a["name"].startswith(WORKER_PREFIX))
    return [ray.get(ray.get_actor(name, namespace=NAMESPACE).info.remote(), timeout=30) for name in names]


def training_worker():
    busy = [w for w in workers() if w.runs_active]
    assert len(busy) == 1, busy
    return busy[0]


def start_long_run(page) -> None:
    epochs = page.locator(".st-key-tw_epochs input").first
    commit_input(page, epochs, "100", SLOW_MS)
    set_pace(page, 200, timeout_ms=SLOW_MS)  # 141 s: still training when the worker is killed (full speed: ~25 s)
    click_button(page, "train_start")
    page.wait_for_function(f"() => ({LOSS_POINTS_JS})() > 0", timeout=SLOW_MS)


def sign_in_admin(context, url, lang):
    page = open_app_page(context, url, "admin", lang)
    commit_input(page, page.locator(".st-key-admin_token_input input").first, TOKEN, SLOW_MS)
    click_button(page, "admin_sign_in")
    page.get_by_text(translate("cluster.workers", lang), exact=True).wait_for(timeout=SLOW_MS)
    wait_for_idle(page, SLOW_MS)
    return page


def lost_text(lang: str) -> str:
    return translate("cluster.worker_lost", lang, worker="").split("(")[0].split("（")[0].strip()


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_run_trains_in_a_ray_worker_and_a_lost_worker_fails_it_on_the_page(ray_app, ray_cluster, browser_context,
                                                                                   lang):
    url, proc = ray_app
    url_of_ray = ray_cluster
    page = open_app_page(browser_context, url, "train", lang)
    start_long_run(page)
    worker = training_worker()
    assert worker.pid not in (proc.pid, os.getpid())
    assert worker.train_threads == 1

    # the Admin page: the app process trains nothing, the worker holds the run
    admin = sign_in_admin(browser_context, url, lang)
    assert metric_value(admin, translate("admin.m_threads", lang)) == "0"
    admin.wait_for_function(CELL_JS, arg=str(worker.pid), timeout=SLOW_MS)  # the worker's row, its process id
    assert admin.evaluate(CELL_JS, str(proc.pid)) is False  # not the app's process
    caption = translate("cluster.backend", lang, workers=2, address=url_of_ray, pid=proc.pid, host=socket.gethostname())
    assert admin.get_by_text(caption, exact=True).count() == 1  # the caption names the app's own process
    admin.screenshot(path=str(SHOTS / f"ray-admin-{lang}.png"))
    admin.close()

    # the worker's process dies mid-run: the page says so, in the page's language
    os.kill(worker.pid, signal.SIGKILL)
    page.wait_for_function(
        "(text) => [...document.querySelectorAll('[data-testid=stAlert]')].some(a => a.innerText.includes(text))",
        arg=lost_text(lang), timeout=SLOW_MS)
    assert metric_value(page, translate("train.m_status", lang)) == translate("train.status_failed", lang)
    assert page.locator("[data-testid=stException]").count() == 0
    wait_for_charts(page, SLOW_MS)
    page.screenshot(path=str(SHOTS / f"ray-worker-lost-{lang}.png"))

    # the learner starts again: the run trains (in a worker the pool re-created, or the other one)
    click_button(page, "train_start")
    page.wait_for_function(
        "(s) => [...document.querySelectorAll('[data-testid=stMetric]')].some(m => m.innerText.includes(s))",
        arg=translate("train.status_running", lang), timeout=SLOW_MS)
    first = page.evaluate(LOSS_POINTS_JS)
    page.wait_for_function(f"() => ({LOSS_POINTS_JS})() > {first}", timeout=SLOW_MS)
    assert training_worker().pid != worker.pid
    # the tab closes: the run's heartbeat stops and the worker ends the run by itself
    page.close()
    assert wait_for(lambda: not any(w.runs_active or w.train_threads for w in workers()), 60)
