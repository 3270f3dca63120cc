from __future__ import annotations

import torch

from tangrnn_core.decoding.sampling import sample_next


def test_greedy_at_temperature_zero():
    logits = torch.tensor([[0.0, 3.0, 1.0], [5.0, 0.0, 0.0]])
    assert sample_next(logits, temperature=0).tolist() == [1, 0]


def test_forbidden_characters_are_never_drawn():
    logits = torch.zeros(2000, 5)
    logits[:, 2] = float("-inf")
    draws = sample_next(logits, generator=torch.Generator().manual_seed(0))
    assert not (draws == 2).any()
    assert set(draws.tolist()) == {0, 1, 3, 4}


def test_frequencies_follow_the_distribution():
    probs = torch.tensor([0.1, 0.6, 0.3])
    draws = sample_next(probs.log().expand(20000, 3), generator=torch.Generator().manual_seed(1))
    freq = torch.bincount(draws, minlength=3).float() / len(draws)
    assert torch.allclose(freq, probs, atol=0.02)


def test_top_k_and_top_p_keep_only_the_best():
    logits = torch.tensor([[4.0, 3.0, 2.0, 1.0]]).expand(3000, 4)
    generator = torch.Generator().manual_seed(2)
    assert set(sample_next(logits, top_k=2, generator=generator).tolist()) == {0, 1}
    # p(0) is about 0.64: top_p=0.5 keeps it alone, top_p=0.9 keeps the first three
    assert set(sample_next(logits, top_p=0.5, generator=generator).tolist()) == {0}
    assert set(sample_next(logits, top_p=0.9, generator=generator).tolist()) == {0, 1, 2}


def test_same_seed_same_draws():
    logits = torch.randn(50, 30)
    a = sample_next(logits, generator=torch.Generator().manual_seed(7))
    b = sample_next(logits, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
