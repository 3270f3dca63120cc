"""`--quantize auto`: the weight format chosen by hardware, a pure function tested with the capability faked."""

from __future__ import annotations

import pytest
import torch

from tangrnn_core.decoding import quantize
from tangrnn_core.decoding.quantize import choose_weights, resolve_weights


@pytest.mark.parametrize(
    "device, int8_kernels, bf16_units, expected",
    [
        ("cpu", True, False, "int8"),  # AVX2: int8 is fastest
        ("cpu", True, True, "int8"),  # AVX-512 BF16: int8 still writes the most poems a second
        ("cpu", False, False, "none"),  # no fbgemm kernels (not x86 with AVX2)
        ("cuda", False, True, "bf16"),
        ("cuda", False, False, "none"),
        ("mps", False, False, "none"),
    ],
)
def test_choice_by_capability(device, int8_kernels, bf16_units, expected):
    choice, reason = choose_weights(device, int8_kernels, bf16_units)
    assert choice == expected and reason


def test_auto_resolves_for_the_network_device(monkeypatch):
    net = torch.nn.Linear(2, 2)
    monkeypatch.setattr(quantize, "has_int8_kernels", lambda: False)
    assert resolve_weights(net, "auto") == "none"
    monkeypatch.setattr(quantize, "has_int8_kernels", lambda: True)
    assert resolve_weights(net, "auto") == "int8"
    assert resolve_weights(net, "bf16") == "bf16"  # an explicit choice always wins
