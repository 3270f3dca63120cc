"""LightningCLI set up for tangrnn: the model, the data module, the trainer defaults and the argument links."""

from __future__ import annotations

from collections.abc import Sequence

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_only

from tangrnn_core.callbacks import PoemSamples
from tangrnn_core.data.datamodule import PoetryDataModule
from tangrnn_core.errors import ConfigError
from tangrnn_core.module import PoetryModel
from tangrnn_core.trainer import TangrnnTrainer


class TangrnnCLI(LightningCLI):
    """LightningCLI with tangrnn's links: the data module's vocabulary decides the model's sizes."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # The data module builds its vocabulary in __init__, so these exist before the model is built.
        parser.link_arguments("data.vocab_size", "model.vocab_size", apply_on="instantiate")
        parser.link_arguments("data.line_end_ids", "model.line_end_ids", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        config = self.config.get(str(self.subcommand), self.config)
        if config.get("trainer", {}).get("use_distributed_sampler"):
            raise ConfigError(
                "trainer.use_distributed_sampler must stay false: tangrnn's bucketing sampler shards batches itself"
            )

    @rank_zero_only
    def after_predict(self) -> None:
        for batch in self.trainer.predict_loop.predictions or []:
            for poem in batch:
                print(poem)
                print()


def run_lightning_cli(args: Sequence[str]) -> TangrnnCLI:
    """Builds and runs the CLI on ``args`` (``fit``, ``validate``, ``test``, ``predict`` and their options)."""
    return TangrnnCLI(
        PoetryModel,
        PoetryDataModule,
        trainer_class=TangrnnTrainer,
        trainer_defaults={
            "callbacks": [
                ModelCheckpoint(monitor="val/ppl", mode="min", save_last=True, filename="best-{step}"),
                PoemSamples(),
            ],
            # The bucketing sampler shards batches across processes itself.
            "use_distributed_sampler": False,
            "gradient_clip_val": 1.0,
        },
        seed_everything_default=1234,
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
        parser_kwargs={"description": "tangrnn: recurrent neural networks that learn to write Tang poems."},
        args=list(args),
    )
