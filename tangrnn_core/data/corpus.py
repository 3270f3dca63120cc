"""Reading poem corpora: the bundled Tang corpus and the files a user brings.

Three formats are understood, chosen by the file's suffix and, where the suffix says nothing, its content:

``tangrnn-corpus/1`` (``.jsonl.xz`` or ``.jsonl``)
    JSON Lines, optionally xz-compressed, one object per poem:
    ``{"id", "title", "author", "paragraphs": [...], "strains": [...]}`` (``strains`` optional).
    This is what ``tangrnn data build`` writes and what ships in ``corpus/tang.jsonl.xz``.
``chinese-poetry-json`` (``.json``)
    One of chinese-poetry's own files: a JSON array of poem objects with the same fields (no strains).
``text`` (``.txt``)
    Plain UTF-8 text, one poem per line. Blank lines are skipped; each line is stripped of surrounding
    whitespace and becomes a poem with ``paragraphs == (line,)``, empty title and author, and
    ``id`` = the first 16 hex digits of the SHA-1 of the stripped line's UTF-8 bytes.

Every problem a user can cause is raised as :class:`~tangrnn_core.errors.CorpusError` with a one-line message.
"""

from __future__ import annotations

import gc
import hashlib
import json
import lzma
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tangrnn_core.errors import CorpusError

__all__ = [
    "FORMAT",
    "RawPoem",
    "Corpus",
    "bundled_corpus_path",
    "read_corpus",
    "corpus_provenance",
    "provenance_path",
    "strains_align",
    "encode_jsonl",
]

#: The format name written into provenance files and reported by ``tangrnn data info``.
FORMAT = "tangrnn-corpus/1"
#: Format names :attr:`Corpus.format` can take.
FORMAT_CHINESE_POETRY = "chinese-poetry-json"
FORMAT_TEXT = "text"

REQUIRED_FIELDS = ("id", "title", "author", "paragraphs")
XZ_MAGIC = b"\xfd7zXZ\x00"
_REBUILD = "tangrnn data build --source chinese-poetry-2.0.1.tgz"


@dataclass(frozen=True, slots=True)
class RawPoem:
    """One poem as stored in a corpus file, before any cleaning or tokenising.

    ``strains`` holds chinese-poetry's per-character 平/仄/○ marks (punctuation at the same positions),
    one string per paragraph; it is ``None`` unless it aligns with ``paragraphs`` (see :func:`strains_align`).
    """

    id: str
    title: str
    author: str
    paragraphs: tuple[str, ...]
    strains: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Corpus:
    """A corpus file read into memory."""

    poems: tuple[RawPoem, ...]
    checksum: str  #: SHA-256 (hex) of the file's bytes as stored (compressed bytes for ``.xz``).
    path: Path
    format: str = FORMAT  #: ``"tangrnn-corpus/1"``, ``"chinese-poetry-json"`` or ``"text"``.

    def __len__(self) -> int:
        return len(self.poems)


def strains_align(paragraphs: Iterable[str], strains: Iterable[str] | None) -> bool:
    """Whether ``strains`` can be read position by position against ``paragraphs``.

    They align when there is at least one paragraph, there are as many strain strings as paragraphs,
    and each strain string is exactly as long as its paragraph.
    """
    if strains is None:
        return False
    paragraphs = tuple(paragraphs)
    strains = tuple(strains)
    if not paragraphs or len(strains) != len(paragraphs):
        return False
    return all(isinstance(s, str) and len(s) == len(p) for s, p in zip(strains, paragraphs))


def bundled_corpus_path() -> Path:
    """The Tang corpus shipped inside the package (``tangrnn_core/data/corpus/tang.jsonl.xz``)."""
    return Path(__file__).resolve().parent / "corpus" / "tang.jsonl.xz"


