"""The network a server decodes with: a checkpoint (or the bundled model) read once, safely, at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tangrnn_core.api import Architecture
from tangrnn_core.data.vocab import Vocabulary
from tangrnn_core.errors import CheckpointError

__all__ = ["ServedModel", "load_model"]


@dataclass
class ServedModel:
    """A network ready to decode, and what ``GET /v1/model`` says about it.

    Args:
        name: the bundled model's name, or the checkpoint's file name (never its folder: that is the host's).
        architecture: the architecture's registered name (``lstm`` ...).
        options: the architecture's options as the checkpoint records them.
        net: the network, in eval mode, on the CPU.
        vocabulary: the vocabulary it was trained with.
        card: the model card (Markdown) of a bundled model; ``None`` for a checkpoint.
        bundled: whether it is the bundled model.
        weights: the weight format it decodes with (``none``, ``int8``, ``bf16``).
    """

    name: str
    architecture: str
    options: dict[str, Any]
    net: Architecture
    vocabulary: Vocabulary
    card: str | None = None
    bundled: bool = field(default=False)
    weights: str = "none"

    def describe(self) -> dict[str, Any]:
        """The body of ``GET /v1/model``."""
        return {
            "name": self.name,
            "bundled": self.bundled,
            "architecture": self.architecture,
            "architecture_options": self.options,
            "vocabulary_size": len(self.vocabulary),
            "parameters": sum(p.numel() for p in self.net.parameters()),
            "weights": self.weights,
            "card": self.card,
        }


def load_model(ckpt_path: str | Path | None = None, quantize: str = "auto") -> ServedModel:
    """Reads a checkpoint written by ``tangrnn fit`` (or the bundled model) and rebuilds its network.

    The file is checked as every verb checks ``--ckpt_path`` (:func:`~tangrnn_core.checkpoint_files.check_checkpoint`:
    one-line errors, ``weights_only=True``, so no pickled code runs), and the model is rebuilt from its
    hyperparameters as ``tangrnn generate`` rebuilds it, so that the same seed writes the same poems.

    Args:
        ckpt_path: the checkpoint; ``None`` for the bundled model (``tangrnn models``).
        quantize: the weights to decode with, as ``tangrnn generate --quantize`` takes them (``auto`` the same
            pick, so that the same seed writes the same poems as the command).

    Raises:
        CheckpointError: no usable checkpoint (missing, damaged, foreign, or a special value such as ``last``).
    """
    # Imported here: torch and the plugins are needed only once a server starts, not for `--help`.
    from tangrnn_core.checkpoint_files import check_checkpoint
    from tangrnn_core.models import DEFAULT_MODEL, bundled_model
    from tangrnn_core.network import network_from_checkpoint

    card = None
    if ckpt_path is None:
        bundled = bundled_model(DEFAULT_MODEL)
        path, name = bundled.path, bundled.name
        if bundled.card_path.is_file():
            card = bundled.card_path.read_text(encoding="utf-8")
    else:
        path, name = Path(ckpt_path), Path(ckpt_path).name
    checkpoint = check_checkpoint(path)
    if checkpoint is None:  # `last`, `best`, a URL: names Lightning resolves within a run, not a file to serve
        raise CheckpointError(
            f"--ckpt_path {path} names no file; pass the path of a .ckpt file written by `tangrnn fit`"
        )
    trained = network_from_checkpoint(checkpoint, path)
    from tangrnn_core.decoding.quantize import resolve_weights, weights_for_decoding

    weights = resolve_weights(trained.net, quantize)
    return ServedModel(
        name=name,
        architecture=trained.architecture,
        options=trained.options,
        net=weights_for_decoding(trained.net, weights),
        weights=weights,
        vocabulary=trained.vocabulary,
        card=card,
        bundled=ckpt_path is None,
    )
