"""Character language models over torch's fused recurrent modules (``nn.RNN``, ``nn.LSTM``, ``nn.GRU``).

Training runs the whole sequence through one fused call; there is no Python loop over time. Padding sits only
at the end of each row (the data module buckets by length), so a left-to-right network needs no packing: the
outputs at real positions never see a pad.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tangrnn_core.api import Architecture, Batch, State, TokenSpec

#: Up to this many sequences, decoding steps through per-layer cell calls instead of the fused module.
SMALL_BATCH = 32


class FusedRecurrentLM(Architecture):
    """Embedding, a stack of fused recurrent layers, and a linear output layer over the vocabulary.

    Args:
        tokens: vocabulary size and special ids (given by the core).
        embedding_size: size of the character embeddings.
        hidden_size: size of the recurrent state of each layer.
        num_layers: number of stacked recurrent layers.
        dropout: dropout between recurrent layers, and on the embeddings and before the output layer unless
            ``input_dropout`` / ``output_dropout`` say otherwise.
        tie_weights: share the embedding matrix with the output layer (fewer parameters, usually lower
            perplexity); when ``hidden_size`` differs from ``embedding_size`` a linear projection maps the
            recurrent output to the embedding size first.
        input_dropout: dropout on the embedded characters (``null``: ``dropout``).
        output_dropout: dropout on the last layer's outputs, before the output layer (``null``: ``dropout``).
        embedding_dropout: share of the vocabulary whose embedding rows are zeroed in each training batch, so
            that a character is hidden everywhere it occurs in the batch (AWD-LSTM's embedding dropout).
        weight_dropout: DropConnect on the hidden-to-hidden weights: one mask per batch on each layer's
            recurrent matrix (AWD-LSTM's weight drop). The fused kernel still runs, on the masked weights.
        variational: draw each dropout mask once per sequence and reuse it at every time step (locked or
            variational dropout, Gal and Ghahramani 2016), instead of anew at every position.
    """

    plugin_api = 1
    state_batch_dim = 1  # torch's recurrent modules keep states as (layers, batch, hidden)
    recurrent_module: ClassVar[type[nn.RNNBase]]
    cell: ClassVar  # the single-step function with the same weights (torch.lstm_cell, ...)
    functional: ClassVar  # the whole-sequence function nn.RNNBase calls (torch.lstm, ...)

    def __init__(
        self,
        tokens: TokenSpec,
        embedding_size: int = 256,
        hidden_size: int = 512,
        num_layers: int = 2,
        dropout: float = 0.1,
        tie_weights: bool = True,
        input_dropout: float | None = None,
        output_dropout: float | None = None,
        embedding_dropout: float = 0.0,
        weight_dropout: float = 0.0,
        variational: bool = False,
    ) -> None:
        super().__init__(tokens)
        if min(embedding_size, hidden_size, num_layers) < 1:
            raise ValueError("embedding_size, hidden_size and num_layers must be at least 1")
        input_dropout = dropout if input_dropout is None else input_dropout
        output_dropout = dropout if output_dropout is None else output_dropout
        rates = {
            "dropout": dropout,
            "input_dropout": input_dropout,
            "output_dropout": output_dropout,
            "embedding_dropout": embedding_dropout,
            "weight_dropout": weight_dropout,
        }
        for name, rate in rates.items():
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {rate}")
        self.dropout_rate = dropout
        self.input_dropout = input_dropout
        self.output_dropout = output_dropout
        self.embedding_dropout = embedding_dropout
        self.weight_dropout = weight_dropout
        self.variational = variational
        self.embedding = nn.Embedding(tokens.vocab_size, embedding_size, padding_idx=tokens.pad_id)
        self.rnn = self.recurrent_module(
            embedding_size,
            hidden_size,
            num_layers=num_layers,
            dropout=dropout if num_layers > 1 else 0.0,
            batch_first=True,
        )
        output_size = hidden_size
        self.projection: nn.Module = nn.Identity()
        if tie_weights and hidden_size != embedding_size:
            self.projection = nn.Linear(hidden_size, embedding_size, bias=False)
            output_size = embedding_size
        self.output = nn.Linear(output_size, tokens.vocab_size)
        if tie_weights:
            self.output.weight = self.embedding.weight

    def forward(self, batch: Batch) -> Tensor:
        return self._logits(self._hidden(batch))

    def features(self, batch: Batch) -> Tensor:
        """The input of the output layer, ``(batch, time, d)``: the last layer's outputs, projected if tied.

        Args:
            batch: the batch whose ``inputs`` are read.
        """
        return self.projection(self._drop(self._hidden(batch), self.output_dropout))

    def output_layer(self) -> nn.Linear | None:
        # A subclass that changes _logits changes what forward() computes after the layer: it opts out. So does
        # a quantized copy (``tangrnn generate --quantize int8``): no float Linear to chunk, and it never trains.
        if type(self)._logits is not FusedRecurrentLM._logits or not isinstance(self.output, nn.Linear):
            return None
        return self.output

    def _hidden(self, batch: Batch) -> Tensor:
        inputs = self._autocast(self._drop(self._embed(batch.inputs), self.input_dropout))
        if self.training and (self.weight_dropout > 0 or (self.variational and self.dropout_rate > 0)):
            return self._layer_by_layer(inputs)
        hidden, _ = self.rnn(inputs)
        return hidden

    def _embed(self, inputs: Tensor) -> Tensor:
        weight = self.embedding.weight
        if self.training and self.embedding_dropout > 0:
            keep = 1.0 - self.embedding_dropout
            weight = weight * weight.new_empty(weight.shape[0], 1).bernoulli_(keep).div_(keep)
        return F.embedding(inputs, weight, self.embedding.padding_idx)

    def _drop(self, inputs: Tensor, rate: float) -> Tensor:
        if not self.training or rate == 0:
            return inputs
        if not self.variational or inputs.dim() != 3:
            return F.dropout(inputs, rate, training=True)
        keep = 1.0 - rate
        mask = inputs.new_empty(inputs.shape[0], 1, inputs.shape[2]).bernoulli_(keep).div_(keep)
        return inputs * mask

    def _layer_by_layer(self, inputs: Tensor) -> Tensor:
        """The stack run one fused layer at a time: room for DropConnect on each recurrent matrix and for a
        dropout mask of our own between layers; the weights are the module's, so decoding is unchanged."""
        batch_size, hidden_size = inputs.shape[0], self.rnn.hidden_size
        for layer in range(self.rnn.num_layers):
            weight_ih, weight_hh, bias_ih, bias_hh = (
                getattr(self.rnn, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            )
            if self.weight_dropout > 0:
                weight_hh = F.dropout(weight_hh, self.weight_dropout, training=True)
            zeros = inputs.new_zeros(1, batch_size, hidden_size)
            state = (zeros, zeros) if self.recurrent_module is nn.LSTM else zeros
            # torch.lstm / torch.gru / torch.rnn_tanh are what nn.LSTM & co. call: the same fused kernels.
            inputs = self.functional(
                inputs, state, [weight_ih, weight_hh, bias_ih, bias_hh], True, 1, 0.0, True, False, True
            )[0]
            if layer < self.rnn.num_layers - 1:
                inputs = self._drop(inputs, self.dropout_rate)
        return inputs

    def initial_state(self, batch_size: int, context: Batch | None = None) -> State:
        return None  # torch's modules start from zeros when given no state

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        fused_only = not hasattr(self.rnn, "weight_ih_l0")  # e.g. int8-quantized for decoding
        if (
            fused_only
            or tokens.shape[0] > SMALL_BATCH
            or state is None
            or torch.is_autocast_enabled(tokens.device.type)
        ):
            return self.prefill(tokens.unsqueeze(1), state)
        # For a few sequences one step is dominated by the fused module's per-call set-up, which costs more than
        # the same arithmetic as one cell call per layer (bench/generate_throughput.py).
        inputs = self.embedding(tokens)
        hidden = state[0] if isinstance(state, tuple) else state
        layers = []
        for layer in range(self.rnn.num_layers):
            weights = [
                getattr(self.rnn, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            ]
            if isinstance(state, tuple):
                layers.append(self.cell(inputs, (state[0][layer], state[1][layer]), *weights))
                inputs = layers[-1][0]
            else:
                layers.append(self.cell(inputs, hidden[layer], *weights))
                inputs = layers[-1]
        if isinstance(state, tuple):
            state = (torch.stack([h for h, _ in layers]), torch.stack([c for _, c in layers]))
        else:
            state = torch.stack(layers)
        return self._logits(inputs), state

    def prefill(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        hidden, state = self.rnn(self._autocast(self.embedding(tokens)), state)
        return self._logits(hidden[:, -1]), state

    @staticmethod
    def _autocast(inputs: Tensor) -> Tensor:
        # Under CPU autocast the fused kernels get bf16 weights but an fp32 embedding output, a mix oneDNN's
        # LSTM refuses ("could not create a primitive descriptor"); give them the autocast dtype.
        device = inputs.device.type
        if torch.is_autocast_enabled(device):
            return inputs.to(torch.get_autocast_dtype(device))
        return inputs

    def _logits(self, hidden: Tensor) -> Tensor:
        return self.output(self.projection(self._drop(hidden, self.output_dropout)))


class RNN(FusedRecurrentLM):
    __doc__ = (FusedRecurrentLM.__doc__ or "").replace(
        "Embedding, a stack of fused recurrent layers", "Vanilla (Elman, tanh) RNN: embedding, stacked tanh layers", 1
    )
    recurrent_module = nn.RNN
    cell = staticmethod(torch.rnn_tanh_cell)
    functional = staticmethod(torch.rnn_tanh)


class LSTM(FusedRecurrentLM):
    __doc__ = (FusedRecurrentLM.__doc__ or "").replace(
        "Embedding, a stack of fused recurrent layers", "LSTM: embedding, stacked LSTM layers (oneDNN-fused on CPU)", 1
    )
    recurrent_module = nn.LSTM
    cell = staticmethod(torch.lstm_cell)
    functional = staticmethod(torch.lstm)


class GRU(FusedRecurrentLM):
    __doc__ = (FusedRecurrentLM.__doc__ or "").replace(
        "Embedding, a stack of fused recurrent layers", "GRU: embedding, stacked GRU layers", 1
    )
    recurrent_module = nn.GRU
    cell = staticmethod(torch.gru_cell)
    functional = staticmethod(torch.gru)
