"""The Trainer subclass behind the command line: Lightning's verbs, with checkpoints always loaded safely."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.core.datamodule import LightningDataModule

_Path = str | Path | None


class TangrnnTrainer(pl.Trainer):
    """Lightning's Trainer; ``fit``, ``validate``, ``test`` and ``predict`` load checkpoints with
    ``weights_only=True`` only (a checkpoint holds plain data, so no pickled code ever runs)."""

    def fit(
        self,
        model: pl.LightningModule,
        train_dataloaders=None,
        val_dataloaders=None,
        datamodule: LightningDataModule | None = None,
        ckpt_path: _Path = None,
    ) -> None:
        """Trains the model; ``--ckpt_path last`` resumes from the newest checkpoint of the run."""
        return super().fit(model, train_dataloaders, val_dataloaders, datamodule, ckpt_path, weights_only=True)

    def validate(
        self,
        model: pl.LightningModule | None = None,
        dataloaders=None,
        ckpt_path: _Path = None,
        verbose: bool = True,
        datamodule: LightningDataModule | None = None,
    ):
        """Computes validation perplexity (of ``--ckpt_path`` if given)."""
        return super().validate(model, dataloaders, ckpt_path, verbose, datamodule, weights_only=True)

    def test(
        self,
        model: pl.LightningModule | None = None,
        dataloaders=None,
        ckpt_path: _Path = None,
        verbose: bool = True,
        datamodule: LightningDataModule | None = None,
    ):
        """Computes test-split perplexity (of ``--ckpt_path`` if given)."""
        return super().test(model, dataloaders, ckpt_path, verbose, datamodule, weights_only=True)

    def predict(
        self,
        model: pl.LightningModule | None = None,
        dataloaders=None,
        datamodule: LightningDataModule | None = None,
        return_predictions: bool | None = None,
        ckpt_path: _Path = None,
    ):
        """Writes poems with the model (of ``--ckpt_path`` if given) and prints them."""
        return super().predict(model, dataloaders, datamodule, return_predictions, ckpt_path, weights_only=True)
