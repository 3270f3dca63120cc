"""Choosing the next character from processed logits: greedy, temperature, top-k and top-p sampling."""

from __future__ import annotations

import torch
from torch import Tensor

from tangrnn_core.errors import ConfigError


def check_sampling_options(temperature: float, top_k: int, top_p: float) -> None:
    """Refuses sampling options out of range, in the words of the command's flags.

    Raises:
        ConfigError: a negative temperature or top_k, or top_p outside ``(0, 1]``.
    """
    if not temperature >= 0:  # also refuses NaN
        raise ConfigError(f"temperature must be 0 or more, got {temperature}")
    if not 0 < top_p <= 1:
        raise ConfigError(f"top_p must be in (0, 1], got {top_p}; 1 samples from every character")
    if top_k < 0:
        raise ConfigError(f"top_k must be 0 (off) or more, got {top_k}")


def sample_next(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    uniforms: Tensor | None = None,
) -> Tensor:
    """One id per row of ``(batch, vocab)`` logits.

    Uses the inverse-CDF (``cumsum`` + ``searchsorted``) rather than ``torch.multinomial``, which is several
    times slower for a large vocabulary on CPU.

    Args:
        logits: scores, ``-inf`` where a character is forbidden.
        temperature: ``0`` picks the best character; higher values flatten the distribution.
        top_k: keep only the ``k`` best characters (``0``: all).
        top_p: keep the smallest set of best characters whose probability reaches ``top_p`` (``1``: all).
        generator: the random source, for reproducible samples.
        uniforms: ``(batch, 1)`` draws in ``[0, 1)`` to sample with instead of drawing from ``generator`` (the
            decoder draws one per poem of the whole call, so that leaving out finished poems moves no draw).
    """
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float()
    if temperature != 1.0:  # a full pass over (batch, vocab) saved in the common case
        logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
        # keep a character while the mass before it is below top_p, so the best one always stays
        drop = (torch.cumsum(sorted_probs, dim=-1) - sorted_probs) >= top_p
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
    cdf = torch.cumsum(probs, dim=-1)
    if uniforms is None:
        uniforms = torch.rand(cdf.shape[0], 1, generator=generator, device=cdf.device)
    draws = uniforms * cdf[:, -1:]
    return torch.searchsorted(cdf, draws, right=True).squeeze(1).clamp_(max=cdf.shape[-1] - 1)
