"""The corpus reader: formats, the strains alignment rule, errors, provenance and the bundled corpus."""

from __future__ import annotations

import hashlib
import json
import lzma
from pathlib import Path

import pytest

from tangrnn_core.data.commands import run
from tangrnn_core.data.corpus import (
    Corpus,
    RawPoem,
    bundled_corpus_path,
    corpus_provenance,
    encode_jsonl,
    provenance_path,
    read_corpus,
    strains_align,
)
from tangrnn_core.errors import CorpusError, TangrnnError

ALIGNED = {
    "id": "a1",
    "title": "春曉",
    "author": "孟浩然",
    "paragraphs": ["春眠不覺曉，處處聞啼鳥。", "夜來風雨聲，花落知多少。"],
    "strains": ["平平仄仄仄，仄仄平平仄。", "仄平平仄平，平仄平平仄。"],
}
MISALIGNED = {  # the second strains line is one character short
    "id": "b2",
    "title": "靜夜思",
    "author": "李白",
    "paragraphs": ["床前明月光，疑是地上霜。", "舉頭望明月，低頭思故鄉。"],
    "strains": ["平平平仄平，平仄仄仄平。", "仄平仄平仄，平平○仄。"],
}
PLAIN = {"id": "c3", "title": "", "author": "無名氏", "paragraphs": ["一二三四五。"]}


def jsonl(*objs: dict) -> str:
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs)


def expect_error(path_or_none, *fragments: str) -> str:
    """Read, expect a CorpusError with a one-line message holding every fragment; return the message."""
    with pytest.raises(CorpusError) as info:
        read_corpus(path_or_none)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


# ---------------------------------------------------------------------------------------------- formats


