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
        hidden, _ = self.rnn(self._autocast(self.dropout(self.embedding(batch.inputs))))
        return self._logits(hidden)

    def initial_state(self, batch_size: int, context: Batch | None = None) -> State:
        return None  # torch's modules start from zeros when given no state

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        logits, state = self.prefill(tokens.unsqueeze(1), state)
        return logits, state

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


class LSTM(FusedRecurrentLM):
    __doc__ = (FusedRecurrentLM.__doc__ or "").replace(
        "Embedding, a stack of fused recurrent layers", "LSTM: embedding, stacked LSTM layers (oneDNN-fused on CPU)", 1
    )
    recurrent_module = nn.LSTM


class GRU(FusedRecurrentLM):
    __doc__ = (FusedRecurrentLM.__doc__ or "").replace(
        "Embedding, a stack of fused recurrent layers", "GRU: embedding, stacked GRU layers", 1
    )
    recurrent_module = nn.GRU
