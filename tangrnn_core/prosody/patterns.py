"""The sixteen tone patterns of regulated verse: four for each of 五绝, 七绝, 五律 and 七律.

Four line types (中 = either tone; the rhyme falls on the 平 line ends):

======  ====================  ============  ==============
type    ends                  五言          七言
======  ====================  ============  ==============
a       仄, no rhyme           中仄平平仄    中平中仄平平仄
A       平, rhymes             中仄仄平平    中平中仄仄平平
b       仄, no rhyme           中平平仄仄    中仄中平平仄仄
B       平, rhymes             平平仄仄平    中仄平平仄仄平
======  ====================  ============  ==============

A pattern is named by the tone of its first line's second character (平起 or 仄起) and by whether its first
line rhymes (首句入韵 or 首句不入韵). A jueju is four lines; a lüshi repeats its jueju's pattern, with line 5
always in the unrhymed form. Both couplet rules (对: opposite tones inside a couplet; 粘: a couplet's first line
copies the previous line's second tone) are built into the patterns.

``strict`` tones fix every position the pattern does not mark 中; ``loose`` tones fix only the 2nd, 4th and
6th characters and the line's last one (its rhyme, or the 仄 end of an unrhymed line): 一三五不论.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import cached_property

from tangrnn_core.data.forms import REGULAR_FORMS, Form
from tangrnn_core.errors import ConfigError
from tangrnn_core.prosody.tables import Tone

__all__ = ["ToneMode", "Pattern", "LINE_TYPES", "PATTERN_NAMES", "patterns_for", "pattern_named", "parse_tone_mode"]

FREE = "中"
LINE_TYPES: dict[int, dict[str, str]] = {
    5: {"a": "中仄平平仄", "A": "中仄仄平平", "b": "中平平仄仄", "B": "平平仄仄平"},
    7: {"a": "中平中仄平平仄", "A": "中平中仄仄平平", "b": "中仄中平平仄仄", "B": "中仄平平仄仄平"},
}
# The jueju line types by (start, first line rhymed), for 五言 and 七言.
_JUEJU: dict[tuple[Tone, bool], dict[int, str]] = {
    (Tone.ZE, False): {5: "aBbA", 7: "bAaB"},
    (Tone.ZE, True): {5: "ABbA", 7: "BAaB"},
    (Tone.PING, False): {5: "bAaB", 7: "aBbA"},
    (Tone.PING, True): {5: "BAaB", 7: "ABbA"},
}
#: The four pattern names, in the order :func:`patterns_for` returns them.
PATTERN_NAMES: tuple[str, ...] = ("仄起首句不入韵", "仄起首句入韵", "平起首句不入韵", "平起首句入韵")
# Accepted spellings of each name: short forms, traditional 韻, and ASCII.
_ALIASES: dict[str, int] = {}
for _index, (_start, _rhymed, _ascii) in enumerate(
    (
        ("仄", False, "ze-unrhymed"),
        ("仄", True, "ze-rhymed"),
        ("平", False, "ping-unrhymed"),
        ("平", True, "ping-rhymed"),
    )
):
    _mark = "入" if _rhymed else "不入"
    for _rhyme in ("韵", "韻"):
        for _spelling in (f"{_start}起首句{_mark}{_rhyme}", f"{_start}起{_mark}{_rhyme}", _ascii):
            _ALIASES[_spelling] = _index


class ToneMode(str, enum.Enum):
    """Which positions of a pattern are fixed: ``strict`` all it fixes, ``loose`` only 2, 4, 6 and the end."""

    STRICT = "strict"
    LOOSE = "loose"


def parse_tone_mode(value: str | ToneMode) -> ToneMode:
    """``strict`` or ``loose`` (as text or :class:`ToneMode`).

    Raises:
        ConfigError: any other value.
    """
    try:
        return ToneMode(value)
    except ValueError:
        raise ConfigError(f"unknown tone mode {value!r}: choose strict or loose") from None


@dataclass(frozen=True)
class Pattern:
    """One of the sixteen patterns.

    Args:
        form: 五绝, 七绝, 五律 or 七律.
        start: the required tone of the first line's second character (平起 or 仄起).
        first_rhymed: whether the first line rhymes (首句入韵).
    """

    form: Form
    start: Tone
    first_rhymed: bool

    @property
    def index(self) -> int:
        """Its place among the form's four patterns (the order of :data:`PATTERN_NAMES`)."""
        return (0 if self.start is Tone.ZE else 2) + int(self.first_rhymed)

    @property
    def name(self) -> str:
        """``仄起首句不入韵`` and the like."""
        return PATTERN_NAMES[self.index]

    @property
    def full_name(self) -> str:
        """The name with the form: ``仄起首句不入韵 五绝``."""
        return f"{self.name} {self.form.value}"

    @cached_property
    def line_types(self) -> str:
        """One letter a line: ``aBbA`` for 仄起首句不入韵 五绝; lüshi repeat with line 5 unrhymed."""
        chars = self.form.chars
        jueju = _JUEJU[(self.start, self.first_rhymed)][chars]
        return jueju if self.form.lines == 4 else jueju + _JUEJU[(self.start, False)][chars]

    @cached_property
    def lines(self) -> tuple[str, ...]:
        """Each line's tones, ``中`` where either is allowed (``中仄平平仄``)."""
        return tuple(LINE_TYPES[self.form.chars][kind] for kind in self.line_types)

    def rhymes(self, line: int) -> bool:
        """Whether line ``line`` (0-based) ends in a rhyme: the 平-ending line types A and B."""
        return self.line_types[line].isupper()

    @cached_property
    def rhyme_lines(self) -> tuple[int, ...]:
        """The 0-based lines that end in a rhyme."""
        return tuple(i for i in range(len(self.line_types)) if self.rhymes(i))

    def required(self, line: int, position: int, mode: ToneMode | str = ToneMode.STRICT) -> Tone | None:
        """The tone fixed at ``(line, position)`` (both 0-based) under ``mode``, or ``None`` where it is free.

        ``loose`` keeps the 2nd, 4th and 6th characters (odd 0-based positions) and the last one.
        """
        mark = self.lines[line][position]
        if mark == FREE:
            return None
        if ToneMode(mode) is ToneMode.LOOSE and position % 2 == 0 and position != self.form.chars - 1:
            return None
        return Tone(mark)

    def __str__(self) -> str:
        return self.full_name


