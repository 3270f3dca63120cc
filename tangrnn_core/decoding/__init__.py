"""Decoding: one batched decoder over the plugin API's step interface, serving every architecture.

Constraints are logit processors applied at every step; sampling turns the processed logits into characters.
"""

from tangrnn_core.decoding.decoder import DecodeState, generate
from tangrnn_core.decoding.processors import BanTokens, LogitsProcessor
from tangrnn_core.decoding.sampling import sample_next

__all__ = ["generate", "DecodeState", "LogitsProcessor", "BanTokens", "sample_next"]
