"""What the serve tests share: a tiny untrained checkpoint, saved as `tangrnn fit` saves one, and its app."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl

from tangrnn_core.data.datamodule import PoetryDataModule
from tangrnn_core.module import PoetryModel

#: Small enough to build and decode in a moment on two cores; untrained, so its poems depend only on the seed.
TINY = {"embedding_size": 16, "hidden_size": 24, "num_layers": 1}


def tiny_checkpoint(folder: Path, corpus: Path) -> Path:
    """An untrained LSTM over ``corpus``'s vocabulary, initialised from a fixed seed, saved under ``folder``."""
    data = PoetryDataModule(corpus=str(corpus), batch_size=16, val_fraction=0.1, test_fraction=0.1)
    pl.seed_everything(1234, verbose=False)
    model = PoetryModel(
        vocab_size=data.vocab_size, line_end_ids=data.line_end_ids, architecture="lstm", architecture_options=TINY
    )
    trainer = pl.Trainer(
        max_steps=0, limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.fit(model, datamodule=data)
    path = folder / "tiny.ckpt"
    trainer.save_checkpoint(path)
    return path
