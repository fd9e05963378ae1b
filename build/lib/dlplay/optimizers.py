"""The optimisers and learning-rate schedules dlplay offers: one table each.

An :class:`Optimizer` entry builds the PyTorch optimiser and says how many tensors of state it keeps
per parameter (the memory estimate of :mod:`dlplay.server.guardrails`); :func:`make_optimizer` picks
PyTorch's fused kernel (one kernel for all parameters) where it has one for the parameters' device,
else its ``foreach`` implementation (a handful of multi-tensor ops instead of a loop); a :class:`Schedule` entry gives the
multiplier on the chosen learning rate at each step. Adding one is an entry here plus its
translations (``train.opt_<name>`` and ``runs.optimizer_<name>``, or ``train.sched_<name>``).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch

Params = Iterable[torch.nn.Parameter]


@dataclass(frozen=True)
class Optimizer:
    name: str
    make: Callable[..., torch.optim.Optimizer]  # (params, lr, weight_decay, **implementation)
    states: int  # state tensors kept per parameter (momentum: 1; Adam: 2)
    fused: bool = False  # PyTorch has a fused kernel for it (``fused=True``)

    @property
    def key(self) -> str:
        """Translation key of its name in the training settings."""
        return f"train.opt_{self.name}"

    @property
    def short_key(self) -> str:
        """Translation key of its short name (run history, upload messages)."""
        return f"runs.optimizer_{self.name}"


@dataclass(frozen=True)
class Schedule:
    name: str
    factor: Callable[[float], float]  # progress in [0, 1] -> multiplier on the learning rate

    @property
    def key(self) -> str:
        return f"train.sched_{self.name}"


_OPTIMIZERS = (
    Optimizer("sgd", lambda p, lr, wd, **k: torch.optim.SGD(p, lr=lr, weight_decay=wd, **k), 0, fused=True),
    Optimizer("momentum", lambda p, lr, wd, **k: torch.optim.SGD(p, lr=lr, momentum=0.9, weight_decay=wd, **k), 1,
              fused=True),
    Optimizer("adam", lambda p, lr, wd, **k: torch.optim.Adam(p, lr=lr, weight_decay=wd, **k), 2, fused=True),
    Optimizer("adamw", lambda p, lr, wd, **k: torch.optim.AdamW(p, lr=lr, weight_decay=wd, **k), 2, fused=True),
    Optimizer("rmsprop", lambda p, lr, wd, **k: torch.optim.RMSprop(p, lr=lr, weight_decay=wd, **k), 1),
)
OPTIMIZERS: dict[str, Optimizer] = {o.name: o for o in _OPTIMIZERS}

CONSTANT = "constant"  # the schedule a run has unless it chooses one (links without one load with it)
_SCHEDULES = (
    Schedule(CONSTANT, lambda progress: 1.0),
    # from 1 down along half a cosine wave, close to 0 at the last step
    Schedule("cosine", lambda progress: 0.5 * (1.0 + math.cos(math.pi * progress))),
    # 1, then 0.1 from half of the run and 0.01 from three quarters
    Schedule("step", lambda progress: 1.0 if progress < 0.5 else 0.1 if progress < 0.75 else 0.01),
)
SCHEDULES: dict[str, Schedule] = {s.name: s for s in _SCHEDULES}


def make_optimizer(name: str, params: Params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """The optimiser ``name`` over ``params`` (ValueError for an unknown name): fused where PyTorch
    has a fused kernel for the parameters' device and dtype, else foreach."""
    if name not in OPTIMIZERS:
        raise ValueError(name)
    entry = OPTIMIZERS[name]
    tensors = list(params)
    return entry.make(tensors, lr, weight_decay, **implementation(entry, tensors))


def implementation(entry: Optimizer, params: Sequence[torch.Tensor]) -> dict[str, bool]:
    """``{"fused": True}`` when every parameter is a floating-point tensor on a device with fused
    kernels (CPU, CUDA, ...) and the optimiser has one; else ``{"foreach": True}``."""
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

    devices = set(_get_fused_kernels_supported_devices())
    fused_here = all(p.device.type in devices and p.is_floating_point() for p in params)
    mps_sgd = any(p.device.type == "mps" for p in params) and entry.name not in ("adam", "adamw")
    if entry.fused and params and fused_here and not mps_sgd:
        return {"fused": True}
    return {"foreach": True}


def lr_factor(schedule: str, step: int, total_steps: int) -> float:
    """The multiplier on the chosen learning rate for training step ``step`` (1-based) of ``total_steps``."""
    if total_steps <= 1:
        return 1.0
    if schedule not in SCHEDULES:
        raise ValueError(schedule)
    progress = min(max(step - 1, 0), total_steps) / total_steps
    return SCHEDULES[schedule].factor(progress)