def test_jsonl_reads_poems_in_order_with_checksum(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(jsonl(ALIGNED, MISALIGNED, PLAIN), encoding="utf-8")
    corpus = read_corpus(path)
    assert isinstance(corpus, Corpus)
    assert corpus.format == "tangrnn-corpus/1"
    assert corpus.path == path
    assert corpus.checksum == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [p.id for p in corpus.poems] == ["a1", "b2", "c3"]
    first = corpus.poems[0]
    assert first == RawPoem("a1", "春曉", "孟浩然", tuple(ALIGNED["paragraphs"]), tuple(ALIGNED["strains"]))
    assert isinstance(first.paragraphs, tuple) and isinstance(first.strains, tuple)
    assert corpus.poems[1].strains is None  # misaligned strains are dropped
    assert corpus.poems[2].strains is None  # absent strains stay absent


def test_xz_compressed_jsonl_and_checksum_of_compressed_bytes(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl.xz"
    path.write_bytes(lzma.compress(jsonl(ALIGNED, PLAIN).encode("utf-8")))
    corpus = read_corpus(path)
    assert [p.id for p in corpus.poems] == ["a1", "c3"]
    assert corpus.checksum == hashlib.sha256(path.read_bytes()).hexdigest()


def test_encode_jsonl_round_trips(tmp_path: Path) -> None:
    poems = (
        RawPoem("x", "題", "作者", ("甲乙丙，丁戊己。",), ("平平仄，仄平平。",)),
        RawPoem("y", "", "", (), None),
        RawPoem("z", "t", "a", ("abc",), ("xy",)),  # misaligned: not written
    )
    path = tmp_path / "r.jsonl"
    path.write_bytes(encode_jsonl(poems))
    text = path.read_text(encoding="utf-8")
    assert "甲乙丙" in text and '"strains"' in text and text.count('"strains"') == 1
    assert read_corpus(path).poems == poems[:2] + (RawPoem("z", "t", "a", ("abc",), None),)


def test_chinese_poetry_json_array(tmp_path: Path) -> None:
    path = tmp_path / "poet.tang.0.json"
    source = [dict(PLAIN, tags=["x"]), {k: v for k, v in MISALIGNED.items() if k != "strains"}]
    path.write_text(json.dumps(source, ensure_ascii=False, indent=1), encoding="utf-8")
    corpus = read_corpus(path)
    assert corpus.format == "chinese-poetry-json"
    assert [p.id for p in corpus.poems] == ["c3", "b2"]
    assert all(p.strains is None for p in corpus.poems)


def test_text_file_one_poem_per_line(tmp_path: Path) -> None:
    path = tmp_path / "mine.txt"
    path.write_text("\ufeff白日依山盡，黃河入海流。\n\n   \n  欲窮千里目，更上一層樓。  \r\n", encoding="utf-8")
    corpus = read_corpus(path)
    assert corpus.format == "text"
    lines = ["白日依山盡，黃河入海流。", "欲窮千里目，更上一層樓。"]
    assert [p.paragraphs for p in corpus.poems] == [(line,) for line in lines]
    assert [p.id for p in corpus.poems] == [hashlib.sha1(line.encode()).hexdigest()[:16] for line in lines]
    assert all(p.title == "" and p.author == "" and p.strains is None for p in corpus.poems)


def test_unknown_suffix_is_sniffed(tmp_path: Path) -> None:
    as_jsonl = tmp_path / "a.data"
    as_jsonl.write_text(jsonl(PLAIN), encoding="utf-8")
    assert read_corpus(as_jsonl).format == "tangrnn-corpus/1"
    as_text = tmp_path / "b.data"
    as_text.write_text("一首詩\n", encoding="utf-8")
    assert read_corpus(as_text).format == "text"


def test_poem_without_paragraphs_is_kept_without_strains(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text(jsonl(dict(PLAIN, id="e", paragraphs=[], strains=[]), PLAIN), encoding="utf-8")
    poems = read_corpus(path).poems
    assert poems[0].paragraphs == () and poems[0].strains is None


def test_strains_alignment_rule() -> None:
    assert strains_align(["ab，c。"], ["平仄，平。"])
    assert not strains_align(["ab，c。"], ["平仄，平"])  # a line of another length
    assert not strains_align(["ab", "cd"], ["平仄"])  # another number of lines
    assert not strains_align([], [])  # nothing to align
    assert not strains_align(["ab"], None)


# ---------------------------------------------------------------------------------------------- errors


def test_error_missing_file(tmp_path: Path) -> None:
    expect_error(tmp_path / "nope.jsonl", "nope.jsonl", "does not exist")


def test_error_directory_suggests_build(tmp_path: Path) -> None:
    expect_error(tmp_path, str(tmp_path), "is a folder", "tangrnn data build")


def test_error_not_valid_xz(tmp_path: Path) -> None:
    garbage = tmp_path / "bad.jsonl.xz"
    garbage.write_bytes(b"this is not xz at all")
    expect_error(garbage, "bad.jsonl.xz", "not a valid xz file")
    truncated = tmp_path / "cut.jsonl.xz"
    truncated.write_bytes(lzma.compress(jsonl(PLAIN).encode())[:-12])
    expect_error(truncated, "cut.jsonl.xz", "not a valid xz file")


def test_error_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(jsonl(PLAIN) + '{"id": "x", "title": \n' + jsonl(PLAIN), encoding="utf-8")
    expect_error(path, "c.jsonl", "invalid JSON at line 2")
    array = tmp_path / "c.json"
    array.write_text('[\n{"id": "x",\n,]', encoding="utf-8")
    expect_error(array, "c.json", "invalid JSON at line 3")


def test_error_missing_fields_names_the_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    bad = {k: v for k, v in PLAIN.items() if k != "author"}
    path.write_text(jsonl(PLAIN, PLAIN, bad), encoding="utf-8")
    expect_error(path, "c.jsonl", "line 3", "'author'")


def test_error_wrong_field_types(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(jsonl(dict(PLAIN, paragraphs="一二三")), encoding="utf-8")
    expect_error(path, "line 1", "'paragraphs' must be a list of strings")
    path.write_text(jsonl(PLAIN) + "[1, 2]\n", encoding="utf-8")
    expect_error(path, "line 2", "not a poem object")
    array = tmp_path / "d.json"
    array.write_text('{"id": "x"}', encoding="utf-8")
    expect_error(array, "d.json", "not a list of poems")


@pytest.mark.parametrize(
    "name, content",
    [
        ("e.jsonl", b""),
        ("e.jsonl", b"\n\n"),
        ("e.txt", b" \n\n"),
        ("e.json", b"[]"),
        ("e.jsonl.xz", lzma.compress(b"")),
    ],
)
def test_error_no_poems(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    expect_error(path, name, "holds no poems")


def test_error_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "g.txt"
    path.write_bytes("詩".encode("big5") + b"\n")
    expect_error(path, "g.txt", "not UTF-8")


def test_errors_are_tangrnn_errors() -> None:
    assert issubclass(CorpusError, TangrnnError)


# ---------------------------------------------------------------------------------------------- provenance


def test_provenance_beside_the_corpus(tmp_path: Path) -> None:
    corpus = tmp_path / "tang.jsonl.xz"
    assert provenance_path(corpus) == tmp_path / "tang.provenance.json"
    assert provenance_path(tmp_path / "mine.txt") == tmp_path / "mine.provenance.json"
    assert corpus_provenance(corpus) is None
    (tmp_path / "tang.provenance.json").write_text('{"format": "tangrnn-corpus/1"}', encoding="utf-8")
    assert corpus_provenance(corpus) == {"format": "tangrnn-corpus/1"}
    (tmp_path / "tang.provenance.json").write_text("{oops", encoding="utf-8")
    with pytest.raises(CorpusError) as info:
        corpus_provenance(corpus)
    assert "\n" not in str(info.value) and "tang.provenance.json" in str(info.value)


def test_info_verb_describes_a_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(jsonl(ALIGNED, MISALIGNED), encoding="utf-8")
    assert run(["info", "--corpus", str(path)]) == 0
    out = capsys.readouterr().out
    assert str(path) in out and "poems:    2" in out and "1 poems (50.0%)" in out
    assert hashlib.sha256(path.read_bytes()).hexdigest() in out
    assert "provenance: none" in out
    with pytest.raises(CorpusError):
        run(["info", "--corpus", str(tmp_path / "missing.jsonl")])


# ---------------------------------------------------------------------------------------------- bundled


def test_bundled_corpus() -> None:
    path = bundled_corpus_path()
    assert path.name == "tang.jsonl.xz" and path.is_file()
    corpus = read_corpus()
    assert corpus.path == path
    assert len(corpus.poems) == 57_607
    assert len({p.id for p in corpus.poems}) == 57_607
    with_strains = sum(1 for p in corpus.poems if p.strains is not None)
    assert 0.85 * 57_607 < with_strains < 57_607
    assert all(strains_align(p.paragraphs, p.strains) for p in corpus.poems if p.strains is not None)
    provenance = corpus_provenance()
    assert provenance is not None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert provenance["sha256"] == digest == corpus.checksum
    assert provenance["counts"]["poems"] == 57_607
    assert provenance["counts"]["poems_with_strains"] == with_strains
    assert provenance["format"] == "tangrnn-corpus/1"
    assert provenance["license"]["name"] == "MIT"
