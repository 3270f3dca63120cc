"""Lighter weights for decoding: int8 (CPU) or bf16 copies of a trained network.

Decoding one poem reads every weight at every step, and decoding many is bound by matrix products. int8 weights
cut the bytes read by four and use the CPU's integer dot products; bf16 weights halve them and run on the bf16
units of GPUs and of CPUs with AVX-512 BF16 or AMX. Scores move (int8 by about 2%, the relative error of the
output layer; bf16 by its 8-bit mantissa), so poems differ from the fp32 model's at the same seed; training is
unaffected.
"""

from __future__ import annotations

import copy
import sys
import warnings
from typing import Literal

import torch
from torch import nn

from tangrnn_core.api import Architecture
from tangrnn_core.errors import ConfigError

QUANTIZED_TYPES = {nn.Linear, nn.LSTM, nn.GRU}

#: The weight formats ``tangrnn generate --quantize`` accepts; ``auto`` is :func:`choose_weights`'s pick.
WeightFormat = Literal["auto", "none", "int8", "bf16"]


def choose_weights(device: str, int8_kernels: bool, bf16_units: bool) -> tuple[str, str]:
    """The weight format that decodes fastest on ``device`` (``cpu``, ``cuda`` ...) and why.

    From the measurements in docs/performance.md ("Decoding speed"): on CPUs int8 writes the most poems a second
    and the first one soonest, on AVX2 and AVX-512 alike (bf16 comes close only on CPUs with bf16 units); on GPUs
    bf16 where it is native, since dynamic int8 runs on the CPU only.

    Args:
        device: the kind of device the network is on.
        int8_kernels: whether torch has this CPU's int8 kernels (fbgemm: x86 with AVX2).
        bf16_units: whether the device computes bf16 natively.
    """
    if device == "cpu":
        if int8_kernels:
            return "int8", "int8 weights decode fastest on this CPU (fbgemm kernels)"
        return "none", "this CPU has no int8 kernels (fbgemm needs x86 with AVX2)"
    if device == "cuda" and bf16_units:
        return "bf16", "this GPU computes bf16 natively"
    return "none", f"no faster weights for {device}"


def has_int8_kernels() -> bool:
    """Whether torch's dynamic int8 quantization has its x86 kernels (fbgemm) on this machine."""
    return "fbgemm" in torch.backends.quantized.supported_engines


def int8_for_decoding(architecture: Architecture) -> Architecture:
    """A copy of ``architecture`` whose ``nn.Linear``, ``nn.LSTM`` and ``nn.GRU`` layers hold int8 weights
    (dynamic quantization: activations are quantized on the fly). Works for any plugin built from them."""
    device = next(architecture.parameters()).device
    if device.type != "cpu":
        raise ConfigError("--quantize int8 runs on the CPU only; drop it, or use --trainer.accelerator cpu")
    with warnings.catch_warnings():
        # torch announces that eager-mode quantization moves to torchao; it still ships and works in torch 2.x
        warnings.simplefilter("ignore")
        # in place on a copy of our own: quantize_dynamic would otherwise copy the network a second time
        quantized = torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(architecture).eval(), QUANTIZED_TYPES, dtype=torch.qint8, inplace=True
        )
    return quantized


def has_bf16_units(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively (CUDA with bf16 support; a CPU with AVX-512 BF16 or AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def bf16_for_decoding(architecture: Architecture) -> Architecture:
    """A copy of ``architecture`` with every parameter and buffer in bfloat16; the decoder reads its scores
    back in fp32. Warns (one line on stderr) on a device without bf16 units, where it is much slower."""
    device = next(architecture.parameters()).device
    if not has_bf16_units(device):
        print(
            f"tangrnn: warning: this {device.type.upper()} has no bf16 units, so --quantize bf16 is emulated and "
            "much slower than fp32 here; use it on a GPU or a CPU with AVX-512 BF16/AMX, or use --quantize int8",
            file=sys.stderr,
        )
    return copy.deepcopy(architecture).eval().to(torch.bfloat16)


def resolve_weights(architecture: Architecture, weights: WeightFormat) -> str:
    """``weights`` with ``auto`` resolved by :func:`choose_weights` for the device ``architecture`` is on."""
    if weights != "auto":
        return weights
    device = next(architecture.parameters()).device
    return choose_weights(device.type, has_int8_kernels(), has_bf16_units(device))[0]


def weights_for_decoding(architecture: Architecture, weights: WeightFormat) -> Architecture:
    """The network to decode with: ``architecture`` itself (``none``) or a copy in ``int8`` or ``bf16``.

    Args:
        architecture: a trained network.
        weights: ``auto`` (:func:`choose_weights` for the network's device), ``none``, ``int8`` (CPU only) or
            ``bf16``.
    """
    weights = resolve_weights(architecture, weights)
    if weights == "none":
        return architecture
    if weights == "int8":
        return int8_for_decoding(architecture)
    if weights == "bf16":
        return bf16_for_decoding(architecture)
    raise ConfigError(f"unknown weight format {weights!r} for decoding; choose auto, none, int8 or bf16")
