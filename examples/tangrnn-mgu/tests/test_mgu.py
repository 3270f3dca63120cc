"""The MGU plugin: tangrnn's conformance kit, and one step of the MGU equations computed by hand."""

from __future__ import annotations

import torch
from tangrnn_mgu import MGU, MGULayer

from tangrnn_core.api import TokenSpec
from tangrnn_core.testing import check_architecture

TINY = {"embedding_size": 8, "hidden_size": 12, "num_layers": 2, "dropout": 0.2}


def test_mgu_follows_the_plugin_api(tmp_path):
    check_architecture(MGU, options=TINY, tmp_path=tmp_path)


def test_mgu_untied_single_layer_follows_the_plugin_api(tmp_path):
    options = {"embedding_size": 8, "hidden_size": 8, "num_layers": 1, "tie_weights": False}
    check_architecture("tangrnn_mgu.MGU", options=options, steps=2, tmp_path=tmp_path)


def test_one_step_follows_the_mgu_equations():
    torch.manual_seed(0)
    layer = MGULayer(input_size=3, hidden_size=4)
    x, h = torch.randn(2, 3), torch.randn(2, 4)
    w_f, w_h = layer.input_weights.weight[:4], layer.input_weights.weight[4:]
    b_f, b_h = layer.input_weights.bias[:4], layer.input_weights.bias[4:]
    u_f, u_h = layer.forget_recurrent.weight, layer.candidate_recurrent.weight
    f = torch.sigmoid(x @ w_f.T + h @ u_f.T + b_f)
    candidate = torch.tanh(x @ w_h.T + (f * h) @ u_h.T + b_h)
    expected = (1 - f) * h + f * candidate
    torch.testing.assert_close(layer.cell(layer.project(x), h), expected)
    # the layer over a sequence is the cell applied step by step
    sequence = torch.randn(2, 5, 3)
    outputs, last = layer(sequence, h)
    state = h
    for position in range(5):
        state = layer.cell(layer.project(sequence[:, position]), state)
        torch.testing.assert_close(outputs[:, position], state)
    torch.testing.assert_close(last, state)


def test_the_state_is_layers_by_batch_by_hidden():
    net = MGU(TokenSpec(vocab_size=20), embedding_size=4, hidden_size=6, num_layers=3)
    assert net.initial_state(5).shape == (3, 5, 6)
    assert MGU.state_batch_dim == 1