def provenance_path(path: str | os.PathLike[str] | None = None) -> Path:
    """Where the provenance file of the corpus ``path`` lives: ``<stem>.provenance.json`` beside it.

    The stem is the file name without ``.xz`` and then without ``.jsonl``, ``.json`` or ``.txt``
    (``tang.jsonl.xz`` -> ``tang.provenance.json``).
    """
    path = bundled_corpus_path() if path is None else Path(path)
    stem = path.name
    if stem.lower().endswith(".xz"):
        stem = stem[:-3]
    for suffix in (".jsonl", ".json", ".txt"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return path.with_name(f"{stem}.provenance.json")


def corpus_provenance(path: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """The provenance record written beside the corpus ``path`` (``None``: the bundled corpus).

    Returns ``None`` when there is no provenance file; raises :class:`CorpusError` when there is one
    but it is not a JSON object.
    """
    prov = provenance_path(path)
    try:
        raw = prov.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise CorpusError(f"{prov} is a folder, not a provenance file; remove or rename it") from None
    except OSError as exc:
        raise CorpusError(f"cannot read provenance file {prov}: {exc.strerror}; check its permissions") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorpusError(
            f"provenance file {prov} is not valid UTF-8 JSON ({_one_line(exc)}); "
            f"delete it or rebuild the corpus with `tangrnn data build`"
        ) from None
    if not isinstance(data, dict):
        raise CorpusError(
            f"provenance file {prov} holds a JSON {type(data).__name__}, not an object; "
            f"delete it or rebuild the corpus with `tangrnn data build`"
        )
    return data


def read_corpus(path: str | os.PathLike[str] | None = None) -> Corpus:
    """Read a corpus file; ``None`` reads the bundled Tang corpus.

    Raises :class:`CorpusError` (one line, naming the file and the fix) when the file is missing, is a
    folder, is not valid xz or UTF-8, holds invalid JSON or a poem without the required fields, or holds
    no poems at all.
    """
    bundled = path is None
    path = bundled_corpus_path() if bundled else Path(path)
    if path.is_dir():
        raise CorpusError(
            f"{path} is a folder, not a corpus file; pass a .jsonl.xz, .jsonl, .json or .txt file, "
            f"or turn a chinese-poetry folder into one with `tangrnn data build --source {path} --output corpus.jsonl.xz`"
        )
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if bundled:
            raise CorpusError(
                f"the bundled corpus {path} is missing; reinstall tangrnn or rebuild it with `{_REBUILD}`"
            ) from None
        raise CorpusError(
            f"corpus file {path} does not exist; check the path, or leave it out to use the bundled corpus"
        ) from None
    except OSError as exc:
        raise CorpusError(f"cannot read corpus file {path}: {exc.strerror}; check its permissions") from None

    checksum = hashlib.sha256(raw).hexdigest()
    suffixes = [s.lower() for s in path.suffixes]
    compressed = raw.startswith(XZ_MAGIC)
    if suffixes and suffixes[-1] == ".xz":
        suffixes.pop()
        if not compressed:
            raise CorpusError(
                f"{path} is not a valid xz file (wrong magic bytes); re-download it or rebuild it with `tangrnn data build`"
            )
    if compressed:
        try:
            raw = lzma.decompress(raw, format=lzma.FORMAT_XZ)
        except lzma.LZMAError as exc:
            raise CorpusError(
                f"{path} is not a valid xz file ({_one_line(exc)}); re-download it or rebuild it with `tangrnn data build`"
            ) from None

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path} is not UTF-8 text (bad byte at offset {exc.start}); convert it to UTF-8") from None
    if text.startswith("\ufeff"):
        text = text[1:]

    inner = suffixes[-1] if suffixes else ""
    if inner == ".txt":
        kind = FORMAT_TEXT
    elif inner == ".jsonl":
        kind = FORMAT
    elif inner == ".json":
        kind = FORMAT_CHINESE_POETRY
    else:
        head = text.lstrip()[:1]
        kind = FORMAT if head == "{" else FORMAT_CHINESE_POETRY if head == "[" else FORMAT_TEXT

    # Tens of thousands of small containers are created below and none of them form cycles; pausing the
    # cyclic garbage collector meanwhile saves a good share of the reading time.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        if kind == FORMAT_TEXT:
            poems = _parse_text(text)
        elif kind == FORMAT:
            poems = _parse_jsonl(text, path)
        else:
            poems = _parse_json_array(text, path)
    finally:
        if gc_was_enabled:
            gc.enable()
    if not poems:
        raise CorpusError(
            f"{path} holds no poems; add poems to it (one per line for .txt) or choose another corpus file"
        )
    return Corpus(poems=tuple(poems), checksum=checksum, path=path, format=kind)


def text_poem(line: str) -> RawPoem:
    """The poem a line of a ``.txt`` corpus stands for (``line`` already stripped and non-empty)."""
    return RawPoem(
        id=hashlib.sha1(line.encode("utf-8")).hexdigest()[:16],
        title="",
        author="",
        paragraphs=(line,),
        strains=None,
    )


def poem_from_object(obj: Any, where: str, fix: str) -> RawPoem:
    """Turn one decoded JSON poem object into a :class:`RawPoem`.

    ``where`` names the object in messages (``"corpus.jsonl line 3"``); ``fix`` ends them
    (``"fix that line"``). Extra fields are ignored; ``strains`` is kept only where it aligns.
    """
    if not isinstance(obj, dict):
        raise CorpusError(f"{where} is a JSON {_json_type(obj)}, not a poem object; {fix}")
    missing = [f for f in REQUIRED_FIELDS if f not in obj]
    if missing:
        names = ", ".join(repr(f) for f in missing)
        raise CorpusError(
            f"{where} lacks field{'s' if len(missing) > 1 else ''} {names} "
            f"(every poem needs id, title, author and paragraphs); {fix}"
        )
    for field in ("id", "title", "author"):
        if not isinstance(obj[field], str):
            raise CorpusError(f"{where}: field {field!r} must be a string, not a JSON {_json_type(obj[field])}; {fix}")
    paragraphs = obj["paragraphs"]
    if not isinstance(paragraphs, list) or not all(isinstance(p, str) for p in paragraphs):
        raise CorpusError(f"{where}: field 'paragraphs' must be a list of strings; {fix}")
    strains = obj.get("strains")
    if strains is not None and (not isinstance(strains, list) or not all(isinstance(s, str) for s in strains)):
        raise CorpusError(f"{where}: field 'strains' must be a list of strings or absent; {fix}")
    paragraphs = tuple(paragraphs)
    return RawPoem(
        id=obj["id"],
        title=obj["title"],
        author=obj["author"],
        paragraphs=paragraphs,
        strains=tuple(strains) if strains_align(paragraphs, strains) else None,
    )


def encode_jsonl(poems: Iterable[RawPoem]) -> bytes:
    """The ``tangrnn-corpus/1`` JSON Lines bytes for ``poems`` (uncompressed, deterministic).

    Keys are written in the order id, title, author, paragraphs, strains; ``strains`` only where it
    aligns. Non-ASCII characters are written as themselves, with compact separators.
    """
    lines = []
    for poem in poems:
        record: dict[str, Any] = {
            "id": poem.id,
            "title": poem.title,
            "author": poem.author,
            "paragraphs": list(poem.paragraphs),
        }
        if poem.strains is not None and strains_align(poem.paragraphs, poem.strains):
            record["strains"] = list(poem.strains)
        lines.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


def _parse_text(text: str) -> list[RawPoem]:
    poems = []
    for line in text.split("\n"):
        line = line.strip()
        if line:
            poems.append(text_poem(line))
    return poems


def _fast_poem(obj: Any) -> RawPoem | None:
    """:func:`poem_from_object` for a well-formed object, or ``None`` to fall back to the checking path.

    Reading the bundled corpus spends most of its time here, so the checks lean on C-level operations:
    ``"".join`` fails unless every element is a string.
    """
    if type(obj) is not dict:
        return None
    try:
        poem_id = obj["id"]
        title = obj["title"]
        author = obj["author"]
        paragraphs = obj["paragraphs"]
    except KeyError:
        return None
    if not (type(poem_id) is str and type(title) is str and type(author) is str and type(paragraphs) is list):
        return None
    strains = obj.get("strains")
    try:
        "".join(paragraphs)
        if strains is not None:
            if type(strains) is not list:
                return None
            "".join(strains)
    except TypeError:
        return None
    if strains is not None and not (
        paragraphs and len(strains) == len(paragraphs) and list(map(len, strains)) == list(map(len, paragraphs))
    ):
        strains = None
    return RawPoem(poem_id, title, author, tuple(paragraphs), None if strains is None else tuple(strains))


def _parse_jsonl(text: str, path: Path) -> list[RawPoem]:
    poems = []
    append = poems.append
    loads = json.loads
    fast = _fast_poem
    for number, line in enumerate(text.split("\n"), start=1):
        try:
            obj = loads(line)
        except json.JSONDecodeError as exc:
            if not line.strip():
                continue
            raise CorpusError(
                f"{path}: invalid JSON at line {number} ({exc.msg}, column {exc.colno}); "
                f"fix that line or rebuild the corpus with `tangrnn data build`"
            ) from None
        poem = fast(obj)
        if poem is None:
            poem = poem_from_object(obj, f"{path}: the poem at line {number}", "fix that line")
        append(poem)
    return poems


def _parse_json_array(text: str, path: Path) -> list[RawPoem]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorpusError(
            f"{path}: invalid JSON at line {exc.lineno} ({exc.msg}, column {exc.colno}); fix the file"
        ) from None
    if not isinstance(data, list):
        raise CorpusError(
            f"{path} holds a JSON {_json_type(data)}, not a list of poems; use a chinese-poetry poet.*.json file, "
            f"or JSON Lines (one poem object per line) in a file named .jsonl"
        )
    return [
        poem_from_object(obj, f"{path}: item {index} of the JSON array", "fix that item")
        for index, obj in enumerate(data)
    ]


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
