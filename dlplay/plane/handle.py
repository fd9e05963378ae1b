"""The 2-D playground's run handle: the shared run control plus the plane's own reads.

``dlplay.plane.session.PlaneSession`` implements it in process; the page reaches a plane run only through it.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from dlplay.run.control import RunControl

if TYPE_CHECKING:
    import torch

    from dlplay.plane.datasets import PlaneData
    from dlplay.plane.edits import PlaneEdit
    from dlplay.plane.session import PlaneConfig, PlaneGrid, PlaneSession, PlaneSnapshot


@runtime_checkable
class PlaneHandle(RunControl, Protocol):
    """A 2-D playground run seen from the UI: its settings, its points, and the plane's pictures."""

    config: PlaneConfig
    data: PlaneData
    features: tuple[str, ...]
    regression: bool

    @property
    def lr(self) -> float: ...
    def snapshot(self) -> PlaneSnapshot: ...  # train/test loss and accuracy so far, the epoch
    def grid(self, resolution: int = ...) -> PlaneGrid: ...  # the output and every neuron over the plane
    def state_dict(self) -> dict[str, torch.Tensor]: ...  # the network's weights (a CPU copy)
    @property
    def edits(self) -> list[PlaneEdit]: ...  # the hand edits given back to the run (its history of edits)
    def apply_edits(self, state: dict[str, torch.Tensor], edits: Sequence[PlaneEdit], epoch: int) -> None: ...


if TYPE_CHECKING:
    # mypy checks that the in-process run implements the page's interface (nothing runs here)
    _implements_plane_handle: type[PlaneHandle] = PlaneSession
