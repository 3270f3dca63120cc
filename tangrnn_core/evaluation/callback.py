"""A cheap, sampled version of ``tangrnn evaluate`` logged at every validation during ``tangrnn fit``."""

from __future__ import annotations

from typing import Literal

import lightning.pytorch as pl
import torch

from tangrnn_core.decoding.request import DEFAULT_TEMPERATURE, DEFAULT_TOP_P
from tangrnn_core.evaluation.evaluate import poem_quality, shard, training_lines, write_sample


class SampleQuality(pl.Callback):
    """Samples a few free poems after every validation and logs how they look, next to ``val/ppl``.

    Logged: ``val/form_rate`` (share of the poems in one of the four regular forms, which no constraint imposes
    here, so the model has to have learned them; an infilling network fills regular layouts, so 1 by
    construction), ``val/distinct_1`` and ``val/distinct_2`` (distinct characters and in-line bigrams over all
    of them), ``val/novelty`` (share of their lines not found verbatim in the training split) and, once some
    poems come out in a regular form, ``val/tone_rate`` and ``val/rhyme_rate`` (the share of those that keep
    the tones of a pattern, and one 平声 rhyme group, as ``tangrnn check`` judges them). On several processes
    each samples its share and the figures are synced.

    Cost: one batch of ``num_poems`` free poems of at most ``max_length`` characters (like the sample poems
    printed at each validation, more of them), their checks, and once, at the first validation, a set of the
    training split's lines; its share of a run is measured in docs/performance.md ("The quality figures logged
    during fit").

    Args:
        num_poems: poems sampled each validation, over all processes; 0 turns this off.
        temperature: sampling temperature (the same as the printed samples, so the figures describe them).
        top_p: nucleus sampling's share of probability (1: every character), as the printed samples.
        max_length: characters at most per poem.
        seed: the random source, fixed so that successive figures differ only by what the model learned.
        check_tones: ``strict`` (every position a pattern fixes) or ``loose`` (2nd, 4th, 6th and the line ends).
    """

    def __init__(
        self,
        num_poems: int = 32,
        temperature: float = DEFAULT_TEMPERATURE,
        top_p: float = DEFAULT_TOP_P,
        max_length: int = 80,
        seed: int = 4321,
        check_tones: Literal["strict", "loose"] = "strict",
    ) -> None:
        self.num_poems = num_poems
        self.temperature = temperature
        self.top_p = top_p
        self.max_length = max_length
        self.seed = seed
        self.check_tones = check_tones
        self._lines: set[str] | None = None

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        vocabulary = getattr(pl_module, "vocabulary", None)
        datamodule = getattr(trainer, "datamodule", None)
        # The same decision on every process: the sync inside compute() is a collective call.
        if trainer.sanity_checking or self.num_poems < 1 or vocabulary is None or not hasattr(datamodule, "split"):
            return
        if self._lines is None:
            self._lines = training_lines(datamodule)
        rank, world_size = trainer.global_rank, trainer.world_size
        count = len(shard(self.num_poems, rank, world_size))
        poems = write_sample(
            pl_module.net,
            vocabulary,
            None,
            count,
            self.temperature,
            self.seed + 100_003 * rank,
            self.max_length,
            top_p=self.top_p,
        )
        metrics = poem_quality(self._lines, check_tones=self.check_tones).to(pl_module.device)
        metrics.update(poems)
        values = metrics.compute()
        figures = {
            "val/form_rate": values["form_rate"],
            "val/distinct_1": values["distinct_1"],
            "val/distinct_2": values["distinct_2"],
            "val/novelty": 1 - values["copied_lines"],
            "val/tone_rate": values["tone_rate"],
            "val/rhyme_rate": values["rhyme_rate"],
        }
        for name, value in figures.items():
            if torch.isnan(value):
                continue  # no poem in a regular form yet: no tones or rhymes to judge (the same on every process)
            # Already synced, so equal on every process; sync_dist only keeps Lightning from asking for it.
            pl_module.log(name, value, sync_dist=world_size > 1, batch_size=self.num_poems)
