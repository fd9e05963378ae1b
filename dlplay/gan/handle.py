"""The GAN run's handle: the shared run control plus a GAN's own steps and reads (the generate task).

``dlplay.gan.session.GanSession`` implements it in process; pages reach a GAN run only through it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from dlplay.run.control import RunControl

if TYPE_CHECKING:
    import torch
    from torch import nn

    from dlplay.gan.session import GanConfig, GanSession, GanSnapshot


@runtime_checkable
class GanHandle(RunControl, Protocol):
    """A GAN run seen from the UI (the generate task; ``dlplay.gan.session.GanSession`` in process).

    The shared run control (:class:`dlplay.run.control.RunControl`), plus single steps of one network (``step_d``, ``step_g``;
    ``step`` is a whole step: D's updates then G's), both learning rates, and reads of the two
    networks: samples, D's verdicts, state dicts and CPU copies, all taken between two steps.
    """

    config: GanConfig
    title: str  # what the Admin page's run table calls it

    # ----- commands -----
    def step(self, n: int = 1) -> None: ...  # n whole steps (d_steps D updates, then one G update)
    def step_d(self, n: int = 1) -> None: ...  # n steps that update only D
    def step_g(self, n: int = 1) -> None: ...  # n steps that update only G
    def set_lr(self, lr: float) -> None: ...  # both networks
    def set_lrs(self, lr_d: float | None = None, lr_g: float | None = None) -> None: ...

    # ----- reads -----
    @property
    def lr_d(self) -> float: ...
    @property
    def lr_g(self) -> float: ...
    def snapshot(self) -> GanSnapshot: ...  # curves of D/G loss and mean D(real)/D(fake), progress
    def noise(self, n: int, seed: int = 0) -> torch.Tensor: ...  # reproducible CPU noise batch
    def sample(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor: ...  # G(z), CPU
    def discriminate(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor: ...  # P(real), CPU
    def state_dict(self) -> dict[str, torch.Tensor]: ...  # "generator.*" and "discriminator.*", CPU
    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None: ...  # a checkpoint's two networks
    def generator_copy(self, device: str | torch.device = "cpu") -> nn.Module: ...  # eval mode
    def discriminator_copy(self, device: str | torch.device = "cpu") -> nn.Module: ...
    def copies(self, device: str | torch.device = "cpu") -> tuple[nn.Module, nn.Module]: ...  # (G, D), same moment


if TYPE_CHECKING:
    # mypy checks that the in-process GAN run implements the pages' interface (nothing runs here)
    _implements_gan_handle: type[GanHandle] = GanSession
