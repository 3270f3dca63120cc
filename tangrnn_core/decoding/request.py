"""What a user asks of the generator, checked once, turned into logit processors, and decoded.

``tangrnn generate``, ``tangrnn predict`` and the sample poems printed during training all come through
:func:`write_poems`, so every option means the same thing everywhere and for every architecture: left-to-right
networks are decoded step by step with the options as logit processors; masked (``infill``) networks fill a
template (given, or made from the form, acrostic and first line) by mask-predict.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from tangrnn_core.api import CONDITIONAL, Architecture
from tangrnn_core.data.forms import REGULAR_FORMS, Form
from tangrnn_core.data.normalize import LINE_END_MARKS
from tangrnn_core.data.vocab import Vocabulary
from tangrnn_core.decoding.constraints import (
    ForcedCharacters,
    FormConstraint,
    NoRepeat,
    acrostic_constraint,
    first_line_constraint,
    form_constraint_for,
    is_punctuation,
)
from tangrnn_core.decoding.decoder import generate
from tangrnn_core.decoding.infill import mask_predict
from tangrnn_core.decoding.prosody import prosody_constraint, wants_prosody
from tangrnn_core.decoding.template import Template, TemplateConstraint
from tangrnn_core.errors import ConfigError
from tangrnn_core.objectives import is_masked_model

# A poem of 8 lines of 7 characters is 64 characters with punctuation; free poems may be longer.
FREE_MAX_LENGTH = 128
#: Rows decoded together by default. Measured on 2 AVX2 cores (reference LSTM, strict 五绝, int8): 1,024 rows
#: write about a fifth more poems a second than 256 and as many as 2,048; memory grows by about 0.27 MB a row
#: for a vocabulary of 5,800 (0.7 GB at 1,024, 2.6 GB at 8,192), so unbounded batches would exhaust memory.
DEFAULT_BATCH_SIZE = 1024
#: Decoding memory a row takes per character of the vocabulary: the scores, their masks and the sampler's
#: buffers, about a dozen float vectors (measured: 0.27 MB a row for a vocabulary of 5,800).
ROW_BYTES_PER_CHARACTER = 48
#: Sampling defaults of every verb that writes poems (`generate`, `predict`, `evaluate`, training samples).
DEFAULT_TEMPERATURE = 0.8
DEFAULT_TOP_P = 1.0


@dataclass(frozen=True)
class PoemRequest:
    """Options of one generation call (see ``tangrnn generate --help``).

    Args:
        form: ``五绝 七绝 五律 七律`` (or ``wujue qijue wulv qilv``); a hard constraint on the shape.
        chars: characters per line (5 or 7), instead of ``form``.
        lines: lines per poem (4 or 8), instead of ``form``.
        acrostic: characters that open the lines, in order (藏头诗).
        first_line: the poem's first line, kept as given.
        prefix: text read before the poem to set its mood; not printed.
        num_poems: how many poems.
        batch_size: rows decoded together (poems times ``num_beams``); more poems than fit are written in
            successive batches from the same random stream.
        temperature: ``0`` is greedy; higher is more varied.
        top_k: sample from the ``k`` best characters only (``0``: all).
        top_p: sample from the smallest set of characters whose probability reaches ``top_p``.
        num_beams: candidates kept per poem (beam search); ``1`` samples directly.
        no_repeat: no character twice in a poem, except an immediate reduplication such as 青青.
        seed: the random seed; the same seed gives the same poems (``None``: a fresh one each time).
        max_length: characters at most for a poem of no fixed form.
        title: the title the poem is written to (networks with the ``conditional`` capability, e.g. seq2seq).
        template: a poem with blanks (``□``) to fill in; it fixes the form, and acrostic heads and a first line
            are written into it.
        iterations: mask-predict passes of ``infill`` networks.
        tones: ``strict`` (every position the tone pattern fixes), ``loose`` (the 2nd, 4th and 6th characters and
            the line ends) or ``off``; needs a regular form.
        pattern: one of the sixteen patterns by name (``仄起首句不入韵`` ...; the form gives the rest) or ``auto``
            (chosen per poem as it is written).
        rhyme: ``auto`` (every rhyme in the 平声 group of the first one), a 平声 group (``东``, ``一东``), or ``None``.
    """

    form: str | None = None
    chars: int | None = None
    lines: int | None = None
    acrostic: str | None = None
    first_line: str | None = None
    prefix: str | None = None
    num_poems: int = 4
    batch_size: int = DEFAULT_BATCH_SIZE
    temperature: float = DEFAULT_TEMPERATURE
    top_k: int = 0
    top_p: float = DEFAULT_TOP_P
    num_beams: int = 1
    no_repeat: bool = False
    seed: int | None = None
    max_length: int = FREE_MAX_LENGTH
    title: str | None = None
    template: str | None = None
    iterations: int = 10
    tones: str = "off"
    pattern: str = "auto"
    rhyme: str | None = None

    def decoding_steps(self) -> int:
        """Steps the decoder runs at most: a poem of fixed shape takes one per character and mark, and no step
        for its ``<eos>``, which the form forces after the last mark and which no text shows; a poem of no fixed
        shape stops at ``max_length``."""
        chars, lines = self.shape()
        return (chars + 1) * lines if chars and lines else self.max_length

    def shape(self) -> tuple[int | None, int | None]:
        """Characters per line and lines per poem: from ``form`` or ``chars``/``lines``; an acrostic gives the
        number of lines and a first line the line length when nothing else does."""
        if self.template:
            return self._template_shape()
        parsed = Form.parse(self.form) if self.form else None
        chars = self.chars if self.chars is not None else (parsed.chars if parsed else None)
        lines = self.lines if self.lines is not None else (parsed.lines if parsed else None)
        if parsed is not None and ((self.chars and self.chars != parsed.chars) or (self.lines and self.lines != parsed.lines)):
            raise ConfigError(f"--form {self.form} has {parsed.lines} lines of {parsed.chars}; drop --chars/--lines")
        heads = (self.acrostic or "").replace(" ", "")
        if heads and lines is None:
            lines = len(heads)  # without a form, an acrostic decides the number of lines
        if self.first_line and chars is None:
            chars = len(self.first_line.strip().rstrip(LINE_END_MARKS))  # a first line decides the line length
        return chars, lines


    def _template_shape(self) -> tuple[int | None, int | None]:
        form = Template.parse(self.template).form
        for given, name in ((Form.parse(self.form) if self.form else None, "--form"),):
            if given is not None and given != form:
                raise ConfigError(f"the template is a {form.value} poem but {name} is {given.value}; drop one of them")
        if (self.chars and self.chars != form.chars) or (self.lines and self.lines != form.lines):
            raise ConfigError("--chars/--lines disagree with the template's shape; drop them")
        return form.chars, form.lines

    def template_for(self, default_form: Form | None = None) -> Template | None:
        """The template to fill: ``template`` if given, else an all-blank one of the requested shape (or of
        ``default_form``), with the acrostic heads and the first line written in; ``None`` without a shape."""
        if self.template:
            template = Template.parse(self.template)
        else:
            chars, lines = self.shape()
            if chars is None or lines is None:
                if default_form is None:
                    return None
                chars, lines = default_form.chars, default_form.lines
            template = Template.blank(chars, lines)
        heads = (self.acrostic or "").replace(" ", "")
        if heads:
            template = template.with_heads(heads)
        if self.first_line:
            template = template.with_first_line(self.first_line)
        return template


def build_processors(vocabulary: Vocabulary, request: PoemRequest, template: Template | None = None) -> list:
    """The logit processors of ``request``, in the order they must apply (forced characters last).

    The characters a user gives are checked first, so an unknown character is reported before anything else.

    Args:
        vocabulary: the model's vocabulary.
        request: what to write.
        template: the layout to write through (``None``: the request's ``--template``, if any); infilling
            passes the layout it fills.
    """
    if template is None and request.template:
        template = request.template_for()
    if template is not None:
        return _template_processors(vocabulary, request, template)
    chars, lines = request.shape()
    heads = (request.acrostic or "").replace(" ", "")
    forced = []
    if heads:
        if chars is None:
            raise ConfigError("an acrostic needs a line length: add --form, or --chars 5 or 7")
        if request.first_line and request.first_line.strip()[0] != heads[0]:
            raise ConfigError(
                f"the first line starts with {request.first_line.strip()[0]} but the first acrostic head is "
                f"{heads[0]}; make them agree"
            )
        forced.append(acrostic_constraint(vocabulary, heads, chars, lines))
    if request.first_line:
        forced.append(first_line_constraint(vocabulary, request.first_line, chars))
    processors: list = []
    if chars is not None or lines is not None:
        if chars is None or lines is None:
            raise ConfigError("give a whole form: --form, or both --chars (5 or 7) and --lines (4 or 8)")
        if heads and request.form is None and request.lines is None:
            # Without a form the heads decide the number of lines, whatever it is.
            if chars not in (5, 7):
                raise ConfigError(f"--chars must be 5 or 7, got {chars}")
            processors.append(FormConstraint(vocabulary, chars, lines))
        else:
            processors.append(form_constraint_for(vocabulary, chars=chars, lines=lines))
    if wants_prosody(request.tones, request.pattern, request.rhyme):
        # After the form (it fixes the places), before no-repeat and the forced characters (which it plans for).
        processors.append(
            prosody_constraint(
                vocabulary, chars, lines, request.tones, request.pattern, request.rhyme, forced, heads, request.no_repeat
            )
        )
    if request.no_repeat:
        # The heads are kept for their lines, so they cannot be used up earlier in the poem.
        processors.append(NoRepeat(vocabulary, reserved=heads))
    # Forced characters come last: they override every earlier mask.
    return processors + forced


def _template_processors(vocabulary: Vocabulary, request: PoemRequest, template: Template) -> list:
    """Processors that write through ``template``: tones and rhyme (its characters count as forced ones),
    no-repeat (its characters reserved), then the template itself, which overrides every earlier mask."""
    fixed = "".join(slot for slot in template.slots if slot is not None and not is_punctuation(slot))
    processors: list = []
    if wants_prosody(request.tones, request.pattern, request.rhyme):
        form = template.form
        forced = []
        if form.chars is not None:
            places = {}
            for line, (start, length) in enumerate(zip(template.line_starts(), template.line_lengths())):
                for position in range(length):
                    slot = template.slots[start + position]
                    if slot is not None:
                        places[(line, position)] = slot
            forced.append(ForcedCharacters(vocabulary, places, form.chars))
        processors.append(
            prosody_constraint(
                vocabulary, form.chars, form.lines, request.tones, request.pattern, request.rhyme, forced, fixed,
                request.no_repeat,
            )
        )
    if request.no_repeat:
        processors.append(NoRepeat(vocabulary, reserved=fixed))
    return [*processors, TemplateConstraint(vocabulary, template)]


def write_poems(
    architecture: Architecture,
    vocabulary: Vocabulary,
    request: PoemRequest,
    on_batch: Callable[[list[str]], None] | None = None,
) -> list[str]:
    """Checks ``request`` and writes its poems, in batches of at most ``request.batch_size`` rows.

    Args:
        architecture: the network (of any weight format).
        vocabulary: the vocabulary it was trained with.
        request: what to write.
        on_batch: called with each batch's poems as soon as they are written (``tangrnn generate`` prints them
            there, so a long call shows its poems as it goes and an interrupted one keeps what it printed).

    Raises:
        ConfigError: an impossible or malformed request (one line naming the problem).
    """
    _check(vocabulary, request)
    if request.num_poems < 1:
        raise ConfigError(f"num_poems must be at least 1, got {request.num_poems}")
    if request.batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {request.batch_size}")
    _check_memory(vocabulary, request)
    title = _title_ids(architecture, vocabulary, request)
    seed = request.seed if request.seed is not None else secrets.randbits(62)
    device = next(architecture.parameters()).device
    # One stream for every batch: the same seed and batch size give the same poems.
    generator = torch.Generator(device=device).manual_seed(seed)
    write = _fill_templates if is_masked_model(architecture) else _write_batch
    per_batch = max(1, request.batch_size // max(1, request.num_beams))
    poems: list[str] = []
    for start in range(0, request.num_poems, per_batch):
        part = replace(request, num_poems=min(per_batch, request.num_poems - start))
        batch = write(architecture, vocabulary, part, generator, title)
        if on_batch is not None:
            on_batch(batch)
        poems += batch
    return poems


def _check_memory(vocabulary: Vocabulary, request: PoemRequest) -> None:
    """Refuses, before any decoding, a request whose rows cannot stay within ``batch_size`` or whose batch would
    not fit in the memory available (the alternative is the kernel's out-of-memory killer, minutes later)."""
    beams = max(1, request.num_beams)
    if beams > request.batch_size:
        raise ConfigError(
            f"--num_beams {beams} needs {beams:,} rows for a single poem, more than --batch_size {request.batch_size:,}; "
            "lower --num_beams or raise --batch_size"
        )
    rows = min(request.batch_size - request.batch_size % beams, request.num_poems * beams)
    needed = rows * len(vocabulary) * ROW_BYTES_PER_CHARACTER
    available = available_memory()
    if available is not None and needed > available:
        per_row = len(vocabulary) * ROW_BYTES_PER_CHARACTER
        raise ConfigError(
            f"a batch of {rows:,} rows needs about {needed / 2**30:.1f} GiB for this vocabulary of {len(vocabulary):,}, "
            f"but {available / 2**30:.1f} GiB is available; lower --batch_size to at most {available // per_row:,} "
            "(more poems are written in successive batches)"
        )


def available_memory() -> int | None:
    """Bytes of memory the system can give without swapping (Linux's MemAvailable); ``None`` where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _write_batch(
    architecture: Architecture,
    vocabulary: Vocabulary,
    request: PoemRequest,
    generator: torch.Generator,
    title: list[int] | None,
) -> list[str]:
    """Left to right: all of ``request``'s poems (and their beams) as one batch of the decoder."""
    processors = build_processors(vocabulary, request)
    prefix = vocabulary.encode(request.prefix) if request.prefix else []
    return generate(
        architecture,
        vocabulary,
        request.num_poems,
        max_length=request.decoding_steps(),
        temperature=request.temperature,
        top_k=request.top_k,
        top_p=request.top_p,
        processors=processors,
        generator=generator,
        num_beams=request.num_beams,
        prefix=prefix,
        title=title,
    )


def _fill_templates(
    architecture: Architecture,
    vocabulary: Vocabulary,
    request: PoemRequest,
    generator: torch.Generator,
    title: list[int] | None,
) -> list[str]:
    """Infilling: one template for all poems, or, when nothing fixes the shape, the four regular forms in turn
    (an infilling network needs a layout to fill)."""
    if request.prefix:
        raise ConfigError("--prefix is read left to right; an infilling model cannot use it (drop --prefix)")
    if request.num_beams != 1:
        raise ConfigError("--num_beams is a left-to-right search; an infilling model uses --iterations instead")
    template = request.template_for()
    if template is not None:
        layouts = [(template, request.num_poems)]
    else:
        counts = [request.num_poems // 4 + (index < request.num_poems % 4) for index in range(4)]
        layouts = [(request.template_for(form), count) for form, count in zip(REGULAR_FORMS, counts) if count]
    poems: list[str] = []
    for layout, count in layouts:
        poems += mask_predict(
            architecture,
            vocabulary,
            layout,
            count,
            processors=build_processors(vocabulary, request, layout),
            iterations=request.iterations,
            temperature=request.temperature,
            top_k=request.top_k,
            top_p=request.top_p,
            generator=generator,
            title=title,
        )
    return poems


def _title_ids(architecture: Architecture, vocabulary: Vocabulary, request: PoemRequest) -> list[int] | None:
    if request.title is None:
        return None
    if CONDITIONAL not in architecture.capabilities:
        raise ConfigError(
            f"{type(architecture).__name__} does not read titles (no '{CONDITIONAL}' capability); drop --title or "
            "use a model trained with a conditional architecture such as seq2seq"
        )
    title = request.title.strip()
    unknown = vocabulary.unknown(title)
    if unknown:
        raise ConfigError(f"--title has characters not in the model's vocabulary: {', '.join(unknown)}; rephrase it")
    return vocabulary.encode(title)


def _check(vocabulary: Vocabulary, request: PoemRequest) -> None:
    # Sampling options (temperature, top_p, num_beams, ...) are checked where they are used, in generate().
    if request.prefix:
        unknown = vocabulary.unknown(request.prefix)
        if unknown:
            raise ConfigError(
                f"--prefix has characters not in the model's vocabulary: {', '.join(unknown)}; rephrase it"
            )
