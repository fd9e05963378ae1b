"""Shared fixtures: the real MNIST sample (DLPLAY_DATA_DIR) and a model trained on it, once per test run."""
from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DIR = Path(os.environ.get("DLPLAY_DATA_DIR") or REPO.parent / "shared" / "datasets" / "mnist-sample")
os.environ.setdefault("DLPLAY_DATA_DIR", str(SAMPLE_DIR))
torch.set_num_threads(1)


TIERS = ("unit", "page", "browser")  # pytest -m unit | page | browser; the README's command runs all three


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test's tier by marker: browser tests are marked in their files; page tests run pages with
    Streamlit's AppTest (their module uses it); everything else is a unit test."""
    for item in items:
        if item.get_closest_marker("browser") is None:
            module = getattr(item, "module", None)
            page = item.path.name.startswith("test_page_") or hasattr(module, "AppTest")
            item.add_marker(pytest.mark.page if page else pytest.mark.unit)


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST sample (10k train, official 10k test) as a dlplay Dataset on the CPU."""
    from dlplay.data.datasets import load_dataset

    return load_dataset("mnist", download=False)


@pytest.fixture(scope="session")
def trained_tutorial(mnist):
    """The tutorial model (784 → 128 relu → 10) after one epoch on the sample, seed 0, as the Draw
    page's quick-train button makes it. Shared by every test that reads a trained model: do not change it."""
    from dlplay.nn.spec import TrainConfig, dense_spec
    from helpers import train_to_end

    return train_to_end(mnist, dense_spec([128], "relu"), TrainConfig(epochs=1, seed=0))


TRACES = Path(os.environ.get("DLPLAY_TRACES") or Path(tempfile.gettempdir()) / "dlplay-traces")


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(autouse=True)
def trace_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """A browser test on the shared Chromium records a Playwright trace; a failed one keeps it
    (``playwright show-trace <file>``; the folder: $DLPLAY_TRACES or the temp folder's dlplay-traces)."""
    if "browser_context" not in request.fixturenames:
        yield
        return
    context = request.getfixturevalue("browser_context")
    context.tracing.start_chunk(title=request.node.nodeid)
    yield
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        TRACES.mkdir(parents=True, exist_ok=True)
        path = TRACES / (re.sub(r"[^\w.-]+", "_", request.node.nodeid) + ".zip")
        context.tracing.stop_chunk(path=str(path))
        print(f"\nPlaywright trace of the failure: {path}")
    else:
        context.tracing.stop_chunk()


# Browser-test fixtures (one app server and one Chromium for the whole run), see e2e_util.py.
from e2e_util import browser_context, streamlit_server  # noqa: E402,F401

# A real local Ray instance (session scope), see ray_util.py.
from ray_util import ray_backend, ray_cluster  # noqa: E402,F401
