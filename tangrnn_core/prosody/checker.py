"""Checking a poem against the sixteen patterns: its form, the pattern it follows, its rhyme group, and every
fault by line and position.

Faults come in two severities:

* **violations** (the poem fails): a character whose tone contradicts a fixed position of the pattern
  (``tone``), an unrhymed line that ends in 平 (``line-end``), a rhyme outside the poem's 平声 group or no
  平声 rhyme at all (``rhyme``);
* **warnings** (the poem passes, unless the check is ``strict``): 孤平 (a 平-ending line whose only 平 besides
  the rhyme stands alone), 三平尾 (three 平 at a line's end), and a rhyme from a neighbouring group (邻韵, by
  词林正韵's 部: 东 and 冬, 庚 青 and 蒸 ...), which poets allowed on a first line (首句借邻韵) and which
  occurs elsewhere too (元稹's 行宫 rhymes 宫 红 with 宗).

Polyphonic characters (tone ○) fit both tones; characters no source knows (tone unknown) are listed and never
counted against a poem, except at a rhyme, which must be in a 平声 group. The pattern reported is the one with
the fewest violations, then warnings, then the most positions matched by characters of one definite tone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from tangrnn_core.data.forms import Form, classify, split_lines
from tangrnn_core.errors import ConfigError
from tangrnn_core.prosody.patterns import FREE, Pattern, ToneMode, parse_tone_mode, pattern_named, patterns_for
from tangrnn_core.prosody.tables import ProsodyTables, RhymeGroup, Tone, convert_each, load_tables, to_traditional

__all__ = ["Severity", "Finding", "LineReport", "CheckResult", "check_poem"]

UNKNOWN_MARK = "?"


class Severity(str, enum.Enum):
    VIOLATION = "violation"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One fault.

    Args:
        line: 1-based line.
        position: 1-based character in the line.
        char: the character, as written in the poem.
        rule: ``tone``, ``line-end``, ``rhyme``, ``邻韵``, ``孤平`` or ``三平尾``.
        severity: violation or warning.
        message: what is wrong, in one line.
    """

    line: int
    position: int
    char: str
    rule: str
    severity: Severity
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "position": self.position,
            "char": self.char,
            "rule": self.rule,
            "severity": self.severity.value,
            "message": self.message,
        }

    def __str__(self) -> str:
        return f"line {self.line}, position {self.position} ({self.char}): {self.rule}: {self.message}"


@dataclass(frozen=True)
class LineReport:
    """One line: its text, each character's tone (平 仄 ○, ``?`` unknown), and what the pattern asks (中: free)."""

    text: str
    tones: str
    required: str
    kind: str  #: a, A, b or B


@dataclass(frozen=True)
class CheckResult:
    """What :func:`check_poem` found.

    Args:
        poem: the poem as checked (normalised punctuation, script as given).
        form: its form.
        pattern: the pattern it follows best.
        tone_mode: strict or loose.
        strict: whether warnings fail the poem.
        rhyme_group: the 平声 group of its rhymes (``None``: no rhyme is in a 平声 group).
        rhymes: the rhyme characters, line by line, as written.
        lines: a report per line.
        findings: every violation and warning, by line and position.
        unknown: characters whose tone no source knows.
    """

    poem: str
    form: Form
    pattern: Pattern
    tone_mode: ToneMode
    strict: bool
    rhyme_group: RhymeGroup | None
    rhymes: tuple[str, ...]
    lines: tuple[LineReport, ...]
    findings: tuple[Finding, ...]
    unknown: tuple[str, ...] = field(default=())

    @property
    def violations(self) -> tuple[Finding, ...]:
        """The findings that fail the poem: violations, and warnings too when ``strict``."""
        return tuple(f for f in self.findings if self.strict or f.severity is Severity.VIOLATION)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        """The findings that do not fail it (none when ``strict``)."""
        return () if self.strict else tuple(f for f in self.findings if f.severity is Severity.WARNING)

    @property
    def passed(self) -> bool:
        return not self.violations

    def to_json(self) -> dict[str, Any]:
        group = self.rhyme_group
        return {
            "poem": self.poem,
            "form": self.form.value,
            "pattern": self.pattern.name,
            "pattern_full": self.pattern.full_name,
            "line_types": self.pattern.line_types,
            "rhyme_group": None if group is None else group.name,
            "rhyme_group_full": None if group is None else group.full_name,
            "rhymes": list(self.rhymes),
            "tones": self.tone_mode.value,
            "strict": self.strict,
            "lines": [
                {"text": line.text, "tones": line.tones, "pattern": line.required, "type": line.kind}
                for line in self.lines
            ],
            "violations": [f.to_json() for f in self.violations],
            "warnings": [f.to_json() for f in self.warnings],
            "unknown": list(self.unknown),
            "passed": self.passed,
        }


