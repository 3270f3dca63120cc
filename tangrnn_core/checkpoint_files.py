"""Reading a checkpoint file safely: ``weights_only=True``, and one line that says what is wrong with it.

Lightning-free, so that the verbs that only decode (``generate``, ``serve``) check and read ``--ckpt_path`` the
way every verb does without importing Lightning.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from tangrnn_core.errors import CheckpointError, first_sentence, one_line, shorten

__all__ = ["CHECKPOINT_FORMAT", "SPECIAL_CKPT_PATHS", "check_checkpoint", "names_no_file"]

#: Format of the ``tangrnn`` section every checkpoint carries.
CHECKPOINT_FORMAT = 1
#: ``--ckpt_path`` values that name no file (``best`` and ``last`` are resolved by the command line).
SPECIAL_CKPT_PATHS = ("best", "last", "hpc")


def names_no_file(ckpt_path: str | Path) -> bool:
    """Whether ``--ckpt_path`` is one of Lightning's special values (``last``, ``best``, ``hpc``,
    ``registry:...``) or a remote URL, which the run or Lightning resolves, rather than a local file."""
    text = str(ckpt_path)
    return text in SPECIAL_CKPT_PATHS or text.startswith("registry") or "://" in text


def check_checkpoint(ckpt_path: str | Path) -> dict[str, Any] | None:
    """Refuses, with a one-line :class:`CheckpointError`, a ``--ckpt_path`` that is no usable tangrnn checkpoint;
    returns the checkpoint it read (``None`` for the special values left to Lightning), so that a caller that
    needs it does not read it again.

    Runs before Lightning reads the file, so that a missing, truncated or foreign file is reported as such
    rather than as Lightning's ``KeyError`` or torch's zip-reader error. Lightning's special values (``last``,
    ``best``, ``hpc``, ``registry:...``) and remote URLs are left to Lightning.
    """
    if names_no_file(ckpt_path):
        return None
    path = Path(ckpt_path)
    fix = "pass a .ckpt file written by `tangrnn fit` (under <default_root_dir>/lightning_logs/version_N/checkpoints/)"
    if not path.exists():
        raise CheckpointError(f"checkpoint file {path} does not exist; check --ckpt_path, or {fix}")
    if path.is_dir():
        raise CheckpointError(f"checkpoint path {path} is a folder, not a file; {fix}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError as error:  # an intact file this user may not read is no damaged one
        raise CheckpointError(
            f"cannot read checkpoint {path}: permission denied; check the file's permissions or run as its owner"
        ) from error
    except Exception as error:  # torch.load fails in many ways on a damaged or foreign file
        # torch names the refused global two ways: "Unsupported global: GLOBAL x" and, for a blocked module,
        # "unsupported GLOBAL posix.system whose module posix is blocked"
        unsafe = re.search(r"unsupported (?:global: )?GLOBAL ([\w.]+)", str(error), re.IGNORECASE)
        if isinstance(error, pickle.UnpicklingError) and unsafe:
            # weights_only refuses pickled code: whatever this is, tangrnn did not write it.
            raise CheckpointError(
                f"{path} is not a tangrnn checkpoint: it holds pickled Python objects ({unsafe.group(1)}), "
                f"which are never loaded, for safety; {fix}"
            ) from error
        detail = re.search(r"WeightsUnpickler error: ([^\n]+)", str(error))
        reason = type(error).__name__
        if str(error).strip():
            reason += f": {shorten(one_line(detail.group(1)) if detail else first_sentence(error), 160)}"
        raise CheckpointError(
            f"cannot read checkpoint {path}: the file is truncated, corrupt or no checkpoint at all ({reason}); "
            f"use an intact copy or another checkpoint of the run, or {fix}"
        ) from error
    section = checkpoint.get("tangrnn") if isinstance(checkpoint, dict) else None
    if not isinstance(section, dict) or "vocabulary" not in section:
        raise CheckpointError(f"{path} is not a tangrnn checkpoint (it has no 'tangrnn' section); {fix}")
    if not isinstance(checkpoint.get("state_dict"), dict) or "pytorch-lightning_version" not in checkpoint:
        raise CheckpointError(f"{path} is an incomplete checkpoint (no weights or no Lightning version); {fix}")
    version = section.get("format")
    if not isinstance(version, int) or version > CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is a tangrnn checkpoint of format {version}, but this tangrnn reads format "
            f"{CHECKPOINT_FORMAT} and older; upgrade tangrnn"
        )
    return checkpoint
