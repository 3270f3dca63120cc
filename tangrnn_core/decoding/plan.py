"""The planner: a :class:`~tangrnn_core.decoding.request.PoemRequest` resolved once into what the constraints
need: the shape, the characters fixed at places, those reserved for them or banned, and the prosody settings.

Every check that needs the model's vocabulary but no decoding happens here, once, in the order a user would fix
things: the shape, the characters given, then the constraints' own refusals when they are built from the plan
(:func:`~tangrnn_core.decoding.pipeline.build_processors`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tangrnn_core.data.forms import REGULAR_FORMS, Form
from tangrnn_core.data.normalize import LINE_END_MARKS
from tangrnn_core.data.vocab import Vocabulary
from tangrnn_core.decoding.request import PoemRequest
from tangrnn_core.decoding.template import Template
from tangrnn_core.decoding.tokens import is_punctuation, strip_spaces
from tangrnn_core.errors import ConfigError

#: The only mark that may end an odd (1st, 3rd ...) line of a form.
ODD_LINE_END = "，"


@dataclass(frozen=True)
class Plan:
    """A request resolved for one vocabulary and one layout.

    Args:
        chars: characters a line (``None``: no fixed shape).
        lines: lines a poem (``None``: no fixed shape).
        any_lines: the number of lines comes from acrostic heads (any number, not only 4 or 8).
        template: the layout to write through, when the request gives one (or an infilling model fills one).
        forced: the character fixed at each ``(line, position)`` (0-based): acrostic heads, a first line, a
            template's characters.
        reserved: characters only their fixed places may use when characters may not repeat.
        banned: characters no free place may use.
        tones: ``strict``, ``loose`` or ``off``.
        pattern: a pattern name or ``auto``.
        rhyme: ``auto``, a 平声 group, or ``None``.
        no_repeat: no character twice in a poem (reduplication aside).
        max_steps: decoding steps at most.
    """

    chars: int | None = None
    lines: int | None = None
    any_lines: bool = False
    template: Template | None = None
    forced: Mapping[tuple[int, int], str] = field(default_factory=dict)
    reserved: str = ""
    banned: str = ""
    tones: str = "off"
    pattern: str = "auto"
    rhyme: str | None = None
    no_repeat: bool = False
    max_steps: int = 128

    @property
    def prosody(self) -> bool:
        """Whether tones, a pattern or a rhyme are asked for."""
        return self.tones != "off" or self.pattern not in ("", "auto") or self.rhyme is not None

    @property
    def form(self) -> Form | None:
        """The regular form of the plan's shape, if it is one."""
        return next((f for f in REGULAR_FORMS if (f.chars, f.lines) == (self.chars, self.lines)), None)


def plan_request(vocabulary: Vocabulary, request: PoemRequest, layout: Template | None = None) -> Plan:
    """Resolves ``request`` for ``vocabulary``.

    Args:
        vocabulary: the model's vocabulary.
        request: what to write (validated).
        layout: the template to write through instead of the request's own (infilling passes the layout it
            fills; its acrostic heads and first line are already written in).

    Raises:
        ConfigError: an impossible shape, characters that cannot be used where they are asked for.
    """
    if layout is None and request.template:
        layout = template_of(request)
    common = {
        "banned": _banned(vocabulary, request),
        "tones": request.tones,
        "pattern": request.pattern or "auto",
        "rhyme": request.rhyme_group,
        "no_repeat": request.no_repeat,
    }
    if layout is not None:
        return _template_plan(vocabulary, layout, common, request.max_length)
    chars, lines = request_shape(request)
    heads = strip_spaces(request.acrostic or "")
    forced: dict[tuple[int, int], str] = {}
    if heads:
        if chars is None:
            raise ConfigError("an acrostic needs a line length: add --form, or --chars 5 or 7")
        if request.first_line and strip_spaces(request.first_line)[0] != heads[0]:
            raise ConfigError(
                f"the first line starts with {strip_spaces(request.first_line)[0]} but the first acrostic head is "
                f"{heads[0]}; make them agree"
            )
        forced.update(acrostic_places(heads, lines))
    if request.first_line:
        forced.update(first_line_places(request.first_line, chars))
    check_forced_characters(vocabulary, "".join(forced.values()))
    # Without a form the heads decide the number of lines, whatever it is.
    any_lines = bool(heads) and request.form is None and request.lines is None
    if chars is not None or lines is not None:
        check_shape(chars, lines, any_lines)
    _check_banned_against(common["banned"], "".join(forced.values()), "the acrostic or first line")
    return Plan(
        chars=chars,
        lines=lines,
        any_lines=any_lines,
        forced=forced,
        reserved=heads,
        # One step a character and mark; none for the <eos> the form forces after the last mark.
        max_steps=(chars + 1) * lines if chars and lines else request.max_length,
        **common,
    )


