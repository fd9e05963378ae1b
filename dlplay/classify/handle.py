"""The run handle: the one interface through which pages and ``dlplay/ui`` talk to a training run.

Nothing above this interface may assume the run lives in this process: no model object, lock,
thread or dataset tensor crosses it, only commands, immutable snapshots, state dicts and plain
results. Today's only backend is ``dlplay.classify.train.TrainingSession`` (a thread in the app's process);
a remote backend (a Ray actor) implements the same Protocol. A GAN run (the generate task) is a
:class:`GanHandle`: the same commands plus its own steps and reads (``dlplay.gan.session.GanSession``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

    from dlplay.classify.fork import ResumeState
    from dlplay.classify.pins import PinsSnapshot
    from dlplay.classify.probe import ProbeSnapshot
    from dlplay.data.datasets import DatasetInfo
    from dlplay.gan.session import GanConfig, GanSnapshot
    from dlplay.nn.model import Net
    from dlplay.nn.spec import ModelSpec, TrainConfig
    from dlplay.run.metrics import MetricsSnapshot
    from dlplay.run.status import Status


@runtime_checkable
class RunHandle(Protocol):
    """A run seen from the UI. Commands return at once; the run applies them between steps."""

    run_id: str  # unique per process and run; what the run history and the server's registry key on
    spec: ModelSpec
    config: TrainConfig
    created_at: float
    started_at: float | None  # unix time training began (None: not yet)
    finished_at: float | None  # unix time the run ended (None: not yet)
    total_steps: int
    steps_per_epoch: int
    forked_from: tuple[str, int, str, str, str] | None  # a fork: (parent run id, step, change, old, new)

    # ----- commands -----
    def start(self, paused: bool = False) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def step(self, n: int = 1) -> None: ...
    def stop(self) -> None: ...
    def set_lr(self, lr: float) -> None: ...
    def set_pace(self, steps_per_s: float | None) -> None: ...  # None: full speed
    def set_probe_every(self, every: int) -> None: ...
    def heartbeat(self) -> None: ...
    # follow these uint8 images' probabilities at the probe interval (None: none); labels: true classes, -1 unknown
    def set_pins(self, images: torch.Tensor | np.ndarray | None,
                 labels: torch.Tensor | np.ndarray | None = None) -> None: ...

    # ----- reads -----
    @property
    def status(self) -> Status: ...
    @property
    def is_alive(self) -> bool: ...
    @property
    def device_name(self) -> str: ...  # "cpu", "cuda:0", ...
    @property
    def dataset_info(self) -> DatasetInfo: ...
    @property
    def pace(self) -> float | None: ...
    def seconds_since_heartbeat(self) -> float: ...  # the server's slot queue and admin view read it
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



@runtime_checkable
class GanHandle(Protocol):
    """A GAN run seen from the UI (the generate task; ``dlplay.gan.session.GanSession`` in process).

    The run commands of :class:`RunHandle`, plus single steps of one network (``step_d``, ``step_g``;
    ``step`` is a whole step: D's updates then G's), both learning rates, and reads of the two
    networks: samples, D's verdicts, state dicts and CPU copies, all taken between two steps.
    """

    run_id: str
    config: GanConfig
    created_at: float
    started_at: float | None
    finished_at: float | None
    total_steps: int
    title: str  # what the Admin page's run table calls it

    # ----- commands -----
    def start(self, paused: bool = False) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def step(self, n: int = 1) -> None: ...  # n whole steps (d_steps D updates, then one G update)
    def step_d(self, n: int = 1) -> None: ...  # n steps that update only D
    def step_g(self, n: int = 1) -> None: ...  # n steps that update only G
    def stop(self) -> None: ...
    def set_lr(self, lr: float) -> None: ...  # both networks
    def set_lrs(self, lr_d: float | None = None, lr_g: float | None = None) -> None: ...
    def set_pace(self, steps_per_s: float | None) -> None: ...
    def heartbeat(self) -> None: ...

    # ----- reads -----
    @property
    def status(self) -> Status: ...
    @property
    def is_alive(self) -> bool: ...
    @property
    def device_name(self) -> str: ...
    @property
    def pace(self) -> float | None: ...
    @property
    def lr_d(self) -> float: ...
    @property
    def lr_g(self) -> float: ...
    def seconds_since_heartbeat(self) -> float: ...
    def snapshot(self) -> GanSnapshot: ...  # curves of D/G loss and mean D(real)/D(fake), progress
    def noise(self, n: int, seed: int = 0) -> torch.Tensor: ...  # reproducible CPU noise batch
    def sample(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor: ...  # G(z), CPU
    def discriminate(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor: ...  # P(real), CPU
    def state_dict(self) -> dict[str, torch.Tensor]: ...  # "generator.*" and "discriminator.*", CPU
    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None: ...  # a checkpoint's two networks
    def generator_copy(self, device: str | torch.device = "cpu") -> nn.Module: ...  # eval mode
    def discriminator_copy(self, device: str | torch.device = "cpu") -> nn.Module: ...
    def copies(self, device: str | torch.device = "cpu") -> tuple[nn.Module, nn.Module]: ...  # (G, D), same moment
