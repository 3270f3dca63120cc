"""Length-bucketed batches: poems of (nearly) equal length share a batch, so padding stays near zero.

Shuffled batches of Tang poems padded to the longest are about half padding; sorting a random permutation by
length and cutting it into batches keeps the randomness (which poems meet, and the batch order) while padding
only where one length runs out and the next begins.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class BucketBatchSampler(Sampler[list[int]]):
    """Yields lists of indices whose sequences have nearly the same length, sharded across processes.

    Every epoch draws a new permutation (seeded by ``seed`` and the epoch), sorts it stably by length, cuts it into
    batches and shuffles the batch order. Under several processes each rank takes every ``num_replicas``-th batch,
    so ranks see disjoint poems. For training (``even``) the batch list is padded by repeating its first batches
    (or cut, with ``drop_last``) so that every rank gets the same number of batches and the gradient all-reduce
    stays in step; for evaluation ranks may get one batch fewer, so that every poem is scored exactly once.

    Args:
        lengths: length of each sequence.
        batch_size: sequences per batch.
        shuffle: draw a new order every epoch; otherwise batches follow length order.
        drop_last: drop the last, smaller batch (and the batches that do not divide among the ranks).
        seed: base seed, the same on every rank.
        num_replicas: number of processes that share the data.
        rank: this process's index among them.
        even: give every rank the same number of batches (training); ``False`` for evaluation.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        even: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is outside 0..{num_replicas - 1}")
        self.lengths = torch.as_tensor(lengths, dtype=torch.long)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.even = even
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch, so that each epoch has its own order."""
        self.epoch = epoch

    def _all_batches(self) -> list[list[int]]:
        count = len(self.lengths)
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(count, generator=generator) if self.shuffle else torch.arange(count)
        order = order[torch.sort(self.lengths[order], stable=True).indices]
        batches = list(torch.split(order, self.batch_size))
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator)]
        return [batch.tolist() for batch in batches]

    def _shard_count(self, total: int) -> int:
        if not self.even:  # this rank's batches: rank, rank + num_replicas, ...
            return len(range(self.rank, total, self.num_replicas))
        if self.drop_last:
            return total // self.num_replicas
        return -(-total // self.num_replicas)

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._all_batches()
        if not self.even:
            yield from batches[self.rank :: self.num_replicas]
            return
        per_rank = self._shard_count(len(batches))
        needed = per_rank * self.num_replicas
        if batches and needed > len(batches):
            batches = batches + batches[: needed - len(batches)]
        yield from batches[self.rank : needed : self.num_replicas]

    def __len__(self) -> int:
        count = len(self.lengths)
        full, rest = divmod(count, self.batch_size)
        total = full + (1 if rest and not self.drop_last else 0)
        return self._shard_count(total)

    def padding_fraction(self) -> float:
        """Share of padding positions over one epoch's batches on this rank (a diagnostic for benchmarks)."""
        padded = real = 0
        for batch in self:
            lengths = self.lengths[batch]
            padded += int(lengths.max()) * len(batch)
            real += int(lengths.sum())
        return 1.0 - real / padded if padded else 0.0
