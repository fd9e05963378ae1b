"""Your digit, through training: the ten probabilities of a few pinned images, step by step.

The learner pins drawings or test images (``RunHandle.set_pins``); a :class:`Pins` callback, in the
training thread, runs them through the network at the probe's steps (step 1, every ``every``-th
step, the last step, and the step the pins arrive) and, because a network often "gets" a digit
within its first hundred steps, also at the powers of two below the interval (2, 4, 8, ...), in eval
mode without gradients, on the training device. The probabilities wait on the device until the next host sync (``on_sync``), then join a
bounded history: past ``capacity`` readings every other one is dropped (never averaged: each kept
reading is the network's softmax at its step). With no pins a step costs one attribute test.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dlplay.classify.callbacks import TrainingCallback
from dlplay.classify.probe import DEFAULT_EVERY, probe_of
from dlplay.errors import UserError
from dlplay.nn.model import eval_mode

MAX_PINS = 8  # images followed at once
CAPACITY = 512  # readings kept (then every other one is dropped)


@dataclass(frozen=True)
class PinsSnapshot:
    """An immutable copy of the pinned images and their probabilities so far (arrays read-only)."""

    images: np.ndarray  # [pins, H, W] uint8
    labels: np.ndarray  # [pins] the true class, -1 when unknown
    steps: np.ndarray  # [T] global step of each reading
    probs: np.ndarray  # [T, pins, classes] softmax of the network at that step
    version: int  # changes whenever the pins change (their history starts again)

    def __len__(self) -> int:
        return len(self.images)

    def turned_right(self, pin: int) -> int | None:
        """The step from which the network's guess for ``pin`` is its label and stays so (None: not
        yet, or no label): the moment the network "gets" the digit."""
        label = int(self.labels[pin])
        if label < 0 or not len(self.steps):
            return None
        right = self.probs[:, pin, :].argmax(axis=1) == label
        if not right[-1]:
            return None
        wrong = np.flatnonzero(~right)
        return int(self.steps[wrong[-1] + 1]) if len(wrong) else int(self.steps[0])


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def pins_of(callbacks: Any) -> Pins | None:
    """The Pins among a session's ``callbacks``, if any."""
    return next((cb for cb in callbacks if isinstance(cb, Pins)), None)


def check_pins(images: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray | None,
               image_shape: tuple[int, ...] | None = None, classes: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images [n, H, W] on the CPU, int64 labels [n]) or a UserError that says what is wrong."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 3:
        raise UserError("pins.bad_images")
    if len(images) > MAX_PINS:
        raise UserError("pins.too_many", max=MAX_PINS)
    if image_shape is not None and tuple(images.shape[1:]) != tuple(image_shape):
        raise UserError("pins.bad_shape", shape="×".join(map(str, images.shape[1:])),
                        expected="×".join(map(str, image_shape)))
    if labels is None:
        labels = torch.full((len(images),), -1, dtype=torch.int64)
    labels = torch.as_tensor(np.asarray(labels) if isinstance(labels, np.ndarray) else labels,
                             dtype=torch.int64).reshape(-1).cpu()
    if len(labels) != len(images) or (classes is not None and bool((labels >= classes).any())):
        raise UserError("pins.bad_labels")
    return images.detach().cpu().clone(), labels.clone()


