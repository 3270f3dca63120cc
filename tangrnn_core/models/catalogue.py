"""Where the bundled models lie and what their files say about them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from tangrnn_core.errors import CheckpointError

#: The folder of the bundled models, inside the installed package.
MODELS_DIR = Path(__file__).resolve().parent
#: The model used when a verb that needs one is given no ``--ckpt_path``.
DEFAULT_MODEL = "tang-lstm"
#: Suffix of a bundled model's weights (not ``.ckpt``: it is no full training checkpoint and cannot resume).
WEIGHTS_SUFFIX = ".pt"


@dataclass(frozen=True)
class BundledModel:
    """A model shipped in :data:`MODELS_DIR`: ``NAME.pt`` and its card ``NAME.md``.

    Args:
        name: the model's name, the stem of its files.
    """

    name: str

    @property
    def path(self) -> Path:
        return MODELS_DIR / f"{self.name}{WEIGHTS_SUFFIX}"

    @property
    def card_path(self) -> Path:
        return MODELS_DIR / f"{self.name}.md"

    @cached_property
    def card(self) -> dict[str, Any]:
        """The card's figures as stored in the weights file (``tangrnn.card``); empty if it has none."""
        try:
            checkpoint = torch.load(self.path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as error:  # a damaged install: say so in one line
            raise CheckpointError(
                f"the bundled model {self.path} cannot be read ({type(error).__name__}); reinstall tangrnn"
            ) from error
        section = checkpoint.get("tangrnn") if isinstance(checkpoint, dict) else None
        card = section.get("card") if isinstance(section, dict) else None
        return dict(card) if isinstance(card, dict) else {}

    @property
    def data_options(self) -> dict[str, Any]:
        """The data options the model was trained and scored with (the splits and forms its figures use)."""
        return dict(self.card.get("data", {}))


def bundled_models() -> list[BundledModel]:
    """Every model shipped with this installation, by name."""
    return [BundledModel(path.stem) for path in sorted(MODELS_DIR.glob(f"*{WEIGHTS_SUFFIX}"))]


def bundled_model(name: str = DEFAULT_MODEL) -> BundledModel:
    """The bundled model ``name``; a one-line :class:`CheckpointError` listing the others if there is none."""
    model = BundledModel(name)
    if not model.path.is_file():
        names = ", ".join(m.name for m in bundled_models()) or "none"
        raise CheckpointError(
            f"no bundled model named '{name}' in {MODELS_DIR} (bundled: {names}); pass --ckpt_path with a "
            "checkpoint of yours, or reinstall tangrnn"
        )
    return model
