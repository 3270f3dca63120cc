"""Filling templates with a masked (``infill``) network by iterative mask-predict (Ghazvininejad et al. 2019).

Every blank starts as ``<mask>``; each pass predicts all masked positions at once, then the least confident
predictions are masked again, fewer each pass, so that later passes revise early guesses in the light of the
characters around them. An all-blank template of a form writes a whole poem this way.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tangrnn_core.api import Architecture, Batch
from tangrnn_core.data.vocab import Vocabulary
from tangrnn_core.decoding.constraints import verse_character_mask
from tangrnn_core.decoding.decoder import title_context
from tangrnn_core.decoding.sampling import sample_next
from tangrnn_core.decoding.template import Template
from tangrnn_core.errors import ConfigError

_NEG_INF = float("-inf")
#: Passes that re-predict characters left repeated by the last mask-predict pass (``no_repeat``).
_REPAIR_PASSES = 4


@torch.inference_mode()
def mask_predict(
    architecture: Architecture,
    vocabulary: Vocabulary,
    template: Template,
    num_poems: int,
    iterations: int = 10,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    no_repeat: bool = False,
    title: list[int] | None = None,
) -> list[str]:
    """Fills ``template`` ``num_poems`` times in one batch and returns the poems.

    Args:
        architecture: a network with the ``infill`` capability.
        vocabulary: the vocabulary it was trained with.
        template: the layout; its blanks are filled with verse characters only.
        num_poems: how many poems.
        iterations: mask-predict passes; the first predicts every blank, the last only the least sure one(s).
        temperature: ``0`` takes the most likely character at each pass; above ``0`` samples, so poems differ.
        top_k: sample among the ``k`` best characters only (``0``: all).
        top_p: sample among the best characters whose probabilities add up to ``top_p``.
        generator: the random source (same seed, same poems).
        no_repeat: no verse character twice in a poem (reduplication included, unlike left-to-right decoding).
        title: title ids for ``conditional`` networks.
    """
    if iterations < 1:
        raise ConfigError(f"iterations must be at least 1, got {iterations}")
    if num_poems < 1:
        raise ConfigError(f"num_poems must be at least 1, got {num_poems}")
    was_training = architecture.training
    architecture.eval()
    try:
        return _MaskPredict(architecture, vocabulary, template, num_poems, generator, title).run(
            iterations, temperature, top_k, top_p, no_repeat
        )
    finally:
        architecture.train(was_training)


class _MaskPredict:
    def __init__(self, net, vocabulary, template, rows, generator, title) -> None:
        self.net = net
        self.vocabulary = vocabulary
        self.rows = rows
        self.generator = generator
        self.device = next(net.parameters()).device
        fixed = template.ids(vocabulary).to(self.device)
        self.blank = (fixed < 0).expand(rows, -1)
        self.tokens = fixed.clamp(min=0).expand(rows, -1).clone()
        self.tokens[self.blank] = vocabulary.mask_id
        self.verse = verse_character_mask(vocabulary).to(self.device)
        if not bool(self.verse.any()):
            raise ConfigError("the model's vocabulary has no verse characters; use a model trained on poems")
        self.context = title_context(net, vocabulary, title, rows, self.device)

    def _logits(self, masked: Tensor, no_repeat: bool) -> Tensor:
        """Processed ``(rows, length, vocab)`` scores: verse characters only, and with ``no_repeat`` none that
        the poem holds at an unmasked position."""
        rows, length = self.tokens.shape
        batch = Batch(
            inputs=self.tokens,
            targets=torch.full_like(self.tokens, self.vocabulary.pad_id),
            lengths=torch.full((rows,), length, dtype=torch.long, device=self.device),
            context=None if self.context is None else self.context.context,
            context_lengths=None if self.context is None else self.context.context_lengths,
        )
        logits = self.net(batch).float()
        logits.masked_fill_(~self.verse, _NEG_INF)
        if no_repeat:
            present = torch.zeros((rows, logits.shape[-1]), dtype=torch.bool, device=self.device)
            present.scatter_(1, self.tokens.masked_fill(masked, self.vocabulary.pad_id), True)
            present &= self.verse
            banned = logits.masked_fill(present[:, None, :], _NEG_INF)
            # a position with nothing left keeps its scores rather than dead-ending
            alive = banned.amax(-1, keepdim=True) > _NEG_INF
            logits = torch.where(alive, banned, logits)
        return logits

    def _predict(self, masked: Tensor, temperature: float, top_k: int, top_p: float, no_repeat: bool) -> Tensor:
        """Writes predictions at the ``masked`` positions; returns their probabilities (``(rows, length)``)."""
        logits = self._logits(masked, no_repeat)
        flat = logits.view(-1, logits.shape[-1])
        chosen = sample_next(flat, temperature, top_k, top_p, self.generator).view(self.tokens.shape)
        confidence = torch.softmax(logits, dim=-1).gather(-1, chosen[..., None]).squeeze(-1)
        self.tokens = torch.where(masked, chosen, self.tokens)
        return confidence

    def run(self, iterations: int, temperature: float, top_k: int, top_p: float, no_repeat: bool) -> list[str]:
        blanks = int(self.blank[0].sum())
        masked = self.blank.clone()
        confidence = torch.zeros(self.tokens.shape, device=self.device)
        for iteration in range(iterations):
            fresh = self._predict(masked, temperature, top_k, top_p, no_repeat)
            confidence = torch.where(masked, fresh, confidence)
            # Linear decay of the number re-masked, as in the paper: n * (T - t) / T after pass t.
            again = blanks * (iterations - 1 - iteration) // iterations
            if again == 0:
                break
            ranked = confidence.masked_fill(~self.blank, float("inf"))
            lowest = torch.topk(ranked, again, dim=1, largest=False).indices
            masked = torch.zeros_like(masked).scatter_(1, lowest, True)
            self.tokens = self.tokens.masked_fill(masked, self.vocabulary.mask_id)
        if no_repeat:
            self._repair_repeats(temperature, top_k, top_p)
        return [self.vocabulary.decode(row.tolist()) for row in self.tokens]

    def _repair_repeats(self, temperature: float, top_k: int, top_p: float) -> None:
        """Re-predicts blanks whose character occurs earlier in the poem (simultaneous predictions can agree)."""
        for _ in range(_REPAIR_PASSES):
            verse = self.verse[self.tokens]
            same = (self.tokens[:, :, None] == self.tokens[:, None, :]) & verse[:, :, None] & verse[:, None, :]
            earlier = torch.tril(same, diagonal=-1).any(-1)
            repeated = earlier & self.blank
            if not bool(repeated.any()):
                return
            self.tokens = self.tokens.masked_fill(repeated, self.vocabulary.mask_id)
            self._predict(repeated, temperature, top_k, top_p, no_repeat=True)
