"""torchmetrics Metrics of generated poems: form, diversity, copying and continuation BLEU.

Every metric keeps the strings it is given on its own process and syncs only tensors: counts summed across
processes (``dist_reduce_fx="sum"``), or, for :class:`DistinctN`, whose distinct counts do not add up across
processes, the hashed n-grams themselves, concatenated (``dist_reduce_fx="cat"``) and counted at ``compute``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.text import SacreBLEUScore
from torchmetrics.utilities import dim_zero_cat

from tangrnn_core.data.forms import Form, classify, split_lines, split_lines_with_marks
from tangrnn_core.data.normalize import PUNCTUATION
from tangrnn_core.errors import ConfigError


class FormCompliance(Metric):
    """Share of poems in the requested regular form or, with no form given, in any of the four.

    With a form asked for, the decoder's constraint should make this 1.0 for every architecture and plugin; a
    lower figure is a bug. Without one, it measures how well the model learned the shapes of regulated verse.

    Args:
        form: ``五绝 七绝 五律 七律`` (or ``wujue qijue wulv qilv``); ``None`` accepts any of them.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, form: str | Form | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.form = regular_form(form)
        self.add_state("matched", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, poems: Sequence[str]) -> None:
        forms = [classify(poem) for poem in poems]
        hits = sum(form is self.form if self.form is not None else form is not Form.OTHER for form in forms)
        self.matched += hits
        self.total += len(forms)

    def compute(self) -> Tensor:
        return _share(self.matched, self.total)


class DistinctN(Metric):
    """distinct-n: distinct n-grams of characters over all n-grams of characters, across all poems.

    Punctuation is not a character here, and n-grams stay inside a line (a bigram across a line break is no
    unit of verse). 1.0 means no n-gram occurs twice; a model that repeats itself scores low.

    Distinct counts do not add up across processes (two processes may both see 月), so the n-grams are kept,
    hashed to one int64 each, in a list state concatenated on sync; ``compute`` counts the unique hashes. For
    ``n <= 3`` the hash packs the code points (21 bits each) and is exact; longer n-grams use 64 bits of
    BLAKE2b. Python's own ``hash`` would not do: it is salted differently in every process.

    Args:
        n: the n-gram order (1: characters, 2: bigrams, ...).
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, n: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        if n < 1:
            raise ConfigError(f"distinct-n needs n >= 1, got {n}")
        self.n = n
        self.add_state("ngrams", default=[], dist_reduce_fx="cat")
        self.add_state("total", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, poems: Sequence[str]) -> None:
        hashes = [_ngram_hash(gram) for poem in poems for gram in ngrams(poem, self.n)]
        if hashes:
            self.ngrams.append(torch.tensor(hashes, dtype=torch.long, device=self.device))
        self.total += len(hashes)

    def compute(self) -> Tensor:
        if int(self.total) == 0:
            return torch.tensor(0.0, device=self.device)
        # A list of tensors on one process; torchmetrics has concatenated it into one tensor after a sync.
        unique = torch.unique(dim_zero_cat(self.ngrams)).numel()
        return torch.tensor(unique / int(self.total), device=self.device)


class Novelty(Metric):
    """How much generated verse is copied from the training corpus, line by line.

    ``compute`` returns ``copied_lines``, the share of generated lines found verbatim (without their end mark)
    among the training lines, and ``poems_with_copy``, the share of poems with at least one such line. The
    training lines stay on each process as a set given at construction; only counts are synced.

    Args:
        training_lines: the lines of the training poems, without end marks (see :func:`corpus_lines`).
        min_chars: lines shorter than this are not counted at all: a line of two characters found in the corpus
            is no copy.
    """

    full_state_update = False
    higher_is_better = False

    def __init__(self, training_lines: Iterable[str], min_chars: int = 5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.training_lines = training_lines if isinstance(training_lines, (set, frozenset)) else set(training_lines)
        self.min_chars = min_chars
        for name in ("lines", "copied_lines", "poems", "poems_with_copy"):
            self.add_state(name, default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, poems: Sequence[str]) -> None:
        for poem in poems:
            lines = [line for line in split_lines(poem) if len(line) >= self.min_chars]
            copied = sum(line in self.training_lines for line in lines)
            self.lines += len(lines)
            self.copied_lines += copied
            self.poems += 1
            self.poems_with_copy += int(copied > 0)

    def compute(self) -> dict[str, Tensor]:
        return {
            "copied_lines": _share(self.copied_lines, self.lines),
            "poems_with_copy": _share(self.poems_with_copy, self.poems),
        }


class ContinuationBLEU(SacreBLEUScore):
    """Corpus BLEU-2 over characters of poems continued from the first line of real ones, against the originals.

    Both poems of a pair begin with the same given line, which is dropped before scoring, and so is the
    punctuation (the form constraint places it, so it would match for free). BLEU-2 rather than BLEU-4: on
    5- and 7-character lines 4-gram matches are so rare that corpus BLEU-4 is often exactly 0. Built on
    torchmetrics' :class:`~torchmetrics.text.SacreBLEUScore` with ``tokenize="char"``, whose states are sums.

    Args:
        n_gram: the highest n-gram order.
        smooth: add-one smoothing of the n-gram precisions.
    """

    def __init__(self, n_gram: int = 2, smooth: bool = False, **kwargs) -> None:
        super().__init__(n_gram=n_gram, smooth=smooth, tokenize="char", **kwargs)

    def update(self, generated: Sequence[str], originals: Sequence[str]) -> None:  # type: ignore[override]
        """Args:
        generated: poems written from the first line of each original (the line included).
        originals: the real poems, in the same order.
        """
        if len(generated) != len(originals):
            raise ValueError(f"{len(generated)} generated poems for {len(originals)} originals")
        super().update([continuation(poem) for poem in generated], [[continuation(poem)] for poem in originals])


# -- helpers -------------------------------------------------------------------------------------------------


def regular_form(form: str | Form | None) -> Form | None:
    """One of the four regular forms from its name (``None`` stays ``None``); ``other`` is refused."""
    if form is None:
        return None
    parsed = Form.parse(form)
    if parsed is Form.OTHER:
        raise ConfigError("'other' is no form a poem can be checked against; choose 五绝, 七绝, 五律 or 七律")
    return parsed


def ngrams(poem: str, n: int) -> list[str]:
    """The character n-grams of a poem, inside lines, without punctuation."""
    return [line[i : i + n] for line in split_lines(poem) for i in range(len(line) - n + 1)]


def corpus_lines(texts: Iterable[str]) -> set[str]:
    """Every line of ``texts`` (normalised poems), without its end mark: what :class:`Novelty` compares with."""
    return {line for text in texts for line in split_lines(text) if line}


def continuation(poem: str) -> str:
    """A poem after its first line, without punctuation."""
    rest = "".join(split_lines_with_marks(poem)[1:])
    return "".join(char for char in rest if char not in PUNCTUATION)


def _ngram_hash(gram: str) -> int:
    if len(gram) <= 3:
        value = 0
        for char in gram:
            value = (value << 21) | ord(char)  # code points need 21 bits; 3 of them fit in 63
        return value
    return int.from_bytes(hashlib.blake2b(gram.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


def _share(part: Tensor, whole: Tensor) -> Tensor:
    return (part.double() / whole.clamp(min=1).double()).float()
