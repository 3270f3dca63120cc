"""The Trainer subclass behind the command line: Lightning's verbs, with checkpoints always loaded safely."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.core.datamodule import LightningDataModule
from lightning.pytorch.trainer.states import TrainerStatus
from lightning.pytorch.utilities import rank_zero_only

from tangrnn_core.decoding.printing import print_poems as _print_poems
from tangrnn_core.decoding.printing import write_and_print
from tangrnn_core.decoding.quantize import WeightFormat
from tangrnn_core.decoding.request import DEFAULT_TEMPERATURE, DEFAULT_TOP_P, PoemRequest
from tangrnn_core.evaluation.evaluate import print_report, run_evaluation
from tangrnn_core.run_folders import claim_version

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
        """Trains the model; ``--ckpt_path PATH`` resumes from a checkpoint (on the command line, ``last`` finds
        the newest ``last.ckpt`` of a run of the same network under ``trainer.default_root_dir``). The run
        claims its own ``version_N`` folder first, atomically, so runs started together never share one."""
        if rank_zero_only.rank == 0:
            for logger in self.loggers:
                claim_version(logger)
        try:
            return super().fit(model, train_dataloaders, val_dataloaders, datamodule, ckpt_path, weights_only=True)
        except SystemExit as exit_:
            # Lightning turns Ctrl-C into sys.exit(1) after its shutdown; give the command its interrupt back.
            if type(exit_) is SystemExit and self.state.status == TrainerStatus.INTERRUPTED:
                raise KeyboardInterrupt from None
            raise

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

    #: The request ``predict`` writes its poems to (read by the model's ``predict_step``); ``None`` outside it.
    poem_request: PoemRequest | None = None

    def predict(
        self,
        model: pl.LightningModule | None = None,
        dataloaders=None,
        datamodule: LightningDataModule | None = None,
        return_predictions: bool | None = None,
        ckpt_path: _Path = None,
        request: PoemRequest | None = None,
    ):
        """Writes poems with the model (of ``--ckpt_path`` if given) and prints them.

        Args:
            request: how to write them: the options of ``tangrnn generate`` but the count and the batch, which
                are the data's (``--data.predict_poems``, ``--data.batch_size``); with a ``seed``, batch ``i``
                is written with ``seed + i``.
        """
        if request is not None:
            request.validate()
        self.poem_request = request
        try:
            return super().predict(model, dataloaders, datamodule, return_predictions, ckpt_path, weights_only=True)
        finally:
            self.poem_request = None

    def generate(
        self,
        model: pl.LightningModule,
        ckpt_path: str,
        request: PoemRequest | None = None,
        output: Literal["text", "json"] = "text",
        quantize: WeightFormat = "auto",
        checkpoint: dict | None = None,
    ) -> list[str]:
        """Writes poems with a trained checkpoint, batched, with hard constraints on form and content.

        The request's options (form, acrostic, tones, temperature ...) are flags of their own on the command
        line: ``tangrnn generate --help`` lists them with their help, which lives in
        :class:`~tangrnn_core.decoding.request.PoemRequest`.

        Args:
            model: rebuilt from the checkpoint's hyper-parameters by the command line.
            ckpt_path: a checkpoint written by ``tangrnn fit`` (or ``last``); it alone holds the vocabulary. Left
                out, the bundled model (``tangrnn models``).
            request: the poems to write (default: four free poems).
            output: ``text`` prints one verse per line and a blank line between poems; ``json`` prints one
                JSON record per poem.
            quantize: the weights to decode with. ``auto`` picks the fastest for the device: ``int8`` on CPUs with
                torch's x86 int8 kernels (AVX2 and up), ``bf16`` on GPUs that compute it natively, else ``none``
                (the fp32 weights). ``int8`` runs on the CPU only; its scores move by about 2%, so poems differ
                from fp32 ones at the same seed. ``bf16`` suits GPUs and CPUs with AVX-512 BF16 or AMX (elsewhere
                it is emulated, much slower, and tangrnn warns). Measured in docs/performance.md.
            checkpoint: the contents of ``ckpt_path`` when the caller has read them already (the command line
                checks the file before it runs a verb), so that it is read once.
        """
        request = request or PoemRequest()
        request.validate()  # before the checkpoint is read: a bad option costs nothing
        if checkpoint is None:
            checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        model.on_load_checkpoint(checkpoint)
        model.load_state_dict(checkpoint["state_dict"])
        model.to(self.strategy.root_device)
        return write_and_print(model.net, model.vocabulary, request, output, quantize)

    def evaluate(
        self,
        model: pl.LightningModule,
        datamodule: LightningDataModule,
        ckpt_path: str,
        num_poems: int = 100,
        form: str | None = None,
        temperature: float = DEFAULT_TEMPERATURE,
        top_p: float = DEFAULT_TOP_P,
        seed: int = 1234,
        check_tones: Literal["strict", "loose"] = "strict",
        output: Literal["text", "json"] = "text",
    ) -> dict:
        """Evaluates a checkpoint: test-split perplexity, then the poems it writes, as a table or JSON.

        Reports test perplexity (the model's test loop), BLEU-2 over characters of continuations of the first
        lines of up to ``num_poems`` regular test poems against the originals, and for ``num_poems`` sampled
        poems: the share in the asked form (free poems: in any regular form), distinct-1 and distinct-2 (distinct
        characters and in-line bigrams over all of them), the share of lines copied verbatim from the training
        split and the share of poems with such a line, and, of the poems in a regular form, the share whose
        tones fit a pattern of their form and the share whose rhymes keep to one 平声 group (the checks of
        ``tangrnn check``). Use the config the model was trained with: it decides the splits.

        Args:
            model: rebuilt from the checkpoint's hyper-parameters by the command line.
            datamodule: the data of the config: the test split for perplexity and first lines, the training
                split for copied lines.
            ckpt_path: a checkpoint written by ``tangrnn fit`` (or ``last``). Left out, the bundled model, scored
                on the data it was trained on unless a ``--config`` says otherwise.
            num_poems: poems sampled per form, and test poems continued for BLEU-2.
            form: ``free`` (default: no form imposed), one of 五绝 七绝 五律 七律 (wujue qijue wulv qilv), or
                ``all`` (free and each of the four).
            temperature: sampling temperature of every poem (0 is greedy).
            top_p: sample only among the most likely characters whose probabilities add up to top_p (1: all),
                as ``tangrnn generate --top_p``.
            seed: the same seed gives the same poems and figures.
            check_tones: how tones are judged: ``strict``, every position a pattern fixes (as ``tangrnn check``),
                or ``loose``, only the 2nd, 4th and 6th characters and the line ends (一三五不论). Poems are
                sampled without tone constraints (``tangrnn generate --tones`` adds them).
            output: ``text`` prints a table; ``json`` prints one JSON object.
        """
        report = run_evaluation(
            self, model, datamodule, ckpt_path, num_poems, form, temperature, seed, check_tones=check_tones, top_p=top_p
        )
        print_report(report, output)
        return report


#: Printed by the first process only: a run on several devices writes each poem once.
print_poems = rank_zero_only(_print_poems)
