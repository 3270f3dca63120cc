"""Masked training and mask-predict decoding, on a tiny infilling network defined here (the core alone: the
bidirectional plugin has its own tests)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from tangrnn_core.api import INFILL, Architecture, Batch, TokenSpec
from tangrnn_core.data.forms import Form, classify
from tangrnn_core.data.normalize import LINE_END_MARKS
from tangrnn_core.data.vocab import Vocabulary
from tangrnn_core.decoding.infill import mask_predict
from tangrnn_core.decoding.request import PoemRequest
from tangrnn_core.decoding.template import Template
from tangrnn_core.decoding.write import write_poems
from tangrnn_core.errors import ConfigError
from tangrnn_core.objectives import masked_batch
from tangrnn_core.testing import POEMS, check_architecture


class TinyInfill(Architecture):
    """A bidirectional GRU that scores every position's character from both sides.

    Args:
        tokens: the vocabulary's ids.
        hidden_size: units each way.
    """

    plugin_api = 1
    capabilities = frozenset({INFILL})

    def __init__(self, tokens: TokenSpec, hidden_size: int = 16) -> None:
        super().__init__(tokens)
        self.embedding = nn.Embedding(tokens.vocab_size, hidden_size)
        self.rnn = nn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.output = nn.Linear(2 * hidden_size, tokens.vocab_size)

    def forward(self, batch: Batch) -> Tensor:
        hidden, _ = self.rnn(self.embedding(batch.inputs))
        return self.output(hidden)


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return Vocabulary.build(POEMS)


@pytest.fixture(scope="module")
def net(vocabulary) -> TinyInfill:
    torch.manual_seed(0)
    return TinyInfill(vocabulary.token_spec(LINE_END_MARKS)).eval()


def test_masked_batches_hide_characters_and_target_only_them(vocabulary):
    from tangrnn_core.data.datamodule import PadCollate

    batch = PadCollate(vocabulary)([torch.tensor(vocabulary.encode(p)) for p in POEMS[:8]])
    masked = masked_batch(
        batch, vocabulary.mask_id, vocabulary.pad_id, vocabulary.eos_id, torch.Generator().manual_seed(1)
    )
    hidden = masked.inputs == vocabulary.mask_id
    assert hidden.any(1).all()  # at least one hidden character per poem
    assert torch.equal(hidden, masked.targets != vocabulary.pad_id)
    poems = batch.targets.masked_fill(batch.targets == vocabulary.eos_id, vocabulary.pad_id)
    assert torch.equal(masked.targets[hidden], poems[hidden])
    assert torch.equal(masked.inputs[~hidden], poems[~hidden])  # the rest is the poem, without <bos>/<eos>
    assert torch.equal(masked.lengths, batch.lengths - 1)
    again = masked_batch(
        batch, vocabulary.mask_id, vocabulary.pad_id, vocabulary.eos_id, torch.Generator().manual_seed(1)
    )
    assert torch.equal(again.inputs, masked.inputs)  # a seeded generator: the same characters every validation
    many = [masked_batch(batch, vocabulary.mask_id, vocabulary.pad_id, vocabulary.eos_id) for _ in range(20)]
    shares = torch.stack([(m.inputs == vocabulary.mask_id).sum(1) / m.lengths for m in many]).flatten()
    assert shares.min() < 0.3 and shares.max() > 0.7  # hiding a few characters as well as nearly all


def test_mask_predict_fills_only_the_blanks_with_verse_characters(net, vocabulary):
    template = Template.parse("白日依山尽，黄河入海流。欲穷□□□，更上一层楼。")
    poems = mask_predict(net, vocabulary, template, 5, temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert len(poems) == 5
    for poem in poems:
        assert poem[:14] == "白日依山尽，黄河入海流。欲穷" and poem[17:] == "，更上一层楼。"
        assert all(c not in "，。？！；：" for c in poem[14:17])
    same = mask_predict(net, vocabulary, template, 5, temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert same == poems
    assert len(set(poems)) > 1  # sampled: poems differ


def test_all_blank_forms_acrostic_and_no_repeat(net, vocabulary):
    for form in ("五绝", "七绝", "五律", "七律"):
        poems = write_poems(
            net, vocabulary, PoemRequest(form=form, num_poems=3, seed=1, no_repeat=True, acrostic="春山")
        )
        for poem in poems:
            assert classify(poem) == Form.parse(form)
            lines = poem.replace("。", "，").split("，")
            assert lines[0][0] == "春" and lines[1][0] == "山"
            verse = [c for c in poem if c not in "，。"]
            # no character twice, but for an immediate reduplication (青青), as left to right
            repeats = [c for i, c in enumerate(verse) if c in verse[:i] and verse[i - 1] != c]
            assert repeats == [], poem


def test_without_a_shape_an_infilling_model_writes_the_four_forms(net, vocabulary):
    poems = write_poems(net, vocabulary, PoemRequest(num_poems=8, seed=0))
    assert sorted(classify(p).value for p in poems) == sorted(["五绝", "七绝", "五律", "七律"] * 2)


@pytest.mark.parametrize(
    ("request_", "fragment"),
    [
        (PoemRequest(form="五绝", prefix="白日"), "--prefix"),
        (PoemRequest(form="五绝", num_beams=3), "--iterations"),
        (PoemRequest(form="五绝", iterations=0), "iterations"),
        (PoemRequest(template="白日依山尽，黄河入海流。", num_poems=1), "blank"),
    ],
)
def test_requests_an_infilling_model_cannot_serve(net, vocabulary, request_, fragment):
    with pytest.raises(ConfigError, match=fragment):
        write_poems(net, vocabulary, request_)


def test_the_conformance_kit_trains_and_decodes_an_infilling_network(tmp_path):
    check_architecture(TinyInfill, options={"hidden_size": 8}, steps=2, tmp_path=tmp_path)


def test_tones_and_rhyme_constrain_infilling_too(net, vocabulary):
    from tangrnn_core.prosody.checker import check_poem

    for form in ("五绝", "七绝"):
        request = PoemRequest(form=form, num_poems=4, seed=2, tones="strict", rhyme="auto", acrostic="春")
        for poem in write_poems(net, vocabulary, request):
            assert classify(poem) == Form.parse(form) and poem[0] == "春"
            assert check_poem(poem).passed, (poem, [str(f) for f in check_poem(poem).violations])
