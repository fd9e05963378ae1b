"""Run control: the part of a run's interface that every task shares (commands, status, heartbeat).

Each task's handle extends it (:class:`dlplay.classify.handle.RunHandle`, :class:`dlplay.gan.handle.GanHandle`),
so the server's slots, registry and admin view, and the pages' Start/Pause/Step/Stop buttons, talk to
any run through these members alone. Commands return at once; the run applies them between steps.
"""
from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from dlplay.run.status import Status


@runtime_checkable
class RunControl(Protocol):
    """What every run offers, whatever its task."""

    run_id: str  # unique per process and run; what the run history and the server's registry key on
    created_at: float
    started_at: float | None  # unix time training began (None: not yet)
    finished_at: float | None  # unix time the run ended (None: not yet)
    total_steps: int

    # ----- commands -----
    def start(self, paused: bool = False) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def step(self, n: int = 1) -> None: ...
    def stop(self) -> None: ...
    def set_lr(self, lr: float) -> None: ...
    def set_pace(self, steps_per_s: float | None) -> None: ...  # None: full speed
    def heartbeat(self) -> None: ...

    # ----- reads -----
    @property
    def status(self) -> Status: ...
    @property
    def is_alive(self) -> bool: ...
    @property
    def device_name(self) -> str: ...  # "cpu", "cuda:0", ...
    @property
    def pace(self) -> float | None: ...
    def seconds_since_heartbeat(self) -> float: ...  # the server's slot queue and admin view read it


def protocol_members(protocol: type) -> dict[str, str]:
    """Every member a Protocol declares, its own and its bases': name -> "attribute", "property" or "method"."""
    members: dict[str, str] = {}
    for cls in reversed(protocol.__mro__):
        if not getattr(cls, "_is_protocol", False) or cls is Protocol:
            continue
        for name in getattr(cls, "__annotations__", {}):
            members[name] = "attribute"
        for name, value in vars(cls).items():
            if name.startswith("_"):
                continue
            if isinstance(value, property):
                members[name] = "property"
            elif inspect.isfunction(value):
                members[name] = "method"
    return members
