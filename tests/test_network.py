"""tangrnn_core/network.py: a network rebuilt from a checkpoint without drawing the weights it then loads."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tangrnn_core.api import TokenSpec
from tangrnn_core.errors import CheckpointError
from tangrnn_core.models import DEFAULT_MODEL, bundled_model
from tangrnn_core.network import _ParametersUndrawn, build_architecture, network_from_checkpoint

TOKENS = TokenSpec(vocab_size=40, line_end_ids=(4, 5))
OPTIONS = {"embedding_size": 8, "hidden_size": 12, "num_layers": 2}


def test_parameters_are_left_undrawn_and_buffers_are_initialised():
    class WithBuffer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.full((3,), 7.0))
            self.register_buffer("scale", torch.full((3,), 7.0), persistent=False)
            nn.init.normal_(self.weight)
            nn.init.normal_(self.scale)

    with _ParametersUndrawn():
        module = WithBuffer()
    assert torch.equal(module.weight.detach(), torch.full((3,), 7.0))  # the draw was skipped
    assert not torch.equal(module.scale, torch.full((3,), 7.0))  # a buffer a checkpoint may not hold is drawn


def test_undrawn_network_has_the_drawn_one_structure_and_draws_nothing():
    torch.manual_seed(0)
    drawn = build_architecture("lstm", OPTIONS, TOKENS)
    state = torch.random.get_rng_state()
    undrawn = build_architecture("lstm", OPTIONS, TOKENS, initialise=False)
    assert torch.equal(torch.random.get_rng_state(), state)  # no random number was drawn
    assert undrawn.output.weight is undrawn.embedding.weight  # tied weights stay tied
    assert {name: p.shape for name, p in undrawn.named_parameters()} == {
        name: p.shape for name, p in drawn.named_parameters()
    }


def test_the_bundled_model_is_rebuilt_with_exactly_its_stored_weights():
    bundled = bundled_model(DEFAULT_MODEL)
    checkpoint = torch.load(bundled.path, map_location="cpu", weights_only=True)
    net = network_from_checkpoint(checkpoint, bundled.path).net
    stored = {key[len("net.") :]: value for key, value in checkpoint["state_dict"].items()}
    for name, tensor in net.state_dict().items():
        assert torch.equal(tensor, stored[name].float()), name


def test_a_checkpoint_missing_a_weight_is_refused_rather_than_left_undrawn(tmp_path):
    bundled = bundled_model(DEFAULT_MODEL)
    checkpoint = torch.load(bundled.path, map_location="cpu", weights_only=True)
    missing = next(key for key in checkpoint["state_dict"] if key.startswith("net.rnn."))
    del checkpoint["state_dict"][missing]
    with pytest.raises(CheckpointError, match="do not fit"):
        network_from_checkpoint(checkpoint, tmp_path / "model.ckpt")
