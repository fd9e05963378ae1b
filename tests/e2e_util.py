"""Browser-test helpers: run the app in a subprocess, drive Debian's Chromium with Playwright.

Use in a test module (or import into tests/conftest.py to share one server across modules)::

    from e2e_util import browser_context, streamlit_server  # noqa: F401  (pytest fixtures)

    @pytest.mark.browser
    def test_something(streamlit_server, browser_context):
        page = open_app_page(browser_context, streamlit_server, "draw")

``streamlit_server`` (session scope) yields the base URL, e.g. ``http://127.0.0.1:8765``;
``browser_context`` (session scope) is a persistent Chromium context in a fresh temporary profile.
Each ``open_app_page`` call opens a new tab, i.e. a new Streamlit session with fresh state.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("DLPLAY_DATA_DIR") or REPO.parent / "shared" / "datasets" / "mnist-sample")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
STARTUP_TIMEOUT_S = 60.0


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def app_server(data_dir: Path = DATA_DIR, port: int | None = None, env: dict[str, str] | None = None,
               extra_args: tuple[str, ...] = (), startup_timeout_s: float = STARTUP_TIMEOUT_S
               ) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start ``streamlit run app.py`` on a free port (``env``: extra environment variables,
    ``extra_args``: extra command-line options); yield (base URL, process); stop it afterwards."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    full_env = dict(os.environ, DLPLAY_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1", **(env or {}))
    log = tempfile.TemporaryFile()  # noqa: SIM115 - the server writes it until it is stopped; closed there
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port),
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none", *extra_args],
        cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + startup_timeout_s
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"streamlit did not start (exit {proc.poll()}):\n{log.read().decode(errors='replace')}")
            time.sleep(0.2)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@contextlib.contextmanager
def running_app(data_dir: Path = DATA_DIR, port: int | None = None) -> Iterator[str]:
    """Start ``streamlit run app.py`` on a free port; yield its base URL; stop it afterwards."""
    with app_server(data_dir, port) as (url, _):
        yield url


@pytest.fixture(scope="session")
def streamlit_server() -> Iterator[str]:
    """The app running on a free local port for the whole test session; yields the base URL."""
    with running_app() as url:
        yield url


@pytest.fixture(scope="session")
def browser_context():
    """A headless Chromium context (fresh temporary profile) shared by the session's browser tests."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="dlplay-chromium-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        context.set_default_timeout(30_000)
        context.tracing.start(snapshots=True, screenshots=True)  # kept for a failed test (conftest.py)
        try:
            yield context
        finally:
            context.close()


def wait_for_idle(page, timeout_ms: int = 90_000) -> None:
    """Wait until the app has finished its current script run (the status widget is gone)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=timeout_ms
    )


def open_app_page(context, base_url: str, path: str = "", lang: str = "en"):
    """A new tab (= a new Streamlit session) on ``/<path>?lang=..``, after the first script run."""
    page = context.new_page()
    page.goto(f"{base_url}/{path}?lang={lang}")
    page.wait_for_selector("[data-testid=stAppViewContainer]")
    page.wait_for_selector("[data-testid=stMainBlockContainer] h1", timeout=90_000)
    wait_for_idle(page)
    return page


SCRIPT_RUNS_JS = "() => Number((document.querySelector('.dl-script-runs') || {dataset: {n: 0}}).dataset.n || 0)"


def script_runs(page) -> int:
    """How many full script runs this tab's session has had (dlplay/ui/page_state.py)."""
    return int(page.evaluate(SCRIPT_RUNS_JS))


def rerun_after(page, action, timeout_ms: int = 120_000) -> None:
    """Do ``action()`` (a change of a widget outside the live fragments) and wait for the script run it
    starts to finish: the page's script-run counter moves on, then the app is idle again. No sleeping."""
    before = script_runs(page)
    action()
    page.wait_for_function(f"n => ({SCRIPT_RUNS_JS})() > n", arg=before, timeout=timeout_ms)
    wait_for_idle(page, timeout_ms)


CHARTS_DRAWN_JS = """() => !document.querySelector('[data-stale=true]')
  && [...document.querySelectorAll('.js-plotly-plot')].every(p => p._fullLayout && p.querySelector('.main-svg'))
  && [...document.querySelectorAll('[data-testid=stImage] img, [data-testid=stMainBlockContainer] img')].every(i => i.complete)"""


