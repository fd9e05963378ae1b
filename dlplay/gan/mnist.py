"""The MNIST GAN: a generator and a discriminator (MLP or small DCGAN, optionally conditioned on the
digit), their settings and presets, one training step, checkpoints and the generator's ONNX export.

Images are float [B, 1, 28, 28] in [-1, 1] (white ink = +1, black = -1); real images stay on the
device as uint8 and are scaled per batch (:func:`to_signed`). The discriminator returns logits.
"""
from __future__ import annotations

import io
import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dlplay.classify.checkpoint import MAX_CHECKPOINT_BYTES, _check_archive, _torch_load, match_state_dict
from dlplay.errors import UserError
from dlplay.i18n import Listed

ARCHS = ("mlp", "dcgan")
NUM_CLASSES = 10
IMAGE_SIDE = 28
_NEG_ONE = torch.tensor(-1.0)


# ------------------------------------------------------------------ settings

@dataclass(frozen=True)
class GanSpec:
    """The two networks: ``arch`` mlp or dcgan, noise size, width, and whether both see the digit."""

    arch: str = "mlp"
    noise_dim: int = 64
    width: int = 256  # mlp: the generator's first hidden layer (then 2x); dcgan: channels of the 14x14 map (then 2x)
    conditional: bool = False
    d_dropout: float = 0.3  # dropout in the discriminator's hidden layers (mlp)

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise UserError("gan_mnist.bad_arch", arch=self.arch, known=Listed(ARCHS))
        _check_int(self.noise_dim, "noise_dim", 2, 512)
        _check_int(self.width, "width", 8, 1024)
        if not isinstance(self.conditional, bool):
            raise UserError("gan_mnist.bad_setting", field="conditional", value=self.conditional)
        if not isinstance(self.d_dropout, (int, float)) or not 0.0 <= self.d_dropout < 1.0:
            raise UserError("gan_mnist.bad_setting", field="d_dropout", value=self.d_dropout)

    def with_changes(self, **changes: Any) -> GanSpec:
        return replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: Any) -> GanSpec:
        return cls(**_fields_from_json(cls, text))


