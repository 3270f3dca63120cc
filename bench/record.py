"""A benchmark's record: runs kept as JSON in the repository, one entry per run, so that a study longer than one
machine is kept can grow over several sessions and print its tables from what was measured, never from memory.

Minutes of training are comparable only between runs on the same kind of machine in the same precision, so every
entry names its machine (``machine.cpu()``) and the report keeps each kind in a table of its own."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


def stamp(started: float) -> dict[str, object]:
    """What every entry says about where and when it ran.

    Args:
        started: when the run started, seconds since the epoch.
    """
    import torch
    from machine import cpu

    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "machine": cpu(),
        "cores": os.cpu_count() or 1,
        "torch": torch.__version__,
    }


def append(path: Path, entry: dict[str, object]) -> None:
    """Adds one finished run to the record at ``path``, written whole again so a reader never sees half of it."""
    entries = read(path) if path.exists() else []
    entries.append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(entries, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    partial.replace(path)


def read(path: Path) -> list[dict]:
    """The record's entries, oldest first."""
    return json.loads(path.read_text(encoding="utf-8"))


def grouped(entries: list[dict], *keys: str) -> dict[tuple, list[dict]]:
    """Entries by the values of ``keys`` (lists joined into one string), in the record's order."""
    groups: dict[tuple, list[dict]] = {}
    for entry in entries:
        key = tuple(" ".join(map(str, entry[k])) if isinstance(entry[k], list) else entry[k] for k in keys)
        groups.setdefault(key, []).append(entry)
    return groups


def heading(entries: list[dict]) -> str:
    """``AMD EPYC, 2 cores (avx2), 32-true, torch 2.13.0+cpu; runs of DATE to DATE`` for one table's entries."""
    first = entries[0]
    dates = sorted(entry["date"] for entry in entries)
    return f"{first['machine']}, {first['precision']}, torch {first['torch']}; runs of {dates[0]} to {dates[-1]}"
