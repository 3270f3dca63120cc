"""Callbacks that tangrnn adds to every run."""

from __future__ import annotations

import sys
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from tangrnn_core.decoding.request import DEFAULT_TEMPERATURE, DEFAULT_TOP_P, PoemRequest
from tangrnn_core.decoding.write import write_poems


class PoemSamples(pl.Callback):
    """Writes a few poems with the current weights after every validation, to the console and TensorBoard.

    Args:
        num_poems: poems to write each time.
        temperature: sampling temperature (lower is safer, higher more varied).
        top_p: nucleus sampling's share of probability (1: every character).
        max_length: characters at most per poem.
        seed: the random source, fixed so that successive samples differ only by what the model learned.
    """

    def __init__(
        self,
        num_poems: int = 4,
        temperature: float = DEFAULT_TEMPERATURE,
        top_p: float = DEFAULT_TOP_P,
        max_length: int = 80,
        seed: int = 1234,
    ) -> None:
        self.num_poems = num_poems
        self.temperature = temperature
        self.top_p = top_p
        self.max_length = max_length
        self.seed = seed

    @rank_zero_only
    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        vocabulary = getattr(pl_module, "vocabulary", None)
        if trainer.sanity_checking or self.num_poems < 1 or vocabulary is None:
            return
        request = PoemRequest(
            num_poems=self.num_poems,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
            max_length=self.max_length,
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


class FinalCheckpoint(pl.Callback):
    """Writes ``last.ckpt`` at the step a run ends on, however it ends: at ``max_steps``, ``max_time`` or
    ``max_epochs``, or stopped by SIGTERM or Ctrl-C. ``ModelCheckpoint`` writes only after a validation, so
    without this a run loses everything since the last one (up to ``val_check_interval`` steps).

    The file goes where the run's ``ModelCheckpoint`` writes (``.../checkpoints/last.ckpt``), through the
    trainer, so it is as atomic as every other checkpoint; nothing is written when the last step is saved already.
    """

    def __init__(self) -> None:
        self.saved_step: int | None = None

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        self.saved_step = int(checkpoint.get("global_step", trainer.global_step))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save(trainer, "the run ended")

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        # Only a stop asked for from outside; after an error the weights may be what caused it.
        if isinstance(exception, KeyboardInterrupt) or type(exception).__name__ == "SIGTERMException":
            self._save(trainer, "SIGTERM" if not isinstance(exception, KeyboardInterrupt) else "Ctrl-C")

    def _save(self, trainer: pl.Trainer, why: str) -> None:
        callback = trainer.checkpoint_callback
        if (
            trainer.state.fn != "fit"
            or trainer.sanity_checking
            or trainer.fast_dev_run
            or callback is None
            or callback.dirpath is None
            or trainer.global_step == 0
            or self.saved_step == trainer.global_step
        ):
            return
        path = Path(callback.dirpath) / f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"
        trainer.save_checkpoint(path)
        callback.last_model_path = str(path)
        if trainer.is_global_zero:
            resume = "" if why == "the run ended" else "; resume with --ckpt_path last"
            print(f"tangrnn: {why}: saved {path} at step {trainer.global_step}{resume}", file=sys.stderr, flush=True)
