"""What a network is trained to predict, by capability: the next character (``causal``) or hidden characters
(``infill``). The core owns this choice so that every plugin of a kind is trained the same way."""

from __future__ import annotations

import torch

from tangrnn_core.api import CAUSAL, INFILL, Architecture, Batch


def is_masked_model(architecture: Architecture) -> bool:
    """Whether ``architecture`` is trained by masking (``infill`` without ``causal``)."""
    return INFILL in architecture.capabilities and CAUSAL not in architecture.capabilities


def masked_batch(
    batch: Batch, mask_id: int, pad_id: int, eos_id: int, generator: torch.Generator | None = None
) -> Batch:
    """The mask-predict training input of a batch of poems (Ghazvininejad et al. 2019).

    Each poem hides a share of its characters drawn uniformly from (0, 1], at least one, so the network learns
    from a nearly blank poem (the first pass of mask-predict) as well as from a nearly complete one (the last).
    Punctuation is hidden like any character, so the network also learns where lines end.

    Args:
        batch: a causal batch (``targets`` are the poem's characters, then ``<eos>``).
        mask_id: the ``<mask>`` id the hidden characters become.
        pad_id: padding, also the target of every position that is not hidden.
        eos_id: the end mark, which is dropped: a template gives a poem's length.
        generator: the random source (validation passes a seeded one, so every epoch hides the same characters).

    Returns:
        A batch whose ``inputs`` are the poems with ``<mask>`` at the hidden positions, ``targets`` the hidden
        characters there and ``pad_id`` elsewhere, and ``lengths`` the poems' lengths without ``<eos>``.
    """
    poems = batch.targets.masked_fill(batch.targets == eos_id, pad_id)
    real = poems != pad_id
    rows, width = poems.shape
    ratio = 1.0 - torch.rand((rows, 1), generator=generator, device=poems.device)  # in (0, 1]
    hidden = (torch.rand((rows, width), generator=generator, device=poems.device) < ratio) & real
    # One guaranteed hidden character per poem: a random real position.
    lengths = real.sum(1).clamp(min=1)
    pick = (torch.rand(rows, generator=generator, device=poems.device) * lengths).long().clamp(max=width - 1)
    hidden[torch.arange(rows, device=poems.device), pick] |= real[torch.arange(rows, device=poems.device), pick]
    return Batch(
        inputs=poems.masked_fill(hidden, mask_id),
        targets=poems.masked_fill(~hidden, pad_id),
        lengths=real.sum(1),
        context=batch.context,
        context_lengths=batch.context_lengths,
    )
