"""Where torch work runs: ``--device auto|cpu|cuda`` (no heavy imports beyond torch)."""

from __future__ import annotations

from typing import Literal

import torch

from metrichmsr.errors import InputError

Device = Literal["auto", "cpu", "cuda"]


def resolve_device(device: Device) -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cuda' without a GPU is an InputError."""
    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f"--device must be auto, cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA GPU is available to torch here")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
