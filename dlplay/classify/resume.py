"""A run's exact state between two steps: what a fork starts from (weights, optimiser state, generators,
place in the epoch's permutation). :meth:`dlplay.classify.train.TrainingSession.capture_state` takes it."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from dlplay.nn.spec import TrainConfig

Origin = tuple[str, int, str, str, str]  # (parent run id, step, change, old value, new value)


def cpu_copy(obj: Any) -> Any:
    """A deep copy with every tensor copied to the CPU (strides kept), for optimiser state dicts."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(cpu_copy(v) for v in obj)
    return obj


def _nbytes(obj: Any) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(v) for v in obj)
    return 0


@dataclass(frozen=True)
class ResumeState:
    """Everything a run needs to carry on from step ``step`` as if it had never stopped (CPU tensors)."""

    step: int  # optimisation steps done
    epoch: int  # the epoch in progress (0-based; = epochs completed)
    consumed: int  # images of that epoch's permutation already trained on (0: the epoch has not begun)
    perm: torch.Tensor | None  # that epoch's permutation (None: not drawn yet, gen_state draws it)
    gen_state: torch.Tensor  # the permutations' generator
    rng_state: torch.Tensor  # torch's global CPU generator (dropout masks on the CPU)
    cuda_rng_state: torch.Tensor | None  # the CUDA generator (dropout masks on a GPU)
    model_state: dict[str, torch.Tensor]
    optimizer: str
    optimizer_state: dict[str, Any]
    base_lr: float  # the learning rate the schedule scales (the chosen one, or the latest set_lr)
    epoch_loss_sum: float  # the epoch's sums so far (its record's train loss and accuracy)
    epoch_correct: int
    run_id: str = ""  # the run it was taken from
    train_size: int = 0  # images in the run's training set (its permutations' length)
    origin: Origin | None = None  # set on a fork's start: where it came from and what changed

    @property
    def nbytes(self) -> int:
        return _nbytes([self.perm, self.model_state, self.optimizer_state])

    # ----- used by TrainingSession (dlplay/classify/train.py) ----------------------------------------------
    def load_into(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, config: TrainConfig) -> None:
        """The weights, and the optimiser's state when the fork keeps the optimiser; the learning rate
        is the fork's (its schedule scales it from the next step)."""
        model.load_state_dict(self.model_state, strict=True)
        if config.optimizer == self.optimizer:
            optimizer.load_state_dict(cpu_copy(self.optimizer_state))
        for group in optimizer.param_groups:
            group["lr"] = config.lr  # a schedule scales it before every step

    def total_steps(self, train_size: int, batch_size: int, epochs: int) -> int:
        """The fork's last step: the steps done, the rest of this epoch and the later epochs, at ``batch_size``."""
        per_epoch = math.ceil(train_size / batch_size)
        left = math.ceil((train_size - self.consumed) / batch_size)
        return self.step + left + per_epoch * max(0, epochs - self.epoch - 1)

    def restore_generators(self, gen: torch.Generator, device: torch.device) -> torch.Tensor | None:
        """Set the generators as they were; the current epoch's permutation on ``device`` (None: none yet)."""
        gen.set_state(self.gen_state)
        torch.set_rng_state(self.rng_state)
        if self.cuda_rng_state is not None and device.type == "cuda":
            torch.cuda.set_rng_state(self.cuda_rng_state, device)
        return self.perm.to(device) if self.perm is not None else None
