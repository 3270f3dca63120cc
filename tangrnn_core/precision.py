"""The training precision chosen by hardware, when neither the config nor the command line sets one.

bf16-mixed trains about twice as fast as fp32 where bf16 is native (GPUs that support it; CPUs with AVX-512 BF16
or AMX) and about as well; elsewhere it is emulated and far slower. A setting of the user's always wins.
"""

from __future__ import annotations

import torch

BF16 = "bf16-mixed"
FP32 = "32-true"


def choose_precision(device: str, bf16_units: bool) -> tuple[str, str] | None:
    """The precision for a run on ``device`` (``cuda`` or ``cpu``) and why; ``None`` for other devices,
    which keep Lightning's default.

    Args:
        device: the kind of device the run trains on.
        bf16_units: whether that device computes bf16 natively.
    """
    if device == "cuda":
        if bf16_units:
            return BF16, "this GPU computes bf16 natively"
        return FP32, "this GPU has no bf16 support"
    if device == "cpu":
        if bf16_units:
            return BF16, "this CPU has bf16 units (AVX-512 BF16 or AMX): about 2x fp32's speed"
        return FP32, "this CPU has no bf16 units (AVX-512 BF16 or AMX), where bf16 would be emulated and slow"
    return None


def training_device(accelerator: object) -> str | None:
    """The kind of device Lightning will train on for ``trainer.accelerator``, as far as can be said here."""
    name = str(accelerator or "auto").lower()
    if name in ("auto", "gpu", "cuda"):
        if torch.cuda.is_available():
            return "cuda"
        return "cpu" if name == "auto" else None
    if name == "cpu":
        return "cpu"
    return None  # mps, tpu, an Accelerator object: not ours to judge


def precision_for(accelerator: object) -> tuple[str, str] | None:
    """:func:`choose_precision` for this machine and ``trainer.accelerator``."""
    from tangrnn_core.decoding.quantize import has_bf16_units

    device = training_device(accelerator)
    if device is None:
        return None
    return choose_precision(device, has_bf16_units(torch.device(device)))
