"""A bidirectional recurrent encoder over padded batches, shared by the infilling model and usable by others.

:class:`BidirectionalEncoder` knows nothing about characters or the plugin API: it reads ``(batch, time,
features)`` vectors and the length of each row, and returns for every position the concatenated states of a
left-to-right and a right-to-left pass, plus the final states. So the same module can be the infilling
network's body and, say, the title encoder of a sequence-to-sequence model.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from tangrnn_core.api import State

Cell = Literal["gru", "lstm"]
FUSED_MODULES: dict[str, type[nn.RNNBase]] = {"gru": nn.GRU, "lstm": nn.LSTM}


class BidirectionalEncoder(nn.Module):
    """Stacked bidirectional GRU or LSTM layers (torch's fused modules) over padded sequences.

    Padding never reaches a real position: a right-to-left pass over a padded row would otherwise start in the
    padding, so rows shorter than the batch are packed (``pack_padded_sequence``); a batch without padding, the
    usual case with length-bucketed batches, runs unpacked. Rows of length 0 (an empty title) are allowed:
    their outputs and final states are zeros.

    Args:
        input_size: features of each input position.
        hidden_size: units of each direction of each layer; outputs have ``2 * hidden_size`` features.
        num_layers: stacked bidirectional layers; each reads both directions of the layer below.
        cell: ``gru`` or ``lstm``.
        dropout: dropout between stacked layers (none after the last: the caller decides).
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, cell: Cell = "gru", dropout: float = 0.0
    ) -> None:
        super().__init__()
        if cell not in FUSED_MODULES:
            raise ValueError(f"cell must be one of {', '.join(FUSED_MODULES)}, got {cell!r}")
        if min(input_size, hidden_size, num_layers) < 1:
            raise ValueError("input_size, hidden_size and num_layers must be at least 1")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.rnn = FUSED_MODULES[cell](
            input_size,
            hidden_size,
            num_layers=num_layers,
            dropout=dropout if num_layers > 1 else 0.0,
            batch_first=True,
            bidirectional=True,
        )

    @property
    def output_size(self) -> int:
        """Features of each output position: both directions of the top layer."""
        return 2 * self.hidden_size

    def forward(self, inputs: Tensor, lengths: Tensor) -> tuple[Tensor, State]:
        """Encodes a padded batch.

        Args:
            inputs: ``(batch, time, input_size)``; each row's real positions come first, then padding.
            lengths: ``(batch,)`` real positions of each row (0 to ``time``).

        Returns:
            ``(batch, time, 2 * hidden_size)`` outputs, ``[forward; backward]`` at every position and zeros at
            padded ones, and the final state as torch's module returns it: ``h`` of shape ``(2 * num_layers,
            batch, hidden_size)`` (layer-major, forward direction first), for an LSTM the pair ``(h, c)``. The
            backward direction's final state is the one after reading the row's first position.
        """
        rows, width = inputs.shape[:2]
        if inputs.is_floating_point() and torch.is_autocast_enabled(inputs.device.type):
            # oneDNN's fused kernels refuse fp32 inputs with autocast's bf16 weights
            inputs = inputs.to(torch.get_autocast_dtype(inputs.device.type))
        if rows and bool((lengths == width).all()) and width > 0:
            return self.rnn(inputs)
        # pack_padded_sequence refuses empty rows: read one (padding) position, then zero what it produced.
        lengths_cpu = lengths.detach().to("cpu", torch.long)
        packed = pack_padded_sequence(inputs, lengths_cpu.clamp(min=1), batch_first=True, enforce_sorted=False)
        outputs, state = self.rnn(packed)
        outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=width)
        empty = lengths_cpu == 0
        if bool(empty.any()):
            keep = (~empty).to(inputs.device)
            outputs = outputs * keep[:, None, None].to(outputs.dtype)
            state = (
                tuple(s * keep[None, :, None].to(s.dtype) for s in state)
                if isinstance(state, tuple)
                else (state * keep[None, :, None].to(state.dtype))
            )
        return outputs, state

    def merge_directions(self, state: State) -> State:
        """The final state with both directions side by side: ``(num_layers, batch, 2 * hidden_size)`` per
        tensor, e.g. to start a decoder of ``2 * hidden_size`` units (or project it to another size)."""
        if isinstance(state, tuple):
            return tuple(self.merge_directions(part) for part in state)
        layers = state.view(self.num_layers, 2, *state.shape[1:])
        return torch.cat([layers[:, 0], layers[:, 1]], dim=-1)
