from __future__ import annotations

import random

import pytest

from tangrnn_core.data.sampler import BucketBatchSampler


def lengths(n=1000, seed=0):
    rng = random.Random(seed)
    return [rng.choice([25, 33, 49, 65]) + rng.randint(0, 3) for _ in range(n)]


def test_every_index_once_per_epoch_and_low_padding():
    sizes = lengths()
    sampler = BucketBatchSampler(sizes, batch_size=32)
    seen = [i for batch in sampler for i in batch]
    assert sorted(seen) == list(range(len(sizes)))
    assert len(list(sampler)) == len(sampler)
    assert sampler.padding_fraction() < 0.05


def test_epochs_differ_but_are_reproducible():
    sizes = lengths()
    first = BucketBatchSampler(sizes, 32, seed=1)
    again = BucketBatchSampler(sizes, 32, seed=1)
    assert list(first) == list(again)
    epoch0 = list(first)
    first.set_epoch(1)
    assert list(first) != epoch0


def test_without_shuffle_batches_follow_length():
    sizes = lengths(100)
    batches = list(BucketBatchSampler(sizes, 10, shuffle=False))
    maxima = [max(sizes[i] for i in batch) for batch in batches]
    assert maxima == sorted(maxima)


@pytest.mark.parametrize("drop_last", [False, True])
def test_ranks_see_disjoint_poems_and_equal_batch_counts(drop_last):
    sizes = lengths(1003)
    shards = [list(BucketBatchSampler(sizes, 32, seed=3, num_replicas=2, rank=r, drop_last=drop_last)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == len(BucketBatchSampler(sizes, 32, num_replicas=2, drop_last=drop_last))
    flat = [set(i for b in shard for i in b) for shard in shards]
    if drop_last:
        assert not flat[0] & flat[1]
    else:
        # padding repeats the first batches so both ranks step together; everything is covered
        assert flat[0] | flat[1] == set(range(len(sizes)))


@pytest.mark.parametrize("replicas", [2, 3])
def test_evaluation_shards_score_every_poem_exactly_once(replicas):
    sizes = lengths(1003)  # 32 batches of 32: they do not divide among 3 ranks
    shards = [
        list(BucketBatchSampler(sizes, 32, shuffle=False, num_replicas=replicas, rank=r, even=False))
        for r in range(replicas)
    ]
    for rank, shard in enumerate(shards):
        assert len(shard) == len(
            BucketBatchSampler(sizes, 32, shuffle=False, num_replicas=replicas, rank=rank, even=False)
        )
    every = sorted(i for shard in shards for batch in shard for i in batch)
    assert every == list(range(len(sizes)))


def test_bad_arguments():
    with pytest.raises(ValueError):
        BucketBatchSampler([3, 4], batch_size=0)
    with pytest.raises(ValueError):
        BucketBatchSampler([3, 4], batch_size=1, num_replicas=2, rank=2)
