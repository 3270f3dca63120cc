"""Deep recurrent language models: the four ways of making an RNN deep of Pascanu et al. (2013).

"How to Construct Deep Recurrent Neural Networks" (Pascanu, Gulcehre, Cho, Bengio; ICLR 2014,
arXiv:1312.6026) names the places where a recurrent network can be made deeper; :class:`DeepRNN` offers each as an
option, and any combination of them:

1. stacked recurrent layers (sRNN): ``num_layers``;
2. a deep input-to-hidden function: an MLP between the embedding and the first recurrent layer, ``input_layers``;
3. a deep hidden-to-hidden transition (DT-RNN): ``transition_layers`` non-linear layers between ``h_{t-1}`` and
   ``h_t``, and its shortcut variant DT(S)-RNN: ``shortcut``;
4. a deep hidden-to-output function (DO-RNN): an MLP between the top hidden state and the output layer,
   ``output_layers``.

Without a deep transition the recurrent layers are torch's fused ``nn.RNN``/``nn.GRU``/``nn.LSTM`` (no Python loop
over time); with one they are :class:`~tangrnn_deep.transition.DeepTransitionLayer`, which loops over time.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from tangrnn_core.api import Architecture, Batch, State, TokenSpec
from tangrnn_deep.transition import DeepTransitionLayer

FUSED_MODULES: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
# torch's single-step functions, computing what one time step of the fused modules above computes.
CELL_FUNCTIONS = {"rnn": torch.rnn_tanh_cell, "gru": torch.gru_cell, "lstm": torch.lstm_cell}
ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}


def _mlp(input_size: int, hidden_size: int, layers: int, activation: str) -> nn.Sequential:
    """``layers`` times a linear layer and the activation; with no layers, the identity."""
    modules: list[nn.Module] = []
    for index in range(layers):
        modules += [nn.Linear(input_size if index == 0 else hidden_size, hidden_size), ACTIVATIONS[activation]()]
    return nn.Sequential(*modules)


class DeepRNN(Architecture):
    """A deep recurrent language model: the four ways of Pascanu et al. (2013), in any combination.

    Over an rnn, gru or lstm cell, the network reads
    ``embedding -> input MLP -> num_layers recurrent layers -> output MLP -> output layer``.
    Each MLP layer is a linear layer of ``hidden_size`` units followed by ``activation``; zero layers leave
    that function shallow (the identity, as in a plain RNN).

    The deep transition (3), precisely: at each step of each recurrent layer the previous state ``h`` passes
    through ``transition_layers`` intermediate layers, ``z = act(W_k ... act(W_1 h + b_1) ... + b_k)``, and ``z``
    replaces ``h`` as the cell's recurrent input, so the gate pre-activations are
    ``W_ih x_t + b_ih + W_hh z + b_hh``, plus ``V h`` when ``shortcut`` is set (DT(S): a direct path from
    ``h_{t-1}`` around the intermediate layers, ``V`` of the gates' size). For the rnn cell this is the paper's
    DT-RNN, ``h_t = tanh(W_ih x_t + W_hh z + (V h_{t-1}) + b)``. For the lstm the cell state is carried as usual
    (``c_t = f * c_{t-1} + i * g``, ``h_t = o * tanh(c_t)``, gates from ``x_t`` and ``z``); for the gru the
    reset gate scales the recurrent share of the candidate (``n = tanh(W_in x_t + b_in + r * (W_hn z + b_hn
    (+ V_n h_{t-1})))``) and the new state interpolates with ``h_{t-1}`` itself, ``h_t = (1 - u) * n + u * h_{t-1}``.
    So the deep transition changes what the gates read, and the lstm's and gru's additive paths through time
    are kept.

    Args:
        tokens: vocabulary size and special ids (given by the core).
        cell: the recurrent cell: ``rnn`` (Elman, tanh), ``gru`` or ``lstm``.
        embedding_size: size of the character embeddings.
        hidden_size: size of the recurrent state of each layer, and of every MLP layer (input, transition and
            output).
        num_layers: (1) stacked recurrent layers; each reads the outputs of the one below.
        input_layers: (2) non-linear layers of the deep input-to-hidden function, between the embedding and the
            first recurrent layer; 0 feeds the embeddings to it directly.
        transition_layers: (3) intermediate non-linear layers of the deep hidden-to-hidden transition, in every
            recurrent layer (DT-RNN); 0 is the plain cell on torch's fused kernel. A deep transition runs a loop
            over time in Python, about as fast as its extra matrix products allow but slower than the fused
            kernel.
        shortcut: (3) DT(S)-RNN: add a direct path from ``h_{t-1}`` to the gates around the intermediate
            layers; needs ``transition_layers`` of at least 1.
        output_layers: (4) non-linear layers of the deep hidden-to-output function between the top recurrent
            layer and the output layer (DO-RNN); 0 reads the output off the top state directly.
        activation: the non-linearity of every MLP layer: ``tanh`` or ``relu``.
        dropout: dropout on the embeddings, between recurrent layers and on the top state before the output
            function.
        tie_weights: share the embedding matrix with the output layer; when ``hidden_size`` differs from
            ``embedding_size`` a linear projection maps the last hidden layer to the embedding size first.
        compile_transition: with a deep transition, run each time step of the loop through ``torch.compile``
            (its pointwise operations fused into few kernels). Meant for GPUs; on a CPU it is no faster than the
            eager loop (``bench/deep_transition.py``, docs/performance.md) and its first steps wait for the compiler.
    """

    plugin_api = 1
    state_batch_dim = 1  # states are (layers, batch, hidden), as torch's recurrent modules keep them

    def __init__(
        self,
        tokens: TokenSpec,
        cell: Literal["rnn", "gru", "lstm"] = "lstm",
        embedding_size: int = 256,
        hidden_size: int = 512,
        num_layers: int = 2,
        input_layers: int = 1,
        transition_layers: int = 0,
        shortcut: bool = False,
        output_layers: int = 1,
        activation: Literal["tanh", "relu"] = "tanh",
        dropout: float = 0.1,
        tie_weights: bool = True,
        compile_transition: bool = False,
    ) -> None:
        super().__init__(tokens)
        if cell not in FUSED_MODULES:
            raise ValueError(f"cell must be one of {', '.join(FUSED_MODULES)}, got {cell!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
        if min(embedding_size, hidden_size, num_layers) < 1:
            raise ValueError("embedding_size, hidden_size and num_layers must be at least 1")
        if min(input_layers, transition_layers, output_layers) < 0:
            raise ValueError("input_layers, transition_layers and output_layers must be 0 or more")
        if shortcut and transition_layers == 0:
            # Around no intermediate layer the shortcut would only add a second W_hh: nothing to skip.
            raise ValueError("shortcut needs transition_layers of at least 1 (it skips the intermediate layers)")
        if compile_transition and transition_layers == 0:
            raise ValueError(
                "compile_transition needs transition_layers of at least 1 (without a deep transition "
                "the layers run on torch's fused kernels already)"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.cell = cell
        self.num_layers = num_layers
        self.hidden_size = hidden_size

        self.embedding = nn.Embedding(tokens.vocab_size, embedding_size, padding_idx=tokens.pad_id)
        self.dropout = nn.Dropout(dropout)
        self.input_mlp = _mlp(embedding_size, hidden_size, input_layers, activation)
        recurrent_input = hidden_size if input_layers else embedding_size
        self.rnn: nn.RNNBase | None = None
        self.layers: nn.ModuleList | None = None
        if transition_layers == 0:
            self.rnn = FUSED_MODULES[cell](
                recurrent_input,
                hidden_size,
                num_layers=num_layers,
                dropout=dropout if num_layers > 1 else 0.0,
                batch_first=True,
            )
        else:
            self.layers = nn.ModuleList(
                DeepTransitionLayer(
                    cell,
                    recurrent_input if index == 0 else hidden_size,
                    hidden_size,
                    transition_layers=transition_layers,
                    shortcut=shortcut,
                    activation=activation,
                    compile_step=compile_transition,
                )
                for index in range(num_layers)
            )
        self.output_mlp = _mlp(hidden_size, hidden_size, output_layers, activation)
        output_size = hidden_size
        self.projection: nn.Module = nn.Identity()
        if tie_weights and hidden_size != embedding_size:
            self.projection = nn.Linear(hidden_size, embedding_size, bias=False)
            output_size = embedding_size
        self.output = nn.Linear(output_size, tokens.vocab_size)
        if tie_weights:
            self.output.weight = self.embedding.weight

    def forward(self, batch: Batch) -> Tensor:
        inputs = self.input_mlp(self.dropout(self.embedding(batch.inputs)))
        hidden, _ = self._recur(inputs, self.initial_state(batch.size))
        return self._logits(hidden)

    def initial_state(self, batch_size: int, context: Batch | None = None) -> State:
        weight = self.embedding.weight
        zeros = weight.new_zeros(self.num_layers, batch_size, self.hidden_size)
        return (zeros, zeros.clone()) if self.cell == "lstm" else zeros

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        if self.rnn is not None and (
            not hasattr(self.rnn, "weight_ih_l0")  # int8-quantized for decoding: only the module knows its weights
            or torch.is_autocast_enabled(tokens.device.type)  # the fused module handles the dtypes of autocast
        ):
            return self.prefill(tokens.unsqueeze(1), state)
        inputs = self.input_mlp(self.embedding(tokens))
        hidden, memory = self._unpack(state)
        new_hidden, new_memory = [], []
        for layer in range(self.num_layers):
            if self.layers is not None:
                h, c = self.layers[layer].step(inputs, hidden[layer], memory[layer])
            else:
                # For one step, torch's cell function on the module's own weights skips the fused call's set-up.
                names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                weights = [getattr(self.rnn, f"{name}_l{layer}") for name in names]
                if self.cell == "lstm":
                    h, c = CELL_FUNCTIONS["lstm"](inputs, (hidden[layer], memory[layer]), *weights)
                else:
                    h = c = CELL_FUNCTIONS[self.cell](inputs, hidden[layer], *weights)
            new_hidden.append(h)
            new_memory.append(c)
            inputs = h
        return self._logits(inputs), self._pack(new_hidden, new_memory)

    def prefill(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        hidden, state = self._recur(self.input_mlp(self.embedding(tokens)), state)
        return self._logits(hidden[:, -1]), state

    def _recur(self, inputs: Tensor, state: State) -> tuple[Tensor, State]:
        """Runs ``(batch, time, features)`` through the recurrent layers from ``state``; returns the top layer's
        outputs and the new state."""
        if self.rnn is not None:
            return self.rnn(self._autocast(inputs), state)
        hidden, memory = self._unpack(state)
        new_hidden, new_memory = [], []
        for index, layer in enumerate(self.layers):
            if index > 0:
                inputs = self.dropout(inputs)  # between layers, as the fused modules' ``dropout`` does
            inputs, h, c = layer(inputs, hidden[index], memory[index])
            new_hidden.append(h)
            new_memory.append(c)
        return inputs, self._pack(new_hidden, new_memory)

    def _unpack(self, state: State) -> tuple[Tensor, Tensor]:
        # Only the lstm has a cell state; the others pass their hidden state where it would go, unused.
        return state if self.cell == "lstm" else (state, state)

    def _pack(self, hidden: list[Tensor], memory: list[Tensor]) -> State:
        return (torch.stack(hidden), torch.stack(memory)) if self.cell == "lstm" else torch.stack(hidden)

    @staticmethod
    def _autocast(inputs: Tensor) -> Tensor:
        # Under CPU autocast torch's fused kernels get bf16 weights; oneDNN's LSTM refuses an fp32 input with them.
        device = inputs.device.type
        if torch.is_autocast_enabled(device):
            return inputs.to(torch.get_autocast_dtype(device))
        return inputs

    def _logits(self, hidden: Tensor) -> Tensor:
        return self.output(self.projection(self.output_mlp(self.dropout(hidden))))
