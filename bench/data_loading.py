"""Data loading: preparing the corpus cold against the on-disk cache, and batches per second with padding.

Two tables, each against a baseline measured in the same process:
1. Building the data module: from the corpus file (read, normalise, convert, classify, split, encode) against
   loading the prepared cache that the first build wrote, medians of a few runs each.
2. One epoch of training batches: tangrnn's length-bucketed batches against shuffled batches padded to their
   longest poem (what a plain ``DataLoader(shuffle=True)`` gives), with the padding share of each.

    python bench/data_loading.py
    python bench/data_loading.py --forms all --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from torch.utils.data import DataLoader

from tangrnn_core.data.datamodule import EncodedPoems, PadCollate, PoetryDataModule

REGULAR = ["五绝", "七绝", "五律", "七律"]


def seconds(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def epoch(loader) -> tuple[float, int, float]:
    """Seconds for one pass, batches, and the share of padding positions."""
    started = time.perf_counter()
    batches = real = padded = 0
    for batch in loader:
        batches += 1
        real += int(batch.lengths.sum())
        padded += batch.inputs.numel()
    return time.perf_counter() - started, batches, 1 - real / padded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--forms", choices=["regular", "all"], default="regular")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=64)
    args = parser.parse_args()
    forms = REGULAR if args.forms == "regular" else None
    torch.manual_seed(0)

    cold, warm = [], []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as cache:
            cold.append(seconds(lambda: PoetryDataModule(forms=forms, cache_dir=cache)))
            warm.append(seconds(lambda: PoetryDataModule(forms=forms, cache_dir=cache)))
    print(f"corpus: bundled, forms: {args.forms}, {args.rounds} rounds (medians)")
    print(f"{'data module':<28} {'seconds':>8}")
    print(f"{'from the corpus file':<28} {statistics.median(cold):>8.2f}")
    print(f"{'from the prepared cache':<28} {statistics.median(warm):>8.2f}")
    print(f"{'speed-up':<28} {statistics.median(cold) / statistics.median(warm):>7.1f}x")

    data = PoetryDataModule(forms=forms, batch_size=args.batch_size)
    shuffled = DataLoader(
        EncodedPoems(data.split("train")),
        batch_size=args.batch_size,
        shuffle=True,
        collate_fn=PadCollate(data.vocabulary),
    )
    rows = {"bucketed (tangrnn)": [], "shuffled, padded": []}
    for _ in range(args.rounds):
        rows["bucketed (tangrnn)"].append(epoch(data.train_dataloader()))
        rows["shuffled, padded"].append(epoch(shuffled))
    print()
    print(f"one epoch of {len(data.split('train')):,} training poems, batch {args.batch_size}")
    print(f"{'batches':<20} {'batches/s':>10} {'padding':>8}")
    for name, results in rows.items():
        rate = statistics.median(count / spent for spent, count, _ in results)
        print(f"{name:<20} {rate:>10,.0f} {results[0][2]:>8.1%}")
    print("(padded positions are computed by the network for nothing: a 50% share halves training speed)")


if __name__ == "__main__":
    main()
