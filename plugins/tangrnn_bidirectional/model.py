"""A bidirectional recurrent infilling model: restores hidden characters from the text on both sides.

The core trains it mask-predict style (:func:`tangrnn_core.objectives.masked_batch`): a random share of each
poem's characters becomes ``<mask>`` and the network scores the original character at every position. It
writes poems by iterative mask-predict over a template (``tangrnn generate --template`` or an all-blank
``--form``), never left to right, so it has the ``infill`` capability only.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tangrnn_bidirectional.encoder import BidirectionalEncoder, Cell
from tangrnn_core.api import INFILL, Architecture, Batch, TokenSpec

#: Buckets of the position inside a line: 0 to 14, and one for 15 or more (a line that long has lost its mark).
LINE_POSITIONS = 16
#: Buckets of the line index: lines 1 to 15, and one for the sixteenth line and later (long 排律 and 古体).
LINE_INDICES = 16


def layout_positions(inputs: Tensor, line_end_ids: Tensor) -> tuple[Tensor, Tensor]:
    """Each position's place in the poem's layout, read from the line-end marks present in ``inputs``.

    Args:
        inputs: ``(batch, time)`` ids.
        line_end_ids: ``(marks,)`` ids that end a verse line.

    Returns:
        ``(batch, time)`` position inside the line (0 for a line's first character; a mark gets the length of
        its line) and ``(batch, time)`` index of the line, both counted from the marks before each position.
        A hidden (``<mask>``) mark is not seen, so its line seems to run on into the next one.
    """
    width = inputs.shape[1]
    ends = torch.isin(inputs, line_end_ids)
    line_index = ends.long().cumsum(1) - ends.long()
    steps = torch.arange(width, device=inputs.device).expand_as(inputs)
    last_end = torch.where(ends, steps, torch.full_like(steps, -1)).cummax(1).values
    # the mark closing the previous line: the last one strictly before each position
    previous = torch.cat([torch.full_like(last_end[:, :1], -1), last_end[:, :-1]], dim=1)
    return steps - previous - 1, line_index


class BidirectionalInfill(Architecture):
    """Bidirectional GRU or LSTM character infilling model: fills ``<mask>`` positions from both sides.

    The network reads ``embedding (+ line-position embeddings) -> BidirectionalEncoder -> output layer`` and
    scores every position's character from both of its contexts at once. Trained by the core on masked poems,
    it fills templates by iterative mask-predict (``tangrnn generate --template 白日依山尽，□□□□□。``) and
    writes whole poems from all-blank templates (``--form 五律``); it cannot write left to right, so
    ``--prefix`` and ``--num_beams`` are refused.

    Args:
        tokens: vocabulary size and special ids (given by the core).
        cell: ``gru`` or ``lstm`` (torch's fused bidirectional modules).
        embedding_size: size of the character (and position) embeddings.
        hidden_size: units of each direction of each layer; the top layer gives ``2 * hidden_size`` features.
        num_layers: stacked bidirectional layers.
        dropout: dropout on the embeddings, between layers and before the output layer.
        line_positions: add embeddings of each character's position inside its line and of its line's index,
            counted from the line-end marks in the input (a template gives all of them), so that the network
            knows where a blank sits in a fixed layout (line ends, the rhyme position, parallel couplets)
            without counting.
        tie_weights: share the embedding matrix with the output layer; a linear projection maps the
            ``2 * hidden_size`` features to ``embedding_size`` first (when they differ).
    """

    plugin_api = 1
    capabilities = frozenset({INFILL})

    def __init__(
        self,
        tokens: TokenSpec,
        cell: Cell = "lstm",
        embedding_size: int = 256,
        hidden_size: int = 256,
        num_layers: int = 2,
        dropout: float = 0.1,
        line_positions: bool = True,
        tie_weights: bool = True,
    ) -> None:
        super().__init__(tokens)
        if min(embedding_size, hidden_size, num_layers) < 1:
            raise ValueError("embedding_size, hidden_size and num_layers must be at least 1")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if line_positions and not tokens.line_end_ids:
            raise ValueError("line_positions needs the line-end ids (TokenSpec.line_end_ids); set it to false")
        self.embedding = nn.Embedding(tokens.vocab_size, embedding_size, padding_idx=tokens.pad_id)
        self.line_position: nn.Embedding | None = None
        self.line_index: nn.Embedding | None = None
        if line_positions:
            self.line_position = nn.Embedding(LINE_POSITIONS, embedding_size)
            self.line_index = nn.Embedding(LINE_INDICES, embedding_size)
            # Zeros at first: added to the characters' N(0, 1) embeddings, random ones would drown them out
            # while the network is still learning which character is which; they grow as the layout helps.
            nn.init.zeros_(self.line_position.weight)
            nn.init.zeros_(self.line_index.weight)
        # a buffer, so that it follows the module to the device; not saved, since TokenSpec rebuilds it
        self.register_buffer("line_end_ids", torch.tensor(tokens.line_end_ids, dtype=torch.long), persistent=False)
        self.dropout = nn.Dropout(dropout)
        self.encoder = BidirectionalEncoder(embedding_size, hidden_size, num_layers, cell, dropout)
        features = self.encoder.output_size
        self.projection: nn.Module = nn.Identity()
        if tie_weights and features != embedding_size:
            self.projection = nn.Linear(features, embedding_size, bias=False)
            features = embedding_size
        self.output = nn.Linear(features, tokens.vocab_size)
        if tie_weights:
            self.output.weight = self.embedding.weight

    def embed(self, inputs: Tensor) -> Tensor:
        """``(batch, time, embedding_size)``: the characters' embeddings plus, with ``line_positions``, those
        of their place in the layout."""
        embedded = self.embedding(inputs)
        if self.line_position is not None and self.line_index is not None:
            position, line = layout_positions(inputs, self.line_end_ids)
            embedded = embedded + self.line_position(position.clamp(max=LINE_POSITIONS - 1))
            embedded = embedded + self.line_index(line.clamp(max=LINE_INDICES - 1))
        return embedded

    def forward(self, batch: Batch) -> Tensor:
        hidden, _ = self.encoder(self.dropout(self.embed(batch.inputs)), batch.lengths)
        return self.output(self.projection(self.dropout(hidden)))
