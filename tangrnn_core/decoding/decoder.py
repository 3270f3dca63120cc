"""The batched decoder: many poems at once, one character per step, for any architecture.

Two search strategies share one step loop over the plugin API's ``step``: :class:`Sampling` (``num_beams=1``)
and :class:`BeamSearch`, where each poem keeps ``num_beams`` candidates and the batch holds
``num_poems * num_beams`` rows. Constraints are logit processors; whenever a strategy moves rows (beam search
selects and repeats them, sampling drops finished poems) the loop moves the network's state, the decode state
and every processor's rows (:meth:`~tangrnn_core.decoding.processors.LogitsProcessor.reorder`) with them.

Sampling drops finished poems from the batch once a quarter of its rows are done, so that poems of free length
(which end anywhere from 20 to over 100 characters) do not keep paying for the longest one (bench/free_generation.py
measures the gain). Each step draws one random number per poem of the call, finished or not, so that
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
from tangrnn_core.decoding.sampling import check_sampling_options, sample_next
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

    def select(self, index: Tensor) -> None:
        """Keeps the rows ``index`` names, in that order."""
        self.generated = self.generated.index_select(0, index)
        self.finished = self.finished.index_select(0, index)


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
        processors: constraints applied in order at every step, after the ban on special tokens: instances of
            :class:`~tangrnn_core.decoding.processors.LogitsProcessor`, or plain functions ``(state, logits)
            -> logits`` that keep no per-row state. Make new ones for every call: they may keep per-row progress.
        generator: the random source (same seed, same poems).
        num_beams: candidates kept per poem; ``1`` samples each poem directly.
        prefix: ids read after ``<bos>`` before the first generated character (not part of the output).
        title: ids of the title that ``conditional`` networks write to (``None``: an empty title); other
            networks are given no context.
    """
    if CAUSAL not in architecture.capabilities:
        raise ConfigError(f"{type(architecture).__name__} cannot generate left to right (no '{CAUSAL}' capability)")
    check_sampling_options(temperature, top_k, top_p)
    if num_beams < 1:
        raise ConfigError(f"num_beams must be at least 1, got {num_beams}")
    if num_poems < 1:
        raise ConfigError(f"num_poems must be at least 1, got {num_poems}")
    was_training = architecture.training
    architecture.eval()
    try:
        device = next(architecture.parameters()).device
        if num_beams == 1:
            search: Search = Sampling(vocabulary, num_poems, temperature, top_k, top_p, generator, device)
        else:
            search = BeamSearch(vocabulary, num_poems, num_beams, temperature, generator, device)
        return _decode(architecture, vocabulary, search, processors, max_length, prefix, title)
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


class Search:
    """A search strategy: how the step loop turns processed logits into the next characters.

    Args:
        vocabulary: the model's vocabulary.
        rows: rows of the batch the loop decodes.
    """

    def __init__(self, vocabulary: Vocabulary, rows: int) -> None:
        self.vocabulary = vocabulary
        self.rows = rows

    def choose(self, logits: Tensor, decode: DecodeState) -> tuple[Tensor, Tensor | None]:
        """The next id of every row, and the rows to continue from (``None``: each row its own) before they
        are appended."""
        raise NotImplementedError

    def shrink(self, decode: DecodeState) -> Tensor | None:
        """After a step: the rows to keep decoding (``None``: all of them)."""
        return None

    def texts(self, decode: DecodeState) -> list[str]:
        """The poems, once the loop ends."""
        raise NotImplementedError


class Sampling(Search):
    """One row a poem, each character drawn from the processed distribution (greedy at temperature 0).

    Finished poems leave the batch once a quarter of its rows are done. Each step draws one random number per
    poem of the call, finished or not, so that dropping rows moves no random draw.
    """

    #: Share of the batch's rows that must be finished before they are dropped (above 1: never).
    drop_finished_share = 0.25

    def __init__(self, vocabulary, num_poems, temperature, top_k, top_p, generator, device) -> None:
        super().__init__(vocabulary, num_poems)
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p
        self.generator = generator
        self.device = device
        self.alive = torch.arange(num_poems, device=device)  # the poem each row of the batch writes
        self.written: list[str] = [""] * num_poems

    def choose(self, logits: Tensor, decode: DecodeState) -> tuple[Tensor, Tensor | None]:
        uniforms = None
        if self.temperature > 0:
            uniforms = torch.rand(self.rows, 1, generator=self.generator, device=self.device)[self.alive]
        tokens = sample_next(logits, self.temperature, self.top_k, self.top_p, self.generator, uniforms)
        return tokens.masked_fill(decode.finished, self.vocabulary.pad_id), None

    def shrink(self, decode: DecodeState) -> Tensor | None:
        finished = decode.finished
        if int(finished.sum()) < self.drop_finished_share * finished.shape[0]:
            return None
        for row, ids in zip(self.alive[finished].tolist(), decode.generated[finished].tolist()):
            self.written[row] = self.vocabulary.decode(ids)
        keep = torch.nonzero(~finished).flatten()
        self.alive = self.alive.index_select(0, keep)
        return keep

    def texts(self, decode: DecodeState) -> list[str]:
        for row, ids in zip(self.alive.tolist(), decode.generated.tolist()):
            self.written[row] = self.vocabulary.decode(ids)
        return self.written


