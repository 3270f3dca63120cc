"""Character language models over torch's fused recurrent modules (``nn.RNN``, ``nn.LSTM``, ``nn.GRU``).

Training runs the whole sequence through one fused call; there is no Python loop over time. Padding sits only
at the end of each row (the data module buckets by length), so a left-to-right network needs no packing: the
outputs at real positions never see a pad.
"""

from __future__ import annotations

from typing import ClassVar

import torch
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
        dropout: dropout on the embeddings, between recurrent layers and before the output layer.
        tie_weights: share the embedding matrix with the output layer (fewer parameters, usually lower
            perplexity); when ``hidden_size`` differs from ``embedding_size`` a linear projection maps the
            recurrent output to the embedding size first.
    """

    plugin_api = 1
    state_batch_dim = 1  # torch's recurrent modules keep states as (layers, batch, hidden)
    recurrent_module: ClassVar[type[nn.RNNBase]]
    cell: ClassVar  # the single-step function with the same weights (torch.lstm_cell, ...)

    def __init__(
        self,
        tokens: TokenSpec,
        embedding_size: int = 256,
        hidden_size: int = 512,
        num_layers: int = 2,
        dropout: float = 0.1,
        tie_weights: bool = True,
    ) -> None:
        super().__init__(tokens)
        if min(embedding_size, hidden_size, num_layers) < 1:
            raise ValueError("embedding_size, hidden_size and num_layers must be at least 1")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.embedding = nn.Embedding(tokens.vocab_size, embedding_size, padding_idx=tokens.pad_id)
        self.dropout = nn.Dropout(dropout)
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
        return self.projection(self.dropout(self._hidden(batch)))

    def output_layer(self) -> nn.Linear | None:
        # A subclass that changes _logits changes what forward() computes after the layer: it opts out. So does
        # a quantized copy (``tangrnn generate --quantize int8``): no float Linear to chunk, and it never trains.
        if type(self)._logits is not FusedRecurrentLM._logits or not isinstance(self.output, nn.Linear):
            return None
        return self.output

    def _hidden(self, batch: Batch) -> Tensor:
        hidden, _ = self.rnn(self._autocast(self.dropout(self.embedding(batch.inputs))))
        return hidden

    def initial_state(self, batch_size: int, context: Batch | None = None) -> State:
        return None  # torch's modules start from zeros when given no state

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        fused_only = not hasattr(self.rnn, "weight_ih_l0")  # e.g. int8-quantized for decoding
        if fused_only or tokens.shape[0] > SMALL_BATCH or state is None or torch.is_autocast_enabled(tokens.device.type):
            return self.prefill(tokens.unsqueeze(1), state)
        # For a few sequences one step is dominated by the fused module's per-call set-up (3.7 ms for a 2x512
        # LSTM at batch 1 on CPU, against 1.5 ms for the same arithmetic as one cell call per layer).
        inputs = self.embedding(tokens)
        hidden = state[0] if isinstance(state, tuple) else state
        layers = []
        for layer in range(self.rnn.num_layers):
            weights = [getattr(self.rnn, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
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
        return self.output(self.projection(self.dropout(hidden)))


class RNN(FusedRecurrentLM):
    __doc__ = (FusedRecurrentLM.__doc__ or "").replace(
        "Embedding, a stack of fused recurrent layers", "Vanilla (Elman, tanh) RNN: embedding, stacked tanh layers", 1
    )
    recurrent_module = nn.RNN
    cell = staticmethod(torch.rnn_tanh_cell)


class LSTM(FusedRecurrentLM):
    __doc__ = (FusedRecurrentLM.__doc__ or "").replace(
        "Embedding, a stack of fused recurrent layers", "LSTM: embedding, stacked LSTM layers (oneDNN-fused on CPU)", 1
    )
    recurrent_module = nn.LSTM
    cell = staticmethod(torch.lstm_cell)


class GRU(FusedRecurrentLM):
    __doc__ = (FusedRecurrentLM.__doc__ or "").replace(
        "Embedding, a stack of fused recurrent layers", "GRU: embedding, stacked GRU layers", 1
    )
    recurrent_module = nn.GRU
    cell = staticmethod(torch.gru_cell)
