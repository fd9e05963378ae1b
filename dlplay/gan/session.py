"""GanSession: a generator G and a discriminator D trained in turns, on the shared run machinery.

The generate task of dlplay. :class:`GanSession` is a :class:`~dlplay.run.loop.RunLoop` (thread,
commands, pause / single steps / pace / Stop / heartbeat, run slots, status) whose step is the GAN's:

- one *step* (one global step, counted towards ``config.total_steps``) is ``config.d_steps`` updates
  of D followed by one update of G (``step(n)``, and every step while running);
- ``step_d(n)`` / ``step_g(n)`` grant single steps that update only D / only G (a step each too);
- D outputs a logit; D's loss is the cross-entropy of real (label 1) and generated (label 0)
  samples, ``softplus(-D(x)) + softplus(D(G(z)))`` (one pass of D over both batches unless D has
  BatchNorm), plus, with ``config.r1 = γ > 0``, the R1 penalty γ/2·E‖∇ₓD(x)‖² on the real batch;
  G's loss is the non-saturating ``-log sigmoid(D(G(z))) = softplus(-D(G(z)))`` (Goodfellow et al.
  2014, section 3); optimisers come from :func:`dlplay.nn.optimizers.make_optimizer`, Adam's β₁ from
  ``config.beta1``;
- per step, four numbers are kept on the device — D's loss, G's loss, mean D(real) and mean D(fake)
  as probabilities — and reach the host every ``sync_every`` steps (sooner at a watchable pace, after
  a single step, and at least every MAX_SYNC_S seconds): no host sync per step. A step that updates
  only D measures G's loss on D's generated batch; one that updates only G measures D on a real batch.
  A NaN or infinite loss ends the run as ``diverged`` with the message ``gan.msg_diverged``.

Real data comes from ``sample_real(n, generator) -> x`` (or ``(x, labels)`` for a conditional GAN,
``config.num_classes > 0``), called in the training thread with a ``torch.Generator`` on the run's
device; it returns tensors on that device. A conditional G is called ``G(z, labels)`` and D
``D(x, labels)`` (:class:`LabelConcat` makes any network conditional); otherwise ``G(z)``, ``D(x)``.

Reads (any thread): ``snapshot() -> GanSnapshot`` (bounded curves and the progress, immutable),
``sample(noise, labels=None)`` (G's output, CPU), ``discriminate(x, labels=None)`` (D's probability
that ``x`` is real, CPU), ``noise(n, seed)`` (a reproducible CPU noise batch), ``state_dict()`` (both
networks, keys prefixed ``generator.`` / ``discriminator.``), ``load_state_dict(sd)``,
``generator_copy()`` / ``discriminator_copy()`` / ``copies()`` (CPU copies in eval mode, taken
between two steps). Reads take ``model_lock``, the lock the training thread holds during a step, so
they never see half an update.

Callbacks (:class:`GanHooks`; subclass :class:`GanCallback`) run in the training thread:
``on_start(session)``, ``after_step(session, step)``, ``on_sync(session)``, ``on_end(session)``;
:class:`Every` calls a function every N steps (a filmstrip of a fixed noise batch, for instance).

Builders: :func:`mlp` makes a small multilayer perceptron from the layer registry's dense layer
(:mod:`dlplay.nn.layers`) and the activation registry.
"""
from __future__ import annotations

import copy
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlplay.errors import UserError
from dlplay.i18n import Listed, Term
from dlplay.nn.activations import ACTIVATIONS
from dlplay.nn.layers import DENSE, LAYER_KINDS
from dlplay.nn.model import make_activation
from dlplay.nn.optimizers import OPTIMIZERS, make_optimizer
from dlplay.nn.spec import LayerSpec, validate_lr
from dlplay.run.device import choose_device
from dlplay.run.loop import Diverged, RunLoop
from dlplay.run.metrics import Progress, StepSeries

MAX_SYNC_S = 0.25  # a host sync (and progress on the page) at least this often, however slow the steps
MAX_STEPS = 1_000_000
MAX_BATCH = 4096
MAX_D_STEPS = 10
MAX_NOISE_DIM = 1024
MAX_R1 = 1000.0
NOISES = ("gaussian", "uniform")  # z ~ N(0, I), or uniform on [-1, 1]^noise_dim
STEP_KINDS = ("both", "d", "g")  # what a granted single step updates
CURVES = ("d_loss", "g_loss", "d_real", "d_fake")  # the four numbers kept per step

