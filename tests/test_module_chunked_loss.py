"""PoetryModel's chunked loss (model.loss_chunk_size): the same training as with full logits, for the networks
that expose their output layer, and no change for those that do not."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import run_tangrnn, tiny_config
from torch import Tensor, nn

from tangrnn_core.api import INFILL, Architecture, Batch, State, TokenSpec, opted_in_output_layer
from tangrnn_core.errors import ConfigError
from tangrnn_core.module import PoetryModel
from tangrnn_recurrent import LSTM as LSTMNet

VOCAB = 30
# Hidden 12 against embeddings of 8: the tied output layer sits behind a projection, the reference layout.
LSTM = {"embedding_size": 8, "hidden_size": 12, "num_layers": 2, "dropout": 0.2}


def _model(architecture: str, loss_chunk_size: int, options: dict | None = None) -> PoetryModel:
    torch.manual_seed(0)
    return PoetryModel(
        vocab_size=VOCAB,
        line_end_ids=[5, 6],
        architecture=architecture,
        architecture_options=options,
        loss_chunk_size=loss_chunk_size,
    )


def _batches(count: int = 3, rows: int = 5, width: int = 11) -> list[Batch]:
    """Batches with padding at the end of the rows, as the data module makes them."""
    generator = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(count):
        lengths = torch.randint(3, width + 1, (rows,), generator=generator)
        inputs = torch.randint(7, VOCAB, (rows, width), generator=generator)
        inputs[:, 0] = 2
        targets = torch.cat([inputs[:, 1:], torch.zeros(rows, 1, dtype=torch.long)], dim=1)
        for row, length in enumerate(lengths.tolist()):
            targets[row, length - 1] = 3
            targets[row, length:] = 0
            inputs[row, length:] = 0
        batches.append(Batch(inputs, targets, lengths))
    return batches


def _train(model: PoetryModel, batches: list[Batch]) -> list[float]:
    """A few AdamW steps on the mean loss, as training_step computes it; returns the losses."""
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    torch.manual_seed(2)  # the same dropout masks (and masked characters) on both sides
    losses = []
    for batch in batches:
        summed, count = model._summed_loss(batch)
        loss = summed / count
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def _assert_same_training(architecture: str, options: dict | None, chunk_size: int) -> None:
    full, chunked = _model(architecture, 0, options), _model(architecture, chunk_size, options)
    batches = _batches()
    full_losses, chunked_losses = _train(full, batches), _train(chunked, batches)
    assert full_losses == pytest.approx(chunked_losses, rel=1e-5)
    assert len(set(full_losses)) == len(full_losses)  # the weights did move
    for (name, expected), actual in zip(full.named_parameters(), chunked.parameters()):
        torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize("chunk_size", [7, 16, 1000])
def test_lstm_trains_the_same_with_chunks_as_with_full_logits(chunk_size):
    _assert_same_training("lstm", LSTM, chunk_size)


@pytest.mark.parametrize("architecture", ["rnn", "gru"])
def test_rnn_and_gru_untied_train_the_same_with_chunks(architecture):
    _assert_same_training(architecture, {**LSTM, "tie_weights": False}, 9)


def test_the_chunked_loss_replaces_forward_when_the_network_opts_in(monkeypatch):
    model = _model("lstm", 8, LSTM)
    monkeypatch.setattr(model.net, "forward", lambda batch: pytest.fail("forward() was called"))
    summed, count = model._summed_loss(_batches(1)[0])
    assert summed.requires_grad and count > 0


def test_evaluation_under_no_grad_gives_the_same_loss():
    full, chunked = _model("lstm", 0, LSTM).eval(), _model("lstm", 5, LSTM).eval()
    with torch.no_grad():
        for batch in _batches():
            expected, count = full._summed_loss(batch)
            actual, chunked_count = chunked._summed_loss(batch)
            assert not actual.requires_grad
            assert count == chunked_count
            torch.testing.assert_close(actual, expected, rtol=1e-6, atol=1e-4)


# -- networks that do not opt in, and masked ones --------------------------------------------------------------


class PlainNet(Architecture):
    """A network that predates the chunked loss: it only has forward() (and a step).

    Args:
        tokens: vocabulary size and special ids.
        hidden_size: size of the state.
    """

    plugin_api = 1

    def __init__(self, tokens: TokenSpec, hidden_size: int = 8) -> None:
        super().__init__(tokens)
        self.embedding = nn.Embedding(tokens.vocab_size, hidden_size)
        self.rnn = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.output = nn.Linear(hidden_size, tokens.vocab_size)

    def forward(self, batch: Batch) -> Tensor:
        return self.output(self.rnn(self.embedding(batch.inputs))[0])

    def initial_state(self, batch_size: int, context: Batch | None = None) -> State:
        return None

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        hidden, state = self.rnn(self.embedding(tokens).unsqueeze(1), state)
        return self.output(hidden[:, 0]), state


class MaskedNet(Architecture):
    """A tiny infill network that opts in: a bidirectional GRU, then the output layer.

    Args:
        tokens: vocabulary size and special ids.
        hidden_size: size of each direction's state.
    """

    plugin_api = 1
    capabilities = frozenset({INFILL})

    def __init__(self, tokens: TokenSpec, hidden_size: int = 6) -> None:
        super().__init__(tokens)
        self.embedding = nn.Embedding(tokens.vocab_size, hidden_size)
        self.rnn = nn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(0.1)
        self.output = nn.Linear(2 * hidden_size, tokens.vocab_size)

    def features(self, batch: Batch) -> Tensor:
        return self.dropout(self.rnn(self.embedding(batch.inputs))[0])

    def output_layer(self) -> nn.Linear | None:
        return self.output

    def forward(self, batch: Batch) -> Tensor:
        return self.output(self.features(batch))


class DoubledLogits(LSTMNet):
    """A subclass of the built-in LSTM written before the chunked loss: its forward() edits the logits."""

    def forward(self, batch: Batch) -> Tensor:
        return super().forward(batch) * 2


class DoubledLogitsOptingIn(DoubledLogits):
    """The same, declaring the pair again: its output layer holds the factor of 2."""

    def __init__(self, tokens: TokenSpec, **options) -> None:
        super().__init__(tokens, **options)
        self.doubled = nn.Linear(self.output.in_features, tokens.vocab_size)

    def forward(self, batch: Batch) -> Tensor:
        return self.doubled(self.features(batch))

    def output_layer(self) -> nn.Linear | None:
        return self.doubled


def test_a_subclass_that_overrides_forward_trains_through_it():
    """Overriding forward() below the class that opted in opts out again: the core must call that forward()."""
    model = PoetryModel(
        vocab_size=VOCAB, line_end_ids=[5, 6], architecture=f"{__name__}.DoubledLogits", architecture_options=LSTM
    )
    assert model.loss_chunk_size > 0 and model.net.output_layer() is model.net.output
    assert opted_in_output_layer(model.net) is None
    model.eval()
    batch = _batches(1)[0]
    with torch.no_grad():
        summed, _ = model._summed_loss(batch)
        logits = model.net(batch)
    expected = F.cross_entropy(logits.reshape(-1, VOCAB), batch.targets.reshape(-1), ignore_index=0, reduction="sum")
    torch.testing.assert_close(summed, expected)


def test_a_subclass_that_overrides_forward_and_declares_the_pair_opts_in():
    net = DoubledLogitsOptingIn(TokenSpec(vocab_size=VOCAB), **LSTM)
    assert opted_in_output_layer(net) is net.doubled
    assert opted_in_output_layer(PlainNet(TokenSpec(vocab_size=VOCAB))) is None


def test_a_network_that_does_not_opt_in_still_trains_with_the_option_set():
    path = f"{__name__}.PlainNet"
    assert _model(path, 16).net.output_layer() is None
    _assert_same_training(path, None, 16)


def test_a_masked_network_trains_the_same_with_chunks():
    """Infill targets are pad_id wherever the character is not hidden: those rows are skipped, not scored."""
    path = f"{__name__}.MaskedNet"
    assert _model(path, 4).masked
    _assert_same_training(path, None, 4)
    full, chunked = _model(path, 0).eval(), _model(path, 4).eval()
    with torch.no_grad():
        for index, batch in enumerate(_batches()):  # seeded masks, as validation draws them
            expected, count = full._summed_loss(batch, seed=index)
            actual, chunked_count = chunked._summed_loss(batch, seed=index)
            assert count == chunked_count and count < (batch.targets != 0).sum()
            torch.testing.assert_close(actual, expected, rtol=1e-6, atol=1e-4)


def test_a_negative_chunk_size_is_a_config_error():
    with pytest.raises(ConfigError, match="loss_chunk_size"):
        _model("lstm", -1, LSTM)


def test_the_chunk_size_is_saved_with_the_hyperparameters():
    assert _model("lstm", 64, LSTM).hparams.loss_chunk_size == 64


# -- through the command -------------------------------------------------------------------------------------


def test_fit_with_a_loss_chunk_size_through_the_command(tmp_path, small_corpus):
    config = tiny_config(tmp_path, small_corpus, max_steps=3, val_check_interval=3)
    result = run_tangrnn("fit", "--config", str(config), "--model.loss_chunk_size", "64")
    assert result.returncode == 0, result.stdout + result.stderr
    last = sorted((tmp_path / "runs").glob("lightning_logs/version_*/checkpoints/last.ckpt"))
    assert len(last) == 1, list((tmp_path / "runs").rglob("*.ckpt"))
    checkpoint = torch.load(last[0], map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == 3
    assert checkpoint["hyper_parameters"]["loss_chunk_size"] == 64
