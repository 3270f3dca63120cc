"""A recurrent layer with a deep hidden-to-hidden transition (DT-RNN and DT(S)-RNN of Pascanu et al., 2013).

Torch has no fused kernel for a transition with extra layers, so the layer loops over time in Python. The input's
share of the gates is computed for the whole sequence in one matrix product before the loop, so each step does
only the recurrent matrix products, whose arithmetic is then most of the time. Compiling the loop did not pay
on a CPU (``bench/deep_transition.py`` measures it, at hidden size 512): TorchScript ran it at 0.94x (without a
CPU fuser it only saves the interpreter's share of the forward pass), ``torch.compile`` of one step at 0.95x,
and ``torch.compile`` of the whole loop at 1.04x after about 5 minutes of compiling the unrolled loop, again for
every sequence length and batch size. Only for tiny states (hidden size 64) does the compiled loop pay (1.67x).

The math is written once, as functions of explicit weight tensors (which a compiler can take whole), so that the
loop over a sequence and the decoder's single step compute exactly the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Gate blocks of each cell: the rows of its input and recurrent weight matrices are this many hidden sizes.
GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def cell_update(cell: str, gates_x: Tensor, gates_h: Tensor, hidden: Tensor, memory: Tensor) -> tuple[Tensor, Tensor]:
    """One update of an rnn, gru or lstm cell from its input and recurrent gate pre-activations.

    ``gates_x`` is ``W_ih x + b_ih`` and ``gates_h`` the recurrent share (``W_hh h + b_hh`` for a plain cell), in
    torch's gate order (lstm: i, f, g, o; gru: r, z, n), so that with a plain transition this is exactly
    ``nn.RNN``/``nn.GRU``/``nn.LSTM``. ``memory`` is the LSTM's cell state; other cells return it unchanged.
    """
    if cell == "lstm":
        i, f, g, o = (gates_x + gates_h).chunk(4, 1)
        memory = torch.sigmoid(f) * memory + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(memory), memory
    if cell == "gru":
        x_r, x_z, x_n = gates_x.chunk(3, 1)
        h_r, h_z, h_n = gates_h.chunk(3, 1)
        reset = torch.sigmoid(x_r + h_r)
        update = torch.sigmoid(x_z + h_z)
        candidate = torch.tanh(x_n + reset * h_n)
        # The GRU interpolates with the previous state itself, not with the transition's output: the deep
        # transition changes what the gates read, while the state keeps its additive path through time.
        return candidate + update * (hidden - candidate), memory
    return torch.tanh(gates_x + gates_h), memory


def recurrent_gates(
    activation: str,
    hidden: Tensor,
    recurrent_weight: Tensor,
    recurrent_bias: Tensor,
    transition_weights: list[Tensor],
    transition_biases: list[Tensor],
    shortcut_weight: Tensor | None,
) -> Tensor:
    """The recurrent share of the gates: ``W_hh z + b_hh (+ V h)``, with ``z`` the transition MLP of ``h``."""
    intermediate = hidden
    for weight, bias in zip(transition_weights, transition_biases):
        intermediate = F.linear(intermediate, weight, bias)
        intermediate = torch.tanh(intermediate) if activation == "tanh" else torch.relu(intermediate)
    gates = F.linear(intermediate, recurrent_weight, recurrent_bias)
    if shortcut_weight is not None:
        gates = gates + F.linear(hidden, shortcut_weight)
    return gates


def transition_step(
    cell: str,
    activation: str,
    gates_x: Tensor,
    hidden: Tensor,
    memory: Tensor,
    recurrent_weight: Tensor,
    recurrent_bias: Tensor,
    transition_weights: list[Tensor],
    transition_biases: list[Tensor],
    shortcut_weight: Tensor | None,
) -> tuple[Tensor, Tensor]:
    """One time step of the layer: ``(hidden, memory)`` after reading the input whose gate share is ``gates_x``."""
    gates_h = recurrent_gates(
        activation, hidden, recurrent_weight, recurrent_bias, transition_weights, transition_biases, shortcut_weight
    )
    return cell_update(cell, gates_x, gates_h, hidden, memory)


def transition_loop(
    cell: str,
    activation: str,
    gates_x: Tensor,
    hidden: Tensor,
    memory: Tensor,
    recurrent_weight: Tensor,
    recurrent_bias: Tensor,
    transition_weights: list[Tensor],
    transition_biases: list[Tensor],
    shortcut_weight: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Runs the layer over ``gates_x`` of shape ``(time, batch, gates)``; returns the ``(time, batch, hidden)``
    outputs and the last ``hidden`` and ``memory``."""
    outputs: list[Tensor] = []
    for gates in gates_x.unbind(0):
        hidden, memory = transition_step(
            cell,
            activation,
            gates,
            hidden,
            memory,
            recurrent_weight,
            recurrent_bias,
            transition_weights,
            transition_biases,
            shortcut_weight,
        )
        outputs.append(hidden)
    return torch.stack(outputs), hidden, memory


def step_loop(step: Callable[..., tuple[Tensor, Tensor]]) -> Callable[..., tuple[Tensor, Tensor, Tensor]]:
    """:func:`transition_loop` with ``step`` (e.g. a compiled :func:`transition_step`) doing each time step;
    the loop itself stays in Python, so one compiled step serves every sequence length."""

    def loop(cell: str, activation: str, gates_x: Tensor, hidden: Tensor, memory: Tensor, *weights):
        outputs = []
        for gates in gates_x.unbind(0):
            hidden, memory = step(cell, activation, gates, hidden, memory, *weights)
            outputs.append(hidden)
        return torch.stack(outputs), hidden, memory

    return loop