def _template_plan(vocabulary: Vocabulary, template: Template, common: dict, common_max_length: int) -> Plan:
    template.ids(vocabulary)  # every fixed character in the vocabulary, or one line naming those that are not
    form = template.form
    forced: dict[tuple[int, int], str] = {}
    if form.chars is not None:
        for line, (start, length) in enumerate(zip(template.line_starts(), template.line_lengths())):
            for position in range(length):
                slot = template.slots[start + position]
                if slot is not None:
                    forced[(line, position)] = slot
        check_forced_characters(vocabulary, "".join(forced.values()))
    fixed = "".join(slot for slot in template.slots if slot is not None and not is_punctuation(slot))
    _check_banned_against(common["banned"], fixed, "the template")
    return Plan(
        chars=form.chars,
        lines=form.lines,
        template=template,
        forced=forced,
        reserved=fixed,
        # One step a character and mark; the <eos> the template forces after them is never read.
        max_steps=(form.chars + 1) * form.lines if form.chars and form.lines else common_max_length,
        **common,
    )


def request_shape(request: PoemRequest) -> tuple[int | None, int | None]:
    """Characters per line and lines per poem: from ``form`` or ``chars``/``lines``; an acrostic gives the
    number of lines and a first line the line length when nothing else does; a template its own shape."""
    if request.template:
        return _template_shape(request)
    parsed = Form.parse(request.form) if request.form else None
    chars = request.chars if request.chars is not None else (parsed.chars if parsed else None)
    lines = request.lines if request.lines is not None else (parsed.lines if parsed else None)
    if parsed is not None and (
        (request.chars and request.chars != parsed.chars) or (request.lines and request.lines != parsed.lines)
    ):
        raise ConfigError(f"--form {request.form} has {parsed.lines} lines of {parsed.chars}; drop --chars/--lines")
    heads = strip_spaces(request.acrostic or "")
    if heads and lines is None:
        lines = len(heads)  # without a form, an acrostic decides the number of lines
    if request.first_line and chars is None:
        chars = len(strip_spaces(request.first_line).rstrip(LINE_END_MARKS))  # a first line decides the length
    return chars, lines


def _template_shape(request: PoemRequest) -> tuple[int | None, int | None]:
    form = Template.parse(request.template).form
    given = Form.parse(request.form) if request.form else None
    if given is not None and given != form:
        raise ConfigError(f"the template is a {form.value} poem but --form is {given.value}; drop one of them")
    if (request.chars and request.chars != form.chars) or (request.lines and request.lines != form.lines):
        raise ConfigError("--chars/--lines disagree with the template's shape; drop them")
    return form.chars, form.lines


def template_of(request: PoemRequest, default_form: Form | None = None) -> Template | None:
    """The template to fill: the request's ``template`` if given, else an all-blank one of the requested shape
    (or of ``default_form``), with the acrostic heads and the first line written in; ``None`` without a shape."""
    if request.template:
        request_shape(request)  # a template that disagrees with --form, --chars or --lines is refused first
        template = Template.parse(request.template)
    else:
        chars, lines = request_shape(request)
        if chars is None or lines is None:
            if default_form is None:
                return None
            chars, lines = default_form.chars, default_form.lines
        template = Template.blank(chars, lines)
    heads = strip_spaces(request.acrostic or "")
    if heads:
        template = template.with_heads(heads)
    if request.first_line:
        template = template.with_first_line(request.first_line)
    return template