Batch = torch.Tensor | tuple[torch.Tensor, torch.Tensor]
RealSampler = Callable[[int, torch.Generator], Batch]  # (n, generator on the run's device) -> x or (x, labels)


@dataclass(frozen=True)
class GanConfig:
    """A GAN run's settings (frozen; :meth:`validated` checks them with messages for the learner).

    The defaults are GAN Lab's (batch 150, two D updates per G update, SGD at 0.1 for both).
    """

    noise_dim: int = 2
    noise: str = "gaussian"
    batch_size: int = 150
    d_steps: int = 2  # D updates per G update in one step
    optimizer_d: str = "sgd"
    optimizer_g: str = "sgd"
    lr_d: float = 0.1
    lr_g: float = 0.1
    total_steps: int = 3000
    seed: int = 0
    num_classes: int = 0  # > 0: a conditional GAN over that many labels
    device: str = "auto"
    beta1: float = 0.5  # Adam's β₁ (first-moment decay) for both nets: 0.5 as DCGAN (Radford et al. 2016),
    # PyTorch's 0.9 keeps a momentum that makes the two players circle each other; unused by SGD
    r1: float = 0.0  # γ of the R1 penalty γ/2·E‖∇ₓD(x)‖² on real points (Mescheder et al. 2018); 0: none
    label_smoothing: float = 0.0  # one-sided: D's target for real images is 1 - this (Salimans et al. 2016)

    def validated(self) -> GanConfig:
        """This config, or UserError (``gan.*`` keys) for the first bad setting."""
        _int_in("noise_dim", self.noise_dim, 1, MAX_NOISE_DIM)
        _int_in("batch_size", self.batch_size, 1, MAX_BATCH)
        _int_in("d_steps", self.d_steps, 1, MAX_D_STEPS)
        _int_in("total_steps", self.total_steps, 1, MAX_STEPS)
        _int_in("num_classes", self.num_classes, 0, 1000)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise UserError("gan.bad_int", name=Term("gan.setting_seed"), value=self.seed, low=0, high=2**63 - 1)
        if self.noise not in NOISES:
            raise UserError("gan.bad_choice", name=Term("gan.setting_noise"), value=self.noise, choices=Listed(NOISES))
        for name in (self.optimizer_d, self.optimizer_g):
            if name not in OPTIMIZERS:
                raise UserError("gan.bad_choice", name=Term("gan.setting_optimizer"), value=name, choices=Listed(OPTIMIZERS))
        validate_lr(self.lr_d)
        validate_lr(self.lr_g)
        if isinstance(self.beta1, bool) or not isinstance(self.beta1, (int, float)) or not 0 <= self.beta1 < 1:
            raise UserError("gan.bad_beta1", value=self.beta1)
        if isinstance(self.r1, bool) or not isinstance(self.r1, (int, float)) or not 0 <= self.r1 <= MAX_R1:
            raise UserError("gan.bad_r1", value=self.r1, high=MAX_R1)
        if isinstance(self.label_smoothing, bool) or not isinstance(self.label_smoothing, (int, float)) \
                or not 0 <= self.label_smoothing < 0.5:
            raise UserError("gan_mnist.bad_setting", field="label_smoothing", value=self.label_smoothing)
        return self

    def with_changes(self, **changes: Any) -> GanConfig:
        return replace(self, **changes).validated()