@dataclass(frozen=True)
class GanConfig:
    """How the contest is trained: Adam for each network, batch, one-sided label smoothing, D steps per G step."""

    batch_size: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    d_steps: int = 1
    label_smoothing: float = 0.1  # real targets are 1 - this (one-sided: fakes stay 0)
    seed: int = 0

    def __post_init__(self) -> None:
        _check_int(self.batch_size, "batch_size", 1, 4096)
        _check_int(self.d_steps, "d_steps", 1, 10)
        _check_int(self.seed, "seed", 0, 2**31 - 1)
        for name in ("lr_g", "lr_d"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 < value <= 1:
                raise UserError("gan_mnist.bad_setting", field=name, value=value)
        for name in ("beta1", "beta2", "label_smoothing"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise UserError("gan_mnist.bad_setting", field=name, value=value)

    def with_changes(self, **changes: Any) -> GanConfig:
        return replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: Any) -> GanConfig:
        return cls(**_fields_from_json(cls, text))


def _check_int(value: Any, field: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UserError("gan_mnist.bad_int", field=field, value=value, low=low, high=high)


def _fields_from_json(cls: type, text: Any) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise UserError("gan_mnist.bad_json") from exc
    names = {f.name for f in fields(cls)}
    if not isinstance(data, dict) or not set(data) <= names:
        raise UserError("gan_mnist.bad_json")
    return data


@dataclass(frozen=True)
class GanPreset:
    """A ready-made GAN; translations ``gan_mnist.preset.<key>.name`` and ``.text`` (what it does and how good
    it gets, in a sentence or two for the sidebar; the measurements behind it are in docs/GENERATE.md)."""

    key: str
    spec: GanSpec
    config: GanConfig


# Measured by bench/gan_mnist.py (figures in docs/GENERATE.md and the bench's docstring). The conditional option is
# ``spec.with_changes(conditional=True)`` on either preset, with the same settings.
GAN_PRESETS: dict[str, GanPreset] = {
    "mlp": GanPreset("mlp", GanSpec("mlp", noise_dim=64, width=128), GanConfig()),
    "dcgan": GanPreset("dcgan", GanSpec("dcgan", noise_dim=64, width=16), GanConfig()),
}


# ------------------------------------------------------------------ networks

def one_hot(labels: torch.Tensor) -> torch.Tensor:
    """Digits [B] -> one-hot float [B, 10] (a row lookup: exports to ONNX as a Gather)."""
    return torch.eye(NUM_CLASSES, device=labels.device)[labels.long()]


class Generator(nn.Module):
    """Noise [B, noise_dim] (and digits [B] when conditional) -> images [B, 1, 28, 28] in [-1, 1]."""

    def __init__(self, spec: GanSpec):
        super().__init__()
        self.spec = spec
        n_in = spec.noise_dim + (NUM_CLASSES if spec.conditional else 0)
        w = spec.width
        self.body: nn.Module
        if spec.arch == "mlp":
            self.body = nn.Sequential(
                nn.Linear(n_in, w), nn.LeakyReLU(0.2),
                nn.Linear(w, 2 * w), nn.BatchNorm1d(2 * w), nn.LeakyReLU(0.2),
                nn.Linear(2 * w, 4 * w), nn.BatchNorm1d(4 * w), nn.LeakyReLU(0.2),
                nn.Linear(4 * w, IMAGE_SIDE * IMAGE_SIDE), nn.Tanh(),
            )
        else:  # dcgan: dense to a 7x7 map, two transposed convolutions 7 -> 14 -> 28
            self.body = nn.Sequential(
                nn.Linear(n_in, 2 * w * 49), nn.BatchNorm1d(2 * w * 49), nn.ReLU(),
                nn.Unflatten(1, (2 * w, 7, 7)),
                nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.BatchNorm2d(w), nn.ReLU(),
                nn.ConvTranspose2d(w, 1, 4, 2, 1), nn.Tanh(),
            )

    def forward(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.spec.conditional:
            if labels is None:
                raise ValueError("a conditional generator needs the digits to draw")
            noise = torch.cat([noise, one_hot(labels)], dim=1)
        return self.body(noise).view(-1, 1, IMAGE_SIDE, IMAGE_SIDE)


class Discriminator(nn.Module):
    """Images [B, 1, 28, 28] in [-1, 1] (and digits [B] when conditional) -> logits [B]: real > 0 > fake.

    Conditional: a projection discriminator (Miyato & Koyama 2018): the logit is ``head(h) + <e_y, h>``
    with ``h`` the image's features and ``e_y`` a learned vector per digit, so D asks "is this a real
    *y*?" directly; it learns the digits far sooner than a one-hot glued to the pixels.
    """

    def __init__(self, spec: GanSpec):
        super().__init__()
        self.spec = spec
        w = spec.width
        self.features: nn.Module
        if spec.arch == "mlp":
            drop = spec.d_dropout
            self.features = nn.Sequential(
                nn.Flatten(),
                nn.Linear(IMAGE_SIDE * IMAGE_SIDE, 4 * w), nn.LeakyReLU(0.2), nn.Dropout(drop),
                nn.Linear(4 * w, 2 * w), nn.LeakyReLU(0.2), nn.Dropout(drop),
            )
            n_features = 2 * w
        else:  # dcgan: 28 -> 14 -> 7
            self.features = nn.Sequential(
                nn.Conv2d(1, w, 4, 2, 1), nn.LeakyReLU(0.2),
                nn.Conv2d(w, 2 * w, 4, 2, 1), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2),
                nn.Flatten(),
            )
            n_features = 2 * w * 49
        self.head = nn.Linear(n_features, 1)
        self.embed = nn.Embedding(NUM_CLASSES, n_features) if spec.conditional else None

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if images.dim() == 3:
            images = images.unsqueeze(1)
        h = self.features(images)
        logits = self.head(h).view(-1)
        if self.embed is not None:
            if labels is None:
                raise ValueError("a conditional discriminator needs the digits shown")
            logits = logits + (self.embed(labels.long()) * h).sum(dim=1)
        return logits


def build_gan(spec: GanSpec, seed: int | None = None) -> tuple[Generator, Discriminator]:
    """A fresh generator and discriminator (DCGAN-style N(0, 0.02) init); ``seed`` makes them reproducible."""
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        g, d = Generator(spec), Discriminator(spec)
        for net in (g, d):
            for m in net.modules():
                if isinstance(m, nn.Embedding):
                    nn.init.normal_(m.weight, 0.0, 0.02)
                elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                    nn.init.normal_(m.weight, 0.0, 0.02)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                    nn.init.normal_(m.weight, 1.0, 0.02)
                    nn.init.zeros_(m.bias)
    return g, d


def make_optimizers(g: nn.Module, d: nn.Module, config: GanConfig) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    betas = (config.beta1, config.beta2)
    return (torch.optim.Adam(g.parameters(), lr=config.lr_g, betas=betas),
            torch.optim.Adam(d.parameters(), lr=config.lr_d, betas=betas))


# ------------------------------------------------------------------ data and one step

def to_signed(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [B, 28, 28] -> float [B, 1, 28, 28] in [-1, 1], in one kernel on the images' device."""
    return torch.add(_NEG_ONE.to(images_u8.device), images_u8, alpha=2.0 / 255.0).unsqueeze(1)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Generated [-1, 1] images (any leading shape, last two 28x28) -> uint8 pixels 0..255."""
    return ((images.detach().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def sample_noise(n: int, spec: GanSpec, *, seed: int | None = None, device: str | torch.device = "cpu") -> torch.Tensor:
    """``n`` standard normal noise vectors (reproducible with ``seed``)."""
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    return torch.randn(n, spec.noise_dim, generator=gen).to(device)


def grid_labels(n: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """Digits for ``n`` conditional samples: 0..9 repeated (row of 8: 0..7, 8, 9, 0.. and so on)."""
    return (torch.arange(n, device=device) % NUM_CLASSES).long()


@dataclass
class StepTensors:
    """One step's figures as 0-dim tensors on the device (read them on the host every N steps only)."""

    d_loss: torch.Tensor
    g_loss: torch.Tensor
    d_real: torch.Tensor  # mean D(real) as a probability
    d_fake: torch.Tensor  # mean D(G(z)) as a probability, before the generator's update


def gan_step(g: Generator, d: Discriminator, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
             real_batches: Callable[[], tuple[torch.Tensor, torch.Tensor]], config: GanConfig) -> StepTensors:
    """``config.d_steps`` discriminator updates, then one generator update (non-saturating loss).

    ``real_batches()`` returns (uint8 images [B, 28, 28], labels [B]) on the networks' device.
    """
    cond = g.spec.conditional
    real_target = 1.0 - config.label_smoothing
    for _ in range(config.d_steps):
        images, labels = real_batches()
        real = to_signed(images)
        b = real.shape[0]
        noise = torch.randn(b, g.spec.noise_dim, device=real.device)
        fake_labels = torch.randint(0, NUM_CLASSES, (b,), device=real.device) if cond else None
        with torch.no_grad():
            fake = g(noise, fake_labels)
        real_logits = d(real, labels if cond else None)
        fake_logits = d(fake, fake_labels)
        d_loss = (F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_target))
                  + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
    noise = torch.randn(b, g.spec.noise_dim, device=real.device)
    fake_labels = torch.randint(0, NUM_CLASSES, (b,), device=real.device) if cond else None
    fake = g(noise, fake_labels)
    logits = d(fake, fake_labels)
    g_loss = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    return StepTensors(d_loss.detach(), g_loss.detach(), torch.sigmoid(real_logits.detach()).mean(),
                       torch.sigmoid(fake_logits.detach()).mean())


def real_sampler(images_u8: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 seed: int = 0) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
    """Batches drawn from a shuffled pass over the images (reshuffled each epoch), on the images' device."""
    n = images_u8.shape[0]
    batch_size = min(batch_size, n)
    gen = torch.Generator().manual_seed(seed)
    order, pos = torch.randperm(n, generator=gen).to(images_u8.device), 0

    def next_batch() -> tuple[torch.Tensor, torch.Tensor]:
        nonlocal order, pos
        if pos + batch_size > n:
            order, pos = torch.randperm(n, generator=gen).to(images_u8.device), 0
        idx = order[pos: pos + batch_size]
        pos += batch_size
        return images_u8[idx], labels[idx]

    return next_batch


def train_for(g: Generator, d: Discriminator, config: GanConfig, images_u8: torch.Tensor, labels: torch.Tensor, *,
              seconds: float | None = None, steps: int | None = None, report_every: int = 200,
              report: Callable[[int, float, StepTensors], None] | None = None) -> int:
    """A plain loop (no thread): train until ``seconds`` of wall clock or ``steps`` have passed; the step count."""
    if seconds is None and steps is None:
        raise ValueError("give seconds or steps")
    opt_g, opt_d = make_optimizers(g, d, config)
    batches = real_sampler(images_u8, labels, config.batch_size, config.seed)
    g.train()
    d.train()
    t0 = time.perf_counter()
    step = 0
    while (steps is None or step < steps) and (seconds is None or time.perf_counter() - t0 < seconds):
        out = gan_step(g, d, opt_g, opt_d, batches, config)
        step += 1
        if report is not None and step % report_every == 0:
            report(step, time.perf_counter() - t0, out)
    return step


# ------------------------------------------------------------------ checkpoints and export

FORMAT = "dlplay-gan-checkpoint"
VERSION = 1
KEYS = {"format", "version", "spec", "config", "steps", "generator", "discriminator"}


@dataclass(frozen=True)
class GanCheckpoint:
    """A validated GAN checkpoint: both networks' weights, their spec, the settings and the steps trained."""

    spec: GanSpec
    config: GanConfig
    steps: int
    generator_state: dict[str, torch.Tensor]
    discriminator_state: dict[str, torch.Tensor]

    def networks(self, device: str | torch.device = "cpu") -> tuple[Generator, Discriminator]:
        """A fresh generator and discriminator (eval mode) with these weights."""
        g, d = build_gan(self.spec)
        g.load_state_dict(self.generator_state, strict=True)
        d.load_state_dict(self.discriminator_state, strict=True)
        return g.to(device).eval(), d.to(device).eval()


def _cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").clone(memory_format=torch.contiguous_format) for k, v in module.state_dict().items()}


def save_gan_checkpoint(g: Generator, d: Discriminator, config: GanConfig, *, steps: int = 0) -> bytes:
    """The bytes of a checkpoint holding both networks (weights copied to the CPU), plain data only."""
    if g.spec != d.spec:
        raise ValueError("the generator and the discriminator were built from different specs")
    payload = {"format": FORMAT, "version": VERSION, "spec": g.spec.to_json(), "config": config.to_json(),
               "steps": int(steps), "generator": _cpu_state(g), "discriminator": _cpu_state(d)}
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def load_gan_checkpoint(data: bytes, max_bytes: int = MAX_CHECKPOINT_BYTES) -> GanCheckpoint:
    """Validate and read GAN checkpoint bytes (``torch.load(weights_only=True)``); UserError for anything else."""
    if not isinstance(data, (bytes, bytearray)) or len(data) == 0:
        raise UserError("eval.ckpt_empty")
    if len(data) > max_bytes:
        raise UserError("eval.ckpt_too_large", size_mb=len(data) / 2**20, limit_mb=max_bytes / 2**20)
    data = bytes(data)
    _check_archive(data, max_bytes)
    obj = _torch_load(data)
    if isinstance(obj, dict) and obj.get("format") == "dlplay-checkpoint":
        raise UserError("gan_mnist.ckpt_classifier")
    if not isinstance(obj, dict) or obj.get("format") != FORMAT or not set(obj) <= KEYS:
        raise UserError("gan_mnist.ckpt_not_gan")
    version = obj.get("version")
    if not isinstance(version, int) or version < 1:
        raise UserError("gan_mnist.ckpt_not_gan")
    if version > VERSION:
        raise UserError("eval.ckpt_newer", version=version)
    try:
        spec = GanSpec.from_json(obj.get("spec"))
        config = GanConfig.from_json(obj.get("config"))
    except (UserError, TypeError) as exc:
        reason = exc.message("en") if isinstance(exc, UserError) else str(exc)
        raise UserError("eval.ckpt_bad_spec", reason=reason) from exc
    steps = obj.get("steps", 0)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise UserError("gan_mnist.ckpt_not_gan")
    g, d = build_gan(spec)
    return GanCheckpoint(spec, config, steps, _checked_state(obj.get("generator"), g),
                         _checked_state(obj.get("discriminator"), d))


def _checked_state(state: Any, net: nn.Module) -> dict[str, torch.Tensor]:
    """Names, shapes and dtypes exactly those of ``net``; finite floats."""
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise UserError("gan_mnist.ckpt_not_gan")
    return match_state_dict(state, net.state_dict())


class GeneratorPixels(nn.Module):
    """The generator as an exported file sees it: noise (and digits) in, pixels in [0, 1] out (white ink = 1)."""

    def __init__(self, g: Generator):
        super().__init__()
        self.g = g

    def forward(self, noise: torch.Tensor, digits: torch.Tensor | None = None) -> torch.Tensor:
        return (self.g(noise, digits) + 1.0) * 0.5


def export_generator_onnx(g: Generator) -> bytes:
    """ONNX bytes (opset 17, dynamic batch): input ``noise`` float [B, noise_dim] (and ``digits`` int64 [B]
    when conditional), output ``pixels`` float [B, 1, 28, 28] in [0, 1], white digits on black."""
    import copy

    wrapped = GeneratorPixels(copy.deepcopy(g).to("cpu").eval()).eval()
    noise = torch.randn(2, g.spec.noise_dim)
    args: tuple[torch.Tensor, ...] = (noise, torch.tensor([3, 7])) if g.spec.conditional else (noise,)
    names = ["noise", "digits"][: len(args)]
    axes = {name: {0: "batch"} for name in [*names, "pixels"]}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapped, args, buf,  # type: ignore[arg-type]  # a file object works; the stubs say path only
            input_names=names, output_names=["pixels"], dynamic_axes=axes, opset_version=17, dynamo=False,
        )
    return buf.getvalue()


# ------------------------------------------------------------------ the run (GanSession)

def session_config(spec: GanSpec, config: GanConfig, *, total_steps: int = 10_000, device: str = "auto") -> Any:
    """The :class:`dlplay.gan.session.GanConfig` of this recipe: Adam for both networks, Gaussian noise, 10 digits when conditional."""
    from dlplay.gan import session as gan
    return gan.GanConfig(
        noise_dim=spec.noise_dim, noise="gaussian", batch_size=config.batch_size, d_steps=config.d_steps,
        optimizer_d="adam", optimizer_g="adam", lr_d=config.lr_d, lr_g=config.lr_g, beta1=config.beta1,
        total_steps=total_steps, seed=config.seed, num_classes=NUM_CLASSES if spec.conditional else 0, device=device,
        label_smoothing=config.label_smoothing,
    ).validated()


def mnist_sampler(images_u8: torch.Tensor, labels: torch.Tensor) -> Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor]]:
    """A GanSession's real-data sampler: ``n`` random training images (uint8 on the device, scaled to [-1, 1]
    per batch) and their digits, drawn with the session's generator (on the images' device)."""
    def sample(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(images_u8.shape[0], (n,), generator=generator, device=images_u8.device)
        return to_signed(images_u8[idx]), labels[idx]

    return sample


def mnist_session(spec: GanSpec, config: GanConfig, dataset: Any, *, total_steps: int = 10_000, device: str = "auto",
                  callbacks: Any = (), **session_args: Any) -> Any:
    """A :class:`dlplay.gan.session.GanSession` (not started) training this recipe's G and D on ``dataset``'s training
    images, kept on the run's device as uint8. ``session_args``: sync_every, heartbeat_timeout, slot_pool..."""
    from dlplay.gan import session as gan
    from dlplay.run.device import choose_device

    run_device = choose_device(device)
    data = dataset.to(run_device)
    g, d = build_gan(spec, seed=config.seed)
    return gan.GanSession(g, d, mnist_sampler(data.train_images, data.train_labels),
                          session_config(spec, config, total_steps=total_steps, device=device), run_device,
                          callbacks=callbacks, **session_args)
