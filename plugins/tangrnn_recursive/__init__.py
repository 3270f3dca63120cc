"""A tree-structured (recursive) poetry model after Zhang and Lapata (2014): each finished line is composed
bottom-up along the prosodic structure of classical verse, a recurrent context model reads the line vectors, and
a character-level recurrent generation model writes the next line conditioned on that context.

Registered in the ``tangrnn.architectures`` entry-point group as ``recursive``.
"""

from tangrnn_recursive.model import RecursiveRNN
from tangrnn_recursive.tree import GatedComposition, ProsodicTree, feet_of

__all__ = ["RecursiveRNN", "ProsodicTree", "GatedComposition", "feet_of"]
