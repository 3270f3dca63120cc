"""Clean one poem of the ``chinese-poetry`` corpus into a single string, and convert scripts.

The raw corpus (``quantangshi/poet.tang.*.json``) is traditional Chinese, one list of paragraphs a poem,
and carries a good deal of editorial apparatus inside the poems themselves. What occurs, and what
:func:`normalize_poem` does with it:

* ``（一作「萬里」）``, ``（瓦）``, ``（「盤渴」，蔣、項皆校作「盤渦」。）`` and whole paragraphs of
  commentary ``（〖1〗這首詩雖不見《全唐詩》……）`` - variant readings, corrections and notes, in
  parentheses that may span paragraphs and nest. Removed with their contents; so are ``〖…〗`` (used for
  dates and note numbers), ``【…】`` and ``〔…〕``.
* ``[一]``, ``[二八]``, ``[一○]`` - footnote numbers, removed. Any other ``[…]`` / ``［…］`` holds text an
  editor restored (``[爽]節在重九``, ``九[削棱還峻]``): it belongs to the poem, so only the brackets go.
* ``□`` (2,178 times), ``囗`` (35 times, always for a missing character there), ``●`` (illegible,
  "「●」字不可識"), private-use code points (characters Unicode lacks), ``{𥫗/戢}`` / ``⿰亻丸`` (a
  character spelled out from its parts because Unicode lacks it),
  ``……`` (elided text) and stray Latin letters or digits (``Ｂ亂後碧井廢``) outside notes: the poem is
  missing characters, so it is dropped.
* ``《長恨曲》`` titles, ``「」『』`` quotes, spaces, middle dots and stray ``/`` are decoration: dropped,
  keeping what they enclose. Half-width ``,.?!;:`` and variants (``﹐``, ``．`` ...) become ``，。？！；：``.
* A note removed between two marks leaves a run ("笑點頭。（〖1〗…）。"): it collapses to one mark.
* Bibliographic tails written without brackets ("（同前）按：《全唐詩》卷一○九收此二句") cannot be told from
  verse by rule; they stay, and such poems classify as OTHER.

``strains/json/poet.tang.*.json`` gives per-character tone marks parallel to the paragraphs: ``平``,
``仄``, ``○`` (either), ``通`` (either, 5 times) and ``？`` (unknown: rare characters, and every
non-punctuation symbol such as brackets); punctuation sits at the same positions, but only as ``，``/``。``
(a ``？`` or ``！`` in the poem shows as ``，``/``。`` there). :class:`NormalizedPoem` ``.marks`` keeps
``平``/``仄``/``○`` (``通`` and ``？`` become ``○``) and the poem's own punctuation at punctuation positions.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from tangrnn_core.errors import ConfigError

# ---------------------------------------------------------------------------------------------------
# Line ends: measured over the 57,607 poems after this module's normalisation (56,794 kept), by how many
# poems change form (see forms.classify) when a mark is or is not counted as ending a line.
#
# ``，`` and ``。`` end almost every line. ``？`` (855 times after cleaning, in 781 poems) and ``！`` (86, in
# 56) end lines too ("靈境何時六月寒？", "夫子何爲者？栖栖一代中。"): without ``？`` 382 regular poems
# would fall to OTHER, without ``！`` 6.
#
# ``；`` (88 times, 35 poems) ends lines: it separates the lines of couplets ("緘愁欲渡河；到來河更闊",
# the Dunhuang manuscripts' "常窘一枝息；寧知猗梧鳳"); counting it makes 7 poems regular (3 七绝, 2 五律,
# 1 七律, 1 五绝) and makes none irregular. Counted.
#
# ``：`` (30 times, 27 poems) introduces speech. In verse the speech starts a new line ("城邊問官使：早晚
# 發西京？", "沙門贈子言：鴻鶴已高逝"); the other uses are in prose-like pieces that are irregular either
# way ("歌曰：天耶，地耶。"). Counting it makes those 2 poems regular (a 五律 and a 五绝) and none
# irregular. Counted.
#
# ``、`` (64 times, 8 poems) separates items inside a clause ("駱、駱，爾勿嘶", mostly in editors' prose):
# counting it changes no poem's form, and it never closes a verse line. NOT counted: it stays inside a line,
# where forms.classify treats the line as irregular.
#
# Only ``，`` and ``。``: 395 poems fewer would be regular.
# ---------------------------------------------------------------------------------------------------
LINE_END_MARKS = "，。？！；："
#: Marks that may close a couplet or the poem (``，``, ``；`` and ``：`` only close a couplet's first line).
POEM_END_MARKS = "。？！"
#: All punctuation :func:`normalize_poem` keeps (everything else that is not a character is dropped).
PUNCTUATION = LINE_END_MARKS + "、"

TONE_MARKS = "平仄○"

# Variants of the kept punctuation (half-width, small form, half-width katakana forms, full-width dot).
_PUNCT_VARIANTS = {
    ",": "，",
    "﹐": "，",
    "﹑": "、",
    "､": "、",
    ".": "。",
    "．": "。",
    "﹒": "。",
    "｡": "。",
    "?": "？",
    "﹖": "？",
    "!": "！",
    "﹗": "！",
    ";": "；",
    "﹔": "；",
    ":": "：",
    "﹕": "：",
}
# Decoration dropped without trace (what it encloses stays).
_DROP = set(
    "「」『』“”‘’《》〈〉﹁﹂﹃﹄\"'`"  # quotes and title marks
    " \u3000\u00a0\t\r\n\u200b\ufeff"  # spaces, zero-width space, BOM
    "·・‧•/／\\|｜"  # middle dots, stray slashes and bars
    "—–－~～"  # dashes
)
# Marks of a missing or unrepresentable character: the poem is damaged.
_MISSING = set("□■◻◼▢⬜⬛●〓囗\ufffd…⋯")
# Notes: removed with their contents. Nesting of any of these inside each other is allowed.
_NOTE_PAIRS = {"（": "）", "(": ")", "【": "】", "〔": "〕", "〖": "〗", "﹙": "﹚", "﹝": "﹞", "〘": "〙"}
_NOTE_CLOSE = set(_NOTE_PAIRS.values())
# Square brackets: footnote numbers are removed, restored text is kept without its brackets.
_SQUARE_PAIRS = {"[": "]", "［": "］"}
_SQUARE_CLOSE = set(_SQUARE_PAIRS.values())
_FOOTNOTE_RE = re.compile(r"[一二三四五六七八九十百○〇零0-9０-９]+")
# A character spelled out from its components ({𥫗/戢}, {炙火=肉}): Unicode lacks it.
_CURLY = set("{}｛｝")

# Poems made only of these need no cleaning (the fast path, about 90% of the corpus).
# (CJK ideographs, less 囗 U+56D7: the corpus writes it, 35 times, only for a missing character.)
_HAN = "\u3400-\u4dbf\u4e00-\u56d6\u56d8-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_CLEAN_RE = re.compile(f"[{_HAN}，。]+")
_HAN_RUN_RE = re.compile(f"[{_HAN}]+")
_PUNCT_RUN_RE = re.compile("[，。]{2}")
_NOTE_BRACKET_RE = re.compile("[" + re.escape("".join(_NOTE_PAIRS) + "".join(_NOTE_PAIRS.values())) + "]")
_STRAIN_PUNCT_RE = re.compile("[，。]")
_STRAINS_RE = re.compile("[平仄○通？，。]*")
_STRAIN_PUNCT = "，。？"  # what the strains may hold where the text has punctuation
_STRAIN_TONES = "平仄○通？"  # ... and where it has a character
_TONE_OF = {"通": "○", "？": "○"}  # either / unknown: both "either" in the marks

# char -> "keep" | "drop" | "missing"; filled lazily for characters outside the tables above.
_KIND_CACHE: dict[str, str] = {}


@dataclass(frozen=True)
class NormalizedPoem:
    """A cleaned poem: ``text`` is characters and full-width punctuation, e.g.
    ``白日依山尽，黄河入海流。欲穷千里目，更上一层楼。``; ``marks`` (when the corpus has tone marks that
    align) is exactly as long as ``text``: ``平``/``仄``/``○`` at each character, the punctuation itself at
    punctuation positions."""

    text: str
    marks: str | None = None

    def __post_init__(self) -> None:
        if self.marks is not None and len(self.marks) != len(self.text):
            raise ValueError(f"marks ({len(self.marks)}) and text ({len(self.text)}) differ in length")


def _kind(ch: str) -> str:
    kind = _KIND_CACHE.get(ch)
    if kind is not None:
        return kind
    if ch in _MISSING:
        kind = "missing"
    elif ch in _DROP:
        kind = "drop"
    elif ch in "○〇":
        kind = "keep"  # the numeral zero (一九八○年) in appended prose
    else:
        name = unicodedata.name(ch, "")
        cat = unicodedata.category(ch)
        if name.startswith(("CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH")):
            kind = "keep"
        elif cat in ("Co", "Cn", "Cs") or name.startswith(("IDEOGRAPHIC DESCRIPTION", "CJK RADICAL", "KANGXI")):
            kind = "missing"  # private use / unassigned / part of a character described by its components
        elif cat[0] in "LN":
            kind = "missing"  # Latin letters, digits: OCR debris standing where a character was
        else:
            kind = "drop"  # any other symbol that does not end a line
    _KIND_CACHE[ch] = kind
    return kind


def _tones(strains: str) -> str:
    return strains.replace("通", "○").replace("？", "○")


def _marks_for(text: str, src: str, positions: Sequence[int]) -> str | None:
    """Marks for ``text`` whose i-th character came from ``positions[i]`` of the raw text, taken from
    ``src`` (joined strains as long as the raw text); None unless every kept position fits: a tone where
    the text has a character, punctuation (or ``？``, unknown) where it has punctuation."""
    out = []
    for c, k in zip(text, positions):
        s = src[k]
        if c in PUNCTUATION:
            if s not in _STRAIN_PUNCT:
                return None
            out.append(c)
        elif s in _STRAIN_TONES:
            out.append(_TONE_OF.get(s, s))
        else:
            return None
    return "".join(out)


def normalize_poem(paragraphs: Sequence[str], strains: Sequence[str] | None = None) -> NormalizedPoem | None:
    """Join ``paragraphs`` into one cleaned string; return None when the poem is damaged.

    Removes notes in brackets with their contents (``（一作「萬里」）``, ``〖1〗``, ``[一]``), keeps text an
    editor restored in square brackets, unifies punctuation to full-width ``，。？！；：、``, drops quotes,
    title marks, spaces and other decoration, and collapses a run of punctuation left by a removed note into
    one mark. Returns None when a character is missing (``□``, ``囗``, ``●``, private-use or spelled-out
    characters ...), a bracket is unbalanced, nothing is left, or the text does not end with a line-end mark.

    ``strains`` (the corpus's tone marks, parallel to ``paragraphs``) are cleaned at the same positions; when
    they do not align with the paragraphs (other lengths, or a tone mark facing punctuation or the other way
    round) the result's ``marks`` is None.
    """
    raw = "".join(paragraphs)
    src: str | None = None
    if strains is not None:
        src = "".join(strains)
        if len(src) != len(raw):
            src = None

    if not _CLEAN_RE.fullmatch(raw) or raw[0] in PUNCTUATION or _PUNCT_RUN_RE.search(raw):
        return _normalize_slow(raw, src)

    # Fast path: characters, ， and 。 only; nothing to remove.
    if raw[-1] not in LINE_END_MARKS:
        return None
    marks = None
    if src is not None:
        text_punct = [m.start() for m in _STRAIN_PUNCT_RE.finditer(raw)]
        if _STRAINS_RE.fullmatch(src) and text_punct == [m.start() for m in _STRAIN_PUNCT_RE.finditer(src)]:
            marks = _tones(src)
            if _STRAIN_PUNCT_RE.findall(raw) != _STRAIN_PUNCT_RE.findall(src):
                chars = list(marks)
                for k in text_punct:
                    chars[k] = raw[k]  # the poem's own punctuation where strains say ，for 。
                marks = "".join(chars)
        else:
            marks = _marks_for(raw, src, range(len(raw)))
    return NormalizedPoem(raw, marks)


def _normalize_slow(raw: str, src: str | None) -> NormalizedPoem | None:
    out: list[str] = []  # kept characters
    pos: list[int] = []  # the position in ``raw`` of each
    open_squares: list[str] = []
    n = len(raw)
    i = 0
    while i < n:
        run = _HAN_RUN_RE.match(raw, i)
        if run is not None:
            j = run.end()
            out.extend(run.group())
            pos.extend(range(i, j))
            i = j
            continue
        ch = raw[i]
        if ch in _NOTE_PAIRS:
            # Skip the note, nested notes of any bracket type included.
            stack = [_NOTE_PAIRS[ch]]
            j = i + 1
            while stack:
                m = _NOTE_BRACKET_RE.search(raw, j)
                if m is None:
                    return None  # never closed
                c = m.group()
                if c in _NOTE_PAIRS:
                    stack.append(_NOTE_PAIRS[c])
                elif c != stack.pop():
                    return None  # crossed brackets: （…〗
                j = m.end()
            i = j
            continue
        if ch in _NOTE_CLOSE or ch in _CURLY:
            return None  # a close without an open; or a character spelled out from its parts
        if ch in _SQUARE_PAIRS:
            j = raw.find(_SQUARE_PAIRS[ch], i + 1)
            if j < 0:
                return None
            if _FOOTNOTE_RE.fullmatch(raw, i + 1, j):
                i = j + 1  # a footnote number
                continue
            open_squares.append(_SQUARE_PAIRS[ch])  # restored text: keep it, drop the brackets
            i += 1
            continue
        if ch in _SQUARE_CLOSE:
            if not open_squares or open_squares.pop() != ch:
                return None
            i += 1
            continue
        p = _PUNCT_VARIANTS.get(ch, ch)
        if p in PUNCTUATION:
            if not out:
                pass  # punctuation before any character
            elif out[-1] in PUNCTUATION:
                # A run of punctuation (left where a note was removed: "笑點頭。（…）。"): keep one mark,
                # the first, unless a later one closes a couplet and the first does not.
                if out[-1] not in POEM_END_MARKS and p in POEM_END_MARKS:
                    out[-1] = p
                    pos[-1] = i
            else:
                out.append(p)
                pos.append(i)
            i += 1
            continue
        kind = _kind(ch)
        if kind == "missing":
            return None
        if kind == "keep":
            out.append("〇" if ch == "○" else ch)
            pos.append(i)
        i += 1
    if open_squares or not out or out[-1] not in LINE_END_MARKS:
        return None
    text = "".join(out)
    return NormalizedPoem(text, None if src is None else _marks_for(text, src, pos))


Script = Literal["simplified", "traditional"]
SCRIPTS: tuple[str, ...] = ("simplified", "traditional")
# A separator that cannot occur in a normalised poem (a line feed is dropped as decoration).
_SEP = "\n"
_CONVERTERS: dict[str, object] = {}


def _converter(config: str):
    conv = _CONVERTERS.get(config)
    if conv is None:
        import opencc

        conv = _CONVERTERS[config] = opencc.OpenCC(config)
    return conv


def normalize_title(title: str, max_chars: int) -> str:
    """A title as a conditioning text: its Chinese characters only (punctuation, notes' brackets and spaces
    dropped), at most ``max_chars`` of them. An empty result is a valid, empty title."""
    return "".join(_HAN_RUN_RE.findall(title))[:max_chars]


def to_script(texts: list[str], script: Script) -> list[str]:
    """Convert normalised (traditional) texts to ``script``: OpenCC ``t2s`` for ``simplified``, unchanged
    for ``traditional``. Conversion is character for character, so every text keeps its length (and stays
    aligned with its marks)."""
    if script not in SCRIPTS:
        raise ConfigError(f"unknown script {script!r}: choose one of {', '.join(SCRIPTS)}")
    texts = list(texts)
    if script == "traditional" or not texts:
        return texts
    for t in texts:
        if _SEP in t:
            raise ValueError("to_script: a text contains a line feed; pass normalised poems")
    conv = _converter("t2s")
    out: list[str] = []
    # A few large calls: OpenCC's per-call cost dominates for short strings.
    chunk = 20000
    for k in range(0, len(texts), chunk):
        part = texts[k : k + chunk]
        converted = conv.convert(_SEP.join(part)).split(_SEP)
        if len(converted) != len(part):
            raise AssertionError("OpenCC changed the number of texts")
        out.extend(converted)
    for a, b in zip(texts, out):
        if len(a) != len(b):
            raise AssertionError(f"OpenCC t2s changed the length of {a!r} -> {b!r}")
    return out
