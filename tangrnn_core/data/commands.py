"""The ``tangrnn data`` verb: build a corpus file, or describe one."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from tangrnn_core.arguments import OneLineArgumentParser, add_verbs, parse_arguments
from tangrnn_core.data.corpus import (
    FORMAT,
    FORMAT_CHINESE_POETRY,
    FORMAT_TEXT,
    XZ_MAGIC,
    corpus_provenance,
    provenance_path,
    read_corpus,
)
from tangrnn_core.errors import CorpusError

__all__ = ["build_parser", "run"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tangrnn data``: a bad argument raises a one-line
    :class:`~tangrnn_core.errors.ConfigError`, in the sub-verbs' parsers too."""
    parser = OneLineArgumentParser(
        prog="tangrnn data",
        description="Build the poem corpus from chinese-poetry data, or describe a corpus file.",
    )
    verbs = add_verbs(parser, ("build", "info"), required=True)

    build = verbs.add_parser(
        "build",
        prog="tangrnn data build",
        help="build a tangrnn corpus file (JSON Lines, optionally xz) and its provenance file",
        description=(
            "Collect the Tang poems (quantangshi/poet.tang.*.json, in numeric file order) and their aligned "
            "strains from chinese-poetry data, or the poems of a single file, and write them as a "
            "tangrnn-corpus/1 file plus <stem>.provenance.json beside it. The output is replaced atomically "
            "and is byte-identical for the same source."
        ),
    )
    build.add_argument(
        "--source",
        required=True,
        metavar="PATH",
        help=(
            "a chinese-poetry checkout, its dist/ folder, an extracted npm package/ folder, the npm tarball "
            "(e.g. chinese-poetry-2.0.1.tgz from `npm pack chinese-poetry@2.0.1`), a chinese-poetry JSON "
            "file, a .txt file with one poem per line, or an existing .jsonl/.jsonl.xz corpus (re-encoded)"
        ),
    )
    build.add_argument(
        "--output",
        metavar="PATH",
        default="corpus.jsonl.xz",
        help=(
            "the corpus file to write; .jsonl.xz is xz-compressed, .jsonl is plain (default: corpus.jsonl.xz "
            "in the current folder). Train on it with `tangrnn fit --data.corpus PATH ...`"
        ),
    )
    build.add_argument(
        "--force",
        action="store_true",
        help="replace the output file if it exists (it is never replaced otherwise)",
    )

    info = verbs.add_parser(
        "info",
        prog="tangrnn data info",
        help="describe a corpus file: format, poem count, strains coverage, checksum, provenance",
        description="Read a corpus file and print its path, format, poem count, strains coverage, "
        "SHA-256 and, if a provenance file sits beside it, where it came from.",
    )
    info.add_argument(
        "--corpus",
        metavar="PATH",
        default=None,
        help="the corpus file to describe (.jsonl.xz, .jsonl, .json or .txt; default: the bundled corpus)",
    )
    return parser


def run(argv: list[str]) -> int:
    """Runs ``tangrnn data`` with ``argv`` (the words after ``data``); returns the exit status.

    Args:
        argv: the words after ``data``: a sub-verb (``build`` or ``info``) and its options.

    Raises:
        ConfigError: a bad argument, or no sub-verb.
        CorpusError: a source or corpus that cannot be read, or an output that exists without ``--force``.
    """
    args = parse_arguments(build_parser(), argv)
    if isinstance(args, int):  # --help
        return args
    if args.verb == "build":
        return _build(args.source, args.output, args.force)
    return _info(args.corpus)


def _build(source: str, output: str, force: bool) -> int:
    from tangrnn_core.data.build import build_corpus

    target = Path(output)
    if target.exists() and not force:
        raise CorpusError(f"{target} already exists; pass --force to replace it, or choose another --output")
    started = time.perf_counter()
    report = build_corpus(source, target)
    elapsed = time.perf_counter() - started
    counts = report["counts"]
    print(f"built {target} in {elapsed:.1f} s")
    print(f"  poems:        {counts['poems']:,}")
    print(
        f"  with strains: {counts['poems_with_strains']:,} ({_percent(counts['poems_with_strains'], counts['poems'])})"
    )
    print(f"  size:         {_size(report['bytes'])}")
    print(f"  sha256:       {report['sha256']}")
    print(f"  provenance:   {provenance_path(target)}")
    return 0


def _info(corpus_path: str | None) -> int:
    corpus = read_corpus(corpus_path)
    path = corpus.path
    if corpus.format == FORMAT:
        with open(path, "rb") as handle:
            compressed = handle.read(len(XZ_MAGIC)) == XZ_MAGIC
        described = f"{FORMAT} (JSON Lines{', xz-compressed' if compressed else ''})"
    elif corpus.format == FORMAT_CHINESE_POETRY:
        described = "chinese-poetry JSON array"
    elif corpus.format == FORMAT_TEXT:
        described = "plain text, one poem per line"
    else:
        described = corpus.format
    with_strains = sum(1 for p in corpus.poems if p.strains is not None)
    print(f"path:     {path}")
    print(f"format:   {described}")
    print(f"size:     {_size(path.stat().st_size)}")
    print(f"poems:    {len(corpus.poems):,}")
    print(f"strains:  {with_strains:,} poems ({_percent(with_strains, len(corpus.poems))})")
    print(f"sha256:   {corpus.checksum}")
    provenance = corpus_provenance(path)
    if provenance is None:
        print("provenance: none (no provenance file beside the corpus)")
        return 0
    print(f"provenance: {provenance_path(path)}")
    _print_provenance(provenance, corpus.checksum)
    return 0


def _print_provenance(provenance: dict[str, Any], checksum: str) -> None:
    source = provenance.get("source")
    if isinstance(source, dict) and source.get("description"):
        print(f"  source:  {source['description']}")
    license_info = provenance.get("license")
    if isinstance(license_info, dict):
        parts = [str(v) for v in (license_info.get("name"), license_info.get("copyright")) if v]
        if parts:
            print(f"  license: {', '.join(parts)}")
    if provenance.get("format"):
        print(f"  format:  {provenance['format']}")
    recorded = provenance.get("sha256")
    if recorded == checksum:
        print("  sha256:  matches the file")
    elif recorded:
        print(f"  sha256:  {recorded} does NOT match the file; the corpus changed since it was built, rebuild it")


def _percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "n/a"


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB ({n:,} bytes)" if n >= 2**20 else f"{n:,} bytes"
