"""The pieces of `tangrnn evaluate` that need no model: options, test poems to continue, sharding, the table."""

from __future__ import annotations

import pytest

from tangrnn_core.data.forms import Form
from tangrnn_core.data.vocab import Vocabulary
from tangrnn_core.errors import ConfigError
from tangrnn_core.evaluation.evaluate import continuation_pairs, format_report, sample_modes, shard


def test_form_option_gives_the_samples():
    assert sample_modes(None) == [("free", None)]
    assert sample_modes("free") == [("free", None)]
    assert sample_modes("qilv") == [("七律", Form.QILV)]
    assert [label for label, _ in sample_modes("all")] == ["free", "五绝", "七绝", "五律", "七律"]
    for bad in ("六绝", "other"):
        with pytest.raises(ConfigError, match="free, all"):
            sample_modes(bad)


def test_only_regular_test_poems_with_known_first_lines_are_continued():
    vocabulary = Vocabulary.build(["白日依山尽黄河入海流欲穷千里目更上一层楼床前明月光"])
    texts = [
        "床前明月光，疑是地上霜。",  # no regular form
        "龘日依山尽，黄河入海流。欲穷千里目，更上一层楼。",  # 龘 unknown in the first line
        "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。",
        "白日依山尽，黄河入海流。欲穷千里目，更上一层龘。",  # unknown characters after the first line are fine
    ]
    forms = ["other", "五绝", "五绝", "五绝"]
    assert continuation_pairs(texts, forms, vocabulary, limit=10) == [(2, Form.WUJUE), (3, Form.WUJUE)]
    assert continuation_pairs(texts, forms, vocabulary, limit=1) == [(2, Form.WUJUE)]


def test_shards_cover_every_item_once():
    parts = [list(shard(10, rank, 3)) for rank in range(3)]
    assert sorted(sum(parts, [])) == list(range(10))
    assert list(shard(10, 0, 1)) == list(range(10))


def test_table_shows_missing_figures_as_dashes():
    sample = {"poems": 4, "form_rate": 0.25, "distinct_1": 0.5, "distinct_2": 0.9, "copied_lines": 0.0}
    report = {
        "checkpoint": "last.ckpt",
        "settings": {"num_poems": 4, "form": "free", "temperature": 0.8, "seed": 1, "check_tones": "strict"},
        "test": {"perplexity": 123.456, "cross_entropy": 4.8159, "poems": 1200, "characters": 56000},
        "continuation": {"bleu2": None, "poems": 0},
        "samples": {"free": {**sample, "poems_with_copy": 0.0, "tone_rate": None, "rhyme_rate": 1.0}},
    }
    text = format_report(report)
    assert "perplexity 123.46" in text and "1,200 poems, 56,000 characters" in text
    assert "BLEU-2       n/a" in text
    row = text.splitlines()[-1].split()
    assert row == ["free", "4", "0.250", "0.500", "0.900", "0.000", "0.000", "-", "1.000"]
