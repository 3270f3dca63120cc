"""The built-in recurrent plugins (RNN, LSTM, GRU): shapes, the decoder interface, tied weights, autocast."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tangrnn_core.api import Batch, TokenSpec
from tangrnn_recurrent import GRU, LSTM, RNN
from tangrnn_recurrent.fused import FusedRecurrentLM

VOCAB = 23
TOKENS = TokenSpec(vocab_size=VOCAB, line_end_ids=(4, 5))
CLASSES = [RNN, LSTM, GRU]
TORCH_MODULES = {RNN: nn.RNN, LSTM: nn.LSTM, GRU: nn.GRU}


def make(cls, **options) -> FusedRecurrentLM:
    torch.manual_seed(0)
    defaults = dict(embedding_size=8, hidden_size=12, num_layers=2, dropout=0.3)
    return cls(TOKENS, **{**defaults, **options})


def make_batch(batch_size: int = 3, time: int = 7, seed: int = 1) -> Batch:
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randint(4, VOCAB, (batch_size, time), generator=generator)
    inputs[:, 0] = TOKENS.bos_id
    targets = torch.cat([inputs[:, 1:], torch.full((batch_size, 1), TOKENS.eos_id)], dim=1)
    return Batch(inputs=inputs, targets=targets, lengths=torch.full((batch_size,), time))


def state_tensors(state) -> list[torch.Tensor]:
    if isinstance(state, torch.Tensor):
        return [state]
    return [tensor for part in state for tensor in state_tensors(part)]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_forward_gives_logits_for_every_position(cls):
    net = make(cls)
    batch = make_batch(batch_size=3, time=7)
    logits = net(batch)
    assert logits.shape == (3, 7, VOCAB)
    assert logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    assert isinstance(net.rnn, TORCH_MODULES[cls])


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_step_by_step_equals_forward(cls):
    net = make(cls).eval()  # dropout 0.3 is on in training, off here
    batch = make_batch(batch_size=3, time=7)
    full = net(batch)
    state = net.initial_state(3)
    for position in range(batch.inputs.shape[1]):
        logits, state = net.step(batch.inputs[:, position], state)
        assert logits.shape == (3, VOCAB)
        torch.testing.assert_close(logits, full[:, position], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_training_mode_applies_dropout(cls):
    # The eval-mode equality above is meaningful only if dropout is really active in training mode.
    net = make(cls).train()
    batch = make_batch()
    torch.manual_seed(1)
    first = net(batch)
    torch.manual_seed(2)
    second = net(batch)
    assert not torch.allclose(first, second)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_prefill_equals_repeated_step(cls):
    net = make(cls).eval()
    tokens = make_batch(batch_size=4, time=6).inputs
    logits, state = net.prefill(tokens, net.initial_state(4))
    stepped_state = net.initial_state(4)
    for position in range(tokens.shape[1]):
        stepped_logits, stepped_state = net.step(tokens[:, position], stepped_state)
    torch.testing.assert_close(logits, stepped_logits, atol=1e-5, rtol=1e-5)
    for a, b in zip(state_tensors(state), state_tensors(stepped_state), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_base_class_prefill_agrees_with_the_fused_override(cls):
    net = make(cls).eval()
    tokens = make_batch(batch_size=2, time=5).inputs
    fused, _ = net.prefill(tokens, net.initial_state(2))
    generic, _ = super(FusedRecurrentLM, net).prefill(tokens, net.initial_state(2))
    torch.testing.assert_close(fused, generic, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_reorder_state_selects_rows_along_dim_1(cls):
    assert cls.state_batch_dim == 1
    net = make(cls).eval()
    tokens = make_batch(batch_size=4, time=5, seed=3).inputs
    _, state = net.prefill(tokens[:, :-1], net.initial_state(4))
    index = torch.tensor([2, 0, 2])
    reordered = net.reorder_state(state, index)
    for original, picked in zip(state_tensors(state), state_tensors(reordered), strict=True):
        assert picked.shape[1] == 3
        torch.testing.assert_close(picked, original[:, index])
    # Continuing from the reordered state gives what the selected rows would have given.
    logits, _ = net.step(tokens[:, -1], state)
    picked_logits, _ = net.step(tokens[index, -1], reordered)
    torch.testing.assert_close(picked_logits, logits[index], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_tied_weights_share_storage_without_projection(cls):
    net = make(cls, embedding_size=10, hidden_size=10, tie_weights=True)
    assert net.output.weight is net.embedding.weight
    assert net.output.weight.data_ptr() == net.embedding.weight.data_ptr()
    assert isinstance(net.projection, nn.Identity)
    assert net(make_batch()).shape == (3, 7, VOCAB)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_tied_weights_with_projection_when_sizes_differ(cls):
    net = make(cls, embedding_size=8, hidden_size=12, tie_weights=True)
    assert net.output.weight.data_ptr() == net.embedding.weight.data_ptr()
    assert isinstance(net.projection, nn.Linear)
    assert tuple(net.projection.weight.shape) == (8, 12)
    # one optimiser step moves both, since they are one tensor
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    net(make_batch()).sum().backward()
    optimizer.step()
    assert torch.equal(net.output.weight, net.embedding.weight)
    assert net(make_batch()).shape == (3, 7, VOCAB)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_untied_weights_are_separate(cls):
    net = make(cls, embedding_size=8, hidden_size=12, tie_weights=False)
    assert net.output.weight.data_ptr() != net.embedding.weight.data_ptr()
    assert isinstance(net.projection, nn.Identity)
    assert net.output.in_features == 12
    assert net(make_batch()).shape == (3, 7, VOCAB)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("sizes", [(8, 8), (8, 12)], ids=["same-size", "projected"])
def test_parity_with_a_plain_torch_module(cls, sizes):
    embedding_size, hidden_size = sizes
    net = make(cls, embedding_size=embedding_size, hidden_size=hidden_size, tie_weights=True).eval()
    plain = TORCH_MODULES[cls](embedding_size, hidden_size, num_layers=2, batch_first=True)
    plain.load_state_dict(net.rnn.state_dict())
    plain.eval()
    batch = make_batch(batch_size=2, time=9, seed=5)
    with torch.no_grad():
        embedded = net.embedding.weight[batch.inputs]
        hidden, _ = plain(embedded)
        if hidden_size != embedding_size:
            hidden = hidden @ net.projection.weight.T
        expected = hidden @ net.embedding.weight.T + net.output.bias
        actual = net(batch)
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_forward_and_backward_under_cpu_bf16_autocast(cls):
    # oneDNN's LSTM refused fp32 input with bf16 weights ("could not create a primitive descriptor");
    # the plugin casts its input to the autocast dtype.
    net = make(cls).train()
    batch = make_batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = net(batch)
        loss = nn.functional.cross_entropy(logits.float().reshape(-1, VOCAB), batch.targets.reshape(-1))
    assert logits.shape == (3, 7, VOCAB)
    assert torch.isfinite(logits.float()).all()
    loss.backward()
    assert net.embedding.weight.grad is not None and torch.isfinite(net.embedding.weight.grad).all()

    net.eval()
    with torch.no_grad():
        reference = net(batch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = net(batch).float()
            stepped, state = net.step(batch.inputs[:, 0], net.initial_state(3))
            stepped, state = net.prefill(batch.inputs[:, 1:], state)
    assert (low - reference).abs().max() < 0.1
    assert (stepped.float() - reference[:, -1]).abs().max() < 0.1


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    "tie_weights, hidden_size", [(True, 12), (True, 8), (False, 12)], ids=["projected", "tied", "untied"]
)
def test_forward_is_the_output_layer_over_the_features(cls, tie_weights, hidden_size):
    """The opt-in of the chunked loss: forward(batch) == output_layer()(features(batch)), dropout included."""
    net = make(cls, tie_weights=tie_weights, hidden_size=hidden_size).train()
    batch = make_batch()
    assert net.output_layer() is net.output
    torch.manual_seed(5)
    expected = net(batch)
    torch.manual_seed(5)  # the same dropout masks
    features = net.features(batch)
    assert features.shape == (3, 7, net.output.in_features)
    torch.testing.assert_close(net.output_layer()(features), expected, rtol=0, atol=0)


def test_a_subclass_that_changes_the_logits_does_not_opt_in():
    class Tempered(LSTM):
        def _logits(self, hidden):
            return super()._logits(hidden) / 2

    net = Tempered(TOKENS, embedding_size=8, hidden_size=8, num_layers=1)
    assert net.output_layer() is None
    assert make(LSTM).output_layer() is not None


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_a_quantized_copy_does_not_opt_in(cls):
    from tangrnn_core.decoding.quantize import int8_for_decoding

    assert int8_for_decoding(make(cls)).output_layer() is None


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    "options",
    [
        {"dropout": 1.5},
        {"dropout": 1.0},
        {"dropout": -0.1},
        {"hidden_size": 0},
        {"embedding_size": 0},
        {"num_layers": 0},
    ],
    ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()),
)
def test_invalid_options_raise_value_error(cls, options):
    with pytest.raises(ValueError):
        cls(TOKENS, **options)


def test_plugin_api_and_capabilities():
    for cls in CLASSES:
        assert cls.plugin_api == 1
        assert "causal" in cls.capabilities
