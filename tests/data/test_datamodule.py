"""PoetryDataModule on a slice of the real corpus: vocabulary, splits, batches, filters, scripts and the cache."""

from __future__ import annotations

import json
import unicodedata

import pytest
import torch

from tangrnn_core.api import Batch
from tangrnn_core.data import prepared as prepared_module
from tangrnn_core.data.datamodule import PoetryDataModule
from tangrnn_core.data.forms import Form, classify
from tangrnn_core.data.normalize import LINE_END_MARKS
from tangrnn_core.data.vocab import SPECIALS, Vocabulary
from tangrnn_core.errors import ConfigError, CorpusError

SPLITS = ("train", "val", "test")


def make(corpus, **options) -> PoetryDataModule:
    return PoetryDataModule(
        corpus=str(corpus), **{"val_fraction": 0.1, "test_fraction": 0.1, "batch_size": 8, **options}
    )


@pytest.fixture(scope="module")
def datamodule(small_corpus) -> PoetryDataModule:
    return make(small_corpus)


@pytest.fixture(scope="module")
def traditional(small_corpus) -> PoetryDataModule:
    return make(small_corpus, script="traditional")


def test_vocabulary_exists_after_init(datamodule):
    vocabulary = datamodule.vocabulary
    assert isinstance(vocabulary, Vocabulary)
    assert tuple(vocabulary.tokens[: len(SPECIALS)]) == SPECIALS
    assert datamodule.vocab_size == len(vocabulary) > 500
    assert datamodule.line_end_ids == [vocabulary.id_of(m) for m in LINE_END_MARKS if m in vocabulary]
    assert vocabulary.id_of("，") in datamodule.line_end_ids and vocabulary.id_of("。") in datamodule.line_end_ids
    assert datamodule.tokens.vocab_size == datamodule.vocab_size
    # the vocabulary is built from the training split's poems and titles only, with min_count 2
    train = datamodule.split("train")
    train_chars = "".join(train.texts) + "".join(train.titles)
    assert all(train_chars.count(token) >= 2 for token in vocabulary.tokens[len(SPECIALS) :])


def test_splits_are_nonempty_disjoint_and_sized_by_the_fractions(datamodule):
    sizes = {name: len(datamodule.split(name)) for name in SPLITS}
    total = sum(sizes.values())
    assert all(size > 0 for size in sizes.values()), sizes
    assert 0.05 < sizes["val"] / total < 0.15 and 0.05 < sizes["test"] / total < 0.15, sizes
    ids = [set(datamodule.split(name).poem_ids) for name in SPLITS]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    for name in SPLITS:
        split = datamodule.split(name)
        assert all(10 <= len(text) <= 200 for text in split.texts)
        assert split.lengths().tolist() == [len(text) for text in split.texts]
        for index in range(0, len(split), 7):
            known = "".join(c for c in split.texts[index] if c in datamodule.vocabulary)
            assert datamodule.vocabulary.decode(split.encoded(index).tolist()) == known


def test_train_batches_are_shifted_targets_with_eos_and_little_padding(datamodule):
    vocabulary = datamodule.vocabulary
    loader = datamodule.train_dataloader()
    seen = 0
    padded = real = 0
    for batch in loader:
        assert isinstance(batch, Batch)
        assert batch.inputs.shape == batch.targets.shape
        assert batch.inputs.dtype == torch.long and batch.targets.dtype == torch.long
        assert batch.size <= 8
        assert (batch.inputs[:, 0] == vocabulary.bos_id).all()
        for row in range(batch.size):
            n = int(batch.lengths[row])
            assert torch.equal(batch.targets[row, : n - 1], batch.inputs[row, 1:n])
            assert batch.targets[row, n - 1] == vocabulary.eos_id
            assert (batch.inputs[row, n:] == vocabulary.pad_id).all()
            assert (batch.targets[row, n:] == vocabulary.pad_id).all()
            assert (batch.inputs[row, 1:n] != vocabulary.pad_id).all()
        assert batch.inputs.shape[1] == int(batch.lengths.max())
        seen += batch.size
        padded += batch.inputs.numel()
        real += int(batch.lengths.sum())
    assert seen == len(datamodule.split("train"))
    assert 1 - real / padded < 0.05


def test_val_and_test_loaders_cover_their_splits(datamodule):
    for name, loader in (("val", datamodule.val_dataloader()), ("test", datamodule.test_dataloader())):
        assert sum(batch.size for batch in loader) == len(datamodule.split(name))


