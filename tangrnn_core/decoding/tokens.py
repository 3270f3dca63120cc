"""Token classes every constraint agrees on: specials, punctuation and verse characters.

* **special** tokens (``<pad> <unk> <bos> <eos> <mask>``, ids 0-4);
* **punctuation**: every token of :data:`~tangrnn_core.data.normalize.PUNCTUATION` (``，。？！；：、``) and every
  other token holding a character whose Unicode category is punctuation, symbol, separator or control/other
  (``·`` ``…`` ``《`` ``—`` ...): nothing a poet writes as a syllable;
* **verse characters**: all the rest (CJK ideographs, ``〇`` ...); they fill the lines.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable

import torch
from torch import Tensor

from tangrnn_core.data.normalize import PUNCTUATION
from tangrnn_core.data.vocab import SPECIALS, Vocabulary

#: Characters ignored in what a user types (acrostic heads, first lines, templates, characters to avoid).
SPACES = " \t\r\n\u3000\u00a0"


def strip_spaces(text: str) -> str:
    """``text`` without the spaces a user may type between characters."""
    return "".join(char for char in text if char not in SPACES)


def is_punctuation(token: str) -> bool:
    """Whether a (non-special) token is punctuation: one of ``，。？！；：、`` or any token with a character of
    Unicode category P (punctuation), S (symbol), Z (separator) or C (control, private use ...)."""
    return token in PUNCTUATION or any(unicodedata.category(char)[0] in "PSZC" for char in token)


def verse_character_mask(vocabulary: Vocabulary) -> Tensor:
    """``(vocab,)`` bool: True at the ids of verse characters (neither special nor punctuation)."""
    return _verse_mask(tuple(vocabulary.tokens)).clone()


@functools.lru_cache(maxsize=4)
def _verse_mask(tokens: tuple[str, ...]) -> Tensor:
    # cached: the processors of one generate() call would otherwise classify a 7,000-token vocabulary each
    specials = set(SPECIALS)
    return torch.tensor([t not in specials and not is_punctuation(t) for t in tokens], dtype=torch.bool)


def ids_mask(vocabulary: Vocabulary, tokens: Iterable[str]) -> Tensor:
    """``(vocab,)`` bool: True at the ids of ``tokens`` (those not in the vocabulary are left out)."""
    mask = torch.zeros(len(vocabulary), dtype=torch.bool)
    ids = [vocabulary.id_of(t) for t in tokens if t in vocabulary]
    if ids:
        mask[ids] = True
    return mask