class Pins(TrainingCallback):
    """TrainingSession callback following pinned images' probabilities (see the module doc).

    ``set_pins`` may be called from any thread; the training thread takes the new pins before its
    next step's reading. ``every``: steps between readings when the run has no probe (else the probe's).
    """

    def __init__(self, images: torch.Tensor | np.ndarray | None = None, labels: torch.Tensor | np.ndarray | None = None, *,
                 every: int = DEFAULT_EVERY, capacity: int = CAPACITY):
        if capacity < 2:
            raise ValueError("capacity must be >= 2")
        self.every = int(every)
        self.capacity = capacity
        self._lock = threading.Lock()
        self._incoming: tuple[torch.Tensor, torch.Tensor] | None = None
        self._x: torch.Tensor | None = None  # the pins, normalised, on the training device
        self._images = np.zeros((0, 0, 0), dtype=np.uint8)
        self._labels = np.zeros(0, dtype=np.int64)
        self._version = 0
        self._adopted = 0  # the version the training thread follows
        self._steps: list[int] = []
        self._probs: list[np.ndarray] = []
        self._pending: list[tuple[int, torch.Tensor]] = []
        self._probe: Any = None
        self._total = 0
        self._snapshot = self._make_snapshot(np.zeros((0, 1, 1), dtype=np.uint8), self._labels, [], [], 0)
        if images is not None:
            self.set_pins(images, labels)

    # ----- commands (any thread) ----------------------------------------------------------------
    def set_pins(self, images: torch.Tensor | np.ndarray | None, labels: torch.Tensor | np.ndarray | None = None) -> None:
        """Follow these uint8 images [n, H, W] (None or n = 0: none); ``labels`` their classes (-1: unknown)."""
        if images is None or len(images) == 0:
            images, labels = torch.zeros((0, 1, 1), dtype=torch.uint8), torch.zeros(0, dtype=torch.int64)
        else:
            images, labels = check_pins(images, labels)
        with self._lock:
            self._incoming = (images, labels)
            self._version += 1
            self._snapshot = self._make_snapshot(images.numpy(), labels.numpy(), [], [], self._version)

    # ----- reads ----------------------------------------------------------------------------------
    def snapshot(self) -> PinsSnapshot:
        return self._snapshot

    # ----- callbacks (training thread) -----------------------------------------------------------
    def on_start(self, session: Any) -> None:
        self._probe = probe_of(session.callbacks)
        self._total = session.total_steps

    def after_step(self, session: Any, step: int) -> None:
        if self._incoming is not None:
            self._adopt(session)
        elif self._x is None:
            return
        else:
            every = self._probe.every if self._probe is not None else self.every
            early = step < every and step & (step - 1) == 0  # 1, 2, 4, 8, ... below the interval
            if not (early or step % every == 0 or step == self._total):
                return
        if self._x is not None:
            self._measure(session, step)

    def on_sync(self, session: Any) -> None:
        if self._pending:
            self._flush(session)

    def on_end(self, session: Any) -> None:
        if self._pending:
            self._flush(session)

    # ----- internals ------------------------------------------------------------------------------
    def _adopt(self, session: Any) -> None:
        """Take the pins set since the last step: on the device, normalised; their history restarts."""
        with self._lock:
            incoming, self._incoming = self._incoming, None
            version = self._version
        if incoming is None:
            return
        images, labels = incoming
        self._pending = []
        self._steps, self._probs = [], []
        self._images, self._labels, self._adopted = images.numpy(), labels.numpy(), version
        self._x = session.normalize(images.to(session.device)) if len(images) else None

    @torch.no_grad()
    def _measure(self, session: Any, step: int) -> None:
        net = session.model
        with eval_mode(net):
            probs = torch.softmax(net(self._x).float(), dim=1)
        self._pending.append((step, probs))

    def _flush(self, session: Any) -> None:
        """One device->host copy for the waiting readings, then a new snapshot."""
        pending, self._pending = self._pending, []
        host = torch.stack([p for _, p in pending]).cpu().numpy().astype(np.float64)
        for (step, _), probs in zip(pending, host):
            self._steps.append(step)
            self._probs.append(probs)
        if len(self._steps) > self.capacity:  # bounded: keep every other reading, and the latest
            keep = [*range(0, len(self._steps) - 1, 2), len(self._steps) - 1]
            self._steps = [self._steps[i] for i in keep]
            self._probs = [self._probs[i] for i in keep]
        with self._lock:
            if self._incoming is None and self._adopted == self._version:  # not replaced meanwhile
                self._snapshot = self._make_snapshot(self._images, self._labels, self._steps, self._probs,
                                                     self._version)
        session.metrics.set_extra("pins", self._snapshot)

    @staticmethod
    def _make_snapshot(images: np.ndarray, labels: np.ndarray, steps: list[int], probs: list[np.ndarray],
                       version: int) -> PinsSnapshot:
        n = len(images)
        classes = probs[0].shape[-1] if probs else 0
        return PinsSnapshot(
            images=_readonly(np.array(images, dtype=np.uint8)),
            labels=_readonly(np.array(labels, dtype=np.int64)),
            steps=_readonly(np.array(steps, dtype=np.int64)),
            probs=_readonly(np.array(probs, dtype=np.float64).reshape(len(steps), n, classes)),
            version=version,
        )
