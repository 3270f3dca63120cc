"""The corpus builder and the `tangrnn data build` verb, on tiny fake chinese-poetry sources."""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
import tarfile
from pathlib import Path

import pytest

from tangrnn_core.data import build as build_module
from tangrnn_core.data.build import build_corpus
from tangrnn_core.data.commands import run
from tangrnn_core.data.corpus import RawPoem, read_corpus
from tangrnn_core.errors import ConfigError, CorpusError

LICENSE = "The MIT License (MIT)\n\nCopyright (c) 2016 Someone\n\nPermission is hereby granted...\n"
PACKAGE = {"name": "chinese-poetry", "version": "9.9.9", "license": "MIT", "homepage": "http://example.invalid"}

# poet.tang.2000 comes before poet.tang.10000 numerically, after it lexicographically.
POEMS_2000 = [
    {"author": "甲", "paragraphs": ["一二三，四五。", "六七八，九十。"], "title": "第一", "id": "p-aligned"},
    {"author": "乙", "paragraphs": ["春風，秋月。"], "title": "第二", "id": "p-misaligned", "tags": ["x"]},
]
POEMS_10000 = [
    {"author": "丙", "paragraphs": ["山水，雲天。"], "title": "第三", "id": "p-nostrains"},
    {"author": "丁", "paragraphs": [], "title": "有題無詩", "id": "p-empty", "notes": ["n"]},
]
STRAINS_2000 = [
    {"id": "p-aligned", "strains": ["仄仄平，仄仄。", "仄仄仄，仄仄。"]},
    {"id": "p-misaligned", "strains": ["平平，平仄"]},  # one character short
    {"id": "p-unknown", "strains": ["平"]},
]