def wait_for_charts(page, timeout_ms: int = 120_000) -> None:
    """Wait until the app is idle and every chart and image on the page is drawn (before a screenshot)."""
    wait_for_idle(page, timeout_ms)
    page.wait_for_function(CHARTS_DRAWN_JS, timeout=timeout_ms, polling=100)


def commit_input(page, box, text: str, timeout_ms: int = 120_000) -> None:
    """Type ``text`` into a text or number input and press Enter; wait until Streamlit has taken it (its
    "Press Enter to apply" hint is gone, the box shows the value) and the app is idle."""
    box.fill(text)
    box.press("Enter")
    page.wait_for_function(
        """([el, text]) => {
             const hint = el.closest('[data-testid=stTextInput], [data-testid=stNumberInput]')
               ?.querySelector('[data-testid=InputInstructions]');
             return el.value === text && !(hint && hint.innerText.trim());  // the hint stays, emptied, once applied
           }""", arg=[box.element_handle(), text], timeout=timeout_ms)
    wait_for_idle(page, timeout_ms)


def choose_option(page, key: str, option, timeout_ms: int = 120_000) -> None:
    """Choose ``option`` (its text, or a compiled pattern) in the selectbox with ``key``; wait until it shows."""
    page.keyboard.press("Escape")  # an open dropdown elsewhere makes the rest of the page inert
    page.locator(f".st-key-{key} [role=combobox]").first.click()
    options = page.locator("[role=option]")
    try:
        options.first.wait_for(timeout=5_000)
    except Exception:  # noqa: BLE001 - a click that only focused the box (seen after a rerun): open it
        page.keyboard.press("ArrowDown")
        options.first.wait_for(timeout=timeout_ms)
    options.filter(has_text=option).first.click()
    options.first.wait_for(state="detached", timeout=timeout_ms)  # the list closed: the choice is made (the box shows it
    # as an input's value, not as text); the caller waits for what the choice changes
    wait_for_idle(page, timeout_ms)


def press_until(page, key: str, selector: str, text: str, presses: int = 20, timeout_ms: int = 120_000) -> None:
    """Focus the slider inside ``selector`` and press ``key`` until its value (the text on its thumb: the
    widget's other text has the end labels, e.g. "1 step/s" ... "full speed") shows ``text``, then wait for
    the app to be idle."""
    slider = page.locator(f"{selector} input[type=range]").first
    slider.wait_for(state="attached", timeout=timeout_ms)
    value_js = """(sel) => { const w = document.querySelector(sel);
        const v = w && (w.querySelector('[data-testid=stSliderThumbValue]') || w); return v ? v.innerText : ''; }"""

    def shown() -> str:
        return page.evaluate(value_js, selector)

    for _ in range(presses):
        if text in shown():
            break
        before = shown()
        slider.focus()
        page.keyboard.press(key)
        page.wait_for_function(f"([sel, old]) => ({value_js})(sel) !== old", arg=[selector, before], timeout=timeout_ms)
    assert text in shown(), shown()
    wait_for_idle(page, timeout_ms)


def set_pace(page, steps_per_s: int, key: str = "train_pace", timeout_ms: int = 120_000) -> None:
    """Slow the learner's runs to ``steps_per_s`` (a value of the pace slider, below full speed) with the keyboard.

    A run the test must see running (Pause, Stop, a second tab, a fork) must not finish first: at full speed the
    sample's 100 epochs take ~25 s on an idle 2-core machine; at 200 steps/s they take 141 s."""
    press_until(page, "ArrowLeft", f".st-key-{key}", f"{steps_per_s} ", presses=12, timeout_ms=timeout_ms)


def measure_for(seconds: float) -> None:
    """A measurement window (frames counted, speed sampled over a time): not a wait for the page's state."""
    time.sleep(seconds)


def click_button(page, key: str) -> None:
    """Click the button created with ``key=...`` (Streamlit gives its container the class st-key-<key>)."""
    page.locator(f".st-key-{key} button").first.click()


def metric_value(page, label: str) -> str:
    """The value of the st.metric whose label is exactly ``label``."""
    metric = page.locator("[data-testid=stMetric]").filter(
        has=page.locator("[data-testid=stMetricLabel]", has_text=label)
    ).first
    return metric.locator("[data-testid=stMetricValue]").inner_text().strip()
