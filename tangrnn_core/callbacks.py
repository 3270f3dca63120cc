"""Callbacks that tangrnn adds to every run."""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from tangrnn_core.decoding.request import PoemRequest, write_poems


class PoemSamples(pl.Callback):
    """Writes a few poems with the current weights after every validation, to the console and TensorBoard.

    Args:
        num_poems: poems to write each time.
        temperature: sampling temperature (lower is safer, higher more varied).
        max_length: characters at most per poem.
        seed: the random source, fixed so that successive samples differ only by what the model learned.
    """

    def __init__(self, num_poems: int = 4, temperature: float = 0.8, max_length: int = 80, seed: int = 1234) -> None:
        self.num_poems = num_poems
        self.temperature = temperature
        self.max_length = max_length
        self.seed = seed

    @rank_zero_only
    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        vocabulary = getattr(pl_module, "vocabulary", None)
        if trainer.sanity_checking or self.num_poems < 1 or vocabulary is None:
            return
        request = PoemRequest(
            num_poems=self.num_poems, temperature=self.temperature, seed=self.seed, max_length=self.max_length
        )
        poems = write_poems(pl_module.net, vocabulary, request)
        heading = f"Poems after {trainer.global_step} steps:"
        text = "\n".join([heading, *(f"  {poem}" for poem in poems)])
        bar = trainer.progress_bar_callback
        if bar is not None and hasattr(bar, "print"):
            bar.print(text)
        else:
            print(text, flush=True)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_text("samples", "\n\n".join(poems), global_step=trainer.global_step)