def check_poem(
    poem: str,
    tones: ToneMode | str = ToneMode.STRICT,
    strict: bool = False,
    pattern: str | None = None,
    tables: ProsodyTables | None = None,
) -> CheckResult:
    """Checks one normalised poem (``，``/``。`` line ends, as :func:`prepare_text` makes it).

    Args:
        poem: the poem, simplified or traditional.
        tones: ``strict`` (every position the pattern fixes) or ``loose`` (2, 4, 6 and the last: 一三五不论).
        strict: warnings (孤平, 三平尾, 邻韵) fail the poem too.
        pattern: check against this pattern only (``仄起首句不入韵`` ...); ``None`` or ``auto`` tries all four.
        tables: the tone and rhyme tables (default: the shipped ones).

    Raises:
        ConfigError: the poem is not 五绝, 七绝, 五律 or 七律, or an unknown pattern or tone mode.
    """
    mode = parse_tone_mode(tones)
    tables = tables or load_tables()
    form = classify(poem)
    if form is Form.OTHER:
        raise ConfigError(f"not a regular form ({_shape(poem)}); {_REGULAR_HINT}")
    lines = split_lines(poem)
    in_context = split_lines(to_traditional(poem))
    traditional = [_known_reading(line, converted, tables) for line, converted in zip(lines, in_context)]
    line_tones = [[tables.tone(c) for c in line] for line in traditional]
    candidates = patterns_for(form) if pattern in (None, "auto") else (pattern_named(pattern, form),)
    best = None
    for candidate in candidates:
        evaluation = _Evaluation(candidate, mode, lines, traditional, line_tones, tables)
        key = (
            evaluation.count(Severity.VIOLATION),
            evaluation.count(Severity.WARNING),
            -evaluation.definite,
        )
        if best is None or key < best[0]:
            best = (key, evaluation)
    chosen = best[1]
    reports = tuple(
        LineReport(
            text=line,
            tones="".join(UNKNOWN_MARK if t is None else t.value for t in tones_),
            required="".join(
                FREE if chosen.pattern.required(i, j, mode) is None else chosen.pattern.required(i, j, mode).value
                for j in range(len(line))
            ),
            kind=chosen.pattern.line_types[i],
        )
        for i, (line, tones_) in enumerate(zip(lines, line_tones))
    )
    unknown = tuple(dict.fromkeys(c for line, t in zip(lines, line_tones) for c, x in zip(line, t) if x is None))
    return CheckResult(
        poem=poem,
        form=form,
        pattern=chosen.pattern,
        tone_mode=mode,
        strict=strict,
        rhyme_group=chosen.group,
        rhymes=tuple(lines[i][-1] for i in chosen.pattern.rhyme_lines),
        lines=reports,
        findings=tuple(sorted(chosen.findings, key=lambda f: (f.line, f.position))),
        unknown=unknown,
    )


_REGULAR_HINT = "tangrnn check reads 五绝, 七绝, 五律 and 七律: 4 or 8 lines of 5 or 7 characters each"


def _known_reading(line: str, converted: str, tables: ProsodyTables) -> str:
    """``converted`` (the line in context), where a character of unknown tone is replaced by its own
    character-by-character conversion when that one is known: OpenCC keeps 台 as it is in some phrases (清台),
    and the tables know the terrace only as 臺. The decoder's constraints read every token the same way."""
    if all(tables.tone(char) is not None for char in converted):
        return converted
    alone = convert_each(tuple(line))
    return "".join(
        single if tables.tone(char) is None and tables.tone(single) is not None else char
        for char, single in zip(converted, alone)
    )


def _shape(poem: str) -> str:
    lines = split_lines(poem)
    lengths = ", ".join(str(len(line)) for line in lines[:10]) + (" ..." if len(lines) > 10 else "")
    return f"{len(lines)} line{'s' if len(lines) != 1 else ''} of {lengths} characters"


