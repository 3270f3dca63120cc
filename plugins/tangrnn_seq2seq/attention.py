"""Attention scores of decoder states against memory slots: additive (Bahdanau) or multiplicative (Luong).

Both are computed from the decoder's state *after* its recurrent layers (Luong's arrangement, without input
feeding), so that the recurrent layers never wait for an attention result and run as one fused call over the
whole poem in training. ``bahdanau`` therefore means Bahdanau's additive score function,
``v^T tanh(W_q h + W_k m)``, not his arrangement (which attends from ``h_{t-1}`` and feeds the context into the
recurrent input).

Keys are computed once per memory (:meth:`Attention.keys`), not once per query: the title is read once per poem
and each finished line once, while the decoder asks at every character.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

AttentionKind = Literal["bahdanau", "luong"]


class Attention(nn.Module):
    """Scores queries against keys.

    Args:
        kind: ``luong`` (the "general" score ``h^T W m``) or ``bahdanau`` (the additive score
            ``v^T tanh(W_q h + W_k m)``).
        query_size: size of the decoder states that ask.
        memory_size: size of the memory slots that answer.
        attention_size: size of the hidden layer of the additive score (``bahdanau`` only).
    """

    def __init__(self, kind: AttentionKind, query_size: int, memory_size: int, attention_size: int) -> None:
        super().__init__()
        if kind not in ("bahdanau", "luong"):
            raise ValueError(f"attention must be 'bahdanau' or 'luong', got {kind!r}")
        self.kind = kind
        if kind == "luong":
            # W m is precomputed as the key, so that a score is one dot product with the query.
            self.key = nn.Linear(memory_size, query_size, bias=False)
        else:
            self.key = nn.Linear(memory_size, attention_size, bias=False)
            self.query = nn.Linear(query_size, attention_size)
            self.score = nn.Linear(attention_size, 1, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        """Keys of memory slots ``(..., memory_size)``."""
        return self.key(memory)

    def forward(self, queries: Tensor, keys: Tensor) -> Tensor:
        """Scores ``(batch, time, slots)`` of ``queries`` ``(batch, time, query_size)`` against ``keys``.

        ``keys`` is either shared by every position of a row, ``(batch, slots, key_size)``, or given per
        position, ``(batch, time, slots, key_size)``.
        """
        shared = keys.dim() == 3
        if self.kind == "luong":
            if shared:
                return torch.bmm(queries, keys.transpose(1, 2))
            # (B, T, 1, K) @ (B, T, K, S): equal batch dimensions, so nothing is broadcast (copied).
            return torch.matmul(queries.unsqueeze(2), keys.transpose(2, 3)).squeeze(2)
        projected = self.query(queries).unsqueeze(2)
        hidden = projected + (keys.unsqueeze(1) if shared else keys)
        return self.score(torch.tanh(hidden)).squeeze(-1)
