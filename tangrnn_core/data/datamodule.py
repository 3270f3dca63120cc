"""The LightningDataModule: prepared poems, length-bucketed batches, one process's shard of them."""

from __future__ import annotations

import os
from typing import Literal

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset
from torchdata.stateful_dataloader import StatefulDataLoader

from tangrnn_core.api import Batch, TokenSpec
from tangrnn_core.data.normalize import LINE_END_MARKS
from tangrnn_core.data.prepared import DataOptions, PreparedCorpus, SplitData, prepare
from tangrnn_core.data.sampler import BucketBatchSampler
from tangrnn_core.data.vocab import Vocabulary
from tangrnn_core.errors import ConfigError


class EncodedPoems(Dataset):
    """The poems of one split as ``(poem, title)`` id tensors (characters only; ``<bos>``/``<eos>`` are added
    when batching)."""

    def __init__(self, split: SplitData) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.split.encoded(index), self.split.encoded_title(index)


class PadCollate:
    """Turns encoded poems into a :class:`~tangrnn_core.api.Batch` padded to its longest poem.

    Each item is a poem's ids, or a ``(poem, title)`` pair of id tensors; the titles become ``Batch.context``.
    """

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.pad_id, self.bos_id, self.eos_id = vocabulary.pad_id, vocabulary.bos_id, vocabulary.eos_id

    def __call__(self, items: list[torch.Tensor | tuple[torch.Tensor, torch.Tensor]]) -> Batch:
        if items and isinstance(items[0], tuple):
            poems = [poem for poem, _ in items]
            titles = [title for _, title in items]
        else:
            poems, titles = list(items), None
        lengths = torch.tensor([len(poem) + 1 for poem in poems], dtype=torch.long)
        width = int(lengths.max())
        inputs = torch.full((len(poems), width), self.pad_id, dtype=torch.long)
        targets = torch.full((len(poems), width), self.pad_id, dtype=torch.long)
        for row, poem in enumerate(poems):
            size = len(poem)
            inputs[row, 0] = self.bos_id
            inputs[row, 1 : size + 1] = poem
            targets[row, :size] = poem
            targets[row, size] = self.eos_id
        if titles is None:
            return Batch(inputs=inputs, targets=targets, lengths=lengths)
        context, context_lengths = pad_titles(titles, self.pad_id)
        return Batch(inputs=inputs, targets=targets, lengths=lengths, context=context, context_lengths=context_lengths)


