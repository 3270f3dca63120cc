"""A neural n-gram model: the previous ``context`` characters, embedded and concatenated, through an MLP."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tangrnn_core.api import Architecture, Batch, State, TokenSpec


class NeuralNGram(Architecture):
    """Feed-forward character n-gram model (Bengio et al. 2003): no recurrence, a fixed window.

    Args:
        tokens: vocabulary size and special ids (given by the core).
        context: how many previous characters the model sees.
        embedding_size: size of each character embedding.
        hidden_size: width of the hidden layer.
    """

    plugin_api = 1

    def __init__(self, tokens: TokenSpec, context: int = 4, embedding_size: int = 32, hidden_size: int = 64) -> None:
        super().__init__(tokens)
        self.context = context
        self.embedding = nn.Embedding(tokens.vocab_size, embedding_size, padding_idx=tokens.pad_id)
        self.hidden = nn.Linear(context * embedding_size, hidden_size)
        self.output = nn.Linear(hidden_size, tokens.vocab_size)

    def _windows(self, inputs: Tensor) -> Tensor:
        # left-pad so position t sees inputs[t - context + 1 .. t]
        padded = F.pad(inputs, (self.context - 1, 0), value=self.tokens.pad_id)
        return padded.unfold(1, self.context, 1)  # (batch, time, context)

    def _score(self, windows: Tensor) -> Tensor:
        embedded = self.embedding(windows).flatten(-2)
        return self.output(torch.tanh(self.hidden(embedded)))

    def forward(self, batch: Batch) -> Tensor:
        return self._score(self._windows(batch.inputs))

    def initial_state(self, batch_size: int, context: Batch | None = None) -> State:
        device = self.embedding.weight.device
        return torch.full((batch_size, self.context), self.tokens.pad_id, dtype=torch.long, device=device)

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        window = torch.cat([state[:, 1:], tokens[:, None]], dim=1)
        return self._score(window), window
