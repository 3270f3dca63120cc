"""How ``tangrnn generate`` (and ``predict``) print poems: one verse per line, or one JSON record per poem."""

from __future__ import annotations

import json

from tangrnn_core.api import Architecture
from tangrnn_core.data.forms import classify, split_lines_with_marks
from tangrnn_core.data.vocab import Vocabulary
from tangrnn_core.decoding.quantize import weights_for_decoding
from tangrnn_core.decoding.request import PoemRequest
from tangrnn_core.decoding.write import write_poems

__all__ = ["print_poems", "write_and_print"]


def print_poems(poems: list[str], output: str, first: int = 0) -> None:
    """Prints ``poems`` as text (a blank line between poems) or as JSON records, flushed as they come.

    Args:
        poems: the poems, with their punctuation.
        output: ``text`` or ``json``.
        first: how many poems were printed before these (text puts a blank line before every poem but the first).
    """
    for index, poem in enumerate(poems, start=first):
        verses = split_lines_with_marks(poem)
        if output == "json":
            record = {"poem": poem, "lines": verses, "form": classify(poem).value}
            print(json.dumps(record, ensure_ascii=False), flush=True)
        else:
            print(("\n" if index else "") + "\n".join(verses or [poem]), flush=True)


def write_and_print(
    architecture: Architecture, vocabulary: Vocabulary, request: PoemRequest, output: str, quantize: str
) -> list[str]:
    """Writes ``request``'s poems with ``architecture`` and prints each batch as soon as it is written.

    What ``tangrnn generate`` does once it has a trained network, whichever way it was loaded.

    Args:
        architecture: a trained network, on the device to decode on.
        vocabulary: the vocabulary it was trained with.
        request: the poems to write (``write_poems`` validates it).
        output: ``text`` or ``json`` (:func:`print_poems`).
        quantize: the weights to decode with (:func:`~tangrnn_core.decoding.quantize.weights_for_decoding`).

    Returns:
        The poems, in the order printed.
    """
    net = weights_for_decoding(architecture, quantize)
    printed = 0

    def show(batch: list[str]) -> None:
        nonlocal printed
        print_poems(batch, output, first=printed)
        printed += len(batch)

    return write_poems(net, vocabulary, request, on_batch=show)
