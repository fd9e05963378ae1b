"""The run handle: the one interface through which pages and ``dlplay/ui`` talk to a training run.

Nothing above this interface may assume the run lives in this process: no model object, lock,
thread or dataset tensor crosses it, only commands, immutable snapshots, state dicts and plain
results. Backends: ``dlplay.classify.train.TrainingSession`` (a thread in the app's process) and
``dlplay.cluster.handle.RayRunHandle`` (a Ray worker actor). The commands and status every task shares are
:class:`dlplay.run.control.RunControl`; a GAN run is a :class:`dlplay.gan.handle.GanHandle`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from dlplay.run.control import RunControl

if TYPE_CHECKING:
    import numpy as np
    import torch

    from dlplay.classify.fork import ResumeState
    from dlplay.classify.pins import PinsSnapshot
    from dlplay.classify.probe import ProbeSnapshot
    from dlplay.classify.train import TrainingSession
    from dlplay.data.datasets import DatasetInfo
    from dlplay.nn.model import Net
    from dlplay.nn.spec import ModelSpec, TrainConfig
    from dlplay.run.metrics import MetricsSnapshot


@runtime_checkable
class RunHandle(RunControl, Protocol):
    """A classifier run seen from the UI: the shared run control plus its model, metrics and data."""

    spec: ModelSpec
    config: TrainConfig
    steps_per_epoch: int
    forked_from: tuple[str, int, str, str, str] | None  # a fork: (parent run id, step, change, old, new)

    # ----- commands -----
    def set_probe_every(self, every: int) -> None: ...
    # follow these uint8 images' probabilities at the probe interval (None: none); labels: true classes, -1 unknown
    def set_pins(self, images: torch.Tensor | np.ndarray | None,
                 labels: torch.Tensor | np.ndarray | None = None) -> None: ...

    # ----- reads -----
    @property
    def dataset_info(self) -> DatasetInfo: ...
    def snapshot(self) -> MetricsSnapshot: ...
    def probe_snapshot(self) -> ProbeSnapshot | None: ...  # None: the run has no probe (or none yet)
    def probe_every(self) -> int | None: ...
    def state_dict(self) -> dict[str, torch.Tensor]: ...  # CPU tensors, a consistent copy
    def model_copy(self, device: str | torch.device = "cpu") -> Net: ...  # built from spec + state_dict, eval mode
    def evaluate(self, split: str = "test") -> tuple[float, float]: ...  # (mean loss, accuracy); test, train, val
    def test_split(self) -> tuple[torch.Tensor, torch.Tensor]: ...  # (uint8 images, labels) on the CPU
    def pins_snapshot(self) -> PinsSnapshot | None: ...  # the pinned images' probabilities so far
    def resume_state(self, step: int) -> ResumeState: ...  # the run's exact state after ``step`` (a fork's start)
    # (uint8 images, labels with the run's label edits, dataset indices) of "test", "train" or "val", on the CPU
    def split_data(self, split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...


if TYPE_CHECKING:
    # mypy checks that the in-process run implements the pages' interface (nothing runs here)
    _implements_run_handle: type[RunHandle] = TrainingSession
