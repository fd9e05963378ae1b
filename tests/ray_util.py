"""A real local Ray instance for the tests (on this machine only), started once per test session.

Imported into tests/conftest.py like the browser fixtures. ``ray_cluster`` yields the address other
processes (an app under test, a benchmark) connect to; ``ray_backend`` is dlplay's Ray backend in
the test process, with two worker actors. Ray is stopped when the session ends, which ends the
workers (they are detached actors of this instance).
"""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

RAY_CPUS = 2  # the test machine's cores; each worker asks for one


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """Start Ray here (``ray.init(address="local")``; DLPLAY_DATA_DIR reaches the workers from this
    process's environment); yield its address; shut it down afterwards."""
    ray = pytest.importorskip("ray")
    from dlplay.cluster.settings import NAMESPACE

    assert os.environ.get("DLPLAY_DATA_DIR"), "conftest sets DLPLAY_DATA_DIR before Ray starts"
    context = ray.init(address="local", namespace=NAMESPACE, include_dashboard=False, num_cpus=RAY_CPUS,
                       log_to_driver=False)
    try:
        yield context.address_info["gcs_address"]
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def ray_backend(ray_cluster: str):
    """dlplay's Ray backend in this process: two workers of one CPU each, four runs at once."""
    from dlplay.cluster.backend import RayBackend
    from dlplay.cluster.settings import ClusterSettings

    return RayBackend.connect(ray_cluster, ClusterSettings(workers=2, worker_cpus=1.0, runs_per_worker=2))
