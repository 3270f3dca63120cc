"""The plugin API: what an architecture is, what it receives and what it must return.

An architecture is the network alone. It never sees text: it receives token ids and the structure of the batch,
and returns next-character logits. Everything else (the loss, metrics, optimisers, the vocabulary, decoding,
checkpoints) belongs to the core, so that every architecture is trained and decoded the same way.

A plugin package registers its :class:`Architecture` subclasses in the entry-point group
``tangrnn.architectures`` of its own ``pyproject.toml``::

    [project.entry-points."tangrnn.architectures"]
    indrnn = "tangrnn_indrnn:IndRNN"

The contract, in short:

- ``plugin_api`` (class attribute): the version of this API the class was written against. The core refuses a
  class that does not declare one it supports (see :data:`SUPPORTED_PLUGIN_APIS`).
- ``__init__(self, tokens: TokenSpec, **options)``: ``tokens`` gives the vocabulary size and the special ids;
  every other argument is an option users set in the config (``model.architecture_options``). Give every option
  a type annotation and a default, and document it under ``Args:`` in the class docstring: that becomes the help.
- ``forward(batch) -> logits`` of shape ``(batch, time, vocab_size)``: for every position of
  ``batch.inputs``, the scores of the character that follows (``batch.targets`` at the same position).
- ``initial_state(batch_size, context)``, ``step(tokens, state)`` and ``reorder_state(state, index)``: the
  decoder's interface, one character at a time for a batch of poems (and beams). ``prefill`` has a default
  built on ``step``; override it when the network can read a prefix faster in one call.
- optionally, ``output_layer() -> nn.Linear | None`` and ``features(batch) -> Tensor``: a network whose logits
  are one ``nn.Linear`` over the vocabulary applied to ``(batch, time, d)`` features may return that layer and
  those features, with ``forward(batch) == output_layer()(features(batch))``. The core then computes the
  output layer and the loss chunk by chunk (``model.loss_chunk_size``), so that the full
  ``(batch x time, vocab_size)`` logits never exist in training. The default (``None``) keeps ``forward``,
  and so does a subclass that overrides ``forward`` without declaring ``output_layer`` again
  (:func:`opted_in_output_layer`).

What a network can do is declared in ``capabilities``, and the core trains and decodes it accordingly:

- ``causal`` (the default): a left-to-right language model, trained on next-character prediction and decoded
  with ``step``.
- ``conditional``: the network also reads ``batch.context``, the poem's title, in ``forward``, and the
  ``context`` argument of ``initial_state`` (``tangrnn generate --title``). Every batch carries the titles;
  networks without this capability ignore them.
- ``infill``: a masked model. The core replaces a random share of each poem's characters by ``<mask>``
  (``TokenSpec.mask_id``) and ``forward`` must score, at every position, the original character there
  (``batch.targets`` holds it at the masked positions, ``pad_id`` elsewhere). It is decoded by iterative
  mask-predict over a template (``tangrnn generate --template``); ``step`` is not used.

The base class only ever gains optional arguments and methods with defaults, so plugins written against an
older minor revision of version 1 keep working.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

#: The plugin API version this core implements.
PLUGIN_API_VERSION = 1
#: The plugin API versions this core can drive.
SUPPORTED_PLUGIN_APIS: frozenset[int] = frozenset({1})

#: A recurrent state: a tensor, or a (nested) tuple of tensors, each holding the batch along ``state_batch_dim``.
State = Any

#: Capability names an architecture may declare in ``Architecture.capabilities`` (see the module documentation).
CAUSAL = "causal"  # scores text left to right; can be decoded with ``step`` (free generation, continuation)
CONDITIONAL = "conditional"  # reads the title in ``Batch.context`` and in ``initial_state(context=...)``
INFILL = "infill"  # restores ``<mask>`` characters from both sides; decoded by mask-predict
#: Every capability this core knows; a class declaring another one is refused by the registry.
KNOWN_CAPABILITIES: frozenset[str] = frozenset({CAUSAL, CONDITIONAL, INFILL})


@dataclass(frozen=True)
class TokenSpec:
    """The ids an architecture may need: the vocabulary size, the special tokens and the line-end marks.

    Args:
        vocab_size: number of ids, special ones included.
        pad_id: padding; never a target the loss counts.
        unk_id: characters outside the vocabulary.
        bos_id: opens every sequence.
        eos_id: closes every poem.
        mask_id: stands for a hidden character (the input of ``infill`` networks).
        line_end_ids: ids of the punctuation marks that end a verse line (``，。？！；：``), for architectures that
            use the line structure of a poem.
    """

    vocab_size: int
    pad_id: int = 0
    unk_id: int = 1
    bos_id: int = 2
    eos_id: int = 3
    mask_id: int = 4
    line_end_ids: tuple[int, ...] = field(default_factory=tuple)


@dataclass
class Batch:
    """A batch of encoded poems, as an architecture sees it.

    Args:
        inputs: ``(batch, time)`` ids: ``<bos>`` and the poem's characters, padded with ``pad_id``.
        targets: ``(batch, time)`` ids: the poem's characters and ``<eos>``, i.e. ``inputs`` shifted by one;
            ``pad_id`` where there is nothing to predict.
        lengths: ``(batch,)`` the number of real positions in each row.
        context: ``(batch, context_time)`` ids of each poem's title (no ``<bos>``/``<eos>``), padded with
            ``pad_id``; ``None`` when there is none (a title may also be empty: length 0).
        context_lengths: ``(batch,)`` the number of real positions in each row of ``context``.
    """

    inputs: Tensor
    targets: Tensor
    lengths: Tensor
    context: Tensor | None = None
    context_lengths: Tensor | None = None

    @property
    def size(self) -> int:
        return self.inputs.shape[0]

    def to(self, device: torch.device | str) -> Batch:
        return Batch(**{name: None if value is None else value.to(device) for name, value in vars(self).items()})


class Architecture(nn.Module):
    """Base class of every tangrnn architecture (see the module documentation for the contract).

    Args:
        tokens: the vocabulary size and special ids of the data the network is trained on.
    """

    #: The plugin API version the subclass was written against. Every subclass must set it.
    plugin_api: ClassVar[int | None] = None
    #: What the network can do; the decoder and the core use it to refuse what a network cannot do.
    capabilities: ClassVar[frozenset[str]] = frozenset({CAUSAL})
    #: The dimension of every state tensor that holds the batch (``nn.LSTM`` keeps it in dimension 1).
    state_batch_dim: ClassVar[int] = 0

    def __init__(self, tokens: TokenSpec) -> None:
        super().__init__()
        self.tokens = tokens

    def forward(self, batch: Batch) -> Tensor:
        """Next-character logits ``(batch, time, vocab_size)`` for every position of ``batch.inputs``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def output_layer(self) -> nn.Linear | None:
        """The final linear layer over the vocabulary, if the network opts in to the chunked loss.

        Return the ``nn.Linear`` (``vocab_size`` outputs) that ``forward`` applies last, and implement
        :meth:`features`: with ``model.loss_chunk_size`` above 0 (the default) the core then trains on
        ``output_layer()`` and ``features(batch)`` chunk by chunk (:func:`tangrnn_core.losses.chunked_cross_entropy`)
        instead of calling ``forward``, which saves the memory of the full logits. The contract is
        ``forward(batch) == output_layer()(features(batch))`` (the conformance kit checks it in eval mode).
        The default, ``None``, opts out: the core calls ``forward`` as before.
        """
        return None

    def features(self, batch: Batch) -> Tensor:
        """What goes into :meth:`output_layer`: ``(batch, time, d)`` for every position of ``batch.inputs``.

        Needed only when :meth:`output_layer` returns a layer; it does everything ``forward`` does but the last
        linear layer (dropout included, in training mode).

        Args:
            batch: the batch ``forward`` would receive (masked for ``infill`` networks).
        """
        raise NotImplementedError(f"{type(self).__name__} returns an output_layer() but does not implement features()")

    def initial_state(self, batch_size: int, context: Batch | None = None) -> State:
        """The state before the first character, for ``batch_size`` sequences.

        Args:
            batch_size: how many sequences are decoded together.
            context: for ``conditional`` networks, a :class:`Batch` whose ``context``/``context_lengths`` hold
                the ``batch_size`` titles (a title may be empty); ``None`` for every other network.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement initial_state()")

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        """Reads one character per sequence and returns the logits of the next one.

        Args:
            tokens: ``(batch,)`` ids of the current characters.
            state: the state returned by the previous call (or :meth:`initial_state`).

        Returns:
            ``(batch, vocab_size)`` logits and the new state.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement step()")

    def prefill(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        """Reads ``(batch, time)`` ids and returns the logits after the last one, and the state.

        The default calls :meth:`step` once per position; recurrent networks with a fused kernel override it.
        """
        logits = None
        for position in range(tokens.shape[1]):
            logits, state = self.step(tokens[:, position], state)
        if logits is None:
            raise ValueError("prefill() needs at least one token")
        return logits, state

    def reorder_state(self, state: State, index: Tensor) -> State:
        """Selects (and repeats) sequences of a state, for beam search and for dropping finished poems.

        Args:
            state: a state from :meth:`initial_state` or :meth:`step`.
            index: ``(new_batch,)`` ids of the sequences to keep, in their new order.
        """
        return _index_nested(state, index, self.state_batch_dim)


def opted_in_output_layer(architecture: Architecture) -> nn.Linear | None:
    """The layer the core may chunk (see :meth:`Architecture.output_layer`), or ``None`` to call ``forward``.

    A class that overrides ``forward`` below the class that declared ``output_layer`` (say, a subclass of the
    built-in LSTM that edits its logits) may compute more than ``output_layer()(features(batch))``, so it is
    taken as opting out again, until it declares ``output_layer`` itself. Plugins written before the chunked
    loss thus keep training exactly through their ``forward``.

    Args:
        architecture: the network the core trains.
    """
    cls = type(architecture)
    forward_owner = _defining_class(cls, "forward")
    layer_owner = _defining_class(cls, "output_layer")
    if layer_owner is Architecture or not issubclass(layer_owner, forward_owner):
        return None
    return architecture.output_layer()


def _defining_class(cls: type, name: str) -> type:
    """The class of ``cls.__mro__`` whose body defines ``name``."""
    return next(klass for klass in cls.__mro__ if name in vars(klass))


def _index_nested(state: State, index: Tensor, dim: int) -> State:
    if isinstance(state, Tensor):
        return state.index_select(dim, index)
    if isinstance(state, (tuple, list)):
        return type(state)(_index_nested(part, index, dim) for part in state)
    if state is None:
        return None
    raise TypeError(f"cannot reorder a state of type {type(state).__name__}; override reorder_state()")
