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


# ----- the update: the optimiser's own fused kernels on its own state

def make_update(optimizer: torch.optim.Optimizer, params: Sequence[torch.Tensor]) -> Callable[[], None]:
    """A function applying ``optimizer`` to ``params`` (whose .grad holds ∂J/∂W): the dense engine's
    update and autograd's (dlplay.classify.train).

    The first call is the optimiser's own ``step()``, which creates its state as PyTorch does; after
    that Adam, AdamW and SGD with ``fused=True`` call their fused kernel directly on the same
    parameter and state tensors and the parameters' current gradients (what ``step()`` would do,
    without its per-call bookkeeping: about 0.5 ms a step of the small CNN on a CPU); other
    optimisers, and a step where a parameter has no gradient, call ``step()`` (their foreach
    implementation).
    """
    fast: list[Callable[[list[torch.Tensor]], None] | None] = [None]
    state_seen: list[object] = [None]

    def update() -> None:
        if fast[0] is not None and optimizer.state is state_seen[0]:
            grads = [p.grad for p in params if p.grad is not None]  # autograd makes new ones every step
            if len(grads) == len(params):
                fast[0](grads)
                return
        if fast[0] is not None:  # step() counts every parameter's step: each its own counter again
            for p in params:
                state = optimizer.state.get(p, {})
                if "step" in state:
                    state["step"] = state["step"].clone()
        with torch.no_grad():
            optimizer.step()
        fast[0] = _fused_update(optimizer, params)
        state_seen[0] = optimizer.state  # load_state_dict replaces it: then look again

    return update


def _fused_update(optimizer: torch.optim.Optimizer,
                  params: Sequence[torch.Tensor]) -> Callable[[list[torch.Tensor]], None] | None:
    if len(optimizer.param_groups) != 1:
        return None
    group = optimizer.param_groups[0]
    if not group.get("fused") or group.get("maximize") or group.get("differentiable") or group.get("capturable"):
        return None
    if torch.is_tensor(group["lr"]) or [id(p) for p in group["params"]] != [id(p) for p in params]:
        return None
    ps = [p.detach() for p in params]
    state = optimizer.state
    if isinstance(optimizer, torch.optim.Adam):  # AdamW too
        if group.get("amsgrad"):
            return None
        exp_avgs = [state[p]["exp_avg"] for p in params]
        exp_avg_sqs = [state[p]["exp_avg_sq"] for p in params]
        steps = [state[p]["step"] for p in params]
        # every parameter of the group has taken the same steps: one counter tensor for all of them,
        # counted with one add (the CPU's foreach add is a loop: ~20 us a step of the tutorial's 4 tensors)
        if not all(torch.equal(t, steps[0]) for t in steps):
            return None
        counter = steps[0]
        for p in params:
            state[p]["step"] = counter
        steps = [counter] * len(params)
        kernel = torch._fused_adamw_ if group.get("decoupled_weight_decay") or isinstance(
            optimizer, torch.optim.AdamW) else torch._fused_adam_

        def adam(grads: list[torch.Tensor]) -> None:
            beta1, beta2 = group["betas"]
            counter.add_(1)
            kernel(ps, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False, lr=group["lr"], beta1=beta1,
                   beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"], maximize=False,
                   grad_scale=None, found_inf=None)

        return adam
    if isinstance(optimizer, torch.optim.SGD):
        momentum = group["momentum"]
        bufs = [state[p]["momentum_buffer"] for p in params] if momentum != 0 else []
        if any(b is None for b in bufs):
            return None

        def sgd(grads: list[torch.Tensor]) -> None:
            torch._fused_sgd_(ps, grads, bufs, weight_decay=group["weight_decay"], momentum=group["momentum"],
                              lr=group["lr"], dampening=group["dampening"], nesterov=group["nesterov"],
                              maximize=False, is_first_step=False, grad_scale=None, found_inf=None)

        return sgd
    return None
