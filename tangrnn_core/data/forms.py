"""The four forms of regulated verse (近体诗), and splitting a normalised poem into its lines.

Lines are split at every mark in :data:`~tangrnn_core.data.normalize.LINE_END_MARKS` (``，。？！；：``),
never at ``。`` alone: a question ends a line as surely as a full stop does.
"""

from __future__ import annotations

import enum
import re

from tangrnn_core.data.normalize import LINE_END_MARKS, POEM_END_MARKS, PUNCTUATION
from tangrnn_core.errors import ConfigError

_LINE_RE = re.compile(f"[^{LINE_END_MARKS}]*[{LINE_END_MARKS}]|[^{LINE_END_MARKS}]+$")
_INNER_PUNCT = set(PUNCTUATION)


class Form(str, enum.Enum):
    """A poem's form. The value is the (simplified) Chinese name; ``OTHER`` is everything else: 古体, 排律,
    杂言, poems of 6 or 12 lines ..."""

    WUJUE = "五绝"
    QIJUE = "七绝"
    WULV = "五律"
    QILV = "七律"
    OTHER = "other"

    @property
    def chars(self) -> int | None:
        """Characters a line: 5 or 7; None for OTHER."""
        return _SHAPES[self][0] if self in _SHAPES else None

    @property
    def lines(self) -> int | None:
        """Lines a poem: 4 or 8; None for OTHER."""
        return _SHAPES[self][1] if self in _SHAPES else None

    @classmethod
    def parse(cls, name: str) -> Form:
        """A form from its name: ``五绝``/``五絕``, ``七绝``/``七絕``, ``五律``, ``七律`` (also the long names
        ``五言绝句`` ...), the pinyin ``wujue``, ``qijue``, ``wulv``, ``qilv`` (any case; ``lü``/``lv``/``lu``
        all accepted), or ``other``."""
        if isinstance(name, Form):
            return name
        key = str(name).strip().lower()
        form = _ALIASES.get(key)
        if form is None:
            raise ConfigError(
                f"unknown poem form {name!r}: choose one of wujue (五绝), qijue (七绝), wulv (五律), qilv (七律), other"
            )
        return form

    def __str__(self) -> str:
        return self.value


_SHAPES = {Form.WUJUE: (5, 4), Form.QIJUE: (7, 4), Form.WULV: (5, 8), Form.QILV: (7, 8)}
_BY_SHAPE = {shape: form for form, shape in _SHAPES.items()}
#: The four regular forms.
REGULAR_FORMS: tuple[Form, ...] = (Form.WUJUE, Form.QIJUE, Form.WULV, Form.QILV)

_ALIASES: dict[str, Form] = {"other": Form.OTHER, "其他": Form.OTHER}
for _form, _names in {
    Form.WUJUE: ("五绝", "五絕", "五言绝句", "五言絕句", "wujue"),
    Form.QIJUE: ("七绝", "七絕", "七言绝句", "七言絕句", "qijue"),
    Form.WULV: ("五律", "五言律诗", "五言律詩", "wulv", "wulü", "wulu"),
    Form.QILV: ("七律", "七言律诗", "七言律詩", "qilv", "qilü", "qilu"),
}.items():
    for _name in _names:
        _ALIASES[_name] = _form
_ALIASES.update({f.name.lower(): f for f in Form})


def split_lines_with_marks(text: str) -> list[str]:
    """The lines of a normalised poem, each with its end mark (a last line without one is kept as it is)."""
    return _LINE_RE.findall(text)


def split_lines(text: str) -> list[str]:
    """The lines of a normalised poem, without their end marks; split at every ``，。？！；：``."""
    return [line[:-1] if line[-1] in LINE_END_MARKS else line for line in _LINE_RE.findall(text)]


def classify(text: str) -> Form:
    """The form of a normalised poem: 4 or 8 lines, all of 5 or all of 7 characters (no ``：`` or ``、``
    inside a line), the whole ending in ``。``, ``？`` or ``！``; anything else is :attr:`Form.OTHER`."""
    if not text or text[-1] not in POEM_END_MARKS:
        return Form.OTHER
    lines = split_lines(text)
    if len(lines) not in (4, 8):
        return Form.OTHER
    n = len(lines[0])
    if n not in (5, 7):
        return Form.OTHER
    for line in lines:
        if len(line) != n or not _INNER_PUNCT.isdisjoint(line):
            return Form.OTHER
    return _BY_SHAPE[(n, len(lines))]
