"""Train / validation / test assignment that depends on nothing but a poem's id.

Each id is hashed with BLAKE2b (``hashlib``; Python's own ``hash()`` is salted per process) into a number in
[0, 1); the lowest ``test_fraction`` of that range is ``test``, the next ``val_fraction`` is ``val``, the rest
``train``. A poem's split therefore never changes when the corpus grows, shrinks or is reordered, and raising
a fraction only moves poems from ``train`` into that split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Literal

from tangrnn_core.errors import ConfigError

Split = Literal["train", "val", "test"]
SPLITS: tuple[str, ...] = ("train", "val", "test")

_SALT = b"tangrnn-split-v1:"
_SCALE = float(1 << 64)


def _unit(poem_id: str) -> float:
    digest = hashlib.blake2b(_SALT + str(poem_id).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Raise :class:`ConfigError` unless each fraction is a number in [0, 0.5] and their sum is below 1."""
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 0.5:
            raise ConfigError(f"{name} must be a number from 0 to 0.5, got {value!r}: set it to e.g. 0.02")
    if val_fraction + test_fraction >= 1.0:  # only 0.5 + 0.5 gets here
        raise ConfigError(
            f"val_fraction + test_fraction must be below 1, got {val_fraction} + {test_fraction}: "
            "lower one of them so that some poems are left for training"
        )


def _assign(unit: float, val_fraction: float, test_fraction: float) -> Split:
    if unit < test_fraction:
        return "test"
    if unit < test_fraction + val_fraction:
        return "val"
    return "train"


def split_of(poem_id: str, val_fraction: float = 0.02, test_fraction: float = 0.02) -> Split:
    """``"train"``, ``"val"`` or ``"test"`` for ``poem_id``, from a stable hash of the id alone."""
    check_fractions(val_fraction, test_fraction)
    return _assign(_unit(poem_id), val_fraction, test_fraction)


def assign_splits(ids: Iterable[str], val_fraction: float = 0.02, test_fraction: float = 0.02) -> list[Split]:
    """:func:`split_of` for each id, in order (the fractions are checked once)."""
    check_fractions(val_fraction, test_fraction)
    return [_assign(_unit(i), val_fraction, test_fraction) for i in ids]
