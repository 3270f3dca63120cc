"""What a user asks of the generator: one dataclass, declared once, validated once.

``tangrnn generate`` takes :class:`PoemRequest`'s fields as its flags (``--form``, ``--temperature`` ...; the
attribute docstrings below are their help), and ``tangrnn predict``, ``tangrnn evaluate``, the sample poems of
training and the benchmarks build the same request, so every option has one default and one check whatever
the architecture and the decoding path (left to right, beams, mask-predict).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tangrnn_core.decoding.sampling import check_sampling_options
from tangrnn_core.errors import ConfigError

#: Characters at most of a poem of no fixed form (8 lines of 7 characters are 64 with punctuation).
FREE_MAX_LENGTH = 128
#: Rows decoded together by default; the measurement behind it is in docs/performance.md (decoding).
DEFAULT_BATCH_SIZE = 1024
#: Sampling defaults of every verb that writes poems (`generate`, `predict`, `evaluate`, `serve`, training
#: samples), chosen by the decoding sweep of docs/tang-model.md ("Decoding defaults"): the most fluent setting to
#: an independent judge model that keeps distinct-2 at 0.85 and copied lines under 1%.
DEFAULT_TEMPERATURE = 0.9
DEFAULT_TOP_P = 0.9
#: The largest seed torch's random generators take (they read seeds as 64-bit integers).
MAX_SEED = 2**64 - 1
#: Values of ``tones``: every fixed position, positions 2/4/6 and the ends, or no tone constraint.
TONE_MODES = ("strict", "loose", "off")


@dataclass(frozen=True)
class PoemRequest:
    """The poems to write: their shape, what they must contain or avoid, and how to sample them."""

    form: str | None = None
    """五绝, 七绝, 五律 or 七律 (also wujue, qijue, wulv, qilv): every poem has exactly this shape."""
    chars: int | None = None
    """Characters per line (5 or 7), with ``lines`` instead of ``form``."""
    lines: int | None = None
    """Lines per poem (4 or 8), with ``chars`` instead of ``form``."""
    acrostic: str | None = None
    """Characters that open the lines in order (藏头诗); without a form they set the number of lines, and
    ``chars`` (or a form) sets their length."""
    first_line: str | None = None
    """The poem's first line, kept as given (e.g. 白日依山尽); it must fit the form."""
    prefix: str | None = None
    """Text read before the poem to set its mood; it is not printed (left-to-right models only)."""
    title: str | None = None
    """The title to write a poem to (e.g. 春夜喜雨), for models that read titles (seq2seq); others refuse it."""
    template: str | None = None
    """A poem with blanks to fill in, e.g. 白日依山尽，黄河入海流。欲穷□□□，更上一层楼。 (□, _ or * for a blank); it
    fixes the form. Left-to-right models write through it, infilling models (bidirectional) restore the blanks
    from both sides."""
    avoid: str | None = None
    """Characters the poems must not use anywhere (e.g. 愁泪); none of them may be fixed by the acrostic, the first
    line or the template."""
    num_poems: int = 4
    """How many poems, written together in batches of ``batch_size``."""
    batch_size: int = DEFAULT_BATCH_SIZE
    """Rows decoded together (poems times ``num_beams``); more poems are written in successive batches from the
    same random stream. The same seed gives the same poems at the same batch size."""
    temperature: float = DEFAULT_TEMPERATURE
    """0 is greedy; 1 samples the model's distribution; higher is wilder."""
    top_k: int = 0
    """Sample only among the k most likely characters (0: all)."""
    top_p: float = DEFAULT_TOP_P
    """Sample only among the most likely characters whose probabilities add up to top_p (1: all)."""
    num_beams: int = 1
    """Candidates kept per poem (beam search; with temperature > 0 the beams are sampled, so poems differ);
    1 samples each poem directly. Left-to-right models only."""
    no_repeat: bool = False
    """No character twice in a poem, except an immediate reduplication such as 青青 or 萧萧."""
    seed: int | None = None
    """The same seed gives the same poems (default: a new seed each run)."""
    max_length: int = FREE_MAX_LENGTH
    """Characters at most of a poem of no fixed form."""
    iterations: int = 10
    """Mask-predict passes of infilling models (more passes revise more characters). Without a template or
    form, an infilling model writes the four regular forms in turn."""
    tones: Literal["strict", "loose", "off"] = "off"
    """The 平仄 of regulated verse (平水韵 tones, not Mandarin), with a form: ``strict`` keeps every position the
    poem's pattern fixes, ``loose`` the 2nd, 4th and 6th characters and the line ends (一三五不论, but never 孤平
    or 三平尾), ``off`` none. Poems pass ``tangrnn check`` alike."""
    pattern: str = "auto"
    """Which of the form's four patterns: 仄起首句不入韵, 仄起首句入韵, 平起首句不入韵 or 平起首句入韵 (or
    ze-unrhymed, ze-rhymed, ping-unrhymed, ping-rhymed); ``auto`` settles it per poem from its first line,
    among the patterns its acrostic heads or first line fit."""
    rhyme: str | None = None
    """Every rhyme in one 平声 group of 平水韵: ``auto`` (the group of the first rhyme written) or a group by its
    character (东, 一东, 下平声十一尤 ...); unset: no rhyme constraint."""

    def validate(self) -> None:
        """Checks every option that needs no model, for every decoding path.

        Raises:
            ConfigError: the first option out of range, with the fix (one line).
        """
        check_sampling_options(self.temperature, self.top_k, self.top_p)
        for name, least in (
            ("num_poems", 1),
            ("batch_size", 1),
            ("num_beams", 1),
            ("iterations", 1),
            ("max_length", 1),
        ):
            if getattr(self, name) < least:
                raise ConfigError(f"{name} must be at least {least}, got {getattr(self, name)}")
        if self.seed is not None and not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"seed must be from 0 to {MAX_SEED} (torch's generators take 64 bits), got {self.seed}")
        if self.tones not in TONE_MODES:
            raise ConfigError(f"unknown tone mode {self.tones!r}: choose strict, loose or off")

    @property
    def rhyme_group(self) -> str | None:
        """``rhyme`` with its spellings of "none" (``off``, ``none``, empty) read as ``None``."""
        return None if self.rhyme in (None, "", "off", "none") else self.rhyme
