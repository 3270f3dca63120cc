"""Run folders: each run claims its own ``version_N`` atomically, and ``--ckpt_path last`` finds its lineage.

Lightning's loggers pick ``version_N`` by listing the folder and taking one more than the largest, at the first
log; runs started together into one ``default_root_dir`` list the same folder and share a version (and one of
their ``config.yaml`` files is lost). Creating the folder is atomic, so a run that creates ``version_N`` owns it,
and one that finds it taken tries the next.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["claim_version", "newest_last_checkpoint"]


def claim_version(logger: Any) -> int | None:
    """Creates the next free ``version_N`` folder of ``logger`` and pins the logger to it.

    Args:
        logger: a Lightning logger; loggers whose version is already set, or that keep no local folder of
            versions, are left alone.

    Returns:
        The version claimed, or ``None`` where nothing was claimed.
    """
    if getattr(logger, "_version", "") is not None or not hasattr(logger, "_get_next_version"):
        return None
    root = str(getattr(logger, "root_dir", "") or "")
    if not root or "://" in root:  # remote file systems have no atomic mkdir to rely on
        return None
    Path(root).mkdir(parents=True, exist_ok=True)
    version = logger._get_next_version()
    while True:
        try:
            (Path(root) / f"version_{version}").mkdir()
        except FileExistsError:  # another run took it between the listing and now
            version += 1
            continue
        logger._version = version
        return version


def newest_last_checkpoint(root: Path, model: dict[str, Any] | None) -> tuple[Path | None, str]:
    """The ``last*.ckpt`` that ``--ckpt_path last`` resumes under ``root``, and why that one.

    Among the runs under ``root`` (``checkpoints/`` and ``*/version_N/checkpoints/``), the newest last checkpoint
    of a run whose saved ``config.yaml`` has this ``model``'s architecture and options (its lineage); where no run
    has them, the newest of all.

    Args:
        root: ``trainer.default_root_dir``.
        model: the model section of the config being run (``architecture`` and ``architecture_options``).
    """
    found = [*root.glob("checkpoints/last*.ckpt"), *root.glob("*/*/checkpoints/last*.ckpt")]
    if not found:
        return None, ""
    found.sort(key=lambda path: path.stat().st_mtime, reverse=True)
    wanted = _network(model)
    if wanted is not None:
        for path in found:
            if _network(_saved_model(path)) == wanted:
                return path, "the newest last checkpoint of a run of this network"
    return found[0], "the newest last checkpoint under the folder (no run of this network's options saved a config)"


def _saved_model(checkpoint: Path) -> dict[str, Any] | None:
    config = checkpoint.parent.parent / "config.yaml"
    try:
        saved = yaml.safe_load(config.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return saved.get("model") if isinstance(saved, dict) else None


def _network(model: Any) -> tuple[str, str] | None:
    if not isinstance(model, dict) or not model.get("architecture"):
        return None
    options = model.get("architecture_options") or {}
    return str(model["architecture"]), yaml.safe_dump(dict(options), sort_keys=True)
