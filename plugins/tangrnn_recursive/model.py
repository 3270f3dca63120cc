"""The recursive poetry model: sentence model (a prosodic tree), context model (a GRU over lines) and generation
model (a character LSTM conditioned on the context), in the spirit of Zhang and Lapata (2014), "Chinese Poetry
Generation with Recurrent Neural Networks", with their convolutional sentence model replaced by a tree.

As a language model it stays causal: the context used at position ``t`` is built from the lines completed by
``inputs[:, :t+1]`` only; a line enters the context when its line-end mark (``TokenSpec.line_end_ids``) is read,
so the first character of line ``k + 1`` is predicted from lines ``0..k``.

``forward`` has no loop over characters: it finds every completed line of the batch at once, composes them all in
a few batched products (:class:`~tangrnn_recursive.tree.ProsodicTree`), runs the fused context GRU over each
poem's lines, gathers each position's context, and runs the fused generation LSTM over the whole sequence.
``step`` keeps the current line's character ids in a buffer and composes it when the line's mark arrives.

Two departures from the paper, both deliberate: the generation LSTM runs through the whole poem instead of
restarting at each line (it then carries what a line-level context carries poorly, such as the position in the
poem and the sound of the last line end, and one fused call covers the whole sequence), and the context enters
every character's input and the output layer, where the paper feeds it through position-specific matrices.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tangrnn_core.api import Architecture, Batch, State, TokenSpec
from tangrnn_recursive.tree import ProsodicTree

#: Characters the step buffer holds at first; it doubles when a longer (irregular) line needs it.
BUFFER_SIZE = 8


class RecursiveRNN(Architecture):
    """Tree-structured poetry model: each finished line is composed along its prosodic structure (2+3, 2+2+3, the
    final three both 2+1 and 1+2 mixed by a gate), a GRU over the line vectors gives the context, and a character
    LSTM whose every input carries that context writes the next line.

    Args:
        tokens: vocabulary size and special ids (given by the core).
        embedding_size: size of the character embeddings, shared by the tree's leaves and the generation model.
        tree_size: size of the node and line vectors of the sentence model (the prosodic tree).
        context_size: size of the context model's state, the context every character of the next line sees.
        hidden_size: size of the generation LSTM's state.
        num_layers: layers of the generation LSTM.
        dropout: dropout on the embeddings, the line vectors, between LSTM layers and before the output layer.
        tie_weights: share the embedding matrix with the output layer (a linear projection maps the LSTM state
            and the context to the embedding size first).
    """

    plugin_api = 1

    def __init__(
        self,
        tokens: TokenSpec,
        embedding_size: int = 256,
        tree_size: int = 256,
        context_size: int = 256,
        hidden_size: int = 512,
        num_layers: int = 2,
        dropout: float = 0.1,
        tie_weights: bool = True,
    ) -> None:
        super().__init__(tokens)
        if min(embedding_size, tree_size, context_size, hidden_size, num_layers) < 1:
            raise ValueError("embedding_size, tree_size, context_size, hidden_size and num_layers must be at least 1")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.context_size = context_size
        self.embedding = nn.Embedding(tokens.vocab_size, embedding_size, padding_idx=tokens.pad_id)
        self.dropout = nn.Dropout(dropout)
        self.tree = ProsodicTree(embedding_size, tree_size)
        self.context_rnn = nn.GRU(tree_size, context_size, batch_first=True)
        # The context before the first line: a learned opening, so the first line is not written from nothing.
        self.initial_context = nn.Parameter(torch.zeros(context_size))
        self.generator = nn.LSTM(
            embedding_size + context_size,
            hidden_size,
            num_layers=num_layers,
            dropout=dropout if num_layers > 1 else 0.0,
            batch_first=True,
        )
        features = hidden_size + context_size
        self.projection: nn.Module = nn.Identity()
        if tie_weights:
            self.projection = nn.Linear(features, embedding_size, bias=False)
            features = embedding_size
        self.output = nn.Linear(features, tokens.vocab_size)
        if tie_weights:
            self.output.weight = self.embedding.weight
        # Derived from the TokenSpec (never hard-coded), and not saved: a checkpoint rebuilds them from its tokens.
        self.register_buffer("line_end_ids", torch.tensor(tokens.line_end_ids, dtype=torch.long), persistent=False)
        # Ids that are neither a character of a line nor a line end: <bos> and padding (and <eos>, never an
        # input in training, but a decoder may feed it after a poem ends).
        outside = (tokens.pad_id, tokens.bos_id, tokens.eos_id)
        self.register_buffer("outside_ids", torch.tensor(outside, dtype=torch.long), persistent=False)

    # -- training: every position at once -----------------------------------------------------------------

    def forward(self, batch: Batch) -> Tensor:
        inputs = batch.inputs
        embedded = self.dropout(self.embedding(inputs))
        contexts = self._contexts(inputs, embedded)
        hidden, _ = _recur(self.generator, torch.cat([embedded, contexts], dim=-1))
        return self._logits(hidden, contexts)

    def _contexts(self, inputs: Tensor, embedded: Tensor) -> Tensor:
        """``(batch, time, context_size)``: at each position, the context of the lines completed so far."""
        rows, _ = inputs.shape
        is_end = torch.isin(inputs, self.line_end_ids)
        is_char = ~(is_end | torch.isin(inputs, self.outside_ids))
        # Inclusive: the mark at t completes its line, so from t on the context includes it.
        ends_read = is_end.long().cumsum(1)
        line_of = ends_read - is_end.long()  # the line each position belongs to, its mark included
        chars_read = is_char.long().cumsum(1)
        # Characters read before the line a position belongs to began: the count at the latest mark before it.
        at_marks = torch.where(is_end, chars_read, 0).cummax(1).values
        before_line = torch.cat([at_marks.new_zeros(rows, 1), at_marks[:, :-1]], dim=1)

        lines_per_row = ends_read[:, -1]
        first_line = lines_per_row.cumsum(0) - lines_per_row  # flat index of each row's first completed line
        end_row, end_time = torch.nonzero(is_end, as_tuple=True)  # row-major: (row, line) order
        line_lengths = (chars_read - before_line)[end_row, end_time]
        width = int(line_lengths.max()) if len(line_lengths) else 0
        # Characters of completed lines only: the line being written waits for its mark.
        complete = is_char & (line_of < lines_per_row[:, None])
        char_row, char_time = torch.nonzero(complete, as_tuple=True)
        flat_line = first_line[char_row] + line_of[char_row, char_time]
        position = (chars_read - 1 - before_line)[char_row, char_time]
        chars = embedded.new_zeros(len(line_lengths), width, embedded.shape[-1])
        chars = chars.index_put((flat_line, position), embedded[char_row, char_time])
        vectors = self.dropout(self.tree(chars, line_lengths))

        most = int(lines_per_row.max()) if rows else 0
        opening = self.initial_context.expand(rows, 1, -1)
        if most == 0:
            table = opening
        else:
            by_poem = vectors.new_zeros(rows, most, vectors.shape[-1])
            by_poem = by_poem.index_put((end_row, line_of[end_row, end_time]), vectors)
            after, _ = _recur(self.context_rnn, by_poem, opening.transpose(0, 1).contiguous())
            # table[:, k] is the context after k lines; padding lines past a poem's end are never gathered.
            table = torch.cat([opening, after], dim=1)
        return table.gather(1, ends_read[..., None].expand(-1, -1, self.context_size))

    def _logits(self, hidden: Tensor, contexts: Tensor) -> Tensor:
        return self.output(self.projection(self.dropout(torch.cat([hidden, contexts], dim=-1))))

    # -- decoding: one character at a time ----------------------------------------------------------------

    def initial_state(self, batch_size: int, context: Batch | None = None) -> State:
        """``(hidden, cell, context, line, filled)``, every tensor batch-first: the generation LSTM's
        ``(batch, layers, hidden)`` states, the current context, the current line's character ids (padded) and
        how many of them are real."""
        weight = self.embedding.weight  # states follow the weights' device and dtype (bf16 decoding too)
        device = weight.device
        layers, hidden_size = self.generator.num_layers, self.generator.hidden_size
        hidden = weight.new_zeros(batch_size, layers, hidden_size)
        return (
            hidden,
            torch.zeros_like(hidden),
            self.initial_context.detach().expand(batch_size, -1).clone(),
            torch.full((batch_size, BUFFER_SIZE), self.tokens.pad_id, dtype=torch.long, device=device),
            torch.zeros(batch_size, dtype=torch.long, device=device),
        )

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        hidden, cell, context, line, filled = state
        is_end = torch.isin(tokens, self.line_end_ids)
        is_char = ~(is_end | torch.isin(tokens, self.outside_ids))
        if bool(is_end.any()):
            # Only the rows whose line just ended are composed and moved on.
            rows = torch.nonzero(is_end).squeeze(1)
            lengths = filled[rows]
            chars = self.embedding(line[rows, : max(int(lengths.max()), 1)])
            vectors = self.tree(chars, lengths)
            _, moved = _recur(self.context_rnn, vectors[:, None], context[rows][None].contiguous())
            context = context.index_copy(0, rows, moved[0].to(context.dtype))
            filled = torch.where(is_end, 0, filled)
        if int(filled.max()) >= line.shape[1]:  # a long irregular line: make room
            line = torch.cat([line, torch.full_like(line, self.tokens.pad_id)], dim=1)
        written = line.scatter(1, filled[:, None], tokens[:, None])
        line = torch.where(is_char[:, None], written, line)
        filled = filled + is_char.long()

        inputs = torch.cat([self.embedding(tokens), context], dim=-1)[:, None]
        states = (hidden.transpose(0, 1).contiguous(), cell.transpose(0, 1).contiguous())
        output, (hidden, cell) = _recur(self.generator, inputs, states)
        logits = self._logits(output[:, 0], context)
        return logits, (hidden.transpose(0, 1), cell.transpose(0, 1), context, line, filled)


def _recur(module: nn.Module, inputs: Tensor, state: State = None) -> tuple[Tensor, State]:
    """Runs a recurrent module, giving it the autocast dtype under CPU autocast: oneDNN's fused LSTM refuses an
    fp32 input (or state) with bf16 weights ("could not create a primitive descriptor")."""
    device = inputs.device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
        inputs = inputs.to(dtype)
        if isinstance(state, tuple):
            state = tuple(part.to(dtype) for part in state)
        elif state is not None:
            state = state.to(dtype)
    return module(inputs, state)