def test_forms_filter_keeps_only_those_forms(small_corpus, datamodule):
    filtered = make(small_corpus, forms=["五绝", "qijue"])
    wanted = {Form.WUJUE, Form.QIJUE}
    total = 0
    for name in SPLITS:
        split = filtered.split(name)
        assert {classify(text) for text in split.texts} <= wanted
        assert set(split.forms) <= {"五绝", "七绝"}
        # exactly the poems of those forms that the unfiltered module puts in the same split
        unfiltered = datamodule.split(name)
        expected = [pid for pid, text in zip(unfiltered.poem_ids, unfiltered.texts) if classify(text) in wanted]
        assert split.poem_ids == expected
        total += len(split)
    assert len(filtered.split("train")) > 0
    assert total < sum(len(datamodule.split(name)) for name in SPLITS)


def test_eval_forms_filter_only_validation_and_test(small_corpus, datamodule):
    # Train on every form, score on the regular ones: the same val/test poems as a regular-only module.
    regular = ["五绝", "七绝", "五律", "七律"]
    mixed = make(small_corpus, eval_forms=regular)
    regular_only = make(small_corpus, forms=regular)
    assert mixed.split("train").poem_ids == datamodule.split("train").poem_ids
    assert "other" in set(mixed.split("train").forms)
    for name in ("val", "test"):
        assert mixed.split(name).poem_ids == regular_only.split(name).poem_ids
        assert set(mixed.split(name).forms) <= set(regular)
        assert len(mixed.split(name)) < len(datamodule.split(name))


def test_traditional_keeps_traditional_characters(datamodule, traditional):
    assert "风" in datamodule.vocabulary and "風" not in datamodule.vocabulary
    assert "風" in traditional.vocabulary and "风" not in traditional.vocabulary
    simple = dict(zip(datamodule.split("train").poem_ids, datamodule.split("train").texts))
    compared = 0
    for pid, text in zip(traditional.split("train").poem_ids, traditional.split("train").texts):
        if "風" in text:
            converted = simple[pid]
            assert len(converted) == len(text)
            assert all(converted[i] == "风" for i, char in enumerate(text) if char == "風")
            compared += 1
    assert compared > 0


def test_cache_is_written_and_reused(monkeypatch, tmp_path, small_corpus):
    cache = tmp_path / "cache"
    monkeypatch.setenv("TANGRNN_CACHE_DIR", str(cache))
    first = make(small_corpus, max_poems=150)
    files = sorted(cache.glob("prepared-*.pt"))
    assert len(files) == 1

    def refuse(*args, **kwargs):
        raise AssertionError("read_corpus called although a cache exists")

    with monkeypatch.context() as patch:
        patch.setattr(prepared_module, "read_corpus", refuse)
        second = make(small_corpus, max_poems=150)
    assert second.vocabulary == first.vocabulary
    for name in SPLITS:
        assert second.split(name).texts == first.split(name).texts
        assert torch.equal(second.split(name).ids, first.split(name).ids)

    make(small_corpus, max_poems=150, min_count=1)
    assert len(sorted(cache.glob("prepared-*.pt"))) == 2
    # the batch size decides nothing about the prepared data: no new cache file
    make(small_corpus, max_poems=150, batch_size=4)
    assert len(sorted(cache.glob("prepared-*.pt"))) == 2


def test_cache_dir_argument_wins_over_the_environment(monkeypatch, tmp_path, small_corpus):
    monkeypatch.setenv("TANGRNN_CACHE_DIR", str(tmp_path / "env"))
    make(small_corpus, max_poems=50, cache_dir=str(tmp_path / "explicit"))
    assert len(list((tmp_path / "explicit").glob("prepared-*.pt"))) == 1
    assert not list((tmp_path / "env").glob("prepared-*.pt"))


def test_corrupt_cache_is_ignored_and_rebuilt(monkeypatch, tmp_path, small_corpus):
    cache = tmp_path / "cache"
    monkeypatch.setenv("TANGRNN_CACHE_DIR", str(cache))
    original = make(small_corpus, max_poems=120)
    [file] = cache.glob("prepared-*.pt")
    file.write_bytes(b"this is not a torch file")

    calls = []
    real_read = prepared_module.read_corpus

    def counting(*args, **kwargs):
        calls.append(args)
        return real_read(*args, **kwargs)

    monkeypatch.setattr(prepared_module, "read_corpus", counting)
    rebuilt = make(small_corpus, max_poems=120)
    assert len(calls) == 1
    assert rebuilt.vocabulary == original.vocabulary
    assert rebuilt.split("train").texts == original.split("train").texts
    payload = torch.load(file, weights_only=True)
    assert payload["format"] == prepared_module.CACHE_FORMAT
    # and the repaired file is used next time
    make(small_corpus, max_poems=120)
    assert len(calls) == 1


