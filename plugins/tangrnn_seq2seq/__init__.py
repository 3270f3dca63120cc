"""An encoder-decoder with attention that writes a poem from its title, and each line from the one before it.

Registered in the ``tangrnn.architectures`` entry-point group as ``seq2seq``.
"""

from tangrnn_seq2seq.attention import Attention
from tangrnn_seq2seq.model import LineMemory, Memory, Seq2Seq

__all__ = ["Seq2Seq", "Attention", "Memory", "LineMemory"]
