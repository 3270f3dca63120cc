"""Decoding: one batched decoder over the plugin API's step interface, serving every architecture.

A :class:`PoemRequest` is planned once (:mod:`.plan`), turned into logit processors ordered by stage
(:mod:`.pipeline`), and decoded by a search strategy (:mod:`.decoder`) or by mask-predict (:mod:`.infill`);
:func:`write_poems` does all of it.
"""

from tangrnn_core.decoding.decoder import DecodeState, generate
from tangrnn_core.decoding.processors import BanTokens, LogitsProcessor, PositionTracker, Stage
from tangrnn_core.decoding.request import PoemRequest
from tangrnn_core.decoding.sampling import sample_next
from tangrnn_core.decoding.write import write_poems

__all__ = [
    "generate",
    "write_poems",
    "PoemRequest",
    "DecodeState",
    "LogitsProcessor",
    "PositionTracker",
    "Stage",
    "BanTokens",
    "sample_next",
]
