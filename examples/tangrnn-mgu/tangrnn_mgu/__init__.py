"""The Minimal Gated Unit (Zhou, Wu, Zhang and Zhou, "Minimal Gated Unit for Recurrent Neural Networks", 2016)
as a tangrnn architecture plugin.

An MGU layer has a single gate, the forget gate, which also decides how much of the candidate enters:

    f_t = sigmoid(W_f x_t + U_f h_{t-1} + b_f)
    c_t = tanh(W_h x_t + U_h (f_t * h_{t-1}) + b_h)
    h_t = (1 - f_t) * h_{t-1} + f_t * c_t

Training runs the layers one after the other; in each, the input projections ``W_f x_t + b_f`` and
``W_h x_t + b_h`` of all time steps are one matrix product before the loop over time, so the loop does only
the recurrent part.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from tangrnn_core.api import Architecture, Batch, State, TokenSpec

__all__ = ["MGU", "MGULayer"]
__version__ = "0.1.0"


class MGULayer(nn.Module):
    """One MGU layer.

    Args:
        input_size: size of the inputs ``x_t``.
        hidden_size: size of the state ``h_t``.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        # W_f and W_h stacked (with b_f and b_h), and U_f and U_h.
        self.input_weights = nn.Linear(input_size, 2 * hidden_size)
        self.forget_recurrent = nn.Linear(hidden_size, hidden_size, bias=False)
        self.candidate_recurrent = nn.Linear(hidden_size, hidden_size, bias=False)
        bound = 1 / math.sqrt(hidden_size)
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)

    def project(self, inputs: Tensor) -> Tensor:
        """``(..., input_size)`` -> ``(..., 2 * hidden_size)``: the input parts of the forget gate and candidate."""
        return self.input_weights(inputs)

    def cell(self, projected: Tensor, hidden: Tensor) -> Tensor:
        """One step from the projected input of ``x_t`` and ``h_{t-1}``; returns ``h_t``."""
        forget_input, candidate_input = projected.chunk(2, dim=-1)
        forget = torch.sigmoid(forget_input + self.forget_recurrent(hidden))
        candidate = torch.tanh(candidate_input + self.candidate_recurrent(forget * hidden))
        return hidden + forget * (candidate - hidden)  # (1 - f) * h + f * c

    def forward(self, inputs: Tensor, hidden: Tensor) -> tuple[Tensor, Tensor]:
        """``(batch, time, input_size)`` from the state ``hidden`` -> outputs ``(batch, time, hidden)``, last state."""
        projected = self.project(inputs)  # every time step in one matrix product
        outputs = []
        for position in range(inputs.shape[1]):
            hidden = self.cell(projected[:, position], hidden)
            outputs.append(hidden)
        return torch.stack(outputs, dim=1), hidden


class MGU(Architecture):
    """Minimal Gated Unit language model: embedding, stacked MGU layers, and a linear output layer.

    Args:
        tokens: vocabulary size and special ids (given by the core).
        embedding_size: size of the character embeddings.
        hidden_size: size of the state of each MGU layer.
        num_layers: number of stacked MGU layers.
        dropout: dropout on the embeddings, between layers and before the output layer.
        tie_weights: share the embedding matrix with the output layer; when ``hidden_size`` differs from
            ``embedding_size`` a linear projection maps the last layer's output to the embedding size first.
    """

    plugin_api = 1
    # The state is a tensor (num_layers, batch, hidden_size), like torch's recurrent modules.
    state_batch_dim = 1

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
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(tokens.vocab_size, embedding_size, padding_idx=tokens.pad_id)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            MGULayer(embedding_size if index == 0 else hidden_size, hidden_size) for index in range(num_layers)
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
        hidden = self.initial_state(batch.size)
        outputs = self.dropout(self.embedding(batch.inputs))
        for index, layer in enumerate(self.layers):
            if index > 0:
                outputs = self.dropout(outputs)
            outputs, _ = layer(outputs, hidden[index])
        return self._logits(outputs)

    def initial_state(self, batch_size: int, context: Batch | None = None) -> State:
        weight = self.embedding.weight
        return weight.new_zeros(len(self.layers), batch_size, self.hidden_size)

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        inputs = self.embedding(tokens)
        states = []
        for index, layer in enumerate(self.layers):
            inputs = layer.cell(layer.project(inputs), state[index])
            states.append(inputs)
        return self._logits(inputs), torch.stack(states)

    def prefill(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        # Like forward, from a given state: the input projections of the whole prefix in one product per layer.
        outputs = self.embedding(tokens)
        states = []
        for index, layer in enumerate(self.layers):
            outputs, last = layer(outputs, state[index])
            states.append(last)
        return self._logits(outputs[:, -1]), torch.stack(states)

    def _logits(self, hidden: Tensor) -> Tensor:
        return self.output(self.projection(self.dropout(hidden)))
