"""The character vocabulary: special tokens first, then characters by descending training-split frequency."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from tangrnn_core.api import TokenSpec
from tangrnn_core.errors import CheckpointError

PAD, UNK, BOS, EOS, MASK = "<pad>", "<unk>", "<bos>", "<eos>", "<mask>"
SPECIALS: tuple[str, ...] = (PAD, UNK, BOS, EOS, MASK)


class Vocabulary:
    """A bijection between characters and ids; ids 0-4 are ``<pad> <unk> <bos> <eos> <mask>``.

    Args:
        tokens: every token in id order, starting with the five special tokens.
    """

    def __init__(self, tokens: Sequence[str]) -> None:
        tokens = list(tokens)
        if tuple(tokens[: len(SPECIALS)]) != SPECIALS:
            raise CheckpointError(f"a vocabulary must start with {' '.join(SPECIALS)}; this one is damaged")
        if len(set(tokens)) != len(tokens):
            raise CheckpointError("a vocabulary lists a token twice; it is damaged")
        self.tokens: list[str] = tokens
        self._ids = {token: index for index, token in enumerate(tokens)}
        self.pad_id, self.unk_id, self.bos_id, self.eos_id, self.mask_id = range(len(SPECIALS))

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1) -> Vocabulary:
        """Counts characters over ``texts``; those seen fewer than ``min_count`` times become ``<unk>``.

        Ties in frequency are broken by the character itself, so the same texts always give the same ids.
        """
        counts = Counter()
        for text in texts:
            counts.update(text)
        kept = sorted((c for c, n in counts.items() if n >= min_count), key=lambda c: (-counts[c], c))
        return cls([*SPECIALS, *kept])

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self._ids

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and other.tokens == self.tokens

    def id_of(self, token: str) -> int:
        return self._ids.get(token, self.unk_id)

    def encode(self, text: str) -> list[int]:
        """Ids of ``text``'s characters (no ``<bos>``/``<eos>``); unknown characters become ``<unk>``."""
        get, unk = self._ids.get, self.unk_id
        return [get(char, unk) for char in text]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``: stops at ``<eos>``, skips the other special tokens."""
        chars = []
        for index in ids:
            index = int(index)
            if index == self.eos_id:
                break
            if index >= len(SPECIALS):
                chars.append(self.tokens[index])
        return "".join(chars)

    def unknown(self, text: str) -> list[str]:
        """The distinct characters of ``text`` that are not in the vocabulary, in order of appearance."""
        return list(dict.fromkeys(char for char in text if char not in self._ids))

    def token_spec(self, line_end_marks: str) -> TokenSpec:
        """What an architecture is told about the vocabulary."""
        return TokenSpec(
            vocab_size=len(self),
            pad_id=self.pad_id,
            unk_id=self.unk_id,
            bos_id=self.bos_id,
            eos_id=self.eos_id,
            mask_id=self.mask_id,
            line_end_ids=tuple(self._ids[mark] for mark in line_end_marks if mark in self._ids),
        )