class BeamSearch(Search):
    """``num_beams`` candidates a poem, scored by summed log-probabilities; at temperature 0 the best extensions
    are kept, above it they are sampled (Gumbel top-k), so poems differ. The best beam by length-normalised
    score is the poem."""

    def __init__(self, vocabulary, num_poems, num_beams, temperature, generator, device) -> None:
        super().__init__(vocabulary, num_poems * num_beams)
        self.num_poems, self.num_beams = num_poems, num_beams
        self.temperature = temperature
        self.generator = generator
        # Only the first beam of each poem is live at the start, so beams do not duplicate.
        self.scores = torch.full((num_poems, num_beams), float("-inf"), device=device)
        self.scores[:, 0] = 0.0

    def choose(self, logits: Tensor, decode: DecodeState) -> tuple[Tensor, Tensor | None]:
        vocab = logits.shape[-1]
        logprobs = torch.log_softmax(logits, dim=-1)
        # A finished beam carries its score on unchanged, extended only by padding.
        logprobs[decode.finished] = float("-inf")
        logprobs[decode.finished, self.vocabulary.pad_id] = 0.0
        candidates = (self.scores.view(-1, 1) + logprobs).view(self.num_poems, self.num_beams * vocab)
        ranking = candidates
        if self.temperature > 0:
            uniform = torch.rand(candidates.shape, generator=self.generator, device=candidates.device)
            gumbel = -torch.log(-torch.log(uniform.clamp(1e-20, 1.0)))
            ranking = candidates / self.temperature + gumbel
        chosen = torch.topk(ranking, self.num_beams, dim=1).indices
        self.scores = candidates.gather(1, chosen)
        beam = chosen // vocab
        tokens = (chosen % vocab).view(-1)
        order = (torch.arange(self.num_poems, device=logits.device)[:, None] * self.num_beams + beam).view(-1)
        return tokens, order

    def texts(self, decode: DecodeState) -> list[str]:
        pad = self.vocabulary.pad_id
        lengths = (decode.generated != pad).sum(1).clamp(min=1).view(self.num_poems, -1)
        # length-normalised, so that beams that stop early are not favoured for their fewer terms
        pick = (self.scores / lengths).argmax(dim=1)
        rows = torch.arange(self.num_poems, device=pick.device) * self.num_beams + pick
        return [self.vocabulary.decode(row.tolist()) for row in decode.generated.index_select(0, rows)]


@dataclass
class Lane:
    """Rows of a shared batch (:func:`generate_together`) that one set of processors and one set of sampling
    options serve: the poems of requests that ask for the same thing with different seeds.

    Args:
        streams: ``(poems, generator)`` for each request of the lane, in row order: each request draws from its
            own generator exactly as :class:`Sampling` draws for it alone, so it writes the same poems as it
            would alone (unless the network's arithmetic depends on the batch, as int8 weights' does).
        max_length: characters at most (the request's plan).
        temperature: see :func:`~tangrnn_core.decoding.sampling.sample_next`.
        top_k: see :func:`~tangrnn_core.decoding.sampling.sample_next`.
        top_p: see :func:`~tangrnn_core.decoding.sampling.sample_next`.
        processors: the constraints of the lane's plan, made for this call.
    """

    streams: list[tuple[int, torch.Generator]]
    max_length: int
    temperature: float
    top_k: int
    top_p: float
    processors: Sequence[LogitsProcessor]

    @property
    def rows(self) -> int:
        return sum(poems for poems, _ in self.streams)


@torch.inference_mode()
def generate_together(
    architecture: Architecture,
    vocabulary: Vocabulary,
    lanes: Sequence[Lane],
    prefix: Sequence[int] = (),
    title: Sequence[int] | None = None,
) -> list[str]:
    """Writes the poems of several sampling requests in one batch: every row reads the same prefix and title,
    each lane has its own constraints and sampling options, each request its own random stream.

    The network runs once a step for all rows (the expensive part); the processors and the sampler run once a
    lane. Rows of a lane that reached its ``max_length`` end there; finished lanes stop drawing.

    Args:
        architecture: a network with the ``causal`` capability.
        vocabulary: the vocabulary it was trained with.
        lanes: the rows, in order (:class:`Lane`).
        prefix: ids read after ``<bos>`` before the first generated character (not part of the output).
        title: ids of the title for ``conditional`` networks (``None``: an empty title).

    Returns:
        The poems of every lane's streams, in order.
    """
    if CAUSAL not in architecture.capabilities:
        raise ConfigError(f"{type(architecture).__name__} cannot generate left to right (no '{CAUSAL}' capability)")
    for lane in lanes:
        check_sampling_options(lane.temperature, lane.top_k, lane.top_p)
    was_training = architecture.training
    architecture.eval()
    try:
        search = LaneSampling(vocabulary, lanes)
        max_length = max(lane.max_length for lane in lanes)
        return _decode(architecture, vocabulary, search, [search.processors], max_length, prefix, title)
    finally:
        architecture.train(was_training)


