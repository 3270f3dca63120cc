"""Logit processors: constraints that mask the scores of the next character at every decoding step.

Every processor derives from :class:`LogitsProcessor`. A constraint that a generation request can ask for
also declares its :class:`Stage` and builds itself from the request's :class:`~tangrnn_core.decoding.plan.Plan`
(``from_plan``); :func:`~tangrnn_core.decoding.pipeline.build_processors` orders them by stage, so no builder
hard-codes an order. Processors that keep per-poem progress derive from :class:`PositionTracker`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from tangrnn_core.data.normalize import LINE_END_MARKS
from tangrnn_core.data.vocab import Vocabulary
from tangrnn_core.decoding.tokens import ids_mask, verse_character_mask

if TYPE_CHECKING:
    from tangrnn_core.decoding.decoder import DecodeState
    from tangrnn_core.decoding.plan import Plan


class Stage(enum.IntEnum):
    """When a constraint applies within a step; later stages see (and may override) the earlier ones' masks."""

    #: The shape of the form: lines, their lengths and end marks.
    SHAPE = 10
    #: Tones and rhyme, planned around the characters the later stages will force.
    PROSODY = 20
    #: Which characters may be used at all (no repeats, characters to avoid).
    CONTENT = 30
    #: Characters a user fixed (acrostic heads, a first line, a template): last, so they override every mask.
    FORCED = 40


class LogitsProcessor:
    """Changes ``(batch, vocab)`` logits before a character is chosen; ``-inf`` forbids a character.

    The decoder calls :meth:`reorder` whenever its rows move (beam search selects and repeats them, sampling
    drops finished poems); a processor that keeps per-row progress follows them there.
    """

    #: Where the processor applies among a request's constraints (``None``: not built from a request).
    stage: ClassVar[Stage | None] = None

    @classmethod
    def from_plan(cls, vocabulary: Vocabulary, plan: Plan) -> LogitsProcessor | None:
        """This constraint for ``plan``, or ``None`` when the plan does not ask for it."""
        raise NotImplementedError(f"{cls.__name__} is not built from a generation request")

    def __call__(self, state: DecodeState, logits: Tensor) -> Tensor:
        raise NotImplementedError

    def reorder(self, index: Tensor) -> None:
        """Takes the rows ``index`` names, in that order (the old row of each new row). Stateless: nothing."""


class BanTokens(LogitsProcessor):
    """Never emits the given ids (``<pad>``, ``<unk>`` and ``<bos>``, in every decoder).

    Args:
        ids: ids that may never be generated.
    """

    def __init__(self, ids: Iterable[int]) -> None:
        self.ids = torch.tensor(sorted(set(ids)), dtype=torch.long)

    def __call__(self, state: DecodeState, logits: Tensor) -> Tensor:
        logits[:, self.ids.to(logits.device)] = float("-inf")
        return logits


class PositionTracker(LogitsProcessor):
    """Keeps, per poem, ``line`` (line-end marks emitted) and ``pos`` (verse characters since the last one),
    in sync with ``state.generated``: one column a call normally, the whole history after a restart.

    A poem's *line* is counted by line-end marks (every mark of
    :data:`~tangrnn_core.data.normalize.LINE_END_MARKS`, ``，。？！；：``), never by ``。`` alone; the *position*
    in a line is the number of verse characters since the last line-end mark. An instance restarts when it sees
    a decode with no columns yet, or one of another batch size, so make one per decoding call.

    Subclasses keep their tables in ``_tables_cpu`` (moved to the logits' device as ``_tables``), name their
    per-row tensors in ``_row_state`` and extend ``_reset`` and ``_advance``.

    Args:
        vocabulary: the model's vocabulary.
    """

    #: Per-row tensors that move with their poem when the decoder reorders the batch.
    _row_state: tuple[str, ...] = ("line", "pos")

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        self._tables_cpu: dict[str, Tensor] = {
            "verse": verse_character_mask(vocabulary),
            "line_end": ids_mask(vocabulary, LINE_END_MARKS),
        }
        self._tables: dict[str, Tensor] = {}
        self._device: torch.device | None = None
        self._steps = 0
        self.line: Tensor | None = None
        self.pos: Tensor | None = None

    def _reset(self, batch: int, device: torch.device) -> None:
        if device != self._device:
            self._tables = {name: table.to(device) for name, table in self._tables_cpu.items()}
            self._device = device
        self.line = torch.zeros(batch, dtype=torch.long, device=device)
        self.pos = torch.zeros(batch, dtype=torch.long, device=device)
        self._steps = 0

    def reorder(self, index: Tensor) -> None:
        for name in self._row_state:
            value = getattr(self, name, None)
            if value is not None:
                setattr(self, name, value.index_select(0, index))

    def _advance(self, tokens: Tensor) -> None:
        end = self._tables["line_end"][tokens]
        verse = self._tables["verse"][tokens]
        self.line += end
        self.pos = torch.where(end, 0, self.pos + verse)

    def _sync(self, state: DecodeState, logits: Tensor) -> None:
        steps = state.generated.shape[1]
        if (
            steps == 0
            or self.line is None
            or steps < self._steps
            or self.line.shape[0] != logits.shape[0]
            or self.line.device != logits.device
        ):
            self._reset(logits.shape[0], logits.device)
        for column in range(self._steps, steps):  # one column a step; the whole history after a restart
            self._advance(state.generated[:, column])
        self._steps = steps
