"""Constraint logit processors of a generation request: the form's shape, forced characters (acrostic heads,
a given first line), no repeated characters and characters to avoid.

Each is a :class:`~tangrnn_core.decoding.processors.LogitsProcessor` built from the request's plan
(``from_plan``) at its :class:`~tangrnn_core.decoding.processors.Stage`: it sets the logits of forbidden ids to
``-inf``, vectorised over the batch. Tables of ids are built once from the vocabulary in ``__init__``; those that
keep every poem's progress (lines finished, characters in the current line) derive from
:class:`~tangrnn_core.decoding.processors.PositionTracker`. Make one instance per decoding call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from tangrnn_core.data.forms import Form
from tangrnn_core.data.normalize import POEM_END_MARKS
from tangrnn_core.data.vocab import Vocabulary
from tangrnn_core.decoding.plan import (
    ODD_LINE_END,
    Plan,
    acrostic_places,
    check_forced_characters,
    check_shape,
    first_line_places,
)
from tangrnn_core.decoding.processors import LogitsProcessor, PositionTracker, Stage
from tangrnn_core.decoding.tokens import ids_mask, strip_spaces
from tangrnn_core.errors import ConfigError

if TYPE_CHECKING:
    from tangrnn_core.decoding.decoder import DecodeState

__all__ = [
    "FormConstraint",
    "ForcedCharacters",
    "NoRepeat",
    "AvoidCharacters",
    "form_constraint_for",
    "acrostic_constraint",
    "first_line_constraint",
]

_NEG_INF = float("-inf")


def _fill_rows(logits: Tensor, rows: Tensor, value: float) -> None:
    """``logits[rows] = value`` in place (one fast fill when ``rows`` is the whole batch)."""
    if rows.numel() == logits.shape[0]:
        logits.fill_(value)
    else:
        logits.index_fill_(0, rows, value)


def _allow_only(logits: Tensor, rows: Tensor, ids: Tensor) -> None:
    """In ``rows``, every id but ``ids`` becomes ``-inf`` (in place)."""
    if rows.numel() == logits.shape[0]:
        kept = logits[:, ids]
        logits.fill_(_NEG_INF)
        logits[:, ids] = kept
    else:
        index = (rows[:, None], ids[None, :])
        kept = logits[index]
        logits.index_fill_(0, rows, _NEG_INF)
        logits[index] = kept


def _ban(logits: Tensor, rows: Tensor, ids: Tensor) -> None:
    """In ``rows``, ``ids`` become ``-inf`` (in place)."""
    if rows.numel() == logits.shape[0]:
        logits[:, ids] = _NEG_INF
    else:
        logits[rows[:, None], ids[None, :]] = _NEG_INF


class FormConstraint(PositionTracker):
    """The hard shape of a form: ``lines`` lines of exactly ``chars`` verse characters, each closed by one mark.

    Odd lines (1st, 3rd ...) end with ``，``; even lines with one of ``。？！`` (those in the vocabulary); after
    the last line's mark only ``<eos>`` may follow; ``<eos>`` nowhere else; no punctuation inside a line
    (``、``, ``；``, ``：``, ``·`` ... are never written).

    Args:
        vocabulary: the model's vocabulary.
        chars: verse characters a line (5 or 7 for the regular forms; any positive number here).
        lines: lines a poem (4 or 8 for the regular forms; any positive number here).

    Raises:
        ConfigError: the vocabulary lacks ``，`` or ``。`` or has no verse characters, or a count is not positive.
    """

    stage = Stage.SHAPE

    @classmethod
    def from_plan(cls, vocabulary: Vocabulary, plan: Plan) -> FormConstraint | None:
        # A template fixes the shape itself (TemplateConstraint).
        if plan.template is not None or plan.chars is None:
            return None
        return cls(vocabulary, plan.chars, plan.lines)

    def __init__(self, vocabulary: Vocabulary, chars: int, lines: int) -> None:
        if int(chars) < 1 or int(lines) < 1:
            raise ConfigError(f"a form needs at least 1 character a line and 1 line, got chars={chars}, lines={lines}")
        for mark, use in ((ODD_LINE_END, "odd lines"), ("。", "even lines")):
            if mark not in vocabulary:
                raise ConfigError(
                    f"the model's vocabulary has no '{mark}' (it ends {use}); use a model trained on punctuated "
                    f"poems to generate a fixed form"
                )
        super().__init__(vocabulary)
        verse = self._tables_cpu["verse"]
        if not bool(verse.any()):
            raise ConfigError("the model's vocabulary has no verse characters; use a model trained on poems")
        self.chars, self.lines = int(chars), int(lines)
        # Allowed ids by situation: 0 inside a line, 1 at an odd line's end, 2 at an even line's end, 3 done.
        allowed = torch.stack(
            [
                verse,
                ids_mask(vocabulary, ODD_LINE_END),
                ids_mask(vocabulary, POEM_END_MARKS),
                ids_mask(vocabulary, ()),
            ]
        )
        allowed[3, vocabulary.eos_id] = True
        # Each situation is applied through the shorter id list: the few ids it bans (inside a line: specials
        # and punctuation) or the few it allows (at a line end); never through a (batch, vocab) mask.
        for situation, row in enumerate(allowed):
            if int(row.sum()) <= len(row) // 2:
                self._tables_cpu[f"allow{situation}"] = torch.nonzero(row).flatten()
            else:
                self._tables_cpu[f"ban{situation}"] = torch.nonzero(~row).flatten()

    def __call__(self, state: DecodeState, logits: Tensor) -> Tensor:
        self._sync(state, logits)
        situation = torch.where(self.pos < self.chars, 0, 1 + self.line % 2)
        situation = torch.where(self.line >= self.lines, 3, situation)
        first = int(situation[0])
        if bool((situation == first).all()):  # the usual case: every poem is at the same place of the form
            groups = [(first, torch.arange(logits.shape[0], device=logits.device))]
        else:
            groups = [(s, torch.nonzero(situation == s).flatten()) for s in range(4)]
        for s, rows in groups:
            if rows.numel() == 0:
                continue
            if f"allow{s}" in self._tables:
                _allow_only(logits, rows, self._tables[f"allow{s}"])
            else:
                _ban(logits, rows, self._tables[f"ban{s}"])
        return logits

    def __repr__(self) -> str:
        return f"FormConstraint(chars={self.chars}, lines={self.lines})"


def form_constraint_for(
    vocabulary: Vocabulary,
    form: Form | str | None = None,
    chars: int | None = None,
    lines: int | None = None,
) -> FormConstraint:
    """A :class:`FormConstraint` for a regular form, given as ``form`` (``五绝``, ``qilv`` ...), as ``chars``
    and ``lines``, or both when they agree.

    Raises:
        ConfigError: an unknown form or ``other``, ``chars`` not 5 or 7, ``lines`` not 4 or 8, only one of
            them without a form, a form that disagrees with them, or a vocabulary unfit for a fixed form.
    """
    if form is not None:
        form = Form.parse(form)
        if form.chars is None:
            raise ConfigError(
                f"the form '{form}' has no fixed shape; choose wujue (五绝), qijue (七绝), wulv (五律) or qilv (七律)"
            )
        for name, given, expected in (("chars", chars, form.chars), ("lines", lines, form.lines)):
            if given is not None and int(given) != expected:
                raise ConfigError(
                    f"{form} has {expected} {'characters a line' if name == 'chars' else 'lines'}, not "
                    f"{name}={given}; drop {name} or choose another form"
                )
        chars, lines = form.chars, form.lines
    elif chars is None and lines is None:
        raise ConfigError("no form given: give a form (wujue, qijue, wulv, qilv) or both chars and lines")
    check_shape(chars, lines)
    return FormConstraint(vocabulary, chars, lines)


class ForcedCharacters(PositionTracker):
    """Forces given characters at given places: ``forced[(line, position)] = character``, both 0-based.

    The line is the count of line-end marks emitted so far (any of ``，。？！；：``, whichever ended the line:
    a poem whose first line ends with ``？`` still has its second head at the start of line 1); the position is
    the count of verse characters since. At a forced place every other id is set to ``-inf``.

    A forced character overrides earlier masks: if a processor before this one set its logit to ``-inf`` (say
    :class:`NoRepeat`, because the character occurs earlier in the poem) it is given a finite logit, so a row
    never ends up all ``-inf``. Apply this processor **last**.

    Args:
        vocabulary: the model's vocabulary.
        forced: character by ``(line index, position in line)``.
        chars: characters a line; positions must be below it.

    Raises:
        ConfigError: a place out of range, a character that is punctuation, not one character, or not in the
            vocabulary (all such characters named).
    """

    stage = Stage.FORCED

    @classmethod
    def from_plan(cls, vocabulary: Vocabulary, plan: Plan) -> ForcedCharacters | None:
        if plan.template is not None or not plan.forced:
            return None
        return cls(vocabulary, plan.forced, plan.chars)

    def __init__(self, vocabulary: Vocabulary, forced: Mapping[tuple[int, int], str], chars: int) -> None:
        super().__init__(vocabulary)
        self.chars = int(chars)
        self.forced = dict(forced)
        for (line, position), char in self.forced.items():
            if line < 0 or not 0 <= position < self.chars:
                raise ConfigError(
                    f"cannot force a character at line {line}, position {position}: lines count from 0 and "
                    f"positions from 0 to {self.chars - 1}"
                )
            if not isinstance(char, str) or len(char) != 1:
                raise ConfigError(f"force one character at a place, got {char!r} at line {line}, position {position}")
        check_forced_characters(vocabulary, "".join(self.forced.values()))
        self.num_lines = 1 + max((line for line, _ in self.forced), default=-1)
        table = torch.full((max(self.num_lines, 1), self.chars), -1, dtype=torch.long)
        for (line, position), char in self.forced.items():
            table[line, position] = vocabulary.id_of(char)
        self._tables_cpu["forced"] = table

    def __call__(self, state: DecodeState, logits: Tensor) -> Tensor:
        self._sync(state, logits)
        if self.num_lines == 0:
            return logits
        inside = (self.line < self.num_lines) & (self.pos < self.chars) & ~state.finished
        target = self._tables["forced"][self.line.clamp(max=self.num_lines - 1), self.pos.clamp(max=self.chars - 1)]
        rows = torch.nonzero(inside & (target >= 0)).flatten()
        if rows.numel():
            ids = target[rows]
            kept = logits[rows, ids]
            kept = torch.where(torch.isfinite(kept), kept, torch.zeros_like(kept))
            _fill_rows(logits, rows, _NEG_INF)
            logits[rows, ids] = kept
        return logits

    def __repr__(self) -> str:
        return f"ForcedCharacters({self.forced!r}, chars={self.chars})"


def acrostic_constraint(vocabulary: Vocabulary, heads: str, chars: int, lines: int) -> ForcedCharacters:
    """An acrostic (藏头诗): ``heads[i]`` opens line ``i``; spaces are ignored; fewer heads than lines is fine.

    Raises:
        ConfigError: no heads, more heads than lines, punctuation among them, or characters not in the vocabulary.
    """
    return ForcedCharacters(vocabulary, acrostic_places(heads, lines), chars)


def first_line_constraint(vocabulary: Vocabulary, first_line: str, chars: int) -> ForcedCharacters:
    """The poem opens with ``first_line`` verbatim (``chars`` characters, with or without a trailing ``，``).

    Raises:
        ConfigError: punctuation inside the line, a length other than ``chars``, or characters not in the
            vocabulary.
    """
    return ForcedCharacters(vocabulary, first_line_places(first_line, chars), chars)


class NoRepeat(PositionTracker):
    """No verse character twice in a poem, except immediate reduplication (叠字).

    Reduplication - 青青, 萧萧, 漫漫, 离离 - is a device of classical verse, not careless repetition, so a
    character may follow itself once, inside one line: ``XX`` is allowed; ``XXX``, ``X?X`` and ``X`` on two
    lines are not. Punctuation is never restricted.

    It only forbids verse characters the poem has used (and ``reserved`` ones), so with :class:`FormConstraint`
    it leaves a choice while the vocabulary has more verse characters than the poem. Should it ever leave a
    row with nothing allowed (a tiny vocabulary, or stricter processors before it), it yields: that row keeps
    the logits it received. It also sets ``<pad>``'s logit to ``-inf`` (the decoder bans it anyway).

    Args:
        vocabulary: the model's vocabulary.
        reserved: characters never to be chosen freely, not even to double a forced one, e.g. the acrostic
            heads, so that they appear only where :class:`ForcedCharacters` (which overrides this mask, applied
            after it) puts them.
    """

    stage = Stage.CONTENT
    _row_state = ("line", "pos", "used", "previous", "run")

    @classmethod
    def from_plan(cls, vocabulary: Vocabulary, plan: Plan) -> NoRepeat | None:
        # The fixed characters are kept for their places, so they cannot be used up earlier in the poem.
        return cls(vocabulary, reserved=plan.reserved) if plan.no_repeat else None

    def __init__(self, vocabulary: Vocabulary, reserved: str = "") -> None:
        super().__init__(vocabulary)
        reserved_mask = ids_mask(vocabulary, reserved) & self._tables_cpu["verse"]
        self._tables_cpu["reserved"] = torch.nonzero(reserved_mask).flatten()
        self._tables_cpu["reserved_mask"] = reserved_mask
        self._pad_id = vocabulary.pad_id
        self.used: Tensor | None = None
        self.previous: Tensor | None = None
        self.run: Tensor | None = None

    def _reset(self, batch: int, device: torch.device) -> None:
        super()._reset(batch, device)
        # (batch, steps + reserved): the ids each poem may not use again; <pad> (banned by every decoder)
        # stands where a poem wrote punctuation. Growing one column a step, it stays far below (batch, vocab).
        self.used = self._tables["reserved"].expand(batch, -1).clone()
        self.previous = torch.full((batch,), -1, dtype=torch.long, device=device)  # last verse char in the line
        self.run = torch.zeros(batch, dtype=torch.long, device=device)  # how many times it just occurred

    def _advance(self, tokens: Tensor) -> None:
        super()._advance(tokens)
        verse = self._tables["verse"][tokens]
        again = verse & (tokens == self.previous)
        self.run = torch.where(again, self.run + 1, verse.long())
        self.previous = torch.where(verse, tokens, -1)
        self.used = torch.cat([self.used, torch.where(verse, tokens, self._pad_id)[:, None]], dim=1)

    def __call__(self, state: DecodeState, logits: Tensor) -> Tensor:
        self._sync(state, logits)
        if self.used.shape[1] == 0:
            return logits
        before = logits.gather(1, self.used)
        index = self.previous.clamp(min=0)[:, None]
        redouble = ((self.run == 1) & (self.previous >= 0) & ~self._tables["reserved_mask"][index[:, 0]])[:, None]
        previous_before = logits.gather(1, index)
        logits.scatter_(1, self.used, _NEG_INF)
        logits.scatter_(1, index, torch.where(redouble, previous_before, logits.gather(1, index)))
        dead = torch.nonzero(logits.amax(dim=1) == _NEG_INF).flatten()
        if dead.numel():  # nothing left in these rows: yield, give them back what they had
            logits[dead] = logits[dead].scatter(1, self.used[dead], before[dead])
        return logits

    def __repr__(self) -> str:
        return "NoRepeat()"


class AvoidCharacters(LogitsProcessor):
    """Characters a poem must not use anywhere (``--avoid 愁泪``). The planner refuses a request that both fixes
    and avoids a character, so the forced characters, applied later, never bring one back.

    Args:
        vocabulary: the model's vocabulary.
        characters: the characters to avoid; those not in the vocabulary are never written anyway.
    """

    stage = Stage.CONTENT

    @classmethod
    def from_plan(cls, vocabulary: Vocabulary, plan: Plan) -> AvoidCharacters | None:
        return cls(vocabulary, plan.banned) if plan.banned else None

    def __init__(self, vocabulary: Vocabulary, characters: str) -> None:
        self.characters = "".join(dict.fromkeys(c for c in strip_spaces(characters) if c in vocabulary))
        self.ids = torch.tensor([vocabulary.id_of(c) for c in self.characters], dtype=torch.long)

    def __call__(self, state: DecodeState, logits: Tensor) -> Tensor:
        if self.ids.numel():
            logits[:, self.ids.to(logits.device)] = _NEG_INF
        return logits

    def __repr__(self) -> str:
        return f"AvoidCharacters({self.characters!r})"