def test_use_vocabulary_reencodes(small_corpus):
    datamodule = make(small_corpus, max_poems=100)
    train = datamodule.split("train")
    other = Vocabulary.build(train.texts[:10], min_count=1)
    assert len(other) < datamodule.vocab_size

    same = datamodule.prepared
    datamodule.use_vocabulary(Vocabulary(list(datamodule.vocabulary.tokens)))
    assert datamodule.prepared is same  # an equal vocabulary changes nothing

    datamodule.use_vocabulary(other)
    assert datamodule.vocabulary == other
    assert datamodule.vocab_size == len(other)
    for name in SPLITS:
        split = datamodule.split(name)
        for index, text in enumerate(split.texts):
            assert split.encoded(index).tolist() == other.encode(text)
    assert datamodule.split("train").texts == train.texts
    unknown = sum(int((split.ids == other.unk_id).sum()) for split in datamodule.prepared.splits.values())
    assert unknown > 0
    for batch in datamodule.train_dataloader():
        assert int(batch.inputs.max()) < len(other)


@pytest.mark.parametrize(
    "options",
    [
        {"batch_size": 0},
        {"num_workers": -1},
        {"min_chars": 0},
        {"min_chars": 50, "max_chars": 20},
        {"min_count": 0},
        {"max_poems": 0},
        {"forms": ["sonnet"]},
        {"eval_forms": ["sonnet"]},
        {"script": "latin"},
        {"val_fraction": 0.7},
        {"test_fraction": -0.1},
    ],
    ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()),
)
def test_bad_options_are_config_errors(small_corpus, options):
    with pytest.raises(ConfigError):
        make(small_corpus, **options)


def test_corpus_whose_poems_all_fail_the_filters(small_corpus):
    with pytest.raises(CorpusError, match="filters"):
        make(small_corpus, authors=["无此诗人"])
    with pytest.raises(CorpusError):
        make(small_corpus, min_chars=199, max_chars=200, forms=["wujue"])


def test_missing_corpus_is_a_corpus_error(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        make(tmp_path / "nowhere.jsonl")


def test_plain_text_corpus(tmp_path, small_corpus):
    lines = []
    for line in small_corpus.read_text(encoding="utf-8").splitlines():
        text = "".join(json.loads(line)["paragraphs"])
        if classify(text) is not Form.OTHER and text not in lines:
            lines.append(text)
        if len(lines) == 40:
            break
    assert len(lines) == 40
    corpus = tmp_path / "poems.txt"
    corpus.write_text("\n\n".join(lines) + "\n", encoding="utf-8")

    datamodule = make(corpus, script="traditional", min_count=1, batch_size=4)
    texts = [text for name in SPLITS for text in datamodule.split(name).texts]
    assert sorted(texts) == sorted(lines)
    assert len(datamodule.split("train")) > 0
    batches = list(datamodule.train_dataloader())
    assert sum(batch.size for batch in batches) == len(datamodule.split("train"))

    simplified = make(corpus, min_count=1)
    assert sum(len(simplified.split(name)) for name in SPLITS) == 40
    assert "風" not in simplified.vocabulary


def test_batches_carry_the_titles_as_context(small_corpus, tmp_path):
    datamodule = PoetryDataModule(corpus=str(small_corpus), batch_size=8, cache_dir=str(tmp_path))
    split = datamodule.split("train")
    # titles keep their Chinese characters only, converted like the poems
    assert not any(unicodedata.category(ch)[0] in "PZS" for title in split.titles for ch in title)
    assert max(len(title) for title in split.titles) <= 16
    assert sum(bool(title) for title in split.titles) > 0.95 * len(split)
    batch = next(iter(datamodule.train_dataloader()))
    assert batch.context is not None and batch.context.shape[0] == batch.size
    vocabulary = datamodule.vocabulary
    titles = {vocabulary.decode(row[:n].tolist()) for row, n in zip(batch.context, batch.context_lengths)}
    assert titles <= {"".join(c if c in vocabulary else "" for c in title) for title in split.titles}


def test_titles_can_be_turned_off(small_corpus, tmp_path):
    datamodule = PoetryDataModule(corpus=str(small_corpus), max_title_chars=0, cache_dir=str(tmp_path))
    assert set(datamodule.split("train").titles) == {""}
    batch = next(iter(datamodule.train_dataloader()))
    assert batch.context_lengths.eq(0).all() and batch.context.shape[1] == 1
