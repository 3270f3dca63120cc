"""Writing poems: a request checked, planned, turned into processors and decoded, for every architecture.

``tangrnn generate``, ``tangrnn predict``, ``tangrnn evaluate`` and the sample poems printed during training all
come through :func:`write_poems`: left-to-right networks are decoded step by step (sampling or beam search)
with the request's logit processors; masked (``infill``) networks fill a template (given, or made from the
form, acrostic and first line) by mask-predict through the same processors.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import replace

import torch

from tangrnn_core.api import CONDITIONAL, Architecture
from tangrnn_core.data.forms import REGULAR_FORMS
from tangrnn_core.data.vocab import Vocabulary
from tangrnn_core.decoding.decoder import Lane, generate, generate_together
from tangrnn_core.decoding.infill import mask_predict
from tangrnn_core.decoding.pipeline import build_processors
from tangrnn_core.decoding.plan import Plan, plan_request, template_of
from tangrnn_core.decoding.request import PoemRequest
from tangrnn_core.errors import ConfigError
from tangrnn_core.objectives import is_masked_model

#: Decoding memory a row takes per character of the vocabulary: the scores, their masks and the sampler's
#: buffers, about a dozen float vectors (0.27 MB a row for a vocabulary of 5,800, docs/performance.md).
ROW_BYTES_PER_CHARACTER = 48


def write_poems(
    architecture: Architecture,
    vocabulary: Vocabulary,
    request: PoemRequest,
    on_batch: Callable[[list[str]], None] | None = None,
) -> list[str]:
    """Checks ``request`` and writes its poems, in batches of at most ``request.batch_size`` rows.

    Args:
        architecture: the network (of any weight format).
        vocabulary: the vocabulary it was trained with.
        request: what to write.
        on_batch: called with each batch's poems as soon as they are written (``tangrnn generate`` prints them
            there, so a long call shows its poems as it goes and an interrupted one keeps what it printed).

    Raises:
        ConfigError: an impossible or malformed request (one line naming the problem).
    """
    plan, title, seed = _prepare(architecture, vocabulary, request)
    return _write_prepared(architecture, vocabulary, request, plan, title, seed, on_batch)


def _write_prepared(
    architecture: Architecture,
    vocabulary: Vocabulary,
    request: PoemRequest,
    plan: Plan | None,
    title: list[int] | None,
    seed: int,
    on_batch: Callable[[list[str]], None] | None = None,
) -> list[str]:
    """:func:`write_poems` for a request :func:`_prepare` has checked and resolved."""
    device = next(architecture.parameters()).device
    # One stream for every batch: the same seed and batch size give the same poems.
    generator = torch.Generator(device=device).manual_seed(seed)
    per_batch = max(1, request.batch_size // request.num_beams)
    poems: list[str] = []
    for start in range(0, request.num_poems, per_batch):
        part = replace(request, num_poems=min(per_batch, request.num_poems - start))
        if plan is None:
            batch = _fill_templates(architecture, vocabulary, part, generator, title)
        else:
            batch = _write_batch(architecture, vocabulary, part, plan, generator, title)
        if on_batch is not None:
            on_batch(batch)
        poems += batch
    return poems


def write_together(
    architecture: Architecture, vocabulary: Vocabulary, requests: Sequence[PoemRequest]
) -> list[list[str] | ConfigError]:
    """Writes several requests' poems, sharing the network's batch among those that can share it: each request
    gets the poems :func:`write_poems` writes for it alone with the same seed (``tangrnn serve`` batches the
    requests that arrive together this way).

    Sampling requests of a left-to-right network share one batch when they read the same prefix and title and
    fit one batch of their own (``num_poems <= batch_size``); requests that differ only in their seeds and counts
    also share their processors. Beam search, infilling networks and the rest are written one by one.
    The same poems as alone holds as long as the network's arithmetic does not depend on the batch: int8 weights
    scale their activations by the whole batch's range, so there a poem can change with its companions.

    Args:
        architecture: the network (of any weight format).
        vocabulary: the vocabulary it was trained with.
        requests: what to write; each needs a ``seed`` to be reproducible.

    Returns:
        For each request, its poems, or the ConfigError that refused it (the others are written anyway).
    """
    results: list[list[str] | ConfigError | None] = [None] * len(requests)
    shared: dict[tuple[str | None, str | None], list[tuple[int, Plan, list[int] | None, int]]] = {}
    for index, request in enumerate(requests):
        try:
            plan, title, seed = _prepare(architecture, vocabulary, request)
            if plan is None or request.num_beams != 1 or request.num_poems > request.batch_size:
                # Checked and planned already: written alone without doing it again.
                results[index] = _write_prepared(architecture, vocabulary, request, plan, title, seed)
            else:
                shared.setdefault((request.prefix, request.title), []).append((index, plan, title, seed))
        except ConfigError as error:
            results[index] = error
    device = next(architecture.parameters()).device
    for (prefix, _), members in shared.items():
        lanes: dict[PoemRequest, list[tuple[int, Plan, int]]] = {}
        for index, plan, _, seed in members:
            # Requests that differ only in seed and count write through the same processors.
            key = replace(requests[index], seed=None, num_poems=1, batch_size=1)
            lanes.setdefault(key, []).append((index, plan, seed))
        built: list[Lane] = []
        for key, lane_members in lanes.items():
            try:
                processors = build_processors(vocabulary, lane_members[0][1])
            except ConfigError as error:
                for index, _, _ in lane_members:
                    results[index] = error
                continue
            built.append(
                Lane(
                    streams=[
                        (requests[index].num_poems, torch.Generator(device=device).manual_seed(seed))
                        for index, _, seed in lane_members
                    ],
                    max_length=lane_members[0][1].max_steps,
                    temperature=key.temperature,
                    top_k=key.top_k,
                    top_p=key.top_p,
                    processors=processors,
                )
            )
        if not built:
            continue
        poems = generate_together(
            architecture,
            vocabulary,
            built,
            prefix=vocabulary.encode(prefix) if prefix else [],
            title=members[0][2],
        )
        order = [index for lane_members in lanes.values() for index, _, _ in lane_members]
        written = [index for index in order if results[index] is None]
        for index in written:
            count = requests[index].num_poems
            results[index], poems = poems[:count], poems[count:]
    return results  # type: ignore[return-value]


def _prepare(
    architecture: Architecture, vocabulary: Vocabulary, request: PoemRequest
) -> tuple[Plan | None, list[int] | None, int]:
    """Checks ``request`` against the network and resolves what every batch of it shares: the plan (``None``
    for infilling networks, which plan per layout), the title's ids and the seed (a new one when unset).

    Raises:
        ConfigError: an impossible or malformed request.
    """
    request.validate()
    masked = is_masked_model(architecture)
    if masked:
        if request.prefix:
            raise ConfigError("--prefix is read left to right; an infilling model cannot use it (drop --prefix)")
        if request.num_beams != 1:
            raise ConfigError("--num_beams is a left-to-right search; an infilling model uses --iterations instead")
    elif request.prefix:
        unknown = vocabulary.unknown(request.prefix)
        if unknown:
            raise ConfigError(
                f"--prefix has characters not in the model's vocabulary: {', '.join(unknown)}; rephrase it"
            )
    _check_memory(vocabulary, request)
    title = _title_ids(architecture, vocabulary, request)
    seed = request.seed if request.seed is not None else secrets.randbits(62)
    # Left to right, one plan serves every batch (it does not depend on their sizes); infilling plans per layout.
    plan = None if masked else plan_request(vocabulary, request)
    return plan, title, seed


def _check_memory(vocabulary: Vocabulary, request: PoemRequest) -> None:
    """Refuses, before any decoding, a request whose rows cannot stay within ``batch_size`` or whose batch would
    not fit in the memory available (the alternative is the kernel's out-of-memory killer, minutes later)."""
    beams = request.num_beams
    if beams > request.batch_size:
        raise ConfigError(
            f"--num_beams {beams} needs {beams:,} rows for a single poem, more than --batch_size {request.batch_size:,}; "
            "lower --num_beams or raise --batch_size"
        )
    rows = min(request.batch_size - request.batch_size % beams, request.num_poems * beams)
    needed = rows * len(vocabulary) * ROW_BYTES_PER_CHARACTER
    available = available_memory()
    if available is not None and needed > available:
        per_row = len(vocabulary) * ROW_BYTES_PER_CHARACTER
        raise ConfigError(
            f"a batch of {rows:,} rows needs about {needed / 2**30:.1f} GiB for this vocabulary of {len(vocabulary):,}, "
            f"but {available / 2**30:.1f} GiB is available; lower --batch_size to at most {available // per_row:,} "
            "(more poems are written in successive batches)"
        )


def available_memory() -> int | None:
    """Bytes of memory the system can give without swapping (Linux's MemAvailable); ``None`` where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _write_batch(
    architecture: Architecture,
    vocabulary: Vocabulary,
    request: PoemRequest,
    plan: Plan,
    generator: torch.Generator,
    title: list[int] | None,
) -> list[str]:
    """Left to right: all of ``request``'s poems (and their beams) as one batch of the decoder, with fresh
    processors of ``plan`` (they keep per-row progress)."""
    return generate(
        architecture,
        vocabulary,
        request.num_poems,
        max_length=plan.max_steps,
        temperature=request.temperature,
        top_k=request.top_k,
        top_p=request.top_p,
        processors=build_processors(vocabulary, plan),
        generator=generator,
        num_beams=request.num_beams,
        prefix=vocabulary.encode(request.prefix) if request.prefix else [],
        title=title,
    )


def _fill_templates(
    architecture: Architecture,
    vocabulary: Vocabulary,
    request: PoemRequest,
    generator: torch.Generator,
    title: list[int] | None,
) -> list[str]:
    """Infilling: one template for all poems, or, when nothing fixes the shape, the four regular forms in turn
    (an infilling network needs a layout to fill)."""
    template = template_of(request)
    if template is not None:
        layouts = [(template, request.num_poems)]
    else:
        counts = [request.num_poems // 4 + (index < request.num_poems % 4) for index in range(4)]
        layouts = [(template_of(request, form), count) for form, count in zip(REGULAR_FORMS, counts) if count]
    poems: list[str] = []
    for layout, count in layouts:
        poems += mask_predict(
            architecture,
            vocabulary,
            layout,
            count,
            processors=build_processors(vocabulary, plan_request(vocabulary, request, layout)),
            iterations=request.iterations,
            temperature=request.temperature,
            top_k=request.top_k,
            top_p=request.top_p,
            generator=generator,
            title=title,
        )
    return poems


def _title_ids(architecture: Architecture, vocabulary: Vocabulary, request: PoemRequest) -> list[int] | None:
    if request.title is None:
        return None
    if CONDITIONAL not in architecture.capabilities:
        raise ConfigError(
            f"{type(architecture).__name__} does not read titles (no '{CONDITIONAL}' capability); drop --title or "
            "use a model trained with a conditional architecture such as seq2seq"
        )
    title = request.title.strip()
    unknown = vocabulary.unknown(title)
    if unknown:
        raise ConfigError(f"--title has characters not in the model's vocabulary: {', '.join(unknown)}; rephrase it")
    return vocabulary.encode(title)
