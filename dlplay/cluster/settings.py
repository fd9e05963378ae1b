"""The Ray backend's settings, from the environment (read by the app and by the worker actors)."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

NAMESPACE = "dlplay"  # the Ray namespace of dlplay's named actors: every app process finds the same ones
WORKER_PREFIX = "dlplay-worker-"  # worker actors are named dlplay-worker-0, dlplay-worker-1, ...
BROKER_NAME = "dlplay-slots"  # the named actor that holds the cluster-wide run limit and queue

ENV_WORKERS = "DLPLAY_RAY_WORKERS"
ENV_WORKER_CPUS = "DLPLAY_RAY_WORKER_CPUS"
ENV_WORKER_GPUS = "DLPLAY_RAY_WORKER_GPUS"
ENV_RUNS_PER_WORKER = "DLPLAY_RAY_RUNS_PER_WORKER"
ENV_MAX_RUNS = "DLPLAY_MAX_RUNS"  # the same variable as the in-process slot pool; here it is cluster-wide


@dataclass(frozen=True)
class ClusterSettings:
    """How many worker actors, what each asks Ray for, and how many runs may train at once.

    ``worker_gpus`` may be a fraction (0.25: four workers share a GPU). Ray's fractions only decide
    placement: they do not cap GPU memory, so each worker keeps dlplay's own memory check per run
    (:func:`dlplay.server.guardrails.check_run` against the device's free memory).
    """

    workers: int = 2
    worker_cpus: float = 1.0
    worker_gpus: float = 0.0
    runs_per_worker: int = 0  # 0: from the worker's resources (its CPUs; 4 on a GPU)
    max_runs: int = 0  # 0: workers x runs per worker

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ClusterSettings:
        env = os.environ if env is None else env

        def number(name: str, default: float, kind: type = int, low: float = 0) -> float:
            raw = (env.get(name) or "").strip()
            if not raw:
                return default
            try:
                value = kind(raw)
            except ValueError:
                value = low - 1
            if value < low:
                raise ValueError(f"{name} must be a number of at least {low}, got {raw!r}")
            return value

        return cls(
            workers=int(number(ENV_WORKERS, cls.workers, int, 1)),
            worker_cpus=float(number(ENV_WORKER_CPUS, cls.worker_cpus, float, 0)),
            worker_gpus=float(number(ENV_WORKER_GPUS, cls.worker_gpus, float, 0)),
            runs_per_worker=int(number(ENV_RUNS_PER_WORKER, 0, int, 0)),
            max_runs=int(number(ENV_MAX_RUNS, 0, int, 1)),
        )

    @property
    def runs_each(self) -> int:
        """Runs one worker trains at once (its threads share the worker's CPUs or GPU share)."""
        if self.runs_per_worker:
            return self.runs_per_worker
        return 4 if self.worker_gpus > 0 else max(1, int(self.worker_cpus))

    @property
    def run_limit(self) -> int:
        """Runs the whole cluster trains at once (the rest wait in one queue)."""
        return self.max_runs or self.workers * self.runs_each

    @property
    def threads_per_run(self) -> int:
        """Torch threads per run in a worker: its CPUs shared by its runs (1 on a GPU)."""
        if self.worker_gpus > 0:
            return 1
        return max(1, int(self.worker_cpus) // self.runs_each)

    def worker_name(self, index: int) -> str:
        return f"{WORKER_PREFIX}{index}"