class DeepTransitionLayer(nn.Module):
    """One recurrent layer of an rnn, gru or lstm cell whose hidden-to-hidden transition is a deep MLP.

    At each step the previous state ``h`` passes through ``transition_layers`` non-linear layers,
    ``z = act(W_k ... act(W_1 h + b_1) ... + b_k)``, and ``z`` takes the place of ``h`` as the cell's recurrent
    input: the gates read ``W_ih x + b_ih + W_hh z + b_hh``, plus ``V h`` with ``shortcut`` (DT(S)). The LSTM's
    cell state and the GRU's interpolation ``h' = (1 - u) n + u h`` still use the previous state itself. With
    no transition layers and no shortcut it is exactly torch's cell (same weight shapes and gate order).

    Its weights are plain parameters, not ``nn.Linear`` modules, so the loop can take them as tensors; it also
    keeps dynamic int8 quantization (which swaps ``nn.Linear`` modules) from touching this layer.

    Args:
        cell: ``rnn`` (tanh), ``gru`` or ``lstm``.
        input_size: size of the input at each step.
        hidden_size: size of the state, and of each intermediate transition layer.
        transition_layers: intermediate non-linear layers between ``h_{t-1}`` and the cell.
        shortcut: add a direct path ``V h_{t-1}`` around the intermediate layers into the gates (DT(S)-RNN).
        activation: non-linearity of the intermediate layers, ``tanh`` or ``relu``.
        compile_step: run each time step through ``torch.compile`` (one fused kernel for the cell's pointwise
            operations instead of a dozen; meant for GPUs, where each kernel launch costs more than its
            arithmetic at these sizes). The loop over time stays in Python, so one compiled graph serves every
            sequence length.
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        transition_layers: int = 1,
        shortcut: bool = False,
        activation: str = "tanh",
        compile_step: bool = False,
    ) -> None:
        super().__init__()
        if cell not in GATES:
            raise ValueError(f"cell must be one of {', '.join(GATES)}, got {cell!r}")
        if activation not in ("tanh", "relu"):
            raise ValueError(f"activation must be tanh or relu, got {activation!r}")
        if transition_layers < 0:
            raise ValueError(f"transition_layers must be 0 or more, got {transition_layers}")
        self.cell = cell
        self.activation = activation
        self.hidden_size = hidden_size
        gates = GATES[cell] * hidden_size
        # Named like nn.LSTM's weight_ih_l0 ... so weights can be compared with, and copied from, torch's cells.
        self.weight_ih = nn.Parameter(torch.empty(gates, input_size))
        self.weight_hh = nn.Parameter(torch.empty(gates, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(gates))
        self.bias_hh = nn.Parameter(torch.empty(gates))
        self.transition_weights = nn.ParameterList(
            [nn.Parameter(torch.empty(hidden_size, hidden_size)) for _ in range(transition_layers)]
        )
        self.transition_biases = nn.ParameterList(
            [nn.Parameter(torch.empty(hidden_size)) for _ in range(transition_layers)]
        )
        self.register_parameter("shortcut_weight", nn.Parameter(torch.empty(gates, hidden_size)) if shortcut else None)
        # A function, not a module: the parameters stay this layer's own, so checkpoints do not change.
        self.step_function = torch.compile(transition_step) if compile_step else transition_step
        self.loop_function = step_loop(self.step_function) if compile_step else transition_loop
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # torch's recurrent modules draw every weight from U(-1/sqrt(hidden), 1/sqrt(hidden)); so does this layer,
        # so that a deep transition starts at the same scale as the plain cell it extends.
        bound = 1.0 / math.sqrt(self.hidden_size)
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)

    def forward(self, inputs: Tensor, hidden: Tensor, memory: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Reads ``inputs`` of shape ``(batch, time, input_size)`` from ``hidden``/``memory`` (``(batch, hidden)``;
        ``memory`` is only used by the lstm); returns ``(batch, time, hidden)`` outputs, and the last state."""
        # The input's share of the gates for every step in one matrix product, time-major so each step reads a
        # contiguous slice.
        gates_x = F.linear(inputs.transpose(0, 1), self.weight_ih, self.bias_ih)
        outputs, hidden, memory = self.loop_function(
            self.cell, self.activation, gates_x, hidden, memory, *self._recurrent_weights()
        )
        return outputs.transpose(0, 1), hidden, memory

    def step(self, inputs: Tensor, hidden: Tensor, memory: Tensor) -> tuple[Tensor, Tensor]:
        """One step: ``inputs`` ``(batch, input_size)``; returns the new ``hidden`` and ``memory``."""
        gates_x = F.linear(inputs, self.weight_ih, self.bias_ih)
        return self.step_function(self.cell, self.activation, gates_x, hidden, memory, *self._recurrent_weights())

    def _recurrent_weights(self) -> tuple[Tensor, Tensor, list[Tensor], list[Tensor], Tensor | None]:
        return (
            self.weight_hh,
            self.bias_hh,
            list(self.transition_weights),
            list(self.transition_biases),
            self.shortcut_weight,
        )

    def extra_repr(self) -> str:
        shortcut = ", shortcut" if self.shortcut_weight is not None else ""
        return (
            f"{self.cell}, {self.weight_ih.shape[1]}, {self.hidden_size}, "
            f"transition_layers={len(self.transition_weights)}{shortcut}, activation={self.activation}"
        )
