"""Bidirectional recurrent infilling: a masked character model that restores blanks from both sides and writes
poems by iterative mask-predict (Ghazvininejad et al. 2019), and the bidirectional encoder it is built on.

Registered in the ``tangrnn.architectures`` entry-point group as ``bidirectional``.
"""

from tangrnn_bidirectional.encoder import BidirectionalEncoder
from tangrnn_bidirectional.model import BidirectionalInfill, layout_positions

__all__ = ["BidirectionalInfill", "BidirectionalEncoder", "layout_positions"]
