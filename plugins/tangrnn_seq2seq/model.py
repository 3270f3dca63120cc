"""An encoder-decoder with attention that writes a poem from its title, each line from the one before it.

At every character the decoder attends to a memory of three parts:

- a learned *null* slot, always present, so that the attention has somewhere to go when the title is empty
  (``tangrnn generate`` without ``--title``) and before the first line has ended;
- the encoded title (``Batch.context``, or the ``context`` of ``initial_state``);
- the encoded *previous line*: when the decoder reads a line-end mark (``TokenSpec.line_end_ids``), the line it
  has just finished is encoded by the same encoder and replaces the line memory for the next line. Older lines
  reach later ones only through the decoder's recurrent state.

Speed. Attention is computed from the decoder's states after its recurrent layers (no input feeding), so in
training the decoder is one fused ``nn.LSTM``/``nn.GRU`` call over the whole poem, and the finished lines of the
whole batch are encoded in one packed call of the encoder; there is no Python loop over characters except in
``step``, which decoding calls anyway. The encoded lines are laid out at the poem positions of their characters,
and each position holds, in a ``(batch, time, max_line_chars)`` table, the positions of the characters of its
previous line: multiplicative scores are one batched product over the poem's positions, read through the table,
and the context is one batched product with the weights scattered back, so the line memory is never copied per
position. The additive score needs a hidden vector for every (position, slot) pair whatever the layout, so
``bahdanau`` gathers the keys per position.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from tangrnn_core.api import Architecture, Batch, State, TokenSpec
from tangrnn_seq2seq.attention import Attention, AttentionKind

RECURRENT_MODULES: dict[str, type[nn.RNNBase]] = {"gru": nn.GRU, "lstm": nn.LSTM}


class Memory(NamedTuple):
    """Memory slots ``(batch, slots, ...)`` shared by every position of a row: ``keys`` for scoring, ``values``
    that are read, and ``mask`` (``True``: a real slot)."""

    keys: Tensor
    values: Tensor
    mask: Tensor


class LineMemory(NamedTuple):
    """The previous line of every position, as slots shared by a row and a table that picks them.

    ``keys`` and ``values`` are ``(batch, slots, ...)``; position ``t`` of row ``b`` attends to the slots
    ``index[b, t]`` (``(batch, time, line_slots)``) where ``mask[b, t]`` is ``True``. In training the slots are the
    poem's own positions (each character's encoding in its line); in decoding they are the finished line itself.
    """

    keys: Tensor
    values: Tensor
    index: Tensor
    mask: Tensor


class Seq2Seq(Architecture):
    """Encoder-decoder with attention: writes a poem from its title, and each line from the previous one.

    A single-layer encoder (``cell``, optionally bidirectional) reads the title, and every finished line of the
    poem. The decoder, ``num_layers`` recurrent layers over the poem's characters, starts from a state made
    from the title's final encoder state and, at each character, attends to a learned null slot, the encoded
    title and the encoded previous line (the one finished at the last line-end mark); its state and what it
    read go through ``tanh(W [h; context])`` to the output layer. Scores are computed after the recurrent
    layers (Luong's arrangement, no input feeding), so training runs the decoder as one fused call.

    Args:
        tokens: vocabulary size and special ids (given by the core).
        embedding_size: size of the character embeddings, shared by the encoder and the decoder.
        hidden_size: size of the decoder's recurrent state.
        num_layers: number of stacked decoder layers.
        encoder_size: size of the encoder's state in each direction; memory slots have twice this size when
            ``bidirectional``.
        bidirectional: read the title and the lines in both directions (each slot then knows its whole line)
            rather than left to right only.
        cell: the recurrent cell of the encoder and the decoder, ``lstm`` or ``gru``.
        attention: the score function: ``luong`` (multiplicative, ``h^T W m``) or ``bahdanau`` (additive,
            ``v^T tanh(W_q h + W_k m)``); both score the decoder state after its recurrent layers.
        attention_size: hidden size of the additive score (``bahdanau`` only).
        max_line_chars: the line memory keeps the first this many characters of a line (regular lines have 5
            or 7); it bounds the memory used by free-form poems with very long lines.
        dropout: dropout on the embeddings, between decoder layers and before the output layer.
        title_dropout: in training, the share of poems whose title is replaced by an empty one, so that the
            model also learns to write with no title (``tangrnn generate`` without ``--title``).
        tie_weights: share the embedding matrix with the output layer; the attentional layer then has
            ``embedding_size`` units instead of ``hidden_size``.
    """

    plugin_api = 1
    capabilities = frozenset({"causal", "conditional"})
    state_batch_dim = 0  # every state tensor is kept batch-first; see initial_state()

    def __init__(
        self,
        tokens: TokenSpec,
        embedding_size: int = 256,
        hidden_size: int = 512,
        num_layers: int = 2,
        encoder_size: int = 128,
        bidirectional: bool = True,
        cell: Literal["lstm", "gru"] = "lstm",
        attention: AttentionKind = "luong",
        attention_size: int = 256,
        max_line_chars: int = 16,
        dropout: float = 0.1,
        title_dropout: float = 0.1,
        tie_weights: bool = True,
    ) -> None:
        super().__init__(tokens)
        if min(embedding_size, hidden_size, num_layers, encoder_size, attention_size, max_line_chars) < 1:
            raise ValueError(
                "embedding_size, hidden_size, num_layers, encoder_size, attention_size and max_line_chars must be "
                "at least 1"
            )
        if cell not in RECURRENT_MODULES:
            raise ValueError(f"cell must be one of {', '.join(RECURRENT_MODULES)}, got {cell!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if not 0.0 <= title_dropout <= 1.0:
            raise ValueError(f"title_dropout must be in [0, 1], got {title_dropout}")
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.max_line_chars = max_line_chars
        self.title_dropout = title_dropout
        self.lstm = cell == "lstm"
        memory_size = encoder_size * (2 if bidirectional else 1)
        recurrent = RECURRENT_MODULES[cell]

        self.embedding = nn.Embedding(tokens.vocab_size, embedding_size, padding_idx=tokens.pad_id)
        self.dropout = nn.Dropout(dropout)
        self.encoder = recurrent(embedding_size, encoder_size, batch_first=True, bidirectional=bidirectional)
        # The null slot doubles as the title summary of an empty title, from which the decoder starts.
        self.null = nn.Parameter(torch.randn(memory_size) * 0.1)
        self.bridge = nn.Linear(memory_size, num_layers * hidden_size)
        self.decoder = recurrent(
            embedding_size,
            hidden_size,
            num_layers=num_layers,
            dropout=dropout if num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.attention = Attention(attention, hidden_size, memory_size, attention_size)
        output_size = embedding_size if tie_weights else hidden_size
        self.combine = nn.Linear(hidden_size + memory_size, output_size)
        self.output = nn.Linear(output_size, tokens.vocab_size)
        if tie_weights:
            self.output.weight = self.embedding.weight
        # Buffers, so that they follow the module to its device; not saved, since TokenSpec rebuilds them.
        self.register_buffer("line_end_ids", torch.tensor(tokens.line_end_ids, dtype=torch.long), persistent=False)
        specials = (tokens.pad_id, tokens.bos_id, tokens.eos_id, tokens.mask_id)
        self.register_buffer("special_ids", torch.tensor(specials, dtype=torch.long), persistent=False)

    # -- training ----------------------------------------------------------------------------------------

    def forward(self, batch: Batch) -> Tensor:
        titles, title_lengths = self._titles(batch, batch.size, batch.inputs.device)
        if self.training and self.title_dropout > 0:
            dropped = torch.rand(title_lengths.shape, device=title_lengths.device) < self.title_dropout
            title_lengths = title_lengths.masked_fill(dropped, 0)
        shared, hidden = self._read_titles(titles, title_lengths)
        states, _ = self.decoder(self._rnn_input(self.dropout(self.embedding(batch.inputs))), hidden)
        return self._logits(states, shared, self._line_memory(batch.inputs, batch.lengths))

    def title_memory(self, batch: Batch) -> Memory:
        """The memory every position of a row shares, ``(batch, 1 + title_chars, ...)``: the null slot, then the
        encoded title (masked past its length)."""
        titles, title_lengths = self._titles(batch, batch.size, batch.inputs.device)
        return self._read_titles(titles, title_lengths)[0]

    def line_memory(self, batch: Batch) -> Memory:
        """The previous-line memory of every position, copied out per position for inspection,
        ``(batch, time, line_slots, ...)`` (``line_slots``: the batch's longest line, at most ``max_line_chars``):
        at position ``t``, the encoded line finished by the last line-end mark among ``inputs[:, :t + 1]`` (all
        masked before the first one)."""
        line = self._line_memory(batch.inputs, batch.lengths)
        rows, time, slots = line.index.shape
        flat = line.index.reshape(rows, time * slots, 1)
        pick = lambda tensor: tensor.gather(1, flat.expand(-1, -1, tensor.shape[-1])).view(rows, time, slots, -1)  # noqa: E731
        return Memory(pick(line.keys), pick(line.values), line.mask)

    # -- decoding ----------------------------------------------------------------------------------------

    def initial_state(self, batch_size: int, context: Batch | None = None) -> State:
        """A tuple of batch-first tensors: the decoder state, the null-and-title memory, the previous-line memory,
        and the characters of the line being written (a buffer of ``max_line_chars`` and its fill)."""
        device = self.null.device
        titles, title_lengths = self._titles(context, batch_size, device)
        shared, hidden = self._read_titles(titles, title_lengths)
        width = self.max_line_chars
        # The decoder's state is (layers, batch, hidden) in torch; it is kept (batch, layers, hidden) here so that
        # every state tensor holds the batch in dimension 0 and the default reorder_state applies.
        line = Memory(
            shared.keys.new_zeros(batch_size, width, shared.keys.shape[-1]),
            shared.values.new_zeros(batch_size, width, shared.values.shape[-1]),
            torch.zeros(batch_size, width, dtype=torch.bool, device=device),
        )
        buffer = torch.full((batch_size, width), self.tokens.pad_id, dtype=torch.long, device=device)
        filled = torch.zeros(batch_size, dtype=torch.long, device=device)
        return (self._swap_hidden(hidden), *shared, *line, buffer, filled)

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        hidden, shared_keys, shared_values, shared_mask, line_keys, line_values, line_mask, buffer, filled = state
        states, hidden = self.decoder(self._rnn_input(self.embedding(tokens).unsqueeze(1)), self._swap_hidden(hidden))

        # The reading of the line structure of _line_memory(), one character at a time.
        ends = torch.isin(tokens, self.line_end_ids)
        chars = ~ends & ~torch.isin(tokens, self.special_ids)
        width = buffer.shape[1]
        slot = torch.arange(width, device=buffer.device) == filled.unsqueeze(1)
        buffer = torch.where(chars.unsqueeze(1) & slot, tokens.unsqueeze(1), buffer)
        filled = filled + (chars & (filled < width)).long()
        if bool(ends.any()):
            rows = ends.nonzero().squeeze(1)
            finished = self._encode_memory(buffer[rows], filled[rows])
            line_keys = line_keys.index_copy(0, rows, finished.keys)
            line_values = line_values.index_copy(0, rows, finished.values)
            line_mask = line_mask.index_copy(0, rows, finished.mask)
            filled = filled.masked_fill(ends, 0)

        shared = Memory(shared_keys, shared_values, shared_mask)
        # The slots are the line itself: slot i of the table is slot i of the memory.
        index = torch.arange(width, device=buffer.device).expand(tokens.shape[0], 1, width)
        line = LineMemory(line_keys, line_values, index, line_mask.unsqueeze(1))
        logits = self._logits(states, shared, line).squeeze(1)
        return logits, (self._swap_hidden(hidden), *shared, line_keys, line_values, line_mask, buffer, filled)

    # -- the pieces ----------------------------------------------------------------------------------------

    def _swap_hidden(self, hidden: Tensor | tuple[Tensor, Tensor]) -> Tensor | tuple[Tensor, Tensor]:
        """Between torch's (layers, batch, hidden) and the state's (batch, layers, hidden)."""
        if isinstance(hidden, tuple):
            return tuple(part.transpose(0, 1).contiguous() for part in hidden)
        return hidden.transpose(0, 1).contiguous()

    @staticmethod
    def _rnn_input(inputs: Tensor) -> Tensor:
        # Under CPU autocast oneDNN's recurrent kernels get bf16 weights but an fp32 embedding, a mix they refuse
        # ("could not create a primitive descriptor"); give them the autocast dtype.
        device = inputs.device.type
        if torch.is_autocast_enabled(device):
            return inputs.to(torch.get_autocast_dtype(device))
        return inputs

    def _titles(self, batch: Batch | None, rows: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """Title ids and lengths; rows of empty titles when there is no context at all."""
        if batch is None or batch.context is None:
            empty = torch.full((rows, 1), self.tokens.pad_id, dtype=torch.long, device=device)
            return empty, torch.zeros(rows, dtype=torch.long, device=device)
        return batch.context, batch.context_lengths

    def _encode(self, ids: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Encoder outputs ``(rows, width, memory)``, final states ``(rows, memory)`` and the mask of real
        positions, for rows of ids padded at the end. Rows of length 0 get masked outputs."""
        width = ids.shape[1]
        # Packing keeps a bidirectional encoder from reading the padding first, and gives each row's final state
        # at its own length. Empty rows are read as one pad (packing refuses length 0) and masked afterwards.
        embedded = self._rnn_input(self.dropout(self.embedding(ids)))
        packed = pack_padded_sequence(embedded, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        outputs, final = self.encoder(packed)
        outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=width)
        if isinstance(final, tuple):  # an LSTM's (h, c): the cell state stays inside the encoder
            final = final[0]
        summary = final.transpose(0, 1).reshape(ids.shape[0], -1)  # the directions side by side
        mask = torch.arange(width, device=ids.device) < lengths.unsqueeze(1)
        return outputs, summary, mask

    def _encode_memory(self, ids: Tensor, lengths: Tensor) -> Memory:
        outputs, _, mask = self._encode(ids, lengths)
        return Memory(self.attention.keys(outputs), outputs, mask)

    def _read_titles(self, titles: Tensor, lengths: Tensor) -> tuple[Memory, Tensor | tuple[Tensor, Tensor]]:
        """The shared memory (null slot, then the title) and the decoder's initial state, in torch's layout."""
        rows = titles.shape[0]
        outputs, summary, mask = self._encode(titles, lengths)
        null = self.null.to(outputs.dtype)
        values = torch.cat([null.expand(rows, 1, -1), outputs], dim=1)
        mask = torch.cat([mask.new_ones(rows, 1), mask], dim=1)
        summary = torch.where((lengths > 0).unsqueeze(1), summary, null)
        hidden = torch.tanh(self.bridge(summary)).view(rows, self.num_layers, self.hidden_size)
        hidden = hidden.transpose(0, 1).contiguous()
        if self.lstm:
            hidden = (hidden, torch.zeros_like(hidden))  # the cell starts empty, as in an unconditioned LSTM
        return Memory(self.attention.keys(values), values, mask), hidden

    def _line_memory(self, inputs: Tensor, lengths: Tensor) -> LineMemory:
        """The previous-line memory of a whole batch, every finished line encoded in one call."""
        rows, time = inputs.shape
        device = inputs.device
        positions = torch.arange(time, device=device)
        real = positions < lengths.unsqueeze(1)
        ends = torch.isin(inputs, self.line_end_ids) & real
        chars = real & ~ends & ~torch.isin(inputs, self.special_ids)
        # After reading position t, line_of[t] lines are finished; a character at t belongs to line line_of[t].
        line_of = ends.long().cumsum(1)
        read = chars.long().cumsum(1)
        # Characters read when the current line began: read[] at the last mark so far (0 before the first).
        at_line_start = torch.where(ends, read, torch.zeros_like(read)).cummax(1).values
        offset = read - 1 - at_line_start
        finished = ends.sum(1)
        first_line = finished.cumsum(0) - finished  # index of each row's first line among the batch's lines
        keep = chars & (line_of < finished.unsqueeze(1)) & (offset < self.max_line_chars)
        total = int(finished.sum())
        width = int(offset[keep].max()) + 1 if bool(keep.any()) else 1

        line_index, slot = (first_line.unsqueeze(1) + line_of)[keep], offset[keep]
        lines = torch.full((total, width), self.tokens.pad_id, dtype=torch.long, device=device)
        lines[line_index, slot] = inputs[keep]
        # Where each character of each line sits in its poem, with one extra, empty line (index `total`) for the
        # positions before the first mark; its slots point at position 0 and are masked.
        where = torch.zeros((total + 1, width), dtype=torch.long, device=device)
        where[line_index, slot] = positions.expand(rows, -1)[keep]
        present = torch.zeros((total + 1, width), dtype=torch.bool, device=device)
        present[line_index, slot] = True

        if total:
            outputs, _, _ = self._encode(lines, torch.bincount(line_index, minlength=total)[:total])
            values = outputs.new_zeros(rows, time, outputs.shape[-1])
            values = values.index_put(keep.nonzero(as_tuple=True), outputs[line_index, slot])
        else:
            values = self.null.new_zeros(rows, time, self.null.shape[0])
        previous = torch.where(line_of > 0, first_line.unsqueeze(1) + line_of - 1, torch.full_like(line_of, total))
        return LineMemory(self.attention.keys(values), values, where[previous], present[previous])

    def _logits(self, states: Tensor, shared: Memory, line: LineMemory) -> Tensor:
        """Logits ``(batch, time, vocab)`` from decoder states ``(batch, time, hidden)`` and the two memories."""
        rows, time, line_slots = line.index.shape
        if self.attention.kind == "luong":
            # Scores against every slot of the row, then the line's slots picked out: a (time x slots) product is
            # cheaper than copying keys per position.
            line_scores = self.attention(states, line.keys).gather(2, line.index)
        else:
            flat = line.index.reshape(rows, time * line_slots, 1).expand(-1, -1, line.keys.shape[-1])
            keys = line.keys.gather(1, flat).view(rows, time, line_slots, -1)
            line_scores = self.attention(states, keys)
        scores = torch.cat([self.attention(states, shared.keys), line_scores], dim=-1)
        mask = torch.cat([shared.mask.unsqueeze(1).expand(-1, time, -1), line.mask], dim=-1)
        # The null slot is never masked, so no row of the softmax is all -inf.
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        on_shared, on_line = weights.split([shared.mask.shape[1], line_slots], dim=-1)
        # Masked slots point at slot 0 with weight exactly 0, so adding them there changes nothing.
        on_slots = on_line.new_zeros(rows, time, line.values.shape[1]).scatter_add(2, line.index, on_line)
        context = torch.bmm(on_shared, shared.values) + torch.bmm(on_slots, line.values)
        attentional = torch.tanh(self.combine(torch.cat([states, context], dim=-1)))
        return self.output(self.dropout(attentional))
