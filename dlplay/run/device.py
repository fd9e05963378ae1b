"""Choose the training device and describe it in words."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch


def choose_device(preference: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else Apple's MPS, else the CPU."""
    if preference == "cuda" or (preference == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            from dlplay.errors import UserError

            raise UserError("errors.cuda_unavailable")
        return torch.device("cuda")
    if preference == "mps" or (
        preference == "auto" and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        return torch.device("mps")
    return torch.device("cpu")


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # "cuda", "mps" or "cpu"
    name: str
    memory_gb: float | None
    threads: int


def describe_device(device: torch.device | None = None) -> DeviceInfo:
    device = device or choose_device()
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return DeviceInfo("cuda", props.name, props.total_memory / 2**30, torch.get_num_threads())
    if device.type == "mps":
        return DeviceInfo("mps", "Apple GPU (MPS)", None, torch.get_num_threads())
    return DeviceInfo("cpu", f"CPU ({os.cpu_count() or 1} cores)", None, torch.get_num_threads())
