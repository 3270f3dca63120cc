from __future__ import annotations

import pytest

from tangrnn_core.data.vocab import SPECIALS, Vocabulary
from tangrnn_core.errors import CheckpointError


def test_build_orders_by_frequency_and_applies_min_count():
    vocab = Vocabulary.build(["山山山水水月", "山水。"], min_count=2)
    assert vocab.tokens[: len(SPECIALS)] == list(SPECIALS)
    assert vocab.tokens[len(SPECIALS) :] == ["山", "水"]
    assert vocab.encode("山月水") == [5, vocab.unk_id, 6]


def test_decode_stops_at_eos_and_skips_specials():
    vocab = Vocabulary.build(["白日依山尽，"])
    ids = [vocab.bos_id, *vocab.encode("白日"), vocab.pad_id, vocab.eos_id, *vocab.encode("山")]
    assert vocab.decode(ids) == "白日"


def test_unknown_characters_are_named_in_order():
    vocab = Vocabulary.build(["白日依山尽"])
    assert vocab.unknown("黄河白日入海") == ["黄", "河", "入", "海"]


def test_token_spec_lists_line_ends_present():
    vocab = Vocabulary.build(["白日，依山。"])
    spec = vocab.token_spec("，。？")
    assert spec.vocab_size == len(vocab)
    assert spec.line_end_ids == (vocab.id_of("，"), vocab.id_of("。"))


def test_damaged_vocabularies_are_refused():
    with pytest.raises(CheckpointError):
        Vocabulary(["a", "b"])
    with pytest.raises(CheckpointError):
        Vocabulary([*SPECIALS, "山", "山"])
