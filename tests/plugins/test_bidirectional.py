"""The bidirectional infilling plugin: the conformance kit, padding independence, reading both sides, the layout
signal, the reusable encoder, and training and filling templates through the command."""

from __future__ import annotations

import json
import unicodedata

import pytest
import torch
from conftest import assert_one_line_error, run_batch, run_tangrnn, tiny_config
from torch import nn

from tangrnn_bidirectional import BidirectionalEncoder, BidirectionalInfill, layout_positions
from tangrnn_core.api import INFILL, Batch, TokenSpec
from tangrnn_core.data.forms import Form, classify, split_lines_with_marks
from tangrnn_core.data.normalize import LINE_END_MARKS
from tangrnn_core.decoding.quantize import int8_for_decoding
from tangrnn_core.errors import ConfigError
from tangrnn_core.network import build_architecture
from tangrnn_core.registry import resolve_architecture
from tangrnn_core.testing import check_architecture

VOCAB = 23
TOKENS = TokenSpec(vocab_size=VOCAB, line_end_ids=(5, 6))
TINY = {"embedding_size": 8, "hidden_size": 6, "num_layers": 2, "dropout": 0.0}
CELLS = ["gru", "lstm"]


def make(**options) -> BidirectionalInfill:
    torch.manual_seed(0)
    return BidirectionalInfill(TOKENS, **{**TINY, **options})


def poem_ids(length: int, seed: int) -> torch.Tensor:
    """``(length,)`` ids laid out like verse: four characters, then a line-end mark, and again."""
    ids = torch.randint(TOKENS.mask_id + 1, VOCAB, (length,), generator=torch.Generator().manual_seed(seed))
    ids[ids == 5] = 7  # keep the marks for the layout
    ids[ids == 6] = 8
    ids[4::5] = torch.tensor([5, 6] * length)[: len(ids[4::5])]
    return ids


def batch_of(*rows: torch.Tensor) -> Batch:
    width = max(len(row) for row in rows)
    inputs = torch.full((len(rows), width), TOKENS.pad_id)
    for index, row in enumerate(rows):
        inputs[index, : len(row)] = row
    lengths = torch.tensor([len(row) for row in rows])
    return Batch(inputs=inputs, targets=torch.full_like(inputs, TOKENS.pad_id), lengths=lengths)


# -- the conformance kit ------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
def test_follows_the_plugin_api(cell, tmp_path):
    # Masked training batches, a checkpoint round trip with weights_only=True, a 五绝 written by mask-predict and
    # a template filled keeping its characters.
    check_architecture(BidirectionalInfill, options={**TINY, "cell": cell}, steps=2, tmp_path=tmp_path)


def test_registered_as_bidirectional_with_the_infill_capability_only():
    assert resolve_architecture("bidirectional") is BidirectionalInfill
    assert BidirectionalInfill.plugin_api == 1
    assert BidirectionalInfill.capabilities == frozenset({INFILL})