def patterns_for(form: Form | str) -> tuple[Pattern, ...]:
    """The four patterns of a regular form, in the order of :data:`PATTERN_NAMES`.

    Raises:
        ConfigError: the form is unknown or not regular.
    """
    form = Form.parse(form)
    if form not in REGULAR_FORMS:
        raise ConfigError(f"the form '{form}' has no tone patterns; choose 五绝, 七绝, 五律 or 七律")
    return tuple(Pattern(form, start, rhymed) for start in (Tone.ZE, Tone.PING) for rhymed in (False, True))


def pattern_named(name: str, form: Form | str) -> Pattern:
    """The pattern of ``form`` called ``name``: ``仄起首句不入韵`` (also ``仄起不入韵``, ``韻``, or the ASCII
    ``ze-unrhymed``, ``ze-rhymed``, ``ping-unrhymed``, ``ping-rhymed``).

    Raises:
        ConfigError: an unknown name (the message lists the four) or form.
    """
    index = _ALIASES.get(str(name).strip().replace(" ", ""))
    if index is None:
        raise ConfigError(
            f"unknown pattern {name!r}: choose {', '.join(PATTERN_NAMES)} "
            f"(or ze-unrhymed, ze-rhymed, ping-unrhymed, ping-rhymed), or auto"
        )
    return patterns_for(form)[index]