def dump(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")


def make_package(root: Path) -> Path:
    """A fake extracted npm package/ folder; returns it."""
    package = root / "package"
    dump(package / "package.json", PACKAGE)
    (package / "LICENSE").write_text(LICENSE, encoding="utf-8")
    dist = package / "dist"
    dump(dist / "quantangshi" / "poet.tang.10000.json", POEMS_10000)
    dump(dist / "quantangshi" / "poet.tang.2000.json", POEMS_2000)
    dump(
        dist / "quantangshi" / "poet.song.0.json", [{"author": "宋", "paragraphs": ["宋詩。"], "title": "", "id": "s"}]
    )
    dump(dist / "quantangshi" / "authors.tang.json", [{"name": "甲", "desc": ""}])
    dump(dist / "quantangshi" / "error" / "poet.tang.2000.json", [{"broken": True}])
    dump(dist / "strains" / "json" / "poet.tang.2000.json", STRAINS_2000)
    dump(dist / "strains" / "json" / "poet.song.0.json", [{"id": "s", "strains": ["仄仄。"]}])
    return package


def make_tarball(package: Path, path: Path) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        archive.add(package, arcname="package")
    return path


def expect_error(fragments: tuple[str, ...], source, output) -> str:
    with pytest.raises(CorpusError) as info:
        build_corpus(source, output)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


EXPECTED = (
    RawPoem("p-aligned", "第一", "甲", ("一二三，四五。", "六七八，九十。"), ("仄仄平，仄仄。", "仄仄仄，仄仄。")),
    RawPoem("p-misaligned", "第二", "乙", ("春風，秋月。",), None),
    RawPoem("p-nostrains", "第三", "丙", ("山水，雲天。",), None),
    RawPoem("p-empty", "有題無詩", "丁", (), None),
)


# ---------------------------------------------------------------------------------------------- happy paths


def test_folder_build_round_trip_order_and_strains(tmp_path: Path) -> None:
    package = make_package(tmp_path / "src")
    output = tmp_path / "out" / "tang.jsonl.xz"
    report = build_corpus(package, output)
    assert output.read_bytes().startswith(b"\xfd7zXZ\x00")
    corpus = read_corpus(output)
    assert corpus.poems == EXPECTED  # numeric file order, each file's order, aligned strains only
    assert corpus.checksum == report["sha256"] == hashlib.sha256(output.read_bytes()).hexdigest()

    provenance_file = tmp_path / "out" / "tang.provenance.json"
    assert json.loads(provenance_file.read_text(encoding="utf-8")) == report
    assert report["format"] == "tangrnn-corpus/1"
    assert report["source"]["description"] == "chinese-poetry 9.9.9, npm package chinese-poetry@9.9.9"
    assert report["source"]["version"] == "9.9.9"
    assert report["license"] == {"name": "MIT", "copyright": "Copyright (c) 2016 Someone"}
    counts = report["counts"]
    assert counts["poems"] == 4 and counts["poems_with_strains"] == 1
    assert counts["characters"] == 7 + 7 + 6 + 6 and counts["poems_without_paragraphs"] == 1
    text = provenance_file.read_text(encoding="utf-8")
    assert "http" not in text and "example.invalid" not in text and "npmjs" not in text
    assert "\\u" not in text  # written with ensure_ascii=False


def test_tarball_and_dist_folder_give_the_same_corpus(tmp_path: Path) -> None:
    package = make_package(tmp_path / "src")
    tarball = make_tarball(package, tmp_path / "chinese-poetry-9.9.9.tgz")
    from_folder = tmp_path / "a" / "c.jsonl.xz"
    from_tar = tmp_path / "b" / "c.jsonl.xz"
    from_dist = tmp_path / "d" / "c.jsonl.xz"
    build_corpus(package, from_folder)
    report = build_corpus(tarball, from_tar)
    dist_report = build_corpus(package / "dist", from_dist)
    assert from_folder.read_bytes() == from_tar.read_bytes() == from_dist.read_bytes()
    assert report["source"]["kind"] == "npm tarball" and report["source"]["file"] == tarball.name
    assert report["source"]["version"] == "9.9.9" and dist_report["source"]["version"] == "9.9.9"
    assert read_corpus(from_tar).poems == EXPECTED


def test_build_is_deterministic(tmp_path: Path) -> None:
    package = make_package(tmp_path / "src")
    first, second = tmp_path / "1" / "t.jsonl.xz", tmp_path / "2" / "t.jsonl.xz"
    build_corpus(package, first)
    build_corpus(package, second)
    assert first.read_bytes() == second.read_bytes()
    assert (first.parent / "t.provenance.json").read_bytes() == (second.parent / "t.provenance.json").read_bytes()


def test_plain_jsonl_output(tmp_path: Path) -> None:
    output = tmp_path / "t.jsonl"
    report = build_corpus(make_package(tmp_path / "src"), output)
    raw = output.read_text(encoding="utf-8")
    assert report["compression"] is None and raw.count("\n") == 4
    assert raw.splitlines()[0] == (
        '{"id":"p-aligned","title":"第一","author":"甲","paragraphs":["一二三，四五。","六七八，九十。"],'
        '"strains":["仄仄平，仄仄。","仄仄仄，仄仄。"]}'
    )
    assert (tmp_path / "t.provenance.json").is_file()


def test_text_and_json_file_sources(tmp_path: Path) -> None:
    txt = tmp_path / "mine.txt"
    txt.write_text("白日依山盡。\n\n黃河入海流。\n", encoding="utf-8")
    report = build_corpus(txt, tmp_path / "mine.jsonl.xz")
    poems = read_corpus(tmp_path / "mine.jsonl.xz").poems
    assert [p.paragraphs for p in poems] == [("白日依山盡。",), ("黃河入海流。",)]
    assert report["source"]["kind"] == "text file" and report["license"] is None

    single = tmp_path / "poet.tang.2000.json"
    dump(single, POEMS_2000)
    build_corpus(single, tmp_path / "single.jsonl")
    assert [p.id for p in read_corpus(tmp_path / "single.jsonl").poems] == ["p-aligned", "p-misaligned"]


def test_build_verb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "v.jsonl.xz"
    assert run(["build", "--source", str(make_package(tmp_path / "src")), "--output", str(output)]) == 0
    out = capsys.readouterr().out
    assert "poems:        4" in out and "with strains: 1" in out and str(output) in out
    assert hashlib.sha256(output.read_bytes()).hexdigest() in out
    assert run(["info", "--corpus", str(output)]) == 0
    out = capsys.readouterr().out
    assert "chinese-poetry 9.9.9" in out and "matches the file" in out


def test_help_describes_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["build", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--source" in out and "--output" in out and ".jsonl.xz" in out and "tarball" in out
    assert run(["info", "--help"]) == 0
    assert "--corpus" in capsys.readouterr().out
    # Usage errors are one-line ConfigErrors, which the command line prints with status 2.
    with pytest.raises(ConfigError, match=r"required: \{build,info\}; run `tangrnn data --help`"):
        run([])
    with pytest.raises(ConfigError, match="required: --source; run `tangrnn data build --help`"):
        run(["build"])


# ---------------------------------------------------------------------------------------------- atomicity


def test_failed_build_leaves_existing_output_untouched(tmp_path: Path) -> None:
    package = make_package(tmp_path / "src")
    output = tmp_path / "out" / "t.jsonl.xz"
    build_corpus(package, output)
    before = {p.name: p.read_bytes() for p in output.parent.iterdir()}
    (package / "dist" / "quantangshi" / "poet.tang.10000.json").write_text("[{", encoding="utf-8")
    expect_error(("poet.tang.10000.json",), package, output)
    assert {p.name: p.read_bytes() for p in output.parent.iterdir()} == before


def test_write_failure_leaves_existing_output_and_no_temp_files(tmp_path: Path, monkeypatch) -> None:
    package = make_package(tmp_path / "src")
    output = tmp_path / "out" / "t.jsonl.xz"
    build_corpus(package, output)
    before = {p.name: p.read_bytes() for p in output.parent.iterdir()}
    (package / "dist" / "quantangshi" / "poet.tang.2000.json").unlink()  # the next build would differ

    def no_space(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(build_module.os, "fsync", no_space)
    expect_error(("t.jsonl.xz", "No space left on device"), package, output)
    assert {p.name: p.read_bytes() for p in output.parent.iterdir()} == before


# ---------------------------------------------------------------------------------------------- errors


def test_error_source_missing(tmp_path: Path) -> None:
    expect_error(("nowhere", "does not exist"), tmp_path / "nowhere", tmp_path / "o.jsonl.xz")


def test_error_folder_or_tarball_without_tang_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    dump(empty / "dist" / "quantangshi" / "poet.song.0.json", [])
    dump(empty / "dist" / "quantangshi" / "error" / "poet.tang.0.json", [])
    expect_error(("no poet.tang.*.json", str(empty)), empty, tmp_path / "o.jsonl.xz")
    tarball = tmp_path / "empty.tgz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(empty, arcname="package")
    expect_error(("no poet.tang.*.json", "empty.tgz"), tarball, tmp_path / "o.jsonl.xz")


def test_error_not_a_tarball(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.tgz"
    bogus.write_bytes(b"not a tarball")
    expect_error(("bogus.tgz", "not a readable tar archive"), bogus, tmp_path / "o.jsonl.xz")


def test_error_malformed_source_json_names_the_file(tmp_path: Path) -> None:
    package = make_package(tmp_path / "src")
    (package / "dist" / "strains" / "json" / "poet.tang.2000.json").write_text("{nope", encoding="utf-8")
    expect_error(("strains/json/poet.tang.2000.json", "not valid JSON"), package, tmp_path / "o.jsonl.xz")

    package = make_package(tmp_path / "src2")
    dump(package / "dist" / "quantangshi" / "poet.tang.2000.json", [{"title": "t", "paragraphs": []}])
    expect_error(("quantangshi/poet.tang.2000.json item 0", "'id'"), package, tmp_path / "o.jsonl.xz")

    tarball = tmp_path / "bad.tgz"
    with tarfile.open(tarball, "w:gz") as archive:
        data = b"[1, 2"
        member = tarfile.TarInfo("package/dist/quantangshi/poet.tang.0.json")
        member.size = len(data)
        archive.addfile(member, io.BytesIO(data))
    expect_error(("bad.tgz", "poet.tang.0.json", "not valid JSON"), tarball, tmp_path / "o.jsonl.xz")


def test_error_output_folder_not_writable(tmp_path: Path) -> None:
    package = make_package(tmp_path / "src")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    expect_error(("a-file", "--output"), package, blocker / "t.jsonl.xz")
    if hasattr(os, "geteuid") and os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            expect_error(("not writable", "--output"), package, locked / "t.jsonl.xz")
        finally:
            locked.chmod(0o700)


def test_error_bad_output_name(tmp_path: Path) -> None:
    package = make_package(tmp_path / "src")
    expect_error((".jsonl.xz", "rename"), package, tmp_path / "t.txt")
    (tmp_path / "d.jsonl").mkdir()
    expect_error(("is a folder",), package, tmp_path / "d.jsonl")


def test_xz_output_decompresses_to_the_plain_output(tmp_path: Path) -> None:
    package = make_package(tmp_path / "src")
    build_corpus(package, tmp_path / "x.jsonl.xz")
    build_corpus(package, tmp_path / "p.jsonl")
    assert lzma.decompress((tmp_path / "x.jsonl.xz").read_bytes()) == (tmp_path / "p.jsonl").read_bytes()


def test_build_verb_never_replaces_an_existing_file_without_force(tmp_path: Path) -> None:
    output = tmp_path / "v.jsonl.xz"
    output.write_bytes(b"precious")
    source = str(make_package(tmp_path / "src"))
    with pytest.raises(CorpusError, match="already exists; pass --force"):
        run(["build", "--source", source, "--output", str(output)])
    assert output.read_bytes() == b"precious"
    assert run(["build", "--source", source, "--output", str(output), "--force"]) == 0
    assert read_corpus(output).poems
