"""The ``tangrnn check`` verb: does a poem follow the rules of regulated verse?

Reads one or more poems (an argument, ``--file``, or standard input), prints for each its form, the pattern it
follows, its rhyme group and every fault by line and position, and exits with the worst: 0 when every poem
passes, 1 when one has violations, 2 for input it cannot check (nothing given, or a poem not 五绝 七绝 五律 七律;
among several, that poem is reported in its place and the others are checked).
"""

from __future__ import annotations

import argparse
import json
import re
import sys

from tangrnn_core.arguments import OneLineArgumentParser, parse_arguments
from tangrnn_core.data.normalize import LINE_END_MARKS, normalize_poem
from tangrnn_core.errors import ConfigError
from tangrnn_core.prosody.checker import CheckResult, check_poem
from tangrnn_core.prosody.patterns import pattern_named

__all__ = ["build_parser", "run", "split_poems", "prepare_text"]

DESCRIPTION = """\
Check poems against the rules of regulated verse (近体诗): the form (五绝 七绝 五律 七律), the sixteen tone
patterns (平起/仄起, first line rhymed or not), one 平声 rhyme group of 平水韵, and 孤平 and 三平尾.

Poems may be simplified or traditional; tones are those of 平水韵 (Middle Chinese, not Mandarin). A poem's
lines may end with ，。？！；: or with line breaks. Several poems are separated by blank lines; the JSON lines
`tangrnn generate --output json` prints are read as well.

Violations fail a poem: a tone against the pattern, an unrhymed line ending in 平, a rhyme outside the poem's
group. Warnings do not, unless --strict: 孤平, 三平尾, and a rhyme from a neighbouring group (邻韵, such as 东
and 冬; 首句借邻韵 on a first line). Characters whose tone no source knows are listed, never counted.

Exit status, the worst of the poems': 0 every poem passes, 1 a poem has violations, 2 input that cannot be
checked (among several poems, such a poem is reported in its place and the others are still checked).
"""

