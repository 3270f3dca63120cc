"""Templates: a poem with blanks (``白日依山尽，黄河入海流。欲穷□□□，更上一层楼。``) that a model fills in.

A template fixes a poem's whole layout: its length, its punctuation and the characters it already has. Every
architecture can fill one: a left-to-right network is forced through it by :class:`TemplateConstraint`, a
masked (``infill``) network restores the blanks from both sides by mask-predict (:mod:`.infill`). The form,
acrostic and first-line options of ``tangrnn generate`` become templates too when a network writes by infilling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from tangrnn_core.data.forms import Form, classify
from tangrnn_core.data.normalize import LINE_END_MARKS
from tangrnn_core.data.vocab import Vocabulary
from tangrnn_core.decoding.processors import LogitsProcessor, Stage
from tangrnn_core.decoding.tokens import SPACES, verse_character_mask
from tangrnn_core.errors import ConfigError

if TYPE_CHECKING:
    from tangrnn_core.decoding.plan import Plan

#: Characters that stand for a blank in a template (the first one is the one to type).
BLANK_MARKS = "□_＿*"
_NEG_INF = float("-inf")


@dataclass(frozen=True)
class Template:
    """A poem's layout: a character, or ``None`` for a blank, at every position (punctuation included).

    Args:
        slots: what each position holds.
    """

    slots: tuple[str | None, ...]

    @classmethod
    def parse(cls, text: str) -> Template:
        """A template from text, blanks written ``□`` (or ``_``, ``＿``, ``*``); spaces are ignored."""
        slots = tuple(None if char in BLANK_MARKS else char for char in text if char not in SPACES)
        if not slots:
            raise ConfigError("--template is empty; write a poem with □ for each character to fill in")
        if all(slot is not None for slot in slots):
            raise ConfigError("--template has no blank; mark the characters to fill in with □")
        return cls(slots)

    @classmethod
    def blank(cls, chars: int, lines: int) -> Template:
        """An all-blank poem of ``lines`` lines of ``chars`` characters; odd lines end in ``，``, even ones in
        ``。`` (a last odd line, too)."""
        slots: list[str | None] = []
        for line in range(lines):
            slots.extend([None] * chars)
            slots.append("，" if line % 2 == 0 and line != lines - 1 else "。")
        return cls(tuple(slots))

    def __len__(self) -> int:
        return len(self.slots)

    @property
    def form(self) -> Form:
        """The form the filled poem will have (blanks count as characters)."""
        return classify("".join("字" if slot is None else slot for slot in self.slots))

    def line_starts(self) -> list[int]:
        """The position of the first character of every line."""
        starts = [0]
        for position, slot in enumerate(self.slots[:-1]):
            if slot is not None and slot in LINE_END_MARKS:
                starts.append(position + 1)
        return starts

    def line_lengths(self) -> list[int]:
        """The number of characters (marks excluded) of every line."""
        closed = self.slots[-1] is not None and self.slots[-1] in LINE_END_MARKS
        ends = [*self.line_starts()[1:], len(self.slots) + (0 if closed else 1)]
        return [end - start - 1 for start, end in zip(self.line_starts(), ends)]

    def with_heads(self, heads: str) -> Template:
        """The template with ``heads`` opening its lines in order (藏头诗)."""
        starts = self.line_starts()
        if len(heads) > len(starts):
            raise ConfigError(
                f"{len(heads)} acrostic heads for a poem of {len(starts)} lines; give at most {len(starts)}"
            )
        slots = list(self.slots)
        for line, (head, start) in enumerate(zip(heads, starts), start=1):
            if slots[start] is not None and slots[start] != head:
                raise ConfigError(
                    f"line {line} of the template starts with {slots[start]} but its acrostic head is {head}; "
                    "make them agree or leave that position blank"
                )
            slots[start] = head
        return Template(tuple(slots))

    def with_first_line(self, line: str) -> Template:
        """The template with its first line written as ``line`` (its end mark, if given, must match)."""
        line = "".join(char for char in line if char not in SPACES)
        text = line.rstrip(LINE_END_MARKS)
        length = self.line_lengths()[0]
        if len(text) != length:
            raise ConfigError(f"the first line '{text}' has {len(text)} characters but the poem's lines have {length}")
        slots = list(self.slots)
        for position, char in enumerate(text):
            if slots[position] is not None and slots[position] != char:
                raise ConfigError(
                    f"the first line '{text}' differs from the template at character {position + 1}; make them agree"
                )
            slots[position] = char
        return Template(tuple(slots))

    def ids(self, vocabulary: Vocabulary) -> Tensor:
        """``(length,)`` ids of the fixed characters and ``-1`` at the blanks.

        Raises:
            ConfigError: a fixed character is not in the vocabulary (all of them are named).
        """
        unknown = vocabulary.unknown("".join(slot for slot in self.slots if slot is not None))
        if unknown:
            raise ConfigError(
                f"the template has characters not in the model's vocabulary: {', '.join(unknown)}; "
                "replace them or leave those positions blank"
            )
        return torch.tensor([-1 if slot is None else vocabulary.id_of(slot) for slot in self.slots], dtype=torch.long)


class TemplateConstraint(LogitsProcessor):
    """Makes a left-to-right network write exactly ``template``: its characters where it has them, a verse
    character at every blank, ``<eos>`` after the last position.

    Args:
        vocabulary: the model's vocabulary.
        template: the layout to follow (acrostic heads and a first line already merged in).
    """

    stage = Stage.FORCED

    @classmethod
    def from_plan(cls, vocabulary: Vocabulary, plan: Plan) -> TemplateConstraint | None:
        return None if plan.template is None else cls(vocabulary, plan.template)

    def __init__(self, vocabulary: Vocabulary, template: Template) -> None:
        self.template = template
        self._ids = template.ids(vocabulary)
        self._verse = verse_character_mask(vocabulary)
        self._eos = vocabulary.eos_id

    def __call__(self, state, logits: Tensor) -> Tensor:
        step = state.step
        fixed = int(self._ids[step]) if step < len(self._ids) else self._eos
        if fixed >= 0:
            # Forced whatever earlier masks said (no-repeat bans a template's own characters elsewhere).
            logits.fill_(_NEG_INF)
            logits[:, fixed] = 0.0
        else:
            logits.masked_fill_(~self._verse.to(logits.device), _NEG_INF)
        return logits

    def __repr__(self) -> str:
        return f"TemplateConstraint({''.join(slot or '□' for slot in self.template.slots)})"