class _LaneProcessors(LogitsProcessor):
    """Applies each lane's processors to its own rows (rows never move in a shared batch, so no reorder)."""

    def __init__(self, lanes: Sequence[Lane], bounds: list[tuple[int, int]]) -> None:
        self.lanes, self.bounds = lanes, bounds

    def __call__(self, state: DecodeState, logits: Tensor) -> Tensor:
        for lane, (start, end) in zip(self.lanes, self.bounds):
            if state.step >= lane.max_length or bool(state.finished[start:end].all()):
                continue  # its poems are written: their rows get <eos> or padding whatever the scores
            part = DecodeState(state.generated[start:end], state.finished[start:end], state.vocabulary)
            scores = logits[start:end]
            for processor in lane.processors:
                scores = processor(part, scores)
            logits[start:end] = scores
        return logits

    def reorder(self, index: Tensor) -> None:
        raise RuntimeError("rows of a shared batch never move")


class LaneSampling(Search):
    """Sampling for :func:`generate_together`: each lane samples its rows with its options, each request with
    its own generator; rows past their lane's ``max_length`` end with ``<eos>``. Rows never move (no beams, and
    finished rows stay, so that every lane keeps its place).

    Args:
        vocabulary: the model's vocabulary.
        lanes: the lanes, in row order.
    """

    def __init__(self, vocabulary: Vocabulary, lanes: Sequence[Lane]) -> None:
        super().__init__(vocabulary, sum(lane.rows for lane in lanes))
        self.lanes = lanes
        self.bounds: list[tuple[int, int]] = []
        start = 0
        for lane in lanes:
            self.bounds.append((start, start + lane.rows))
            start += lane.rows
        self.processors = _LaneProcessors(lanes, self.bounds)

    def choose(self, logits: Tensor, decode: DecodeState) -> tuple[Tensor, Tensor | None]:
        tokens = torch.full((self.rows,), self.vocabulary.pad_id, dtype=torch.long, device=logits.device)
        for lane, (start, end) in zip(self.lanes, self.bounds):
            finished = decode.finished[start:end]
            if bool(finished.all()):
                continue
            if decode.step >= lane.max_length:  # the end of the poem: <eos> cuts it where a lone decode stops
                tokens[start:end] = torch.where(finished, self.vocabulary.pad_id, self.vocabulary.eos_id)
                continue
            uniforms = None
            if lane.temperature > 0:
                draws = [
                    torch.rand(poems, 1, generator=generator, device=logits.device) for poems, generator in lane.streams
                ]
                uniforms = torch.cat(draws)
            chosen = sample_next(logits[start:end], lane.temperature, lane.top_k, lane.top_p, None, uniforms)
            tokens[start:end] = chosen.masked_fill(finished, self.vocabulary.pad_id)
        return tokens, None

    def texts(self, decode: DecodeState) -> list[str]:
        return [self.vocabulary.decode(ids) for ids in decode.generated.tolist()]


def _decode(
    net: Architecture,
    vocabulary: Vocabulary,
    search: Search,
    processors: Sequence[LogitsProcessor],
    max_length: int,
    prefix: Sequence[int],
    title: Sequence[int] | None,
) -> list[str]:
    """The step loop: the network's scores, the processors, the strategy's choice, until every poem ends."""
    device = next(net.parameters()).device
    rows = search.rows
    banned = [vocabulary.pad_id, vocabulary.unk_id, vocabulary.bos_id, vocabulary.mask_id]
    processors = [BanTokens(banned), *processors]
    start = torch.tensor([vocabulary.bos_id, *prefix], dtype=torch.long, device=device)
    # Every row starts from the same <bos>, prefix and title: read them once and copy the state to all rows.
    state = net.initial_state(1, title_context(net, vocabulary, title, 1, device))
    logits, state = net.prefill(start[None], state)
    if rows > 1:
        state = net.reorder_state(state, torch.zeros(rows, dtype=torch.long, device=device))
        logits = logits.expand(rows, -1)
    decode = DecodeState(
        generated=torch.empty((rows, 0), dtype=torch.long, device=device),
        finished=torch.zeros(rows, dtype=torch.bool, device=device),
        vocabulary=vocabulary,
    )
    tokens = start[-1:].expand(rows)

    def move(index: Tensor) -> None:
        nonlocal state
        state = net.reorder_state(state, index)
        decode.select(index)
        for processor in processors:
            if isinstance(processor, LogitsProcessor):  # plain functions keep no rows
                processor.reorder(index)

    for step in range(max_length):
        if step:
            logits, state = net.step(tokens, state)
        logits = logits.float() if step else logits.float().clone()  # processors may write in place
        for processor in processors:
            logits = processor(decode, logits)
        tokens, order = search.choose(logits, decode)
        if order is not None:
            move(order)
        decode.generated = torch.cat([decode.generated, tokens[:, None]], dim=1)
        decode.finished |= tokens == vocabulary.eos_id
        if bool(decode.finished.all()):
            break
        keep = search.shrink(decode)
        if keep is not None:
            move(keep)
            tokens = tokens.index_select(0, keep)
    return search.texts(decode)
