"""int8 weights for decoding on CPU: the same network with its linear and recurrent layers quantized.

Decoding one poem reads every weight at every step, and decoding many is bound by matrix products: int8
weights cut the bytes read by four and use the CPU's integer dot products. Scores move by about 2% (relative
error of the output layer), so poems differ from the fp32 model's at the same seed; training is unaffected.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from tangrnn_core.api import Architecture
from tangrnn_core.errors import ConfigError

QUANTIZED_TYPES = {nn.Linear, nn.LSTM, nn.GRU}


def int8_for_decoding(architecture: Architecture) -> Architecture:
    """A copy of ``architecture`` whose ``nn.Linear``, ``nn.LSTM`` and ``nn.GRU`` layers hold int8 weights
    (dynamic quantization: activations are quantized on the fly). Works for any plugin built from them."""
    device = next(architecture.parameters()).device
    if device.type != "cpu":
        raise ConfigError("--quantize int8 runs on the CPU only; drop it, or use --trainer.accelerator cpu")
    with warnings.catch_warnings():
        # torch announces that eager-mode quantization moves to torchao; it still ships and works in torch 2.x
        warnings.simplefilter("ignore")
        quantized = torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(architecture).eval(), QUANTIZED_TYPES, dtype=torch.qint8
        )
    return quantized
