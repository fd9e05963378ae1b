"""One image through the network: class probabilities and what every layer computed on the way.

Pure torch + numpy, so the Draw page (and tests) can show a single forward pass: the 28x28 digit
goes in, each block's activation comes out as a numpy array, and the output layer's logits become
probabilities with a softmax (the model itself returns logits; softmax lives in the loss).
Every single-image path (the Draw page, the Inside page's trace and its probabilities) turns pixels
into the network's input here: :func:`to_pixels`, then :func:`normalise`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from dlplay.nn.model import Block, Net, eval_mode


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s parameters (the CPU for a model without any)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def to_pixels(image: Any, input_shape: Sequence[int], device: torch.device) -> torch.Tensor:
    """uint8 image(s) ([H, W], [C, H, W] or a stack) -> float pixels in [0, 1], shape [N, C, H, W]."""
    arr = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    arr = arr.astype(np.float32) / 255.0
    return torch.as_tensor(arr, device=device).reshape(-1, *input_shape)


def normalise(pixels: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """Pixels in [0, 1] -> the network's input ``(x - mean) / std``, as in training."""
    return (pixels - mean) / std


@dataclass(frozen=True)
class LayerActivation:
    """What one block produced for the input.

    ``values`` is the post-activation output without the batch dimension: shape (units,) for a
    dense layer, (channels, height, width) for conv / pooling / 2-D batchnorm layers.
    """

    name: str  # the block's name: "dense1", "conv1", ..., "output"
    kind: str  # dense, conv2d, maxpool, avgpool, batchnorm
    activation: str  # the activation function's name (activations.IDENTITY for pooling and the output)
    values: np.ndarray

    @property
    def is_spatial(self) -> bool:
        """True for feature maps (C, H, W), False for a vector of neurons."""
        return self.values.ndim == 3

    @property
    def units(self) -> int:
        """Neurons (dense) or feature maps (spatial layers)."""
        return int(self.values.shape[0])

    def active_fraction(self, threshold: float = 0.0) -> float:
        """Share of values above ``threshold`` (for ReLU: the neurons that fire)."""
        return float((self.values > threshold).mean()) if self.values.size else 0.0


@dataclass(frozen=True)
class Prediction:
    """The network's answer for one image: probabilities, the top guess, every layer's activation."""

    probabilities: np.ndarray  # (num_classes,), sums to 1
    logits: np.ndarray  # (num_classes,)
    layers: tuple[LayerActivation, ...]  # hidden blocks in order, then "output" (its values are the logits)

    @property
    def top(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def confidence(self) -> float:
        return float(self.probabilities[self.top])

    def ranked(self, k: int = 3) -> list[tuple[int, float]]:
        """The ``k`` most probable classes as (class index, probability), best first."""
        order = np.argsort(-self.probabilities, kind="stable")[:k]
        return [(int(i), float(self.probabilities[i])) for i in order]

    @property
    def is_finite(self) -> bool:
        """False when the network produced NaN/inf (e.g. weights broken by a diverged run)."""
        return bool(np.isfinite(self.probabilities).all())

    @property
    def hidden_layers(self) -> tuple[LayerActivation, ...]:
        return tuple(layer for layer in self.layers if layer.name != "output")


@torch.no_grad()
def predict(model: Net, image28: np.ndarray, mean: float, std: float) -> Prediction:
    """Run one uint8 28x28 image through ``model`` (in eval mode) and record every layer.

    ``mean``/``std`` are the dataset's normalisation constants, as used in training. The model is
    put in eval mode (dropout off, batchnorm running statistics) and left that way.
    """
    model.eval()
    x = normalise(to_pixels(image28, model.spec.input_shape, model_device(model)), mean, std)
    record: list[tuple[torch.Tensor, torch.Tensor]] = []
    logits = model(x, record)
    probs = torch.softmax(logits.float(), dim=1)[0]
    layers = tuple(
        LayerActivation(
            name=block.name,
            kind=block.kind,
            activation=block.activation_name,
            values=a[0].detach().float().cpu().numpy(),
        )
        for block, (_, a) in zip(cast("list[Block]", list(model.blocks)), record)
    )
    return Prediction(
        probabilities=probs.cpu().numpy().astype(np.float64),
        logits=logits[0].float().cpu().numpy().astype(np.float64),
        layers=layers,
    )


def predict_batch(model: Net, images28: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Probabilities for a stack of uint8 28x28 images, shape (N, num_classes); no layer records."""
    model.eval()
    x = normalise(to_pixels(images28, model.spec.input_shape, model_device(model)), mean, std)
    with torch.no_grad():
        return torch.softmax(model(x).float(), dim=1).cpu().numpy().astype(np.float64)


@torch.no_grad()
def probabilities(model: Net, image: Any, info: Any) -> np.ndarray:
    """Class probabilities of one uint8 image (eval mode, restored after) - a forward pass without the trace."""
    with eval_mode(model):
        pixels = to_pixels(image, model.spec.input_shape, model_device(model))
        out = torch.softmax(model(normalise(pixels, float(info.mean), float(info.std))), dim=1)[0]
    return out.cpu().numpy().astype(np.float64)


@torch.no_grad()
def predictions(model: Net, images: torch.Tensor, info: Any, batch_size: int = 2000) -> np.ndarray:
    """Predicted classes of many uint8 images (eval mode, restored after; on the model's device)."""
    device = model_device(model)
    out = []
    with eval_mode(model):
        for i in range(0, len(images), batch_size):
            x = normalise(images[i : i + batch_size].to(device, torch.float32) / 255.0, float(info.mean), float(info.std))
            out.append(model(x).argmax(1).cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)
