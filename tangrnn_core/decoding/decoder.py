"""The batched decoder: many poems at once, one character per step, for any architecture.

Two searches share one loop over the plugin API's ``step``: sampling (``num_beams=1``) and beam search, where
each poem keeps ``num_beams`` candidates and the batch holds ``num_poems * num_beams`` rows. Constraints are
logit processors; a processor that keeps per-row progress must define ``reorder(index)`` so that its rows move
with the decoder's: beam search selects and repeats rows, and sampling drops the rows of finished poems.

Sampling drops finished poems from the batch once a quarter of its rows are done, so that poems of free length
(which end anywhere from 20 to over 100 characters) do not keep paying for the longest one (twice as many free
poems a second, measured). Each step draws one random number per poem of the call, finished or not, so that
dropping rows moves no random draw: the same seed writes the same poems as a decoder that keeps every row,
unless the network's own arithmetic depends on the batch (int8 weights do: dynamic quantization scales the
activations by the batch's range, so there a poem's scores move slightly with its companions anyway).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from tangrnn_core.api import CAUSAL, CONDITIONAL, Architecture, Batch
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
    num_beams: int = 1,
    prefix: Sequence[int] = (),
    title: Sequence[int] | None = None,
) -> list[str]:
    """Writes ``num_poems`` poems together in one batch and returns their texts.

    Args:
        architecture: a network with the ``causal`` capability.
        vocabulary: the vocabulary it was trained with.
        num_poems: how many poems to write.
        max_length: stop a poem after this many characters (punctuation included).
        temperature: see :func:`~tangrnn_core.decoding.sampling.sample_next`; with beams, ``0`` is plain beam
            search and a positive value samples the beams' extensions (Gumbel top-k), so poems differ.
        top_k: see :func:`~tangrnn_core.decoding.sampling.sample_next` (sampling only).
        top_p: see :func:`~tangrnn_core.decoding.sampling.sample_next` (sampling only).
        processors: constraints applied in order at every step, after the ban on special tokens. Make new ones
            for every call: they may keep per-row progress.
        generator: the random source (same seed, same poems).
        num_beams: candidates kept per poem; ``1`` samples each poem directly.
        prefix: ids read after ``<bos>`` before the first generated character (not part of the output).
        title: ids of the title that ``conditional`` networks write to (``None``: an empty title); other
            networks are given no context.
    """
    if CAUSAL not in architecture.capabilities:
        raise ConfigError(f"{type(architecture).__name__} cannot generate left to right (no '{CAUSAL}' capability)")
    if temperature < 0:
        raise ConfigError(f"temperature must be 0 or more, got {temperature}")
    if not 0 < top_p <= 1:
        raise ConfigError(f"top_p must be in (0, 1], got {top_p}")
    if top_k < 0:
        raise ConfigError(f"top_k must be 0 (off) or more, got {top_k}")
    if num_beams < 1:
        raise ConfigError(f"num_beams must be at least 1, got {num_beams}")
    if num_poems < 1:
        raise ConfigError(f"num_poems must be at least 1, got {num_poems}")
    was_training = architecture.training
    architecture.eval()
    try:
        return _Search(architecture, vocabulary, num_poems, num_beams, processors, generator).run(
            max_length, temperature, top_k, top_p, prefix, title
        )
    finally:
        architecture.train(was_training)


def title_context(
    architecture: Architecture, vocabulary: Vocabulary, title: Sequence[int] | None, rows: int, device: torch.device
) -> Batch | None:
    """The ``context`` argument of ``initial_state``: ``rows`` copies of the title for ``conditional``
    networks (an empty title when there is none), ``None`` for the others."""
    if CONDITIONAL not in architecture.capabilities:
        return None
    ids = torch.tensor(list(title or []), dtype=torch.long, device=device)
    context = torch.full((rows, max(1, len(ids))), vocabulary.pad_id, dtype=torch.long, device=device)
    context[:, : len(ids)] = ids
    empty = torch.empty((rows, 0), dtype=torch.long, device=device)
    return Batch(
        inputs=empty,
        targets=empty,
        lengths=torch.zeros(rows, dtype=torch.long, device=device),
        context=context,
        context_lengths=torch.full((rows,), len(ids), dtype=torch.long, device=device),
    )


class _Search:
    #: Share of the batch's rows that must be finished before sampling drops them (above 1: never).
    drop_finished_share = 0.25

    def __init__(self, architecture, vocabulary, num_poems, num_beams, processors, generator) -> None:
        self.net = architecture
        self.vocabulary = vocabulary
        self.num_poems = num_poems
        self.num_beams = num_beams
        self.rows = num_poems * num_beams
        self.generator = generator
        self.device = next(architecture.parameters()).device
        banned = [vocabulary.pad_id, vocabulary.unk_id, vocabulary.bos_id, vocabulary.mask_id]
        self.processors = [BanTokens(banned), *processors]

    def run(
        self,
        max_length: int,
        temperature: float,
        top_k: int,
        top_p: float,
        prefix: Sequence[int],
        title: Sequence[int] | None,
    ) -> list[str]:
        vocabulary = self.vocabulary
        start = torch.tensor([vocabulary.bos_id, *prefix], dtype=torch.long, device=self.device)
        # Every row starts from the same <bos>, prefix and title: read them once and copy the state to all rows.
        state = self.net.initial_state(1, title_context(self.net, vocabulary, title, 1, self.device))
        logits, state = self.net.prefill(start[None], state)
        if self.rows > 1:
            state = self.net.reorder_state(state, torch.zeros(self.rows, dtype=torch.long, device=self.device))
            logits = logits.expand(self.rows, -1)
        decode = DecodeState(
            generated=torch.empty((self.rows, 0), dtype=torch.long, device=self.device),
            finished=torch.zeros(self.rows, dtype=torch.bool, device=self.device),
            vocabulary=vocabulary,
        )
        # Beam scores: only the first beam of each poem is live at the start, so beams do not duplicate.
        scores = torch.full((self.num_poems, self.num_beams), float("-inf"), device=self.device)
        scores[:, 0] = 0.0
        tokens = start[-1:].expand(self.rows)
        alive = torch.arange(self.rows, device=self.device)  # sampling: the poem each row of the batch writes
        texts: list[str] = [""] * self.rows
        for step in range(max_length):
            if step:
                logits, state = self.net.step(tokens, state)
            logits = logits.float() if step else logits.float().clone()  # processors may write in place
            for processor in self.processors:
                logits = processor(decode, logits)
            if self.num_beams == 1:
                uniforms = None
                if temperature > 0:
                    uniforms = torch.rand(self.rows, 1, generator=self.generator, device=self.device)[alive]
                tokens = sample_next(logits, temperature, top_k, top_p, self.generator, uniforms)
                tokens = tokens.masked_fill(decode.finished, vocabulary.pad_id)
            else:
                tokens, order, scores = self._beam_step(logits, decode.finished, scores, temperature)
                state = self.net.reorder_state(state, order)
                decode.generated = decode.generated.index_select(0, order)
                decode.finished = decode.finished.index_select(0, order)
                for processor in self.processors:
                    if hasattr(processor, "reorder"):
                        processor.reorder(order)
            decode.generated = torch.cat([decode.generated, tokens[:, None]], dim=1)
            decode.finished |= tokens == vocabulary.eos_id
            done = int(decode.finished.sum())
            if done == decode.finished.shape[0]:
                break
            if self.num_beams == 1 and done >= self.drop_finished_share * decode.finished.shape[0]:
                state, tokens, alive = self._drop_finished(decode, state, tokens, alive, texts)
        if self.num_beams == 1:
            for row, ids in zip(alive.tolist(), decode.generated.tolist()):
                texts[row] = vocabulary.decode(ids)
            return texts
        lengths = (decode.generated != vocabulary.pad_id).sum(1).clamp(min=1).view(self.num_poems, -1)
        # length-normalised, so that beams that stop early are not favoured for their fewer terms
        pick = (scores / lengths).argmax(dim=1)
        rows = torch.arange(self.num_poems, device=self.device) * self.num_beams + pick
        return [vocabulary.decode(row.tolist()) for row in decode.generated.index_select(0, rows)]

    def _drop_finished(
        self, decode: DecodeState, state, tokens: Tensor, alive: Tensor, texts: list[str]
    ) -> tuple[object, Tensor, Tensor]:
        """Writes out the finished poems and takes their rows out of the batch, the state and the processors."""
        finished = decode.finished
        for row, ids in zip(alive[finished].tolist(), decode.generated[finished].tolist()):
            texts[row] = self.vocabulary.decode(ids)
        keep = torch.nonzero(~finished).flatten()
        decode.generated = decode.generated.index_select(0, keep)
        decode.finished = finished.index_select(0, keep)
        for processor in self.processors:
            if hasattr(processor, "reorder"):
                processor.reorder(keep)
        return self.net.reorder_state(state, keep), tokens.index_select(0, keep), alive.index_select(0, keep)

    def _beam_step(
        self, logits: Tensor, finished: Tensor, scores: Tensor, temperature: float
    ) -> tuple[Tensor, Tensor, Tensor]:
        vocab = logits.shape[-1]
        logprobs = torch.log_softmax(logits, dim=-1)
        # A finished beam carries its score on unchanged, extended only by padding.
        logprobs[finished] = float("-inf")
        logprobs[finished, self.vocabulary.pad_id] = 0.0
        candidates = (scores.view(-1, 1) + logprobs).view(self.num_poems, self.num_beams * vocab)
        ranking = candidates
        if temperature > 0:
            uniform = torch.rand(candidates.shape, generator=self.generator, device=candidates.device)
            gumbel = -torch.log(-torch.log(uniform.clamp(1e-20, 1.0)))
            ranking = candidates / temperature + gumbel
        chosen = torch.topk(ranking, self.num_beams, dim=1).indices
        new_scores = candidates.gather(1, chosen)
        beam = chosen // vocab
        tokens = (chosen % vocab).view(-1)
        order = (torch.arange(self.num_poems, device=logits.device)[:, None] * self.num_beams + beam).view(-1)
        return tokens, order, new_scores
