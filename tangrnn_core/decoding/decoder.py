"""The batched decoder: many poems at once, one character per step, for any architecture."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from tangrnn_core.api import CAUSAL, Architecture
from tangrnn_core.data.vocab import Vocabulary
from tangrnn_core.decoding.processors import BanTokens, LogitsProcessor
from tangrnn_core.decoding.sampling import sample_next
from tangrnn_core.errors import ConfigError


@dataclass
class DecodeState:
    """What processors may look at: the ids generated so far and which poems are finished.

    Args:
        generated: ``(batch, steps)`` ids emitted so far (``<pad>`` after a poem's ``<eos>``).
        finished: ``(batch,)`` whether each poem has emitted ``<eos>``.
        vocabulary: the checkpoint's vocabulary.
    """

    generated: Tensor
    finished: Tensor
    vocabulary: Vocabulary

    @property
    def step(self) -> int:
        return self.generated.shape[1]


@torch.inference_mode()
def generate(
    architecture: Architecture,
    vocabulary: Vocabulary,
    num_poems: int,
    max_length: int = 128,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    processors: Sequence[LogitsProcessor] = (),
    generator: torch.Generator | None = None,
) -> list[str]:
    """Writes ``num_poems`` poems together in one batch and returns their texts.

    Args:
        architecture: a network with the ``causal`` capability.
        vocabulary: the vocabulary it was trained with.
        num_poems: how many poems to write.
        max_length: stop a poem after this many characters (punctuation included).
        temperature: see :func:`~tangrnn_core.decoding.sampling.sample_next`.
        top_k: see :func:`~tangrnn_core.decoding.sampling.sample_next`.
        top_p: see :func:`~tangrnn_core.decoding.sampling.sample_next`.
        processors: constraints applied in order at every step, after the ban on special tokens.
        generator: the random source (same seed, same poems).
    """
    if CAUSAL not in architecture.capabilities:
        raise ConfigError(f"{type(architecture).__name__} cannot generate left to right (no '{CAUSAL}' capability)")
    if temperature < 0:
        raise ConfigError(f"temperature must be 0 or more, got {temperature}")
    if not 0 < top_p <= 1:
        raise ConfigError(f"top_p must be in (0, 1], got {top_p}")
    was_training = architecture.training
    architecture.eval()
    try:
        device = next(architecture.parameters()).device
        processors = [BanTokens([vocabulary.pad_id, vocabulary.unk_id, vocabulary.bos_id]), *processors]
        tokens = torch.full((num_poems,), vocabulary.bos_id, dtype=torch.long, device=device)
        state = architecture.initial_state(num_poems)
        decode = DecodeState(
            generated=torch.empty((num_poems, 0), dtype=torch.long, device=device),
            finished=torch.zeros(num_poems, dtype=torch.bool, device=device),
            vocabulary=vocabulary,
        )
        for _ in range(max_length):
            logits, state = architecture.step(tokens, state)
            logits = logits.float()
            for processor in processors:
                logits = processor(decode, logits)
            tokens = sample_next(logits, temperature, top_k, top_p, generator)
            tokens = tokens.masked_fill(decode.finished, vocabulary.pad_id)
            decode.generated = torch.cat([decode.generated, tokens[:, None]], dim=1)
            decode.finished |= tokens == vocabulary.eos_id
            if bool(decode.finished.all()):
                break
        return [vocabulary.decode(row.tolist()) for row in decode.generated]
    finally:
        architecture.train(was_training)
