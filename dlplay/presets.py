"""Ready-made models and training settings, each with an explanation of what it shows."""
from __future__ import annotations

from dataclasses import dataclass

from .spec import ModelSpec, TrainConfig, dense_spec


@dataclass(frozen=True)
class Preset:
    key: str  # translation keys: presets.<key>.name and presets.<key>.text
    spec: ModelSpec
    config: TrainConfig


PRESETS: dict[str, Preset] = {
    "tutorial": Preset("tutorial", dense_spec([128], "relu"), TrainConfig(optimizer="adam", lr=1e-3, batch_size=32, epochs=10)),
}

DEFAULT_PRESET = "tutorial"