class _Evaluation:
    """The findings of one poem against one pattern."""

    def __init__(self, pattern, mode, lines, traditional, line_tones, tables: ProsodyTables) -> None:
        self.pattern: Pattern = pattern
        self.findings: list[Finding] = []
        self.definite = 0  # positions a character of one definite tone satisfies: breaks ties between patterns
        self.tables = tables
        self._lines, self._traditional, self._tones = lines, traditional, line_tones
        last = pattern.form.chars - 1
        for i, tones in enumerate(line_tones):
            for j, tone in enumerate(tones[:last]):
                required = pattern.required(i, j, mode)
                if required is None or tone is None:
                    continue
                if not tone.fits(required):
                    self._add(
                        i,
                        j,
                        "tone",
                        Severity.VIOLATION,
                        f"{tone.value} where the pattern needs {required.value} "
                        f"({pattern.line_types[i]}: {pattern.lines[i]})",
                    )
                elif tone is required:
                    self.definite += 1
            if not pattern.rhymes(i):
                if tones[last] is Tone.PING:
                    self._add(
                        i, last, "line-end", Severity.VIOLATION, "平 ends a line that does not rhyme; it must end in 仄"
                    )
                elif tones[last] is Tone.ZE:
                    self.definite += 1
            else:
                self._shape_warnings(i, tones)
        self.group = self._rhyme()

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity is severity)

    def _add(self, line: int, position: int, rule: str, severity: Severity, message: str) -> None:
        self.findings.append(Finding(line + 1, position + 1, self._lines[line][position], rule, severity, message))

    def _shape_warnings(self, i: int, tones: list[Tone | None]) -> None:
        """孤平 and 三平尾 in a rhyming (平-ending) line."""
        n = len(tones)
        if all(t is Tone.PING for t in tones[n - 3 :]):
            self._add(i, n - 3, "三平尾", Severity.WARNING, "three 平 end the line")
        # A character that may be 平 (平, ○ or unknown: the benefit of the doubt) besides the rhyme.
        maybe_ping = [k for k, t in enumerate(tones[: n - 1]) if t is not Tone.ZE]
        if len(maybe_ping) == 1 and maybe_ping[0] != n - 2:
            self._add(
                i, maybe_ping[0], "孤平", Severity.WARNING, "the only 平 besides the rhyme stands alone between 仄"
            )
        elif not maybe_ping:
            self._add(i, 0, "孤平", Severity.WARNING, "no 平 besides the rhyme")

    def _rhyme(self) -> RhymeGroup | None:
        pattern, tables = self.pattern, self.tables
        ends = {i: self._traditional[i][-1] for i in pattern.rhyme_lines}
        groups = {i: tables.ping_group_indexes(c) for i, c in ends.items()}
        # The group most rhymes share (those of lines 2, 4 ... first, then the first line's); on a tie, that of
        # the earliest rhyme, so that a poem that strays is faulted where it strays.
        best, best_score = None, (0, 0, ())
        for group in tables.ping_groups:
            shared = tuple(group.index in groups[i] for i in ends if i > 0)
            score = (sum(shared), int(0 in ends and group.index in groups[0]), shared)
            if score > best_score:
                best, best_score = group, score
        last = pattern.form.chars - 1
        for i, char in ends.items():
            if best is not None and best.index in groups[i]:
                self.definite += 1
                continue
            own = [tables.groups[g] for g in sorted(groups[i])]
            near = [g for g in own if best is not None and best.neighbours(g)]
            if near:
                borrowed = "首句借邻韵: " if i == 0 else ""
                self._add(
                    i,
                    last,
                    "邻韵",
                    Severity.WARNING,
                    f"{borrowed}rhymes in {near[0].full_name}, a neighbour of the poem's {best.full_name}",
                )
            elif own:
                where = f"not in the poem's {best.full_name}" if best is not None else "shared by no other rhyme"
                self._add(
                    i, last, "rhyme", Severity.VIOLATION, f"rhymes in {' / '.join(g.full_name for g in own)}, {where}"
                )
            elif tables.rhyme_groups(char):
                listed = " / ".join(g.full_name for g in tables.rhyme_groups(char))
                self._add(
                    i, last, "rhyme", Severity.VIOLATION, f"is 仄 ({listed}); a rhyming line ends in a 平声 rhyme"
                )
            else:
                self._add(
                    i,
                    last,
                    "rhyme",
                    Severity.VIOLATION,
                    "is in no rhyme group of 平水韵; a rhyme must come from a 平声 group",
                )
        return best