def pad_titles(titles: list[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(batch, longest)`` title ids padded with ``pad_id`` (at least one column, so that a batch of empty
    titles is still a tensor a network can embed), and their ``(batch,)`` lengths."""
    context_lengths = torch.tensor([len(title) for title in titles], dtype=torch.long)
    context = torch.full((len(titles), max(1, int(context_lengths.max()))), pad_id, dtype=torch.long)
    for row, title in enumerate(titles):
        context[row, : len(title)] = title
    return context, context_lengths


class PoetryDataModule(pl.LightningDataModule):
    """Tang poems (or any corpus in the same format), normalised, filtered, split and bucketed by length.

    The vocabulary is built from the training split when this object is created, the same on every process,
    so that LightningCLI can pass ``vocab_size`` to the model.

    Args:
        corpus: corpus file: a tangrnn ``.jsonl.xz``/``.jsonl`` (see ``tangrnn data build``), a chinese-poetry
            JSON file, or a ``.txt`` with one poem per line. ``null`` uses the bundled Tang corpus.
        script: write poems in ``simplified`` (converted with OpenCC) or ``traditional`` characters.
        forms: keep only these forms (``五绝 七绝 五律 七律 other`` or ``wujue qijue wulv qilv``); ``null`` keeps all.
        eval_forms: keep only these forms in the validation and test splits, so that a model trained on more
            forms is scored on the same poems as one trained on these alone (splits follow poem ids, not
            filters); ``null`` keeps what ``forms`` keeps.
        authors: keep only poems by these authors (in either script, e.g. 李白); ``null`` keeps all.
        min_chars: drop poems shorter than this (characters and punctuation).
        max_chars: drop poems longer than this.
        max_poems: use only the first N poems that pass the filters (quick experiments and tests).
        min_count: characters seen fewer times in the training split become ``<unk>``.
        val_fraction: share of poems in the validation split (chosen by a hash of the poem id).
        test_fraction: share of poems in the test split.
        max_title_chars: keep at most this many characters of each title (the ``context`` that ``conditional``
            architectures such as seq2seq read); ``0`` gives every poem an empty title.
        batch_size: poems per batch (per process).
        num_workers: data-loading worker processes.
        seed: seed of the batch order (the same on every process).
        predict_poems: how many poems ``tangrnn predict`` writes.
        cache_dir: where prepared data is cached (``null``: ``$TANGRNN_CACHE_DIR`` or ``~/.cache/tangrnn``).
        vocabulary_from: encode the poems with this trained model's vocabulary instead of building one from the
            training split: a bundled model's name (``tangrnn models``) or a checkpoint file. Set it with
            ``model.init_from`` to fine-tune a model, so that every character keeps its id (characters the
            model never saw become ``<unk>``).
    """

    def __init__(
        self,
        corpus: str | None = None,
        script: Literal["simplified", "traditional"] = "simplified",
        forms: list[str] | None = None,
        eval_forms: list[str] | None = None,
        authors: list[str] | None = None,
        min_chars: int = 10,
        max_chars: int = 200,
        max_poems: int | None = None,
        min_count: int = 2,
        val_fraction: float = 0.02,
        test_fraction: float = 0.02,
        max_title_chars: int = 16,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        predict_poems: int = 8,
        cache_dir: str | None = None,
        vocabulary_from: str | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ConfigError(f"data.batch_size must be at least 1, got {batch_size}")
        if num_workers < 0:
            raise ConfigError(f"data.num_workers must be 0 or more, got {num_workers}")
        # Checkpoints hold plain data only (they are loaded with weights_only=True): no Path objects.
        corpus = None if corpus is None else os.fspath(corpus)
        cache_dir = None if cache_dir is None else os.fspath(cache_dir)
        self.save_hyperparameters()
        self.options = DataOptions(
            script=script,
            forms=tuple(forms) if forms else None,
            authors=tuple(authors) if authors else None,
            min_chars=min_chars,
            max_chars=max_chars,
            max_poems=max_poems,
            min_count=min_count,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            max_title_chars=max_title_chars,
            eval_forms=tuple(eval_forms) if eval_forms else None,
        )
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.predict_poems = predict_poems
        self.prepared: PreparedCorpus = prepare(corpus, self.options, cache_dir)
        if vocabulary_from is not None:
            from tangrnn_core.finetuning import read_trained_model

            self.use_vocabulary(read_trained_model(vocabulary_from, "data.vocabulary_from").vocabulary)

    @property
    def vocabulary(self) -> Vocabulary:
        return self.prepared.vocabulary

    @property
    def vocab_size(self) -> int:
        return len(self.prepared.vocabulary)

    @property
    def tokens(self) -> TokenSpec:
        return self.vocabulary.token_spec(LINE_END_MARKS)

    @property
    def line_end_ids(self) -> list[int]:
        return list(self.tokens.line_end_ids)

    def use_vocabulary(self, vocabulary: Vocabulary) -> None:
        """Encodes the poems with another vocabulary (a checkpoint's), so that its ids mean the same."""
        if vocabulary != self.vocabulary:
            self.prepared = self.prepared.reencode(vocabulary)

    def split(self, name: str) -> SplitData:
        return self.prepared.splits[name]

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        # A prediction is a poem written from nothing; the batch only says how many to write together.
        return DataLoader(range(self.predict_poems), batch_size=self.batch_size)

    def _loader(self, name: str, shuffle: bool) -> DataLoader:
        split = self.split(name)
        if len(split) == 0:
            raise ConfigError(
                f"the {name} split is empty; use more poems (data.max_poems) or a larger data.{name}_fraction"
                if name != "train"
                else "the train split is empty; use more poems"
            )
        replicas, rank = 1, 0
        if self.trainer is not None:
            replicas, rank = self.trainer.world_size, self.trainer.global_rank
        sampler = BucketBatchSampler(
            split.lengths().tolist(),
            self.batch_size,
            shuffle=shuffle,
            seed=self.seed,
            num_replicas=replicas,
            rank=rank,
            even=shuffle,  # only training needs ranks in step; evaluation scores every poem exactly once
        )
        # Training resumes mid-epoch exactly: a StatefulDataLoader's state (saved by Lightning in every checkpoint)
        # holds how many batches of the epoch were taken. Each loader draws its workers' seeds from a generator of
        # its own, not from torch's global one, so that starting a loader moves no random draw of the model's.
        loader = StatefulDataLoader if name == "train" else DataLoader
        return loader(
            EncodedPoems(split),
            batch_sampler=sampler,
            collate_fn=PadCollate(self.vocabulary),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator().manual_seed(self.seed),
        )
