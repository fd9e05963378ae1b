"""Shared fixtures: the real MNIST sample (DLPLAY_DATA_DIR) and a model trained on it, once per test run."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DIR = Path(os.environ.get("DLPLAY_DATA_DIR") or REPO.parent / "shared" / "datasets" / "mnist-sample")
os.environ.setdefault("DLPLAY_DATA_DIR", str(SAMPLE_DIR))
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST sample (10k train, official 10k test) as a dlplay Dataset on the CPU."""
    from dlplay.data import load_dataset

    return load_dataset("mnist", download=False)


@pytest.fixture(scope="session")
def trained_tutorial(mnist):
    """The tutorial model (784 → 128 relu → 10) after one epoch on the sample, seed 0, as the Draw
    page's quick-train button makes it. Shared by every test that reads a trained model: do not change it."""
    from dlplay.spec import TrainConfig, dense_spec
    from helpers import train_to_end

    return train_to_end(mnist, dense_spec([128], "relu"), TrainConfig(epochs=1, seed=0))


# Browser-test fixtures (one app server and one Chromium for the whole run), see e2e_util.py.
from e2e_util import browser_context, streamlit_server  # noqa: E402,F401

# A real local Ray instance (session scope), see ray_util.py.
from ray_util import ray_backend, ray_cluster  # noqa: E402,F401
