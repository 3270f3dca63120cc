"""Checkpoints written atomically: a kill at any moment leaves either the old file or the new one, never half of one.

Lightning 2.6's :class:`~lightning.fabric.plugins.io.torch_io.TorchCheckpointIO` serialises to memory and writes
through an fsspec transaction, which for a local path writes a temporary file in the *system* temporary folder
and ``shutil.move``\\ s it onto the target: a copy (not a rename) whenever that folder is on another file system,
and never ``fsync``\\ ed, so a kill or a power cut during the copy can leave a truncated ``last.ckpt``.
:class:`AtomicCheckpointIO` writes a temporary file next to the target, ``fsync``\\ s it, renames it over the
target with :func:`os.replace` (atomic on POSIX and Windows within one file system) and ``fsync``\\ s the folder
so that the rename itself survives a crash.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.types import _PATH

from tangrnn_core.errors import CheckpointError

#: Temporary files are hidden and end in this suffix (``.last.ckpt.<random>.tmp``): no ``*.ckpt`` glob sees them.
TEMP_SUFFIX = ".tmp"


class AtomicCheckpointIO(TorchCheckpointIO):
    """:class:`TorchCheckpointIO` whose local saves are atomic and durable (remote URLs are left to Lightning)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        if "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        if storage_options is not None:
            raise TypeError(
                f"`Trainer.save_checkpoint(..., storage_options=...)` is not supported by {type(self).__name__}"
            )
        atomic_save(checkpoint, path)


def atomic_save(obj: Any, path: _PATH) -> None:
    """``torch.save(obj, path)``, but atomic: on any failure (or a kill) ``path`` keeps its previous content."""
    target = Path(path)
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=folder)
    try:
        with os.fdopen(descriptor, "wb") as file:
            torch.save(obj, file)
            file.flush()
            os.fsync(file.fileno())
        # mkstemp makes the file private (0600); give it the permissions a plain open() would have.
        os.chmod(temp_name, 0o666 & ~_umask())
        os.replace(temp_name, target)
    except BaseException as error:
        full = _disk_full(error, folder)  # judged before the partial file is removed and its space freed
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        if full is not None:
            raise CheckpointError(
                f"cannot write checkpoint {target}: no space left on the disk of {folder} ({full / 2**20:.1f} MiB "
                "free); free some space or set trainer.default_root_dir to a disk with room (the previous "
                f"{target.name}, if any, is kept)"
            ) from error
        raise
    _fsync_folder(folder)


#: Below this, a failed write is put down to a full disk (torch's zip writer reports it only as a RuntimeError).
FULL_DISK_BYTES = 16 * 2**20


def _disk_full(error: BaseException, folder: Path) -> int | None:
    """The free bytes of ``folder``'s disk when ``error`` is a write that ran out of space, else ``None``."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return _free_bytes(folder) or 0
    if isinstance(error, (OSError, RuntimeError)):
        free = _free_bytes(folder)
        if free is not None and free < FULL_DISK_BYTES:
            return free
    return None


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    """Makes a rename in ``folder`` durable; a no-op where folders cannot be opened (Windows)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        descriptor = os.open(folder, flags)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
