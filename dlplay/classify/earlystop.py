"""Early stopping: watch the validation loss after each epoch, keep the best weights, stop after
``patience`` epochs without a better one, and put the best weights back at the end (like Keras'
``EarlyStopping(restore_best_weights=True)``, restored also when the run used all its epochs)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class EarlyStopInfo:
    """What early stopping did, for the pages (``snapshot().extras["early_stop"]``)."""

    patience: int
    best_epoch: int  # the epoch whose weights are kept (0: none yet)
    best_val_loss: float
    stopped_at: int | None = None  # the epoch after which it stopped the run; None: it did not stop it
    restored: bool = False  # the best epoch's weights were put back at the end


class EarlyStopping:
    """Called by the training loop after each epoch's validation (in the training thread)."""

    def __init__(self, patience: int):
        self.patience = patience
        self.best_epoch = 0
        self.best_loss = math.inf
        self.best_state: dict[str, torch.Tensor] | None = None
        self.stopped_at: int | None = None
        self.restored = False

    def update(self, epoch: int, val_loss: float, model: torch.nn.Module) -> bool:
        """Record epoch ``epoch``'s validation loss; True when the run should stop now."""
        if math.isfinite(val_loss) and val_loss < self.best_loss:
            self.best_loss, self.best_epoch = val_loss, epoch
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if epoch - self.best_epoch >= self.patience:
            self.stopped_at = epoch
            return True
        return False

    def restore(self, model: torch.nn.Module, last_epoch: int) -> None:
        """Put the best weights back (in place: an engine holding the parameters keeps them)."""
        if self.best_state is not None and self.best_epoch != last_epoch:
            model.load_state_dict(self.best_state)
            self.restored = True

    def info(self) -> EarlyStopInfo:
        return EarlyStopInfo(self.patience, self.best_epoch, self.best_loss, self.stopped_at, self.restored)
