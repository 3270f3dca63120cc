"""Filling templates with a masked (``infill``) network by iterative mask-predict (Ghazvininejad et al. 2019).

Every blank starts as ``<mask>``; each pass predicts all masked positions at once, then the least confident
predictions are masked again, fewer each pass, so that later passes revise early guesses in the light of the
characters around them. An all-blank template of a form writes a whole poem this way.

Constraints are the same logit processors that left-to-right decoding uses (the template, tones and rhyme,
no-repeat ...): after the network has scored every position in one call, each pass walks the poem left to
right through the processors, so every character is chosen, or kept, only where the processors allow it given
the characters before it. A kept character the processors no longer allow (an earlier choice changed the rhyme
group, say) is chosen again. The final poem therefore satisfies every constraint, as a left-to-right decode does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from tangrnn_core.api import Architecture, Batch
from tangrnn_core.data.vocab import Vocabulary
from tangrnn_core.decoding.decoder import DecodeState, title_context
from tangrnn_core.decoding.processors import BanTokens, LogitsProcessor
from tangrnn_core.decoding.sampling import check_sampling_options, sample_next
from tangrnn_core.decoding.template import Template, TemplateConstraint
from tangrnn_core.errors import ConfigError

_NEG_INF = float("-inf")


@torch.inference_mode()
def mask_predict(
    architecture: Architecture,
    vocabulary: Vocabulary,
    template: Template,
    num_poems: int,
    processors: Sequence[LogitsProcessor] | None = None,
    iterations: int = 10,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    title: list[int] | None = None,
) -> list[str]:
    """Fills ``template`` ``num_poems`` times in one batch and returns the poems.

    Args:
        architecture: a network with the ``infill`` capability.
        vocabulary: the vocabulary it was trained with.
        template: the layout.
        num_poems: how many poems.
        processors: the constraints, applied left to right at every pass; they must include a
            :class:`~tangrnn_core.decoding.template.TemplateConstraint` of ``template`` (``None``: that alone).
            Make new ones for every call: they keep per-row progress.
        iterations: mask-predict passes; the first predicts every blank, the last only the least sure one(s).
        temperature: ``0`` takes the most likely character at each pass; above ``0`` samples, so poems differ.
        top_k: sample among the ``k`` best characters only (``0``: all).
        top_p: sample among the best characters whose probabilities add up to ``top_p``.
        generator: the random source (same seed, same poems).
        title: title ids for ``conditional`` networks.
    """
    check_sampling_options(temperature, top_k, top_p)
    if iterations < 1:
        raise ConfigError(f"iterations must be at least 1, got {iterations}")
    if num_poems < 1:
        raise ConfigError(f"num_poems must be at least 1, got {num_poems}")
    if processors is None:
        processors = [TemplateConstraint(vocabulary, template)]
    was_training = architecture.training
    architecture.eval()
    try:
        search = _MaskPredict(architecture, vocabulary, template, num_poems, processors, generator, title)
        return search.run(iterations, temperature, top_k, top_p)
    finally:
        architecture.train(was_training)


class _MaskPredict:
    def __init__(self, net, vocabulary, template, rows, processors, generator, title) -> None:
        self.net = net
        self.vocabulary = vocabulary
        self.generator = generator
        self.device = next(net.parameters()).device
        banned = [vocabulary.pad_id, vocabulary.unk_id, vocabulary.bos_id, vocabulary.eos_id, vocabulary.mask_id]
        self.processors = [BanTokens(banned), *processors]
        fixed = template.ids(vocabulary).to(self.device)
        self.blank = (fixed < 0).expand(rows, -1)
        self.tokens = fixed.clamp(min=0).expand(rows, -1).clone()
        self.tokens[self.blank] = vocabulary.mask_id
        self.context = title_context(net, vocabulary, title, rows, self.device)

    def _scores(self) -> Tensor:
        """The network's ``(rows, length, vocab)`` scores of every position, given the current tokens."""
        rows, length = self.tokens.shape
        batch = Batch(
            inputs=self.tokens,
            targets=torch.full_like(self.tokens, self.vocabulary.pad_id),
            lengths=torch.full((rows,), length, dtype=torch.long, device=self.device),
            context=None if self.context is None else self.context.context,
            context_lengths=None if self.context is None else self.context.context_lengths,
        )
        return self.net(batch).float()

    def _pass(self, masked: Tensor, temperature: float, top_k: int, top_p: float) -> Tensor:
        """Chooses the ``masked`` positions (and kept ones the processors refuse), left to right through the
        processors; returns each position's probability under the processed scores."""
        scores = self._scores()
        rows, length = self.tokens.shape
        state = DecodeState(
            generated=torch.empty((rows, 0), dtype=torch.long, device=self.device),
            finished=torch.zeros(rows, dtype=torch.bool, device=self.device),
            vocabulary=self.vocabulary,
        )
        confidence = torch.empty((rows, length), device=self.device)
        for position in range(length):
            logits = scores[:, position].clone()
            for processor in self.processors:
                logits = processor(state, logits)
            current = self.tokens[:, position]
            refused = logits.gather(1, current[:, None]).squeeze(1) == _NEG_INF
            again = masked[:, position] | refused
            chosen = torch.where(again, sample_next(logits, temperature, top_k, top_p, self.generator), current)
            probabilities = torch.softmax(logits, dim=-1)
            confidence[:, position] = probabilities.gather(1, chosen[:, None]).squeeze(1)
            self.tokens[:, position] = chosen
            state.generated = torch.cat([state.generated, chosen[:, None]], dim=1)
        return confidence

    def run(self, iterations: int, temperature: float, top_k: int, top_p: float) -> list[str]:
        blanks = int(self.blank[0].sum())
        masked = self.blank.clone()
        for iteration in range(iterations):
            confidence = self._pass(masked, temperature, top_k, top_p)
            # Linear decay of the number re-masked, as in the paper: n * (T - t) / T after pass t.
            again = blanks * (iterations - 1 - iteration) // iterations
            if again == 0:
                break
            ranked = confidence.masked_fill(~self.blank, float("inf"))
            lowest = torch.topk(ranked, again, dim=1, largest=False).indices
            masked = torch.zeros_like(masked).scatter_(1, lowest, True)
            self.tokens = self.tokens.masked_fill(masked, self.vocabulary.mask_id)
        return [self.vocabulary.decode(row.tolist()) for row in self.tokens]
