"""The sentence model: a line of verse composed bottom-up along its prosodic structure.

A line of regulated verse reads in feet (音步) of two characters with a closing group of three: a five-character
line is 2+3 (白日|依山尽), a seven-character line 2+2+3, whose first four characters form one half (4|3:
朝辞白帝|彩云间). The closing three split either way, 2+1 (依山|尽) or 1+2 (彩|云间), depending on the words, so
both bracketings are composed and mixed by a learned gate that looks at the two results.

The tree of a line of ``n`` characters, the same rule for every length (irregular poems have lines of 1 to
dozens of characters):

1. feet: ``n // 2`` feet of two characters from the left, the last one taking three characters when ``n`` is
   odd (``n = 1`` is one foot of one character, ``n = 0`` an empty line with a learned vector);
2. a three-character foot is ``g * ((a b) c) + (1 - g) * (a (b c))`` with a per-dimension gate ``g``;
3. feet are paired left to right, level by level, an unpaired last node moving up unchanged, until one node is
   left.

Writing ``(x y)`` for a composition and ``[x y z]`` for the gated mix of ``((x y) z)`` and ``(x (y z))``, a
five-character line ``abcde`` is ``((a b) [c d e])`` and a seven-character line ``abcdefg`` is
``(((a b) (c d)) [e f g])``: exactly 2+3 and (2+2)+3. Rule 3 keeps the depth logarithmic in the number of feet
for long irregular lines (a line of 20 characters is 10 feet, 4 levels).

Every line of a batch is composed at once: the feet of all lines form one flat batch, and each level of rule 3
is one batched composition, so a batch of poems costs a handful of matrix products however many lines it has.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def feet_of(length: int) -> list[tuple[int, int]]:
    """The feet of a line of ``length`` characters, as ``(start, size)`` pairs (rule 1 above).

    >>> feet_of(5), feet_of(7), feet_of(4), feet_of(1)
    ([(0, 2), (2, 3)], [(0, 2), (2, 2), (4, 3)], [(0, 2), (2, 2)], [(0, 1)])
    """
    if length < 2:
        return [(0, length)] if length else []
    count = length // 2
    return [(2 * index, 2) for index in range(count - 1)] + [(2 * count - 2, length - 2 * count + 2)]


class GatedComposition(nn.Module):
    """Composes two sibling nodes into their parent (a gated recursive unit, after Cho et al. 2014's grConv).

    ``parent = w_new * tanh(W [left; right] + b) + w_left * left + w_right * right``, where the three weights
    are a softmax per dimension computed from both children. The gates let a parent copy a child through
    unchanged, which keeps gradients alive down the tree and lets a function word contribute little.

    Args:
        size: size of every node vector.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        # One product gives the candidate and the three gate logits.
        self.linear = nn.Linear(2 * size, 4 * size)

    def forward(self, left: Tensor, right: Tensor) -> Tensor:
        candidate, gates = self.linear(torch.cat([left, right], dim=-1)).split([self.size, 3 * self.size], dim=-1)
        weights = gates.unflatten(-1, (3, self.size)).softmax(dim=-2)
        return weights[..., 0, :] * torch.tanh(candidate) + weights[..., 1, :] * left + weights[..., 2, :] * right


class ProsodicTree(nn.Module):
    """Line vectors from character vectors, composed along the prosodic tree described in the module docs.

    Args:
        input_size: size of the character vectors it receives.
        size: size of the node and line vectors.
    """

    def __init__(self, input_size: int, size: int) -> None:
        super().__init__()
        self.size = size
        self.leaf = nn.Linear(input_size, size)
        self.compose = GatedComposition(size)
        # Mixes the two bracketings of a three-character foot, (a b) c and a (b c).
        self.split_gate = nn.Linear(2 * size, size)
        self.empty = nn.Parameter(torch.zeros(size))

    def forward(self, chars: Tensor, lengths: Tensor) -> Tensor:
        """Composes ``(lines, width, input_size)`` character vectors, of which the first ``lengths[i]`` of row
        ``i`` are real, into ``(lines, size)`` line vectors. Positions past a line's length are never read."""
        lines, width = chars.shape[0], chars.shape[1]
        if lines == 0 or width == 0:
            return self.empty.expand(lines, -1)
        leaves = torch.tanh(self.leaf(chars))
        feet, owner, index, count = self._feet(leaves, lengths)
        if feet.shape[0] == 0:
            return self.empty.expand(lines, -1)
        nodes, owner = self._pair_up(feet, owner, index, count)
        composed = leaves.new_zeros(lines, self.size).index_copy(0, owner, nodes)
        return torch.where((lengths == 0)[:, None], self.empty, composed)

    def _feet(self, leaves: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Rules 1 and 2: one vector per foot, feet ordered by line then position."""
        width = leaves.shape[1]
        count = torch.where(lengths >= 2, lengths // 2, lengths)
        owner = torch.repeat_interleave(torch.arange(len(lengths), device=leaves.device), count)
        index = torch.arange(len(owner), device=leaves.device) - (count.cumsum(0) - count)[owner]
        start = 2 * index
        size = torch.where(index == count[owner] - 1, lengths[owner] - start, 2)

        def at(offset: int) -> Tensor:
            # Clamped: the second and third characters of a shorter foot are read but never used.
            return leaves[owner, (start + offset).clamp(max=width - 1)]

        first, second, third = at(0), at(1), at(2)
        triple = torch.nonzero(size == 3).squeeze(1)
        # (first second) for every foot and (second third) for three-character feet, in one product.
        pairs = self.compose(torch.cat([first, second[triple]]), torch.cat([second, third[triple]]))
        front, back = pairs[: len(owner)], pairs[len(owner) :]
        # Both bracketings of each three-character foot, in one product: (a b) c, i.e. 2+1, and a (b c), 1+2.
        bracketings = self.compose(torch.cat([front[triple], first[triple]]), torch.cat([third[triple], back]))
        two_one, one_two = bracketings.chunk(2)
        gate = torch.sigmoid(self.split_gate(torch.cat([two_one, one_two], dim=-1)))
        feet = torch.where((size == 1)[:, None], first, front)
        feet = feet.index_copy(0, triple, gate * two_one + (1 - gate) * one_two)
        return feet, owner, index, count

    def _pair_up(self, nodes: Tensor, owner: Tensor, index: Tensor, count: Tensor) -> tuple[Tensor, Tensor]:
        """Rule 3: pairs neighbouring nodes of each line, level by level, until each line has one node."""
        levels = (int(count.max()) - 1).bit_length()  # ceil(log2(most feet in a line))
        for _ in range(levels):
            even = torch.nonzero(index % 2 == 0).squeeze(1)
            paired = (index[even] + 1 < count[owner[even]])[:, None]
            # An unpaired node is composed with its successor too (whatever that is) and the result dropped:
            # cheaper than a second gather, since at most one node a line is unpaired.
            merged = self.compose(nodes[even], nodes[(even + 1).clamp(max=len(nodes) - 1)])
            nodes = torch.where(paired, merged, nodes[even])
            owner, index, count = owner[even], index[even] // 2, (count + 1) // 2
        return nodes, owner