# -- what the network sees ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("line_positions", [True, False], ids=["layout", "no-layout"])
def test_padding_never_reaches_a_poem_batched_with_longer_ones(cell, line_positions):
    net = make(cell=cell, line_positions=line_positions).eval()
    short, longer, longest = poem_ids(10, seed=1), poem_ids(15, seed=2), poem_ids(20, seed=3)
    short[3] = TOKENS.mask_id
    with torch.no_grad():
        alone = net(batch_of(short))
        batched = net(batch_of(longest, short, longer))
    assert batched.shape == (3, 20, VOCAB)
    torch.testing.assert_close(batched[1, :10], alone[0], atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(batched[2, :15], net(batch_of(longer))[0], atol=1e-5, rtol=1e-5)
        # and what fills the padding does not matter either
        noisy = batch_of(longest, short, longer)
        noisy.inputs[1, 10:] = torch.arange(10) + TOKENS.mask_id + 1
        torch.testing.assert_close(net(noisy)[1, :10], alone[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_a_blank_is_scored_from_both_sides(cell):
    net = make(cell=cell).eval()
    poem = poem_ids(20, seed=4)
    poem[7] = TOKENS.mask_id
    with torch.no_grad():
        reference = net(batch_of(poem))[0, 7]
        for position in (1, 13):  # one character before the blank, one after it
            changed = poem.clone()
            changed[position] = 9 if int(poem[position]) != 9 else 10
            assert not torch.allclose(net(batch_of(changed))[0, 7], reference), position


def test_layout_positions_count_from_the_visible_marks():
    ends = torch.tensor(TOKENS.line_end_ids)
    m = TOKENS.mask_id
    inputs = torch.tensor(
        [
            [9, 9, 5, 9, 9, 6, 9, 9, 5, 9],
            [9, 9, m, 9, 9, 6, 9, 9, 5, 9],  # a hidden mark: its line seems to run on
        ]
    )
    position, line = layout_positions(inputs, ends)
    assert position.tolist() == [[0, 1, 2, 0, 1, 2, 0, 1, 2, 0], [0, 1, 2, 3, 4, 5, 0, 1, 2, 0]]
    assert line.tolist() == [[0, 0, 0, 1, 1, 1, 2, 2, 2, 3], [0, 0, 0, 0, 0, 0, 1, 1, 1, 2]]


def test_the_layout_signal_reaches_the_scores():
    net = make().eval()
    # zeros at first, so that they do not drown out the characters' embeddings early in training
    assert torch.all(net.line_position.weight == 0) and torch.all(net.line_index.weight == 0)
    poem = poem_ids(20, seed=11)
    poem[7] = TOKENS.mask_id
    with torch.no_grad():
        before = net(batch_of(poem))[0, 7]
        nn.init.normal_(net.line_position.weight)
        nn.init.normal_(net.line_index.weight)
        assert not torch.allclose(net(batch_of(poem))[0, 7], before)
    plain = make(line_positions=False)
    assert plain.line_position is None and plain.line_index is None
    assert sum(p.numel() for p in plain.parameters()) < sum(p.numel() for p in net.parameters())


def test_training_mode_applies_dropout():
    net = make(dropout=0.3).train()
    batch = batch_of(poem_ids(12, seed=5))
    torch.manual_seed(1)
    first = net(batch)
    torch.manual_seed(2)
    assert not torch.allclose(first, net(batch))


# -- the encoder, on its own --------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
def test_encoder_equals_torchs_bidirectional_module_row_by_row(cell):
    torch.manual_seed(0)
    encoder = BidirectionalEncoder(4, 5, num_layers=2, cell=cell).eval()
    plain = {"gru": nn.GRU, "lstm": nn.LSTM}[cell](4, 5, num_layers=2, batch_first=True, bidirectional=True)
    plain.load_state_dict(encoder.rnn.state_dict())
    inputs = torch.randn(3, 6, 4)
    lengths = torch.tensor([6, 3, 5])
    with torch.no_grad():
        outputs, state = encoder(inputs, lengths)
        assert outputs.shape == (3, 6, encoder.output_size) == (3, 6, 10)
        for row, length in enumerate(lengths.tolist()):
            expected, expected_state = plain(inputs[row : row + 1, :length])
            torch.testing.assert_close(outputs[row, :length], expected[0], atol=1e-5, rtol=1e-5)
            assert torch.all(outputs[row, length:] == 0)  # padded positions stay empty
            got, want = (state, expected_state) if cell == "lstm" else ((state,), (expected_state,))
            for final, reference in zip(got, want, strict=True):
                torch.testing.assert_close(final[:, row], reference[:, 0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_encoder_takes_empty_rows_and_merges_directions(cell):
    # An empty title is a row of length 0: zeros out, zeros as its final state, nothing raised.
    torch.manual_seed(0)
    encoder = BidirectionalEncoder(4, 3, num_layers=2, cell=cell)
    outputs, state = encoder(torch.randn(3, 5, 4), torch.tensor([5, 0, 2]))
    tensors = state if cell == "lstm" else (state,)
    assert outputs[1].abs().max() == 0 and all(t[:, 1].abs().max() == 0 for t in tensors)
    assert all(t[:, 0].abs().max() > 0 for t in tensors)
    merged = encoder.merge_directions(state)
    for whole, side_by_side in zip(tensors, merged if cell == "lstm" else (merged,)):
        assert side_by_side.shape == (2, 3, 6)
        torch.testing.assert_close(side_by_side[1, :, :3], whole[2])  # top layer, forward direction
        torch.testing.assert_close(side_by_side[1, :, 3:], whole[3])  # top layer, backward direction


@pytest.mark.parametrize(
    "options",
    [{"cell": "rnn"}, {"hidden_size": 0}, {"num_layers": 0}, {"dropout": 1.0}, {"dropout": -0.1}],
    ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()),
)
def test_invalid_options_raise_value_error(options):
    with pytest.raises(ValueError):
        BidirectionalInfill(TOKENS, **{**TINY, **options})


def test_options_are_type_checked_by_the_core():
    with pytest.raises(ConfigError, match="cell"):
        build_architecture("bidirectional", {"cell": "transformer"}, TOKENS)
    with pytest.raises(ValueError, match="line_end_ids"):
        BidirectionalInfill(TokenSpec(vocab_size=VOCAB), **TINY)
    assert BidirectionalInfill(TokenSpec(vocab_size=VOCAB), **TINY, line_positions=False)


# -- output layer, precision, quantization ------------------------------------------------------------------


def test_tied_weights_share_the_embedding_through_a_projection():
    tied = make(tie_weights=True)
    assert tied.output.weight is tied.embedding.weight
    assert tuple(tied.projection.weight.shape) == (TINY["embedding_size"], 2 * TINY["hidden_size"])
    same = make(embedding_size=12, hidden_size=6, tie_weights=True)
    assert isinstance(same.projection, nn.Identity) and same.output.weight is same.embedding.weight
    untied = make(tie_weights=False)
    assert untied.output.weight is not untied.embedding.weight and untied.output.in_features == 12
    for net in (tied, same, untied):
        assert net(batch_of(poem_ids(10, seed=6))).shape == (1, 10, VOCAB)


@pytest.mark.parametrize("cell", CELLS)
def test_forward_and_backward_under_cpu_bf16_autocast(cell):
    net = make(cell=cell).train()
    batch = batch_of(poem_ids(12, seed=7), poem_ids(8, seed=8))  # padded: the packed path
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = net(batch)
    assert logits.shape == (2, 12, VOCAB) and torch.isfinite(logits.float()).all()
    logits.float().sum().backward()
    assert torch.isfinite(net.embedding.weight.grad).all()


@pytest.mark.parametrize("cell", CELLS)
def test_int8_weights_keep_the_scores_close(cell):
    net = make(cell=cell).eval()
    batch = batch_of(poem_ids(12, seed=9), poem_ids(8, seed=10))
    quantized = int8_for_decoding(net)
    with torch.no_grad():
        assert (quantized(batch) - net(batch)).abs().max() < 0.1


# -- training and filling templates through the command -----------------------------------------------------

TEMPLATE = "白日依山尽，黄河入海流。欲穷□□□，更上一层楼。"
FORMS = {"五绝": Form.WUJUE, "七绝": Form.QIJUE, "五律": Form.WULV, "七律": Form.QILV}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, small_corpus):
    """A tiny bidirectional model trained by `tangrnn fit` on the small corpus."""
    tmp = tmp_path_factory.mktemp("bidirectional")
    path = tiny_config(tmp, small_corpus, architecture="bidirectional", max_steps=40, val_check_interval=20)
    config = json.loads(path.read_text(encoding="utf-8"))
    config["model"]["architecture_options"] = {"cell": "gru", "embedding_size": 16, "hidden_size": 16, "num_layers": 1}
    path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    result = run_tangrnn("fit", "--config", str(path))
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoints = sorted((tmp / "runs").rglob("last.ckpt"))
    assert checkpoints, result.stderr[-3000:]
    return {"path": str(checkpoints[-1]), "tmp": tmp, "fit": result}


@pytest.fixture(scope="module")
def results(trained):
    ckpt = ["generate", "--ckpt_path", trained["path"], "--output", "json"]
    cases = {
        "template": {"argv": [*ckpt, "--template", TEMPLATE, "--num_poems", "6", "--seed", "1"]},
        **{f"form {name}": {"argv": [*ckpt, "--form", name, "--num_poems", "4", "--seed", "1"]} for name in FORMS},
        "acrostic": {"argv": [*ckpt, "--acrostic", "春夏秋冬", "--form", "七绝", "--num_poems", "4", "--seed", "2"]},
        "first line": {
            "argv": [*ckpt, "--first_line", "白日依山尽", "--form", "五律", "--num_poems", "4", "--seed", "3"]
        },
        "no repeat": {
            "argv": [*ckpt, "--form", "七律", "--no_repeat", "true", "--num_poems", "6", "--temperature", "1.2"]
        },
        "iterations": {"argv": [*ckpt, "--form", "五绝", "--iterations", "3", "--num_poems", "4", "--seed", "4"]},
        "int8": {"argv": [*ckpt, "--template", TEMPLATE, "--quantize", "int8", "--num_poems", "2", "--seed", "1"]},
        "seed a": {"argv": [*ckpt, "--form", "五绝", "--num_poems", "4", "--seed", "7"]},
        "seed b": {"argv": [*ckpt, "--form", "五绝", "--num_poems", "4", "--seed", "7"]},
        "seed c": {"argv": [*ckpt, "--form", "五绝", "--num_poems", "4", "--seed", "8"]},
        "prefix": {"argv": [*ckpt, "--form", "五绝", "--prefix", "白日"]},
        "beams": {"argv": [*ckpt, "--form", "五绝", "--num_beams", "3"]},
    }
    return run_batch(cases, trained["tmp"])


def poems_of(result) -> list[str]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line)["poem"] for line in result.stdout.splitlines() if line.startswith("{")]


def is_verse_character(char: str) -> bool:
    # a Han character of any CJK block (the corpus has extension B ones): no punctuation, no special token
    return unicodedata.category(char) == "Lo"


def test_fit_prints_sample_poems_written_by_mask_predict(trained):
    # Without a form an infilling model writes the four regular forms in turn, at each validation.
    out = trained["fit"].stdout
    assert "Poems after 20 steps:" in out, out
    samples = out.split("Poems after 20 steps:")[1].split()[:4]
    assert {classify(poem) for poem in samples} == set(FORMS.values()), samples


def test_a_template_keeps_its_characters_and_fills_the_blanks_with_verse(results):
    poems = poems_of(results["template"])
    assert len(poems) == 6
    for poem in poems:
        assert len(poem) == len(TEMPLATE), poem
        assert all(slot == "□" or slot == char for slot, char in zip(TEMPLATE, poem)), poem
        assert all(is_verse_character(poem[i]) for i, slot in enumerate(TEMPLATE) if slot == "□"), poem
        assert classify(poem) is Form.WUJUE
    int8 = poems_of(results["int8"])
    assert len(int8) == 2
    assert all(poem[:14] == TEMPLATE[:14] and poem[17:] == TEMPLATE[17:] for poem in int8), int8


@pytest.mark.parametrize("name", list(FORMS))
def test_a_form_gives_poems_of_that_form(results, name):
    poems = poems_of(results[f"form {name}"])
    assert len(poems) == 4
    for poem in poems:
        assert classify(poem) is FORMS[name], poem
        assert all(is_verse_character(c) for c in poem if c not in LINE_END_MARKS), poem


def test_acrostic_and_first_line(results):
    for poem in poems_of(results["acrostic"]):
        lines = split_lines_with_marks(poem)
        assert classify(poem) is Form.QIJUE and "".join(line[0] for line in lines) == "春夏秋冬", poem
    for poem in poems_of(results["first line"]):
        assert classify(poem) is Form.WULV and poem.startswith("白日依山尽，"), poem


def test_no_repeat_and_iterations(results):
    for poem in poems_of(results["no repeat"]):
        verse = [c for c in poem if c not in LINE_END_MARKS]
        # as left to right: no character twice, but for one immediate reduplication (青青)
        doubled = [i > 0 and verse[i - 1] == c and verse[i - 2 : i - 1] != [c] for i, c in enumerate(verse)]
        repeats = [c for i, c in enumerate(verse) if c in verse[:i] and not doubled[i]]
        assert classify(poem) is Form.QILV and repeats == [], poem
    poems = poems_of(results["iterations"])
    assert len(poems) == 4 and all(classify(p) is Form.WUJUE for p in poems)


def test_same_seed_same_poems(results):
    assert poems_of(results["seed a"]) == poems_of(results["seed b"])
    assert poems_of(results["seed a"]) != poems_of(results["seed c"])


@pytest.mark.parametrize(("case", "fragment"), [("prefix", "--prefix"), ("beams", "--num_beams")])
def test_left_to_right_options_are_one_line_errors(results, case, fragment):
    assert results[case].returncode == 2
    assert_one_line_error(results[case], fragment)
