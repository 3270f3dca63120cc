"""The LightningModule: builds the chosen architecture and owns the loss, metrics, optimiser and checkpoints."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from tangrnn_core.api import PLUGIN_API_VERSION, Batch, TokenSpec, opted_in_output_layer
from tangrnn_core.checkpoint_files import CHECKPOINT_FORMAT
from tangrnn_core.data.vocab import SPECIALS, Vocabulary
from tangrnn_core.decoding.request import PoemRequest
from tangrnn_core.decoding.write import write_poems
from tangrnn_core.errors import CheckpointError, ConfigError, TangrnnError
from tangrnn_core.finetuning import TrainedModel, read_trained_model
from tangrnn_core.losses import chunked_cross_entropy
from tangrnn_core.metrics import TokenPerplexity
from tangrnn_core.network import DEFAULT_ARCHITECTURE, build_architecture, check_vocabulary
from tangrnn_core.objectives import is_masked_model, masked_batch


def _time_budget_progress(trainer: pl.Trainer) -> Callable[[], float]:
    """The share of ``trainer.max_time`` spent training, by the timer that stops the run at it.

    Raises:
        ConfigError: the trainer has no ``max_time``.
    """
    timer = next((callback for callback in trainer.callbacks if isinstance(callback, Timer)), None)
    remaining = timer.time_remaining() if timer is not None else None
    if timer is None or remaining is None:
        raise ConfigError(
            "model.lr_scheduler has schedule_by: time but the trainer has no time budget; set trainer.max_time "
            "(e.g. 00:01:00:00) or use schedule_by: steps"
        )
    budget = timer.time_elapsed() + remaining
    return lambda: timer.time_elapsed() / budget if budget > 0 else 1.0


def random_states() -> dict[str, Any]:
    """The random generators training draws from (torch's on the CPU and every initialised GPU, Python's), as
    plain data that loads with ``weights_only=True``."""
    states: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_random_states(states: dict[str, Any]) -> None:
    """Puts back what :func:`random_states` saved (a GPU state only where the same GPUs are present)."""
    torch.set_rng_state(states["torch"])
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    cuda = states.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


class WarmupCosine(LambdaLR):
    """Linear warm-up, then cosine decay to ``final_ratio`` of the base learning rate; stepped every batch.

    The cosine runs over steps (``total_steps``) or over the training time ``trainer.max_time`` allows
    (``schedule_by: time``): then the schedule ends when the time does, at whatever speed this machine trains
    (two CPU cores of one kind run half as many steps an hour as of another, and a shared machine varies from day
    to day), so a run with a time budget always ends at the low learning rate. The learning rate then depends on
    the clock, so two runs of the same seed differ slightly.

    Args:
        optimizer: the optimiser whose learning rate is scheduled.
        warmup_steps: steps of linear warm-up from near zero.
        total_steps: length of the schedule in steps; ``null`` takes the trainer's estimate (``max_steps`` or
            epochs). Unused with ``schedule_by: time``.
        final_ratio: the learning rate at the end, as a fraction of the base rate.
        schedule_by: ``steps`` or ``time`` (the training time measured by Lightning's timer, which also stops
            the run at ``trainer.max_time``; resumed runs go on from the time they had spent).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        warmup_steps: int = 200,
        total_steps: int | None = None,
        final_ratio: float = 0.1,
        schedule_by: Literal["steps", "time"] = "steps",
    ) -> None:
        if schedule_by not in ("steps", "time"):
            raise ValueError(f"schedule_by must be steps or time, got {schedule_by!r}")
        self.warmup_steps = max(0, warmup_steps)
        self.total_steps = total_steps
        self.final_ratio = final_ratio
        self.schedule_by = schedule_by
        self._progress_of_time: Callable[[], float] | None = None
        super().__init__(optimizer, self._factor)

    def follow_time(self, progress: Callable[[], float]) -> None:
        """Makes the cosine follow ``progress()``, the share of the time budget spent (0 to 1), from now on."""
        self._progress_of_time = progress

    def state_dict(self) -> dict[str, Any]:
        # The clock is a function of this run, not state: checkpoints hold plain data only.
        return {key: value for key, value in super().state_dict().items() if key != "_progress_of_time"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restores the step count and base rates, keeping this run's shape of the schedule.

        The config is the source of truth for the shape (warm-up, length, final ratio), the checkpoint for the
        progress: a run resumed with a larger ``max_steps`` follows the longer cosine from where it stopped
        instead of staying at the old final rate.
        """
        shape = {
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
            "final_ratio": self.final_ratio,
            "schedule_by": self.schedule_by,
            "_progress_of_time": self._progress_of_time,
        }
        super().load_state_dict(state_dict)
        self.__dict__.update(shape)
        # The optimiser's rates follow at once, so the first step after resuming uses the new shape.
        for group, base, factor in zip(self.optimizer.param_groups, self.base_lrs, self.lr_lambdas):
            group["lr"] = base * factor(self.last_epoch)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _factor(self, step: int) -> float:
        warmup = (step + 1) / self.warmup_steps if step < self.warmup_steps else 1.0
        if self.schedule_by == "time":
            # Warm-up by steps, the cosine by time: the first minutes of an hour barely move the cosine.
            clock = self._progress_of_time
            progress = min(1.0, max(0.0, clock())) if clock is not None else 0.0
            return min(warmup, self._cosine(progress))
        if step < self.warmup_steps:
            return warmup
        if not self.total_steps or self.total_steps <= self.warmup_steps:
            return 1.0
        return self._cosine(min(1.0, (step - self.warmup_steps) / (self.total_steps - self.warmup_steps)))

    def _cosine(self, progress: float) -> float:
        return self.final_ratio + (1 - self.final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class PoetryModel(pl.LightningModule):
    """A character language model of poems around an architecture plugin.

    Args:
        vocab_size: size of the vocabulary (linked from the data module; set it only without one).
        line_end_ids: ids of the line-ending punctuation (linked from the data module).
        architecture: a plugin name from ``tangrnn plugins`` (``rnn``, ``lstm``, ``gru``, ...) or the class path
            of an Architecture subclass.
        architecture_options: keyword arguments of that architecture (``tangrnn plugins --options NAME`` lists
            them with their defaults).
        optimizer: the optimiser, injected from the config (default AdamW).
        lr_scheduler: the learning-rate schedule, stepped every batch (default: warm-up then cosine decay).
        nan_policy: what a non-finite (NaN or infinite) training loss does: ``stop`` ends training with an error
            naming the step; ``skip`` drops that batch (no backward pass, no weight update) and counts the
            dropped batches in the logged metric ``train/skipped``.
        loss_chunk_size: rows (positions) per chunk of the output layer and the loss, for architectures that
            expose their output layer (``Architecture.output_layer``, as ``rnn``, ``lstm`` and ``gru`` do): the
            ``(positions, vocabulary)`` logits are then never made whole, which saves memory (and on CPU the
            page faults of allocating them every step). ``0`` computes the full logits; architectures that do
            not opt in always do. The default, 512 rows, keeps a chunk's logits at 16 MB for a vocabulary of
            8,000 (fp32); see ``bench/output_layer.py``.
        init_from: start training from this trained model's network weights instead of random ones
            (fine-tuning): a bundled model's name (``tangrnn models``) or a checkpoint file. Its architecture and
            sizes must be this model's (dropout rates may differ), and the data must be encoded with its
            vocabulary (``data.vocabulary_from``, the same value). Read when ``fit`` starts; a resumed run
            (``--ckpt_path``) continues from its own checkpoint instead.
    """

    def __init__(
        self,
        vocab_size: int = 0,
        line_end_ids: list[int] | None = None,
        architecture: str = DEFAULT_ARCHITECTURE,
        architecture_options: dict[str, Any] | None = None,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        lr_scheduler: LRSchedulerCallable | None = WarmupCosine,
        nan_policy: Literal["stop", "skip"] = "stop",
        loss_chunk_size: int = 512,
        init_from: str | None = None,
    ) -> None:
        super().__init__()
        if vocab_size <= len(SPECIALS):
            raise ConfigError(
                f"model.vocab_size is {vocab_size}; it comes from the data module (run with --data) "
                "or from a checkpoint"
            )
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        if nan_policy not in ("stop", "skip"):
            raise ConfigError(f"model.nan_policy must be 'stop' or 'skip', got {nan_policy!r}")
        self.nan_policy = nan_policy
        if loss_chunk_size < 0:
            raise ConfigError(
                f"model.loss_chunk_size must be 0 (off) or a positive number of rows, got {loss_chunk_size}"
            )
        self.loss_chunk_size = loss_chunk_size
        self.init_from = init_from
        self._starting_model: TrainedModel | None = None  # model.init_from, read when fit starts
        #: Training batches dropped for a non-finite loss (``nan_policy: skip``), kept across resumes.
        self.skipped_batches = 0
        self._forward_checked = False
        self.architecture_name = architecture
        self.vocabulary: Vocabulary | None = None
        tokens = TokenSpec(vocab_size=vocab_size, line_end_ids=tuple(line_end_ids or ()))
        self.net = build_architecture(architecture, architecture_options, tokens)
        #: Masked (``infill``) networks learn to restore hidden characters; the others the next character.
        self.masked = is_masked_model(self.net)
        self.val_perplexity = TokenPerplexity()
        self.test_perplexity = TokenPerplexity()

    # -- vocabulary: from the data module when training, from the checkpoint when loading --------------------

    def attach_vocabulary(self, vocabulary: Vocabulary) -> None:
        check_vocabulary(vocabulary, self.hparams.vocab_size, self.net.tokens)
        self.vocabulary = vocabulary

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if self.vocabulary is None and datamodule is not None and hasattr(datamodule, "vocabulary"):
            self.attach_vocabulary(datamodule.vocabulary)
        if stage == "fit" and self.init_from is not None:
            # Checked before anything is written; the weights are copied once a resumed run is ruled out.
            self._starting_model = self._check_starting_model(self.init_from)

    def on_fit_start(self) -> None:
        starting, self._starting_model = self._starting_model, None
        # Lightning has restored a resumed run by now: it continues from its own checkpoint instead.
        if starting is not None and self.trainer.ckpt_path is None:
            starting.load_network_weights(self.net)

    def _check_starting_model(self, source: str) -> TrainedModel:
        trained = read_trained_model(source, "model.init_from")
        if self.vocabulary is not None and self.vocabulary != trained.vocabulary:
            raise ConfigError(
                f"model.init_from: the data's vocabulary ({len(self.vocabulary)} characters) is not that of "
                f"{trained.path} ({len(trained.vocabulary)}); set data.vocabulary_from: {source}, so that every "
                "character keeps its id"
            )
        trained.check_fits(self.net, self.architecture_name)
        return trained

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.vocabulary is None:
            raise TangrnnError("cannot save a checkpoint without a vocabulary; train with the data module")
        checkpoint["tangrnn"] = {
            "format": CHECKPOINT_FORMAT,
            "plugin_api": PLUGIN_API_VERSION,
            "architecture": self.architecture_name,
            "vocabulary": list(self.vocabulary.tokens),
            "skipped_batches": self.skipped_batches,
            # Dropout draws from torch's global generator: with it restored, a resumed run draws what the
            # uninterrupted one drew (the data's position is the loader's state, saved by Lightning).
            "random_states": random_states(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        section = checkpoint.get("tangrnn")
        if not isinstance(section, dict) or "vocabulary" not in section:
            raise CheckpointError("this file is not a tangrnn checkpoint (no 'tangrnn' section with a vocabulary)")
        vocabulary = Vocabulary(section["vocabulary"])
        self.attach_vocabulary(vocabulary)
        self.skipped_batches = int(section.get("skipped_batches", 0))
        if "random_states" in section:
            restore_random_states(section["random_states"])
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is not None and hasattr(datamodule, "use_vocabulary"):
            datamodule.use_vocabulary(vocabulary)

    # -- training ----------------------------------------------------------------------------------------

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.net(batch)

    def _summed_loss(self, batch: Batch, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The summed cross-entropy over the positions with a target, and their number.

        Args:
            batch: a batch of poems from the data module.
            seed: for masked (``infill``) networks, a seed that fixes which characters are hidden (validation
                and test use the batch index, so every evaluation hides the same ones); ``None`` draws them from
                the global generator.
        """
        tokens = self.net.tokens
        if self.masked:
            generator = None
            if seed is not None:
                generator = torch.Generator(device=batch.targets.device).manual_seed(seed)
            batch = masked_batch(batch, tokens.mask_id, tokens.pad_id, tokens.eos_id, generator)
        # A network that exposes its output layer is scored chunk by chunk: its full logits are never made.
        layer = opted_in_output_layer(self.net) if self.loss_chunk_size > 0 else None
        if layer is not None:
            features = self.net.features(batch)
            self._check_shape("features(batch)", features, (*batch.targets.shape, layer.in_features))
            summed = chunked_cross_entropy(
                features.reshape(-1, features.shape[-1]),
                layer.weight,
                layer.bias,
                batch.targets.reshape(-1),
                ignore_index=tokens.pad_id,
                chunk_size=self.loss_chunk_size,
            )
            return summed, (batch.targets != tokens.pad_id).sum()
        logits = self.net(batch)
        self._check_shape("forward(batch)", logits, (*batch.targets.shape, tokens.vocab_size))
        summed = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]),
            batch.targets.reshape(-1),
            ignore_index=tokens.pad_id,
            reduction="sum",
        )
        return summed, (batch.targets != tokens.pad_id).sum()

    def _check_shape(self, what: str, output: torch.Tensor, expected: tuple[int, ...]) -> None:
        """Refuses a network output of the wrong shape in one line (a reshape would otherwise train on
        misaligned positions without a word)."""
        if tuple(output.shape) != expected:
            raise TangrnnError(
                f"architecture '{self.architecture_name}': {what} returned shape {tuple(output.shape)}, but the "
                f"plugin API needs (batch, time, {'vocab_size' if what.startswith('forward') else 'features'}) = "
                f"{expected}; fix the plugin (tangrnn_core.testing.check_architecture names the broken rule)"
            )

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor | None:
        if not self._forward_checked:
            # With the chunked loss, training never calls forward(); decoding and evaluation rely on it, so its
            # shape is checked once, on the first batch.
            self._forward_checked = True
            if opted_in_output_layer(self.net) is not None and self.loss_chunk_size > 0 and not self.masked:
                # In eval mode and on a forked random stream: the check must draw no dropout mask, or a run
                # resumed from a checkpoint would draw differently from an uninterrupted one.
                device = batch.inputs.device
                devices = [device.index or 0] if device.type == "cuda" else []
                self.net.eval()
                try:
                    with torch.no_grad(), torch.random.fork_rng(devices=devices):
                        logits = self.net(batch)
                finally:
                    self.net.train()
                self._check_shape("forward(batch)", logits, (*batch.targets.shape, self.net.tokens.vocab_size))
        summed, count = self._summed_loss(batch)
        loss = summed / count
        if not torch.isfinite(loss):
            if self.nan_policy == "stop":
                raise TangrnnError(
                    f"the training loss became {loss.item()} at step {self.global_step}; lower the learning rate "
                    "(model.optimizer.init_args.lr), set trainer.gradient_clip_val, or set model.nan_policy: skip "
                    "to drop such batches"
                )
            # Returning None makes Lightning skip backward and the weight update for this batch.
            self.skipped_batches += 1
            self.log("train/skipped", float(self.skipped_batches), batch_size=batch.size)
            return None
        self.log("train/skipped", float(self.skipped_batches), batch_size=batch.size)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch.size)
        self.log("train/chars", count.float(), reduce_fx="sum", batch_size=batch.size)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        summed, count = self._summed_loss(batch, seed=batch_idx)
        self.val_perplexity.update(summed, count)
        self.log("val/ppl", self.val_perplexity, prog_bar=True, batch_size=batch.size)
        self.log("val/loss", summed / count, batch_size=batch.size, sync_dist=True)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        summed, count = self._summed_loss(batch, seed=batch_idx)
        self.test_perplexity.update(summed, count)
        self.log("test/ppl", self.test_perplexity, batch_size=batch.size)
        self.log("test/loss", summed / count, batch_size=batch.size, sync_dist=True)

    def predict_step(self, batch: torch.Tensor, batch_idx: int) -> list[str]:
        if self.vocabulary is None:
            raise CheckpointError("predict needs a trained model: pass --ckpt_path")
        # The request of `tangrnn predict`'s flags (TangrnnTrainer.predict); the batch says how many poems.
        request = getattr(self.trainer, "poem_request", None) or PoemRequest()
        if request.seed is None:
            # Seeded from the global generator, which `seed_everything` fixes: the same run, the same poems.
            seed = int(torch.randint(0, 2**62, (1,)))
        else:
            seed = request.seed + batch_idx
        return write_poems(self.net, self.vocabulary, replace(request, num_poems=len(batch), seed=seed))

    def configure_optimizers(self):
        # torch checks its options (a negative learning rate, betas out of range) only when built, here.
        try:
            optimizer = self.optimizer_factory(self.parameters())
        except (ValueError, TypeError) as error:
            raise ConfigError(
                f"model.optimizer refused its options ({error}); fix model.optimizer.init_args"
            ) from error
        if self.lr_scheduler_factory is None:
            return optimizer
        try:
            scheduler = self.lr_scheduler_factory(optimizer)
        except (ValueError, TypeError) as error:
            raise ConfigError(
                f"model.lr_scheduler refused its options ({error}); fix model.lr_scheduler.init_args"
            ) from error
        if isinstance(scheduler, WarmupCosine) and scheduler.schedule_by == "time":
            scheduler.follow_time(_time_budget_progress(self.trainer))
        elif isinstance(scheduler, WarmupCosine) and scheduler.total_steps is None:
            estimate = self.trainer.estimated_stepping_batches
            scheduler.total_steps = int(estimate) if math.isfinite(estimate) else None
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
