"""Regulated verse as a logit processor: the tones of a pattern and one 平声 rhyme group, at every step.

:class:`ProsodyConstraint` keeps, per poem, the set of patterns (of the form's four) still open and the set of
平声 groups its rhymes may still come from; both only shrink. At each character it allows what at least one
open pattern allows there; after each character it drops the patterns that character contradicts. So
``pattern="auto"`` settles per poem as the poem is written: the first line's second character decides 平起 or
仄起, its last character whether the first line rhymes. ``rhyme="auto"`` takes the group(s) of the first rhyme
written and narrows them at each later rhyme.

Which characters fit where (decided here, so that every poem passes ``tangrnn check``):

* a token fits a 平 (仄) position only if every traditional character ``tangrnn check`` may read it as (itself,
  its OpenCC conversion, and the known characters written like it in simplified script: 干 stands for 干 乾 幹;
  see :func:`~tangrnn_core.prosody.tables.token_prosody`) has a known tone that is 平 (仄) or ○; tokens of
  unknown tone go only where the pattern leaves the tone free;
* a token may rhyme in a group only if every character it may stand for is in that group;
* ``loose`` tones fix the 2nd, 4th and 6th characters and the line ends (一三五不论), and also the two
  positions whose freedom would allow 孤平 (the 1st of 五言 平平仄仄平, the 3rd of 七言 中仄平平仄仄平) or
  三平尾 (the third from last of the rhyming 仄仄平平 endings), so that loose poems draw no warnings either.

Dead ends are ruled out ahead rather than met: forced characters (acrostic heads, a first line) restrict the
patterns from the start to those they fit (none: a one-line :class:`~tangrnn_core.errors.ConfigError`); with
``no_repeat`` the processor counts, per poem and group, the rhyme characters not yet used, chooses a first
rhyme only from groups with enough left for every rhyme to come, and keeps the last ones of a poem's group
out of non-rhyme positions. Beam search moves every per-poem state through :meth:`reorder`.

Its stage (:attr:`~tangrnn_core.decoding.processors.Stage.PROSODY`) puts it after the form's shape and before
no-repeat and the forced characters, which it plans for.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from tangrnn_core.data.forms import REGULAR_FORMS, Form
from tangrnn_core.data.vocab import Vocabulary
from tangrnn_core.decoding.plan import Plan
from tangrnn_core.decoding.processors import PositionTracker, Stage
from tangrnn_core.decoding.request import TONE_MODES
from tangrnn_core.decoding.tokens import ids_mask
from tangrnn_core.errors import ConfigError
from tangrnn_core.prosody.patterns import Pattern, ToneMode, pattern_named, patterns_for
from tangrnn_core.prosody.tables import Tone, convert_each, load_tables, token_prosody

if TYPE_CHECKING:
    from tangrnn_core.decoding.decoder import DecodeState

__all__ = ["ProsodyConstraint", "token_prosody"]

_NEG_INF = float("-inf")
_FREE, _PING, _ZE = 0, 1, 2  # what a position asks for
_NUM_GROUPS = 30  # the 平声 groups; a set of them fits in the low bits of an int64


@functools.lru_cache(maxsize=4)
def _token_tables(tokens: tuple[str, ...]) -> tuple[Tensor, Tensor, Tensor]:
    tables = load_tables()
    converted = convert_each(tokens)
    fits_ping, fits_ze, groups = [], [], []
    for token, traditional in zip(tokens, converted):
        ping, ze, bits = token_prosody(tables, token, traditional)
        fits_ping.append(ping)
        fits_ze.append(ze)
        groups.append(bits)
    # int32: the 30 group bits fit, and the (poems, vocabulary) tests at rhymes move half the bytes of int64
    return torch.tensor(fits_ping), torch.tensor(fits_ze), torch.tensor(groups, dtype=torch.int32)


class ProsodyConstraint(PositionTracker):
    """Tones of a pattern (strict or loose) and one 平声 rhyme group of 平水韵, per poem, at every step.

    Args:
        vocabulary: the model's vocabulary.
        form: 五绝, 七绝, 五律 or 七律.
        tones: ``strict``, ``loose`` or ``off`` (no tone constraint; the rhyme may still be asked for).
        pattern: a pattern name (``仄起首句不入韵`` ...) or ``auto`` (chosen per poem as it is written).
        rhyme: ``auto`` (the group of the first rhyme), a 平声 group (``东``, ``一东``), or ``None``/``off``.
        forced: characters that will be forced, by ``(line, position)`` (0-based): acrostic heads, a first line.
        reserved: characters ``NoRepeat`` keeps for their forced places (never usable as rhymes).
        banned: characters no place may use (``--avoid``): never counted among a group's rhymes.
        no_repeat: whether ``NoRepeat`` is applied too (then every rhyme must be a new character).

    Raises:
        ConfigError: no form, an unknown pattern, group or tone mode, a vocabulary without characters for a
            position or a group, or forced characters that fit no pattern.
    """

    stage = Stage.PROSODY
    _row_state = ("line", "pos", "patterns", "groups", "used", "previous")

    @classmethod
    def from_plan(cls, vocabulary: Vocabulary, plan: Plan) -> ProsodyConstraint | None:
        if not plan.prosody:
            return None
        if plan.form is None:
            raise ConfigError(
                "--tones, --pattern and --rhyme need a regular form: add --form 五绝, 七绝, 五律 or 七律 "
                "(or --chars 5|7 with --lines 4|8)"
            )
        return cls(
            vocabulary,
            plan.form,
            tones=plan.tones,
            pattern=plan.pattern,
            rhyme=plan.rhyme,
            forced=plan.forced,
            reserved=plan.reserved if plan.no_repeat else "",
            banned=plan.banned,
            no_repeat=plan.no_repeat,
        )

    def __init__(
        self,
        vocabulary: Vocabulary,
        form: Form | str,
        tones: str = "strict",
        pattern: str = "auto",
        rhyme: str | None = "auto",
        forced: Mapping[tuple[int, int], str] | None = None,
        reserved: str = "",
        no_repeat: bool = False,
        banned: str = "",
    ) -> None:
        super().__init__(vocabulary)
        self.form = Form.parse(form)
        if self.form not in REGULAR_FORMS:
            raise ConfigError("--tones, --pattern and --rhyme need a regular form: add --form 五绝, 七绝, 五律 or 七律")
        if tones not in TONE_MODES:
            raise ConfigError(f"unknown tone mode {tones!r}: choose strict, loose or off")
        rhyme = None if rhyme in (None, "", "off", "none") else rhyme
        if tones == "off" and rhyme is None:
            raise ConfigError("--pattern needs --tones strict or loose, or a rhyme (--rhyme auto)")
        self.tones, self.rhyme, self.no_repeat = tones, rhyme, bool(no_repeat)
        self._left_after = " left after --avoid" if banned else ""
        self.chars, self.lines = self.form.chars, self.form.lines
        self.patterns_all = patterns_for(self.form)
        self.prosody = load_tables()
        fits_ping, fits_ze, group_bits = _token_tables(tuple(vocabulary.tokens))
        verse = self._tables_cpu["verse"]
        fits_ping, fits_ze = fits_ping & verse, fits_ze & verse
        group_bits = torch.where(verse, group_bits, 0)
        self._require_characters(fits_ping, fits_ze)

        # What each pattern asks at each place, and where it rhymes; rows are patterns.
        required = torch.zeros((4, self.lines, self.chars), dtype=torch.long)
        rhymes = torch.zeros((4, self.lines, self.chars), dtype=torch.bool)
        for p in self.patterns_all:
            for line in range(self.lines):
                for position in range(self.chars):
                    tone = self._required(p, line, position)
                    required[p.index, line, position] = _FREE if tone is None else _PING if tone is Tone.PING else _ZE
                rhymes[p.index, line, self.chars - 1] = p.rhymes(line) and rhyme is not None
        # Rhyme places after each place, per pattern: how many rhymes a group must still supply.
        flat = rhymes.flatten(1)
        after = (flat.flip(1).cumsum(1).flip(1) - flat.long()).view(4, self.lines, self.chars)

        # Allowed tokens by what the open patterns ask: bit 0 some pattern leaves it free, bit 1 some asks 平,
        # bit 2 some asks 仄. Built once; each step reads one row of it per poem.
        by_need = torch.zeros((8, len(vocabulary)), dtype=torch.bool)
        for need in range(8):
            if need & 1:
                by_need[need] = True
            else:
                by_need[need] = (fits_ping if need & 2 else False) | (fits_ze if need & 4 else False)

        # Rhyme groups: the set allowed at the start, and how many usable characters each group has.
        if rhyme in (None, "auto"):
            start_groups = (1 << _NUM_GROUPS) - 1
        else:
            start_groups = 1 << self.prosody.group(rhyme).index
        unavailable = (ids_mask(vocabulary, reserved) | ids_mask(vocabulary, banned)) & verse
        pool_bits = torch.where(unavailable, 0, group_bits)
        members = ((pool_bits[:, None] >> torch.arange(_NUM_GROUPS)) & 1).bool()  # (vocab, 30)
        pool = members.sum(0)

        self._tables_cpu.update(
            bias=torch.where(by_need, 0.0, _NEG_INF),
            fits_ping=fits_ping,
            fits_ze=fits_ze,
            required=required,
            rhymes=rhymes,
            after=after,
            group_bits=group_bits,
            members=members.to(torch.int16),
            pool=pool,
            pattern_bit=1 << torch.arange(4),
            group_bit=(1 << torch.arange(_NUM_GROUPS)).to(torch.int32),
        )
        self._fits = (fits_ping, fits_ze)
        self._start_patterns = self._fitting_patterns(pattern, dict(forced or {}), start_groups, pool)
        self._start_groups = start_groups
        self._check_pool(start_groups, pool)
        self.patterns: Tensor | None = None
        self.groups: Tensor | None = None
        self.used: Tensor | None = None
        self.previous: Tensor | None = None

    # ----------------------------------------------------------------------------------------------- setup

    def _required(self, pattern: Pattern, line: int, position: int) -> Tone | None:
        if self.tones == "off":
            return None
        if self.tones == "strict":
            return pattern.required(line, position, ToneMode.STRICT)
        loose = pattern.required(line, position, ToneMode.LOOSE)
        kind, n = pattern.line_types[line], self.chars
        # Loose frees the 1st, 3rd and 5th characters; keep the one that prevents 孤平 in a B line and the one
        # that prevents 三平尾 in an A line, so that loose poems draw no warnings.
        if loose is None and ((kind == "B" and position == n - 5) or (kind == "A" and position == n - 3)):
            return pattern.required(line, position, ToneMode.STRICT)
        return loose

    def _require_characters(self, fits_ping: Tensor, fits_ze: Tensor) -> None:
        if self.tones == "off":
            return
        for tone, fits in (("平", fits_ping), ("仄", fits_ze)):
            if not bool(fits.any()):
                raise ConfigError(
                    f"the model's vocabulary has no character known to be {tone}; --tones needs a model trained "
                    f"on classical Chinese poems (or use --tones off)"
                )

    def _needed_rhymes(self) -> int:
        """Distinct rhyme characters a group must hold: every rhyme of a poem when they may not repeat."""
        if not self.no_repeat:
            return 1
        return max(len(p.rhyme_lines) for p in self.patterns_all)

    def _check_pool(self, start_groups: int, pool: Tensor) -> None:
        if self.rhyme is None:
            return
        needed = self._needed_rhymes()
        usable = [g for g in range(_NUM_GROUPS) if start_groups >> g & 1 and int(pool[g]) >= needed]
        if usable:
            return
        if self.rhyme == "auto":
            raise ConfigError(
                f"no 平声 rhyme group has {needed} characters in the model's vocabulary{self._left_after}; use a "
                f"model trained on more poems, avoid fewer characters, or drop --rhyme"
            )
        group = self.prosody.group(self.rhyme)
        raise ConfigError(
            f"the model's vocabulary has {int(pool[group.index])} characters of {group.full_name}{self._left_after}, "
            f"a {self.form.value} needs {needed}; choose another group or --rhyme auto"
        )

    def _fitting_patterns(self, pattern: str, forced: dict, start_groups: int, pool: Tensor) -> int:
        """The bit set of the patterns the forced characters fit (all four, or the one asked for)."""
        if pattern in (None, "", "auto"):
            candidates = list(self.patterns_all)
        else:
            candidates = [pattern_named(pattern, self.form)]
        fits_ping, fits_ze = self._fits
        group_bits = self._tables_cpu["group_bits"]
        reasons = []
        bits = 0
        for candidate in candidates:
            groups = start_groups
            problem = None
            for (line, position), char in sorted(forced.items()):
                if line >= self.lines or position >= self.chars or char not in self.vocabulary:
                    continue  # ForcedCharacters reports places and characters it cannot use
                token = self.vocabulary.id_of(char)
                need = int(self._tables_cpu["required"][candidate.index, line, position])
                tone = self._tone_word(char)
                if need == _PING and not bool(fits_ping[token]) or need == _ZE and not bool(fits_ze[token]):
                    wanted = "平" if need == _PING else "仄"
                    problem = f"{char} (line {line + 1}, position {position + 1}) is {tone}, it needs {wanted}"
                    break
                if bool(self._tables_cpu["rhymes"][candidate.index, line, position]):
                    groups &= int(group_bits[token])
                    if not any(groups >> g & 1 and int(pool[g]) >= self._needed_rhymes() for g in range(_NUM_GROUPS)):
                        problem = f"{char} (line {line + 1}, position {position + 1}) cannot rhyme there"
                        break
            if problem is None:
                bits |= 1 << candidate.index
            else:
                reasons.append(f"{candidate.name}: {problem}")
        if bits == 0:
            raise ConfigError(
                f"the given characters fit no {self.form.value} pattern with --tones {self.tones}"
                f"{' and --rhyme ' + self.rhyme if self.rhyme else ''} ({'; '.join(reasons)}); choose other "
                f"characters, another --pattern, --tones loose or --tones off"
            )
        return bits

    def _tone_word(self, char: str) -> str:
        """How a character's tone reads in messages: 平, 仄, 平 or 仄 (○), or of unknown tone."""
        tones = {self.prosody.tone(r) for r in self.prosody.readings(char)} - {None}
        if not tones:
            return "of unknown tone"
        if tones == {Tone.PING}:
            return "平"
        if tones == {Tone.ZE}:
            return "仄"
        return "平 or 仄"

    # ---------------------------------------------------------------------------------------- per-row state

    def _reset(self, batch: int, device: torch.device) -> None:
        super()._reset(batch, device)
        self.patterns = torch.full((batch,), self._start_patterns, dtype=torch.long, device=device)
        self.groups = torch.full((batch,), self._start_groups, dtype=torch.int32, device=device)
        self.used = torch.zeros((batch, _NUM_GROUPS), dtype=torch.long, device=device)
        self.previous = torch.full((batch,), -1, dtype=torch.long, device=device)

    def _place(self) -> tuple[Tensor, Tensor, Tensor]:
        """Each row's line and position, clamped into the form, and whether it is inside a line of it."""
        inside = (self.line < self.lines) & (self.pos < self.chars)
        return self.line.clamp(max=self.lines - 1), self.pos.clamp(max=self.chars - 1), inside

    def _advance(self, tokens: Tensor) -> None:
        t = self._tables
        line, pos, inside = self._place()
        verse = t["verse"][tokens]
        written = inside & verse
        required = t["required"][:, line, pos].T  # (batch, 4)
        rhymes = t["rhymes"][:, line, pos].T
        fits_ping, fits_ze = t["fits_ping"][tokens], t["fits_ze"][tokens]
        tone_ok = (required == _FREE) | (required == _PING) & fits_ping[:, None] | (required == _ZE) & fits_ze[:, None]
        bits = t["group_bits"][tokens]
        group_ok = (bits & self.groups) != 0
        fitting = ((tone_ok & (~rhymes | group_ok[:, None])).long() * t["pattern_bit"]).sum(1)
        open_ = self.patterns & fitting
        rhyme_bits = (rhymes.long() * t["pattern_bit"]).sum(1)
        # A place that rhymes in some open patterns but not in others (the first line's end) is taken as not
        # rhyming; a character that could do either then leaves the first line unrhymed.
        mixed = ((open_ & rhyme_bits) != 0) & ((open_ & ~rhyme_bits) != 0)
        open_ = torch.where(mixed, open_ & ~rhyme_bits, open_)
        # A forced character may fit none (it was checked to fit some pattern still open): keep what was open.
        self.patterns = torch.where(written & (open_ != 0), open_, self.patterns)
        rhymed = written & ((self.patterns & rhyme_bits) != 0) & group_ok
        self.groups = torch.where(rhymed, self.groups & bits, self.groups)
        if self.no_repeat:
            fresh = written & (tokens != self.previous)  # a reduplication (青青) uses no new character
            self.used += t["members"][tokens].long() * fresh[:, None]
            self.previous = torch.where(verse, tokens, -1)
        super()._advance(tokens)

    def _rhymes_after(self, line: Tensor, pos: Tensor) -> Tensor:
        """Rhymes still to come after each row's place, under its open patterns (the most of them)."""
        after = self._tables["after"][:, line, pos].T  # (batch, 4)
        open_ = (self.patterns[:, None] & self._tables["pattern_bit"]) != 0
        return torch.where(open_, after, 0).amax(1)

    # ----------------------------------------------------------------------------------------------- masks

    def __call__(self, state: DecodeState, logits: Tensor) -> Tensor:
        self._sync(state, logits)
        t = self._tables
        line, pos, inside = self._place()
        active = inside & ~state.finished
        required = t["required"][:, line, pos].T  # (batch, 4)
        rhymes = t["rhymes"][:, line, pos].T
        open_ = (self.patterns[:, None] & t["pattern_bit"]) != 0
        plain = open_ & ~rhymes
        need = (
            (plain & (required == _FREE)).any(1).long()
            | (plain & (required == _PING)).any(1).long() << 1
            | (plain & (required == _ZE)).any(1).long() << 2
        )
        rhyming = (open_ & rhymes).any(1)
        tight = self._tight_groups(line, pos) if self.no_repeat and self.rhyme is not None else None
        if tight is not None and not bool((tight != 0).any()):
            tight = None  # the usual case: every group has characters to spare
        masked = active & ((need & 1) == 0) if tight is None else active
        rows = torch.nonzero(masked).flatten()
        if rows.numel() == 0:
            return logits
        needs = need[rows]
        rhyme_rows = rhyming[rows]
        whole = rows.numel() == logits.shape[0]
        # Masks are added, not filled in: a (poems, vocabulary) table of 0 and -inf added to the scores costs a
        # fraction of masked_fill_ with a boolean mask of the same shape on a CPU.
        if tight is None and not bool(rhyme_rows.any()) and whole and bool((needs == needs[0]).all()):
            logits.add_(t["bias"][needs[0]])  # every poem asks the same here (a given pattern): one shared row
            return logits
        bias = t["bias"].index_select(0, needs)  # (rows, vocab)
        if bool(rhyme_rows.any()) or tight is not None:
            if bool(rhyme_rows.any()):
                feasible = self._feasible_groups(line, pos)[rows]
                rhymes_here = ((t["group_bits"][None, :] & feasible[:, None]) != 0) & rhyme_rows[:, None]
                bias.masked_fill_(rhymes_here, 0.0)
            if tight is not None:
                # Keep the last characters of a poem's group for its rhymes: out of the positions that do not rhyme.
                spare = tight[rows] & ~torch.where(rhyme_rows, self.groups[rows], 0)
                bias.masked_fill_((t["group_bits"][None, :] & spare[:, None]) != 0, _NEG_INF)
            # Never leave a row with nothing (a vocabulary too small for the form): it keeps the scores it had.
            # (Tones alone never do: every kind of position has characters, checked when the processor is made.)
            empty = bias.amax(1) == _NEG_INF
            if bool(empty.any()):
                bias[empty] = 0.0
        if whole:
            logits.add_(bias)
        else:
            logits.index_add_(0, rows, bias)
        return logits

    def _available(self) -> Tensor:
        """``(batch, 30)``: unused characters of each group per row (all of them without ``no_repeat``)."""
        return self._tables["pool"][None, :] - self.used

    def _feasible_groups(self, line: Tensor, pos: Tensor) -> Tensor:
        """Bit sets of the groups a row may rhyme in now: open ones with a character for every rhyme to come."""
        needed = (self._rhymes_after(line, pos) + 1)[:, None] if self.no_repeat else 1
        enough = ((self._available() >= needed).int() * self._tables["group_bit"]).sum(1, dtype=torch.int32)
        feasible = self.groups & enough
        return torch.where(feasible != 0, feasible, self.groups)

    def _tight_groups(self, line: Tensor, pos: Tensor) -> Tensor:
        """Bit sets of open groups with no character to spare: using one elsewhere would starve a rhyme."""
        short = self._available() <= self._rhymes_after(line, pos)[:, None]
        return self.groups & (short.int() * self._tables["group_bit"]).sum(1, dtype=torch.int32)

    def __repr__(self) -> str:
        return f"ProsodyConstraint(form={self.form.value}, tones={self.tones}, rhyme={self.rhyme})"