_BLANK_LINES = re.compile(r"\n\s*\n")
_WHITESPACE = re.compile(r"\s+")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tangrnn check``: a bad argument raises a one-line
    :class:`~tangrnn_core.errors.ConfigError`."""
    parser = OneLineArgumentParser(
        prog="tangrnn check",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("poem", nargs="?", help="the poem (default: --file, or standard input)")
    parser.add_argument("--file", metavar="PATH", help="read the poems from this UTF-8 file ('-': standard input)")
    parser.add_argument(
        "--tones",
        choices=("strict", "loose"),
        default="strict",
        help="strict: every position the pattern fixes; loose: only the 2nd, 4th and 6th characters and the "
        "line's last one (一三五不论). Default: strict",
    )
    parser.add_argument("--strict", action="store_true", help="warnings (孤平, 三平尾, 邻韵) fail a poem too")
    parser.add_argument(
        "--pattern",
        default="auto",
        metavar="NAME",
        help="check against this pattern only: 仄起首句不入韵, 仄起首句入韵, 平起首句不入韵, 平起首句入韵 "
        "(or ze-unrhymed, ze-rhymed, ping-unrhymed, ping-rhymed); default auto: the one the poem follows best",
    )
    parser.add_argument("--output", choices=("text", "json"), default="text", help="text, or one JSON record per poem")
    return parser


def run(argv: list[str]) -> int:
    """Runs ``tangrnn check`` with ``argv`` (the words after ``check``); returns the exit status.

    Args:
        argv: the words after ``check``: a poem, or ``--file``, and the options.

    Raises:
        ConfigError: a bad argument, nothing to check, unreadable input, or a poem that is not of a regular form.
    """
    args = parse_arguments(build_parser(), argv)
    if isinstance(args, int):  # --help
        return args
    text = _read_input(args)
    poems = split_poems(text)
    if not poems:
        raise ConfigError("no poem given: pass it as an argument, with --file PATH, or on standard input")
    if args.pattern not in (None, "auto"):
        pattern_named(args.pattern, "五绝")  # an unknown name is the command's error, not every poem's
    if len(poems) == 1:
        results: list[CheckResult | ConfigError] = [_check(poems[0], args)]
        if isinstance(results[0], ConfigError):
            raise results[0]
    else:
        results = [_check(poem, args) for poem in poems]
    unchecked = []
    for index, (poem, result) in enumerate(zip(poems, results)):
        if isinstance(result, ConfigError):
            # One poem that cannot be checked is reported in its place; the others still are.
            unchecked.append(f"poem {index + 1} ({_excerpt(poem)}): {result}")
            if args.output == "json":
                print(json.dumps({"poem": poem, "error": str(result)}, ensure_ascii=False), flush=True)
            else:
                print(("\n" if index else "") + f"poem {index + 1} cannot be checked: {result}", flush=True)
        elif args.output == "json":
            print(json.dumps(result.to_json(), ensure_ascii=False), flush=True)
        else:
            print(("\n" if index else "") + format_result(result), flush=True)
    checked = [r for r in results if isinstance(r, CheckResult)]
    if args.output == "text" and len(results) > 1:
        passed = sum(r.passed for r in checked)
        tail = f", {len(unchecked)} cannot be checked" if unchecked else ""
        print(f"\n{len(results)} poems: {passed} pass, {len(checked) - passed} fail{tail}", flush=True)
    if unchecked:
        more = f" (and {len(unchecked) - 1} more)" if len(unchecked) > 1 else ""
        raise ConfigError(f"{unchecked[0]}{more}; the other poems are reported above")
    return 0 if all(r.passed for r in checked) else 1


def _check(poem: str, args: argparse.Namespace) -> CheckResult | ConfigError:
    try:
        return check_poem(prepare_text(poem), tones=args.tones, strict=args.strict, pattern=args.pattern)
    except ConfigError as error:
        return error


def _read_input(args: argparse.Namespace) -> str:
    if args.poem is not None and args.file is not None:
        raise ConfigError("give the poem either as an argument or with --file, not both")
    if args.poem is not None:
        return args.poem
    if args.file not in (None, "-"):
        try:
            with open(args.file, encoding="utf-8") as handle:
                return handle.read()
        except FileNotFoundError:
            raise ConfigError(f"{args.file} does not exist; check the path") from None
        except IsADirectoryError:
            raise ConfigError(f"{args.file} is a folder; pass a text file with the poems") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{args.file} is not UTF-8 text; convert it to UTF-8") from None
    # A closed standard input (`<&-`, some schedulers) leaves sys.stdin None: no poem, as with a terminal.
    if args.file is None and (sys.stdin is None or sys.stdin.isatty()):
        raise ConfigError("no poem given: pass it as an argument, with --file PATH, or on standard input")
    return sys.stdin.read()


def split_poems(text: str) -> list[str]:
    """The poems of ``text``: JSON lines with a ``poem`` field (``tangrnn generate --output json``), or blocks
    of lines separated by blank lines."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and all(line.startswith("{") for line in lines):
        poems = []
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                break
            if not isinstance(record, dict) or not isinstance(record.get("poem"), str):
                break
            poems.append(record["poem"])
        else:
            return poems
    return [block.strip() for block in _BLANK_LINES.split(text.replace("\r\n", "\n")) if block.strip()]


def prepare_text(poem: str) -> str:
    """One poem as the checker reads it: punctuation unified, notes and decoration removed, and a line end
    wherever the text breaks a line or leaves a space between characters without a mark.

    Raises:
        ConfigError: nothing Chinese to read, or a missing or unreadable character (□, ●, Latin letters ...).
    """
    pieces = []
    lines = 0  # lines so far: a line end the text leaves out is "，" after odd lines and "。" after even ones
    for chunk in _WHITESPACE.split(poem.strip()):
        if not chunk:
            continue
        normalized = normalize_poem([chunk]) or normalize_poem([chunk + ("，" if lines % 2 == 0 else "。")])
        if normalized is None:
            raise ConfigError(
                f"cannot read {_excerpt(chunk)!r} as verse: a character is missing or unreadable (□, ●, Latin "
                f"letters, digits) or a bracket is unbalanced; give the poem in Chinese characters"
            )
        pieces.append(normalized.text)
        lines += sum(normalized.text.count(mark) for mark in LINE_END_MARKS)
    text = "".join(pieces)
    if text.endswith("，"):
        text = text[:-1] + "。"  # the poem's last line, given without a mark
    if not text.strip(LINE_END_MARKS):
        raise ConfigError("no poem given: the input holds no Chinese characters")
    return text


def format_result(result: CheckResult) -> str:
    """The text report of one poem."""
    group = result.rhyme_group
    rows = [
        result.poem,
        f"form      {result.form.value}",
        f"pattern   {result.pattern.full_name} ({' '.join(result.pattern.line_types)})",
        f"rhyme     {group.full_name if group else 'none'}: {' '.join(result.rhymes)}",
        f"tones     {result.tone_mode.value}{'; --strict: warnings fail' if result.strict else ''}",
    ]
    width = max(len(line.text) for line in result.lines)
    for number, line in enumerate(result.lines, start=1):
        rows.append(f"  {number}  {line.text.ljust(width, '　')}  {line.tones}  {line.required}  {line.kind}")
    for finding in result.violations:
        rows.append(f"  violation: {finding}")
    for finding in result.warnings:
        rows.append(f"  warning: {finding}")
    if result.unknown:
        rows.append(f"  tone unknown (not counted): {' '.join(result.unknown)}")
    n, w = len(result.violations), len(result.warnings)
    verdict = "passes" if result.passed else "fails"
    rows.append(f"{verdict}: {n} violation{'s' if n != 1 else ''}, {w} warning{'s' if w != 1 else ''}")
    return "\n".join(rows)


def _excerpt(text: str, limit: int = 16) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."