def _int_in(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UserError("gan.bad_int", name=Term(f"gan.setting_{name}"), value=value, low=low, high=high)


@dataclass(frozen=True)
class GanSnapshot:
    """What the page draws: per-step curves (bounded: averaged in pairs once long) and the progress."""

    version: int
    steps: np.ndarray  # global step of each point (1-based)
    d_loss: np.ndarray
    g_loss: np.ndarray
    d_real: np.ndarray  # mean D(x) over the real batch, a probability
    d_fake: np.ndarray  # mean D(G(z)) over the generated batch
    stride: int  # steps averaged into one point
    d_updates: int  # optimiser steps of D so far (synced)
    g_updates: int
    lr_d: float
    lr_g: float
    progress: Progress


class GanHooks(Protocol):
    """What a GanSession calls on each of its callbacks (in the training thread)."""

    def on_start(self, session: GanSession) -> None: ...
    def after_step(self, session: GanSession, step: int) -> None: ...
    def on_sync(self, session: GanSession) -> None: ...
    def on_end(self, session: GanSession) -> None: ...


class GanCallback:
    """A callback whose hooks do nothing: subclass it and override the hooks you need."""

    def on_start(self, session: GanSession) -> None:
        return None

    def after_step(self, session: GanSession, step: int) -> None:
        return None

    def on_sync(self, session: GanSession) -> None:
        return None

    def on_end(self, session: GanSession) -> None:
        return None


class Every(GanCallback):
    """Calls ``fn(session, step)`` after every ``n``-th step (and, with ``at_start``, once before the
    first step with step 0). ``fn`` runs in the training thread: keep it short (e.g. ``session.sample``
    of a fixed noise batch into a bounded list)."""

    def __init__(self, n: int, fn: Callable[[GanSession, int], None], *, at_start: bool = False):
        if n < 1:
            raise ValueError("n must be at least 1")
        self.n, self.fn, self.at_start = n, fn, at_start

    def on_start(self, session: GanSession) -> None:
        if self.at_start:
            self.fn(session, 0)

    def after_step(self, session: GanSession, step: int) -> None:
        if step % self.n == 0:
            self.fn(session, step)


# ----- networks -------------------------------------------------------------------------------

def mlp(in_dim: int, hidden: Sequence[int], out_dim: int, activation: str = "relu",
        out_activation: str = "identity", seed: int | None = None) -> nn.Sequential:
    """Dense layers ``in_dim -> hidden... -> out_dim`` built by the layer registry's dense kind, each hidden
    one followed by ``activation`` (an :mod:`dlplay.nn.activations` name); the output by ``out_activation``.
    With ``seed`` the initial weights are reproducible (the global random generator is left alone)."""
    for name in (activation, out_activation):
        if name not in ACTIVATIONS:
            raise UserError("gan.bad_choice", name=Term("gan.setting_activation"), value=name, choices=Listed(ACTIVATIONS))
    dense = LAYER_KINDS[DENSE]
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        layers: list[nn.Module] = []
        width = in_dim
        for i, units in enumerate([*hidden, out_dim]):
            last = i == len(hidden)
            act = out_activation if last else activation
            layers.append(dense.build(LayerSpec(DENSE, units, act), (width,)))
            layers.append(make_activation(act))
            width = units
    return nn.Sequential(*layers)


class LabelConcat(nn.Module):
    """Makes a network conditional: ``forward(x, labels)`` feeds ``net`` the flattened ``x`` with the
    one-hot labels appended (so ``net`` takes ``prod(x.shape[1:]) + num_classes`` inputs)."""

    def __init__(self, net: nn.Module, num_classes: int):
        super().__init__()
        self.net = net
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(labels, self.num_classes).to(x.dtype)
        return self.net(torch.cat([x.flatten(1), onehot], 1))


# ----- the session ----------------------------------------------------------------------------

class GanSession(RunLoop):
    """One GAN run (see the module doc): G, D, their optimisers, the real-data sampler and the thread."""

    title = "GAN"  # the Admin page's name for the run (the Generate page names its preset)

    thread_name = "dlplay-gan"

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        sample_real: RealSampler,
        config: GanConfig = GanConfig(),
        device: torch.device | str | None = None,
        *,
        sync_every: int = 50,
        callbacks: Iterable[GanHooks] = (),
        heartbeat_timeout: float | None = None,
        slot_pool: Any = None,
        history_capacity: int = 8192,
    ):
        config = config.validated()
        super().__init__(torch.device(device) if device is not None else choose_device(config.device),
                         sync_every=sync_every, callbacks=callbacks, heartbeat_timeout=heartbeat_timeout,
                         slot_pool=slot_pool, history_capacity=history_capacity)
        self.config = config
        self.generator = generator.to(self.device)
        self.discriminator = discriminator.to(self.device)
        self.sample_real = sample_real
        self.opt_d = make_optimizer(config.optimizer_d, self.discriminator.parameters(), config.lr_d, 0.0)
        self.opt_g = make_optimizer(config.optimizer_g, self.generator.parameters(), config.lr_g, 0.0)
        for opt in (self.opt_d, self.opt_g):
            for group in opt.param_groups:
                if "betas" in group:  # Adam, AdamW
                    group["betas"] = (float(config.beta1), group["betas"][1])
        self.total_steps = config.total_steps
        self.steps_per_epoch = config.total_steps  # one "epoch": the progress bar of the shared pages
        self._curves = StepSeries(history_capacity, (len(CURVES),))
        self._curves_lock = threading.Lock()
        self._step_kinds: deque[str] = deque()  # what each granted single step updates, in order
        self._d_updates = 0
        self._g_updates = 0
        # D sees real and generated points in one batch unless a layer mixes a batch's samples (BatchNorm:
        # DCGAN normalises real and fake batches apart)
        self._joint_d = not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.discriminator.modules())
        self.metrics.update_progress(epochs=1, steps_per_epoch=self.total_steps, total_steps=self.total_steps,
                                     lr=config.lr_d, engine="autograd")

    # ----- commands -------------------------------------------------------------------------
    def step(self, n: int = 1) -> None:
        """Run ``n`` whole steps (``d_steps`` D updates, then one G update each), then stay paused."""
        self._grant("both", n)

    def step_d(self, n: int = 1) -> None:
        """Run ``n`` steps that update only the discriminator, then stay paused."""
        self._grant("d", n)

    def step_g(self, n: int = 1) -> None:
        """Run ``n`` steps that update only the generator, then stay paused."""
        self._grant("g", n)

    def _grant(self, kind: str, n: int) -> None:
        if n < 1:
            return
        with self._cond:
            self._step_kinds.extend([kind] * n)
            super().step(n)

    def set_lrs(self, lr_d: float | None = None, lr_g: float | None = None) -> None:
        """Change D's and/or G's learning rate (UserError if out of range); it applies from the next update."""
        lr_d = validate_lr(lr_d) if lr_d is not None else None
        lr_g = validate_lr(lr_g) if lr_g is not None else None
        with self.model_lock:  # between two updates
            if lr_d is not None:
                _set_lr(self.opt_d, lr_d)
            if lr_g is not None:
                _set_lr(self.opt_g, lr_g)
        self.metrics.add_lr_change(self._global_step + 1, self.lr_d)
        self.metrics.update_progress(lr=self.lr_d)

    def _change_lr(self, lr: float) -> None:
        """``set_lr(lr)``: both networks learn at ``lr``."""
        self.set_lrs(lr, lr)

    # ----- reads ----------------------------------------------------------------------------
    @property
    def lr_d(self) -> float:
        return float(self.opt_d.param_groups[0]["lr"])

    @property
    def lr_g(self) -> float:
        return float(self.opt_g.param_groups[0]["lr"])

    @property
    def conditional(self) -> bool:
        return self.config.num_classes > 0

    def snapshot(self) -> GanSnapshot:
        with self._curves_lock:
            steps, values = self._curves.arrays()
            stride, d_up, g_up = self._curves.stride, self._d_updates, self._g_updates
            version = self._synced
        return GanSnapshot(
            version=version + self.metrics.version, steps=steps, d_loss=values[:, 0], g_loss=values[:, 1],
            d_real=values[:, 2], d_fake=values[:, 3], stride=stride, d_updates=d_up, g_updates=g_up,
            lr_d=self.lr_d, lr_g=self.lr_g, progress=self.metrics.progress,
        )

    _synced = 0  # host syncs so far (part of the snapshot's version)

    def noise(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` noise vectors (CPU, float32) of the run's noise distribution, the same for the same seed."""
        return make_noise(n, self.config.noise_dim, self.config.noise, torch.Generator().manual_seed(seed))

    @torch.no_grad()
    def sample(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """G's output for ``noise`` (and ``labels`` for a conditional GAN), on the CPU; G in eval mode
        (BatchNorm's running statistics), taken between two steps."""
        with self.model_lock:
            return _eval(self.generator, *self._inputs(noise, labels)).cpu()

    @torch.no_grad()
    def discriminate(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """D's probability that each of ``x`` is real (shape [n]), on the CPU."""
        with self.model_lock:
            return torch.sigmoid(_eval(self.discriminator, *self._inputs(x, labels)).reshape(len(x))).cpu()

    def _inputs(self, x: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        x = x.to(self.device, torch.float32)
        if not self.conditional:
            return (x,)
        if labels is None:
            raise ValueError("a conditional GAN needs labels")
        return x, labels.to(self.device, torch.int64)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Both networks' weights and buffers as CPU copies, keys ``generator.<name>`` and
        ``discriminator.<name>``, taken between two steps (``torch.save``/``load(weights_only=True)`` safe)."""
        with self.model_lock:
            return {f"{prefix}.{k}": v.detach().to("cpu", copy=True)
                    for prefix, net in (("generator", self.generator), ("discriminator", self.discriminator))
                    for k, v in net.state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load weights saved by :meth:`state_dict` into both networks (strict: every key must match)."""
        parts: dict[str, dict[str, torch.Tensor]] = {"generator": {}, "discriminator": {}}
        for key, value in state.items():
            prefix, _, name = key.partition(".")
            if prefix not in parts:
                raise KeyError(key)
            parts[prefix][name] = value
        with self.model_lock:
            self.generator.load_state_dict(parts["generator"], strict=True)
            self.discriminator.load_state_dict(parts["discriminator"], strict=True)

    def generator_copy(self, device: str | torch.device = "cpu") -> nn.Module:
        """A copy of G with the current weights, in eval mode (training goes on without it)."""
        return self.copies(device)[0]

    def discriminator_copy(self, device: str | torch.device = "cpu") -> nn.Module:
        return self.copies(device)[1]

    def copies(self, device: str | torch.device = "cpu") -> tuple[nn.Module, nn.Module]:
        """Copies of G and D from the same moment (between two steps), in eval mode."""
        with self.model_lock:
            g, d = copy.deepcopy(self.generator), copy.deepcopy(self.discriminator)
        return g.to(device).eval(), d.to(device).eval()

    # ----- the loop -------------------------------------------------------------------------
    def _prepare(self) -> None:
        self._pending: list[torch.Tensor] = []
        self._pending_d = 0  # D and G updates since the last sync
        self._pending_g = 0
        self._samples_since_sync = 0

    def _diverged_message(self, step: int) -> tuple[str, dict[str, Any]]:
        return "gan.msg_diverged", {"step": step, "lr_d": self.lr_d, "lr_g": self.lr_g}

    def _loop(self) -> None:
        cfg = self.config
        self._gen = torch.Generator(device=self.device).manual_seed(cfg.seed)
        torch.manual_seed(cfg.seed)  # dropout masks
        self.generator.train()
        self.discriminator.train()
        self._call("on_start")
        while self._global_step < self.total_steps:
            self._gate()
            self._regain_slot()
            kind = "both"
            single = self._single_step
            if single:
                with self._cond:
                    kind = self._step_kinds.popleft() if self._step_kinds else "both"
            with self.model_lock:
                values = self._train_step(kind)
                self._global_step += 1
            self._pending.append(values)
            self._call("after_step", self._global_step)
            window = self.sync_every if self._pace is None else self._sync_window()
            if (single or len(self._pending) >= window or self._global_step == self.total_steps
                    or time.perf_counter() - self._sync_time >= MAX_SYNC_S):
                self._single_step = False
                self._flush()

    def _train_step(self, kind: str) -> torch.Tensor:
        """One step: ``d_steps`` D updates then one G update ("both"), or one of them ("d", "g").
        Returns [D loss, G loss, mean D(real), mean D(fake)] as a device tensor (no host sync)."""
        d_values: tuple[torch.Tensor, ...] | None = None
        if kind in ("both", "d"):
            for _ in range(self.config.d_steps if kind == "both" else 1):
                d_values = self._d_update()
        if kind == "d":
            assert d_values is not None
            d_loss, real_logits, fake_logits = d_values
            return _measure(d_loss, F.softplus(-fake_logits).mean(), real_logits, fake_logits)
        g_loss, fake_logits = self._g_update()
        if d_values is None:  # "g": how D does on a real batch and on G's batch (no update)
            with torch.no_grad():
                x, y = self._real_batch()
                real_logits = self._d(x, y)
                d_loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits.detach()).mean()
        else:
            d_loss, real_logits, _ = d_values
        return _measure(d_loss, g_loss.detach(), real_logits, fake_logits.detach())

    def _real_batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch = self.sample_real(self.config.batch_size, self._gen)
        if isinstance(batch, tuple):
            x, y = batch
            return x, (y if self.conditional else None)
        if self.conditional:
            raise ValueError("a conditional GAN's sampler returns (x, labels)")
        return batch, None

    def _fake_labels(self, n: int) -> torch.Tensor | None:
        if not self.conditional:
            return None
        return torch.randint(self.config.num_classes, (n,), generator=self._gen, device=self.device)

    def _g(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return self.generator(z) if y is None else self.generator(z, y)

    def _d(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        out = self.discriminator(x) if y is None else self.discriminator(x, y)
        return out.reshape(len(x))

    def _d_update(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n = self.config.batch_size
        x, y = self._real_batch()
        z = make_noise(n, self.config.noise_dim, self.config.noise, self._gen, self.device)
        fake_y = self._fake_labels(n)
        with torch.no_grad():
            fake = self._g(z, fake_y)
        r1 = self.config.r1
        if r1 > 0:
            x = x.detach().requires_grad_(True)
        if self._joint_d:  # one pass of D over real and fake (the same numbers, half the kernel launches)
            logits = self._d(torch.cat([x, fake]), None if y is None else torch.cat([y, fake_y]))  # type: ignore[list-item]
            real_logits, fake_logits = logits[: len(x)], logits[len(x):]
        else:
            real_logits = self._d(x, y)
            fake_logits = self._d(fake, fake_y)
        smooth = self.config.label_smoothing  # real target 1 - s: (1 - s)·softplus(-r) + s·softplus(r)
        real_loss = F.softplus(-real_logits) if smooth == 0 else (1 - smooth) * F.softplus(-real_logits) + smooth * F.softplus(real_logits)
        loss = real_loss.mean() + F.softplus(fake_logits).mean()
        total = loss
        if r1 > 0:  # R1: D flat on the real data, which makes the game converge locally (Mescheder et al. 2018)
            (grad,) = torch.autograd.grad(real_logits.sum(), x, create_graph=True)
            total = loss + r1 / 2 * grad.pow(2).flatten(1).sum(1).mean()
        self.opt_d.zero_grad(set_to_none=True)
        total.backward()
        self.opt_d.step()
        self._pending_d += 1
        self._samples_since_sync += len(x)
        return loss.detach(), real_logits.detach(), fake_logits.detach()

    def _g_update(self) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.config.batch_size
        z = make_noise(n, self.config.noise_dim, self.config.noise, self._gen, self.device)
        fake_y = self._fake_labels(n)
        fake_logits = self._d(self._g(z, fake_y), fake_y)
        loss = F.softplus(-fake_logits).mean()  # non-saturating: -log D(G(z))
        self.opt_g.zero_grad(set_to_none=True)
        self.discriminator.requires_grad_(False)  # G's update leaves D's gradients alone
        try:
            loss.backward()
        finally:
            self.discriminator.requires_grad_(True)
        self.opt_g.step()
        self._pending_g += 1
        return loss, fake_logits

    def _flush(self) -> None:
        """Copy the window's numbers to the host (the only sync in the loop); detect divergence."""
        k = len(self._pending)
        if k == 0:
            return
        rows = torch.stack(self._pending).float().cpu().tolist()
        self._pending.clear()
        first = self._global_step - k + 1
        with self._curves_lock:
            for i, row in enumerate(rows):
                self._curves.append(first + i, np.asarray(row))
            self._d_updates += self._pending_d
            self._g_updates += self._pending_g
            self._synced += 1
        self._pending_d = self._pending_g = 0
        now = time.perf_counter()
        seconds = max(now - self._sync_time, 1e-9)
        rate = self._samples_since_sync / seconds
        self._sync_time, self._samples_since_sync = now, 0
        self.metrics.update_progress(
            global_step=self._global_step, step_in_epoch=self._global_step, samples_per_s=rate,
            elapsed_s=time.time() - (self.started_at or time.time()), lr=self.lr_d,
            eta_s=(self.total_steps - self._global_step) * seconds / k if self._pace is None else None,
        )
        bad = next((i for i, row in enumerate(rows) if not all(math.isfinite(v) for v in row[:2])), None)
        if bad is not None:
            raise Diverged(first + bad)
        self._call("on_sync")


def make_noise(n: int, dim: int, kind: str, generator: torch.Generator,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """``n`` noise vectors of ``dim`` numbers: ``gaussian`` N(0, I) or ``uniform`` on [-1, 1]."""
    if kind == "uniform":
        return torch.rand(n, dim, generator=generator, device=device) * 2 - 1
    return torch.randn(n, dim, generator=generator, device=device)


def _measure(d_loss: torch.Tensor, g_loss: torch.Tensor, real_logits: torch.Tensor,
             fake_logits: torch.Tensor) -> torch.Tensor:
    return torch.stack([d_loss, g_loss, torch.sigmoid(real_logits).mean(), torch.sigmoid(fake_logits).mean()])


def _eval(net: nn.Module, *inputs: torch.Tensor) -> torch.Tensor:
    was_training = net.training
    net.eval()
    try:
        return net(*inputs)
    finally:
        net.train(was_training)


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr

