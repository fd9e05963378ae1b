"""The optimisers and learning-rate schedules dlplay offers: one table each.

An :class:`Optimizer` entry builds the PyTorch optimiser and says how many tensors of state it keeps
per parameter (the memory estimate of :mod:`dlplay.server.guardrails`); a :class:`Schedule` entry gives the
multiplier on the chosen learning rate at each step. Adding one is an entry here plus its
translations (``train.opt_<name>`` and ``runs.optimizer_<name>``, or ``train.sched_<name>``).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

Params = Iterable[torch.nn.Parameter]


@dataclass(frozen=True)
class Optimizer:
    name: str
    make: Callable[[Params, float, float], torch.optim.Optimizer]  # (params, lr, weight_decay)
    states: int  # state tensors kept per parameter (momentum: 1; Adam: 2)

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
    Optimizer("sgd", lambda p, lr, wd: torch.optim.SGD(p, lr=lr, weight_decay=wd), 0),
    Optimizer("momentum", lambda p, lr, wd: torch.optim.SGD(p, lr=lr, momentum=0.9, weight_decay=wd), 1),
    Optimizer("adam", lambda p, lr, wd: torch.optim.Adam(p, lr=lr, weight_decay=wd), 2),
    Optimizer("adamw", lambda p, lr, wd: torch.optim.AdamW(p, lr=lr, weight_decay=wd), 2),
    Optimizer("rmsprop", lambda p, lr, wd: torch.optim.RMSprop(p, lr=lr, weight_decay=wd), 1),
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
    """The optimiser ``name`` over ``params`` (ValueError for an unknown name)."""
    if name not in OPTIMIZERS:
        raise ValueError(name)
    return OPTIMIZERS[name].make(params, lr, weight_decay)


def lr_factor(schedule: str, step: int, total_steps: int) -> float:
    """The multiplier on the chosen learning rate for training step ``step`` (1-based) of ``total_steps``."""
    if total_steps <= 1:
        return 1.0
    if schedule not in SCHEDULES:
        raise ValueError(schedule)
    progress = min(max(step - 1, 0), total_steps) / total_steps
    return SCHEDULES[schedule].factor(progress)