def check_shape(chars: int | None, lines: int | None, any_lines: bool = False) -> None:
    """Refuses a shape that is not a regular form (5 or 7 characters, 4 or 8 lines), or any number of lines of
    5 or 7 characters with ``any_lines``.

    Raises:
        ConfigError: only one of ``chars`` and ``lines``, or either out of range.
    """
    if chars is None and lines is None:
        raise ConfigError("give a whole form: --form, or both --chars (5 or 7) and --lines (4 or 8)")
    if chars is None or lines is None:
        missing = "--chars (5 or 7)" if chars is None else "--lines (4 or 8)"
        raise ConfigError(f"a shape needs both --chars and --lines: give {missing} as well, or give --form")
    if chars not in (5, 7):
        raise ConfigError(f"--chars must be 5 or 7 (characters a line), got {chars}")
    if not any_lines and lines not in (4, 8):
        raise ConfigError(f"--lines must be 4 or 8 (lines a poem), got {lines}")


def acrostic_places(heads: str, lines: int) -> dict[tuple[int, int], str]:
    """The places of acrostic heads (藏头诗): ``heads[i]`` opens line ``i``; fewer heads than lines is fine.

    Raises:
        ConfigError: no heads, or more heads than lines.
    """
    heads = strip_spaces(heads)
    if not heads:
        raise ConfigError("no acrostic heads given; give one character for each line to open")
    if len(heads) > lines:
        raise ConfigError(
            f"{len(heads)} heads but the form has {lines} lines; give at most {lines} heads or choose a longer form"
        )
    return {(line, 0): head for line, head in enumerate(heads)}


def first_line_places(first_line: str, chars: int) -> dict[tuple[int, int], str]:
    """The places of a first line kept verbatim (``chars`` characters, with or without a trailing ``，``).

    Raises:
        ConfigError: punctuation inside the line, or a length other than ``chars``.
    """
    line = strip_spaces(first_line)
    if line.endswith((ODD_LINE_END, ",")):
        line = line[:-1]
    punctuation = list(dict.fromkeys(c for c in line if is_punctuation(c)))
    if punctuation:
        raise ConfigError(
            f"the first line {line!r} holds punctuation ({', '.join(punctuation)}); give {chars} characters, "
            f"optionally followed by ，"
        )
    if len(line) != chars:
        raise ConfigError(
            f"the first line {line!r} has {len(line)} characters but the form needs {chars}; "
            f"give a line of {chars} characters"
        )
    return {(0, position): char for position, char in enumerate(line)}


def check_forced_characters(vocabulary: Vocabulary, text: str) -> None:
    """Refuses, naming them all, characters to force that are punctuation or not in the vocabulary."""
    punctuation = list(dict.fromkeys(c for c in text if is_punctuation(c)))
    if punctuation:
        raise ConfigError(
            f"forced characters must be verse characters, not punctuation: {', '.join(punctuation)}; remove them"
        )
    unknown = vocabulary.unknown(text)
    if unknown:
        raise ConfigError(f"characters not in the model's vocabulary: {', '.join(unknown)}; choose other characters")


def _banned(vocabulary: Vocabulary, request: PoemRequest) -> str:
    """The characters of ``--avoid``: verse characters only; those the model never writes are dropped."""
    text = strip_spaces(request.avoid or "")
    punctuation = list(dict.fromkeys(c for c in text if is_punctuation(c)))
    if punctuation:
        raise ConfigError(
            f"--avoid takes verse characters, not punctuation ({', '.join(punctuation)}); the form decides the marks"
        )
    return "".join(dict.fromkeys(c for c in text if c in vocabulary))


def _check_banned_against(banned: str, fixed: str, where: str) -> None:
    clash = [c for c in dict.fromkeys(banned) if c in fixed]
    if clash:
        raise ConfigError(f"--avoid {''.join(clash)} but {where} uses {''.join(clash)}; drop one of them")
