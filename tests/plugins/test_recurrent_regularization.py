"""AWD-LSTM's regularisation in the fused plugins: embedding, locked and weight dropout, and what they leave alone."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tangrnn_recurrent import GRU, LSTM, RNN
from tests.plugins.test_recurrent import CLASSES, TOKENS, VOCAB, make, make_batch

AWD = dict(
    dropout=0.3, input_dropout=0.2, output_dropout=0.4, embedding_dropout=0.1, weight_dropout=0.5, variational=True
)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_layer_by_layer_equals_the_fused_stack_without_dropout(cls):
    # The path that makes room for DropConnect runs the same weights through the same kernels.
    net = make(cls, dropout=0.0).train()
    batch = make_batch()
    fused = net._hidden(batch)
    layered = net._layer_by_layer(net._embed(batch.inputs))
    torch.testing.assert_close(layered, fused, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_evaluation_ignores_every_dropout(cls):
    plain = make(cls, dropout=0.0).eval()
    regularised = make(cls, **AWD).eval()  # same seed, same weights
    regularised.load_state_dict(plain.state_dict())
    batch = make_batch()
    with torch.no_grad():
        torch.testing.assert_close(regularised(batch), plain(batch), rtol=0, atol=0)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_training_with_awd_options_differs_and_backpropagates(cls):
    net = make(cls, **AWD).train()
    batch = make_batch()
    torch.manual_seed(1)
    first = net(batch)
    torch.manual_seed(2)
    second = net(batch)
    assert not torch.equal(first, second)
    before = net.rnn.weight_hh_l0.detach().clone()
    loss = nn.functional.cross_entropy(first.reshape(-1, VOCAB), batch.targets.reshape(-1))
    loss.backward()
    # DropConnect masks a copy: the module's own matrix is untouched and still learns.
    assert torch.equal(net.rnn.weight_hh_l0.detach(), before)
    assert net.rnn.weight_hh_l0.grad is not None and net.rnn.weight_hh_l0.grad.abs().sum() > 0


def test_locked_dropout_reuses_one_mask_across_time():
    net = make(LSTM, dropout=0.5, variational=True).train()
    ones = torch.ones(4, 9, 6)
    dropped = net._drop(ones, 0.5)
    assert torch.equal(dropped, dropped[:, :1].expand_as(dropped))  # the same at every position
    assert set(dropped.unique().tolist()) <= {0.0, 2.0}
    free = make(LSTM, dropout=0.5, variational=False).train()._drop(ones, 0.5)
    assert not torch.equal(free, free[:, :1].expand_as(free))


def test_embedding_dropout_hides_a_character_everywhere_in_the_batch():
    net = make(LSTM, embedding_dropout=0.5).train()
    inputs = torch.tensor([[5, 6, 5, 7, 6, 5]] * 3)
    torch.manual_seed(3)
    embedded = net._embed(inputs)
    zero_rows = embedded.abs().sum(-1) == 0
    for character in (5, 6, 7):
        where = inputs == character
        assert zero_rows[where].all() or not zero_rows[where].any()  # all occurrences or none
    kept = ~zero_rows
    torch.testing.assert_close(embedded[kept], net.embedding(inputs)[kept] * 2)


def test_the_output_layer_keeps_the_undropped_tied_embedding():
    net = make(LSTM, embedding_dropout=0.9, hidden_size=8).train()
    net(make_batch())
    assert net.output.weight is net.embedding.weight
    assert net.embedding.weight.abs().sum() > 0


@pytest.mark.parametrize("cls", [RNN, LSTM, GRU], ids=lambda c: c.__name__)
def test_awd_options_train_under_cpu_bf16_autocast(cls):
    net = make(cls, **AWD).train()
    batch = make_batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = net(batch)
        loss = nn.functional.cross_entropy(logits.float().reshape(-1, VOCAB), batch.targets.reshape(-1))
    loss.backward()
    assert torch.isfinite(net.rnn.weight_hh_l1.grad).all()


@pytest.mark.parametrize(
    "options",
    [{"input_dropout": 1.0}, {"output_dropout": -0.1}, {"embedding_dropout": 1.0}, {"weight_dropout": 1.2}],
    ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()),
)
def test_invalid_rates_raise_value_error(options):
    with pytest.raises(ValueError, match=next(iter(options))):
        LSTM(TOKENS, **options)
