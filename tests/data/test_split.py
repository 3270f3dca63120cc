import math
import random
from collections import Counter

import pytest

from tangrnn_core.data.split import assign_splits, split_of
from tangrnn_core.errors import ConfigError

IDS = [f"poem-{i:05d}" for i in range(10_000)]


def test_pinned_assignments_never_change():
    # Real corpus ids; if these move, every trained model's held-out set moves with them.
    assert split_of("3ad6d468-7ff1-4a7b-8b24-a27d70d00ed4", 0.25, 0.25) == "train"
    assert split_of("13e72581-968b-457f-b381-a3b7d95b8b7c", 0.25, 0.25) == "test"
    assert split_of("786e30bf-b8a8-4067-a51c-1a5b522ed71d", 0.25, 0.25) == "val"


def test_independent_of_order_and_of_other_ids():
    shuffled = IDS[:]
    random.Random(0).shuffle(shuffled)
    by_id = dict(zip(IDS, assign_splits(IDS, 0.1, 0.1)))
    assert dict(zip(shuffled, assign_splits(shuffled, 0.1, 0.1))) == by_id
    grown = shuffled + [f"new-{i}" for i in range(500)]
    assert all(split_of(i, 0.1, 0.1) == by_id[i] for i in grown[:10_000])


def test_rough_fractions():
    counts = Counter(assign_splits(IDS))  # defaults: 2% val, 2% test
    assert 140 <= counts["val"] <= 260
    assert 140 <= counts["test"] <= 260
    counts = Counter(assign_splits(IDS, 0.1, 0.3))
    assert 850 <= counts["val"] <= 1150
    assert 2800 <= counts["test"] <= 3200


def test_zero_fractions_and_growing_a_fraction_only_takes_from_train():
    assert set(assign_splits(IDS[:1000], 0.0, 0.0)) == {"train"}
    small = assign_splits(IDS, 0.02, 0.02)
    large = assign_splits(IDS, 0.05, 0.02)
    for a, b in zip(small, large):
        assert a == b or (a == "train" and b == "val")


@pytest.mark.parametrize(
    "val,test",
    [(-0.01, 0.02), (0.02, 0.51), (0.6, 0.0), (math.nan, 0.02), ("0.1", 0.02), (True, 0.0), (0.5, 0.5)],
)
def test_bad_fractions(val, test):
    with pytest.raises(ConfigError) as info:
        split_of("x", val, test)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError):
        assign_splits(["x"], val, test)
