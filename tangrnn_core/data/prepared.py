"""From a corpus file to normalised, filtered, split and encoded poems, cached on disk.

The cache key covers the corpus checksum and every option that changes the result, so a changed corpus or
option never reuses a stale cache, and every process of a distributed run computes the same thing.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from tangrnn_core.data.corpus import bundled_corpus_path, read_corpus
from tangrnn_core.data.forms import Form, classify
from tangrnn_core.data.normalize import LINE_END_MARKS, normalize_poem, normalize_title, to_script
from tangrnn_core.data.split import split_of
from tangrnn_core.data.vocab import Vocabulary
from tangrnn_core.errors import ConfigError, CorpusError

SPLITS = ("train", "val", "test")
# Bump when the prepared layout or the normalisation changes, so old caches are not reused.
CACHE_FORMAT = 2


@dataclass(frozen=True)
class DataOptions:
    """Everything that decides which poems are used and how they are written (see PoetryDataModule)."""

    script: str = "simplified"
    forms: tuple[str, ...] | None = None
    authors: tuple[str, ...] | None = None
    min_chars: int = 10
    max_chars: int = 200
    max_poems: int | None = None
    min_count: int = 2
    val_fraction: float = 0.02
    test_fraction: float = 0.02
    max_title_chars: int = 16
    eval_forms: tuple[str, ...] | None = None


@dataclass
class SplitData:
    """The poems of one split: their texts, titles, ids and forms, and the texts and titles encoded as flat
    id tensors."""

    poem_ids: list[str]
    texts: list[str]
    forms: list[str]
    titles: list[str]
    ids: torch.Tensor  # int32, all poems back to back
    offsets: torch.Tensor  # int64, poem i is ids[offsets[i]:offsets[i + 1]]
    title_ids: torch.Tensor  # int32, all titles back to back
    title_offsets: torch.Tensor  # int64, like offsets

    def __len__(self) -> int:
        return len(self.texts)

    def lengths(self) -> torch.Tensor:
        return self.offsets[1:] - self.offsets[:-1]

    def encoded(self, index: int) -> torch.Tensor:
        return self.ids[self.offsets[index] : self.offsets[index + 1]]

    def encoded_title(self, index: int) -> torch.Tensor:
        return self.title_ids[self.title_offsets[index] : self.title_offsets[index + 1]]


@dataclass
class PreparedCorpus:
    vocabulary: Vocabulary
    splits: dict[str, SplitData]
    checksum: str
    dropped_damaged: int
    filtered_out: int

    def reencode(self, vocabulary: Vocabulary) -> PreparedCorpus:
        """The same poems encoded with another vocabulary (a checkpoint's)."""
        splits = {
            name: _encode_split(vocabulary, s.poem_ids, s.texts, s.forms, s.titles) for name, s in self.splits.items()
        }
        return PreparedCorpus(vocabulary, splits, self.checksum, self.dropped_damaged, self.filtered_out)


def default_cache_dir() -> Path:
    return Path(os.environ.get("TANGRNN_CACHE_DIR") or Path.home() / ".cache" / "tangrnn")


def prepare(corpus: str | None, options: DataOptions, cache_dir: str | os.PathLike | None = None) -> PreparedCorpus:
    """Reads, normalises, filters, splits and encodes a corpus, or loads the result from the cache.

    Args:
        corpus: a corpus file (``None``: the bundled Tang corpus).
        options: what to keep and how.
        cache_dir: where prepared data is kept (``None``: ``$TANGRNN_CACHE_DIR`` or ``~/.cache/tangrnn``).
    """
    _validate(options)
    path = bundled_corpus_path() if corpus is None else Path(corpus)
    try:
        checksum = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        read_corpus(corpus)  # raises the reader's one-line error for a missing or unreadable file
        raise
    key = hashlib.sha256(
        json.dumps([CACHE_FORMAT, checksum, asdict(options)], sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()[:24]
    cache_file = Path(cache_dir or default_cache_dir()) / f"prepared-{key}.pt"
    cached = _load_cache(cache_file)
    if cached is not None and cached.checksum == checksum:
        return cached
    prepared = _prepare(read_corpus(corpus), options)
    _save_cache(cache_file, prepared)
    return prepared


def _validate(options: DataOptions) -> None:
    if options.script not in ("simplified", "traditional"):
        raise ConfigError(f"data.script must be 'simplified' or 'traditional', got '{options.script}'")
    if options.min_chars < 1 or options.max_chars < options.min_chars:
        raise ConfigError(
            f"data.min_chars ({options.min_chars}) must be at least 1 and at most data.max_chars ({options.max_chars})"
        )
    if options.min_count < 1:
        raise ConfigError(f"data.min_count must be at least 1, got {options.min_count}")
    if options.max_title_chars < 0:
        raise ConfigError(f"data.max_title_chars must be 0 (no titles) or more, got {options.max_title_chars}")
    if options.max_poems is not None and options.max_poems < 1:
        raise ConfigError(f"data.max_poems must be at least 1 (or null for all), got {options.max_poems}")
    for name in (*(options.forms or ()), *(options.eval_forms or ())):
        Form.parse(name)


def _prepare(loaded, options: DataOptions) -> PreparedCorpus:
    normalised = []
    dropped = 0
    for poem in loaded.poems:
        result = normalize_poem(poem.paragraphs, poem.strains)
        if result is None:
            dropped += 1
        else:
            normalised.append((poem, result.text))
    if not normalised:
        raise CorpusError(
            f"no usable poem in {loaded.path}: every poem is empty or damaged; check that it holds Chinese verse"
        )
    texts = to_script([text for _, text in normalised], options.script)
    titles = to_script([normalize_title(poem.title, options.max_title_chars) for poem, _ in normalised], options.script)
    wanted_forms = {Form.parse(name) for name in options.forms} if options.forms else None
    eval_forms = {Form.parse(name) for name in options.eval_forms} if options.eval_forms else None
    # Authors are matched in simplified script, so a user may name them in either script.
    wanted_authors = set(to_script(list(options.authors), "simplified")) if options.authors else None
    authors = to_script([poem.author for poem, _ in normalised], "simplified") if wanted_authors else None
    kept: dict[str, tuple[list[str], list[str], list[str], list[str]]] = {name: ([], [], [], []) for name in SPLITS}
    count = 0
    for position, ((poem, _), text) in enumerate(zip(normalised, texts)):
        if not options.min_chars <= len(text) <= options.max_chars:
            continue
        if wanted_authors is not None and authors[position] not in wanted_authors:
            continue
        form = classify(text)
        if wanted_forms is not None and form not in wanted_forms:
            continue
        split = split_of(poem.id, options.val_fraction, options.test_fraction)
        if eval_forms is not None and split != "train" and form not in eval_forms:
            continue
        ids, split_texts, forms, split_titles = kept[split]
        ids.append(poem.id)
        split_texts.append(text)
        forms.append(form.value)
        split_titles.append(titles[position])
        count += 1
        if options.max_poems is not None and count >= options.max_poems:
            break
    if not kept["train"][1]:
        raise CorpusError(
            f"no training poem in {loaded.path} passes the filters (forms, authors, min_chars/max_chars); "
            "loosen the data options"
        )
    # Titles count too, so that a title's characters can be read (``tangrnn generate --title``).
    vocabulary = Vocabulary.build([*kept["train"][1], *kept["train"][3]], min_count=options.min_count)
    splits = {name: _encode_split(vocabulary, *kept[name]) for name in SPLITS}
    filtered_out = len(normalised) - count
    return PreparedCorpus(vocabulary, splits, loaded.checksum, dropped, filtered_out)


def _encode_split(
    vocabulary: Vocabulary, poem_ids: list[str], texts: list[str], forms: list[str], titles: list[str]
) -> SplitData:
    ids, offsets = _encode_flat(vocabulary, texts)
    title_ids, title_offsets = _encode_flat(vocabulary, titles)
    return SplitData(
        poem_ids=list(poem_ids),
        texts=list(texts),
        forms=list(forms),
        titles=list(titles),
        ids=ids,
        offsets=offsets,
        title_ids=title_ids,
        title_offsets=title_offsets,
    )


def _encode_flat(vocabulary: Vocabulary, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([0] + [len(text) for text in texts], dtype=torch.long)
    flat = [index for text in texts for index in vocabulary.encode(text)]
    return torch.tensor(flat, dtype=torch.int32), torch.cumsum(lengths, 0)


def _save_cache(path: Path, prepared: PreparedCorpus) -> None:
    payload = {
        "format": CACHE_FORMAT,
        "vocabulary": prepared.vocabulary.tokens,
        "checksum": prepared.checksum,
        "dropped_damaged": prepared.dropped_damaged,
        "filtered_out": prepared.filtered_out,
        "splits": {name: asdict(split) for name, split in prepared.splits.items()},
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a killed process, or two ranks writing at once, never leave a half-written cache.
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=".tmp", delete=False) as handle:
            torch.save(payload, handle)
        os.replace(handle.name, path)
    except OSError:
        pass  # the cache only saves time; a read-only home must not stop training


def _load_cache(path: Path) -> PreparedCorpus | None:
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, weights_only=True)
        if payload.get("format") != CACHE_FORMAT:
            return None
        splits = {name: SplitData(**fields) for name, fields in payload["splits"].items()}
        return PreparedCorpus(
            Vocabulary(payload["vocabulary"]),
            splits,
            payload["checksum"],
            payload["dropped_damaged"],
            payload["filtered_out"],
        )
    except Exception:  # a damaged cache is rebuilt, never trusted
        return None


__all__ = ["DataOptions", "PreparedCorpus", "SplitData", "prepare", "LINE_END_MARKS", "SPLITS"]
