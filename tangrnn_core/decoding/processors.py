"""Logit processors: constraints that mask the scores of the next character at every decoding step."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

import torch
from torch import Tensor

if TYPE_CHECKING:
    from tangrnn_core.decoding.decoder import DecodeState


class LogitsProcessor(Protocol):
    """Changes ``(batch, vocab)`` logits before sampling; ``-inf`` forbids a character.

    A processor that keeps progress per row (rather than reading it from ``state.generated`` at each call) must
    also define ``reorder(index)``, taking the rows ``index`` names in that order: the decoder calls it when
    beam search selects and repeats rows and when sampling drops the rows of finished poems.
    """

    def __call__(self, state: DecodeState, logits: Tensor) -> Tensor: ...


class BanTokens:
    """Never emits the given ids (``<pad>``, ``<unk>`` and ``<bos>``, in every decoder).

    Args:
        ids: ids that may never be generated.
    """

    def __init__(self, ids: Iterable[int]) -> None:
        self.ids = torch.tensor(sorted(set(ids)), dtype=torch.long)

    def __call__(self, state: DecodeState, logits: Tensor) -> Tensor:
        logits[:, self.ids.to(logits.device)] = float("-inf")
        return logits
