"""The seq2seq plugin: the conformance kit for both attentions and both encoder directions, what the memory holds
(the title, the previous line and nothing older), title dropout, and training then writing to a title through the
command."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import assert_one_line_error, run_batch, run_tangrnn, tiny_config

from tangrnn_core.api import Batch, TokenSpec
from tangrnn_core.data.forms import Form, classify, split_lines_with_marks
from tangrnn_core.decoding.quantize import int8_for_decoding
from tangrnn_core.network import build_architecture
from tangrnn_core.registry import resolve_architecture
from tangrnn_core.testing import check_architecture
from tangrnn_seq2seq import Seq2Seq

VOCAB = 30
COMMA, STOP = 5, 6
TOKENS = TokenSpec(vocab_size=VOCAB, line_end_ids=(COMMA, STOP))
TINY = {"embedding_size": 8, "hidden_size": 12, "num_layers": 1, "encoder_size": 6, "attention_size": 8, "dropout": 0.0}


def make(**options) -> Seq2Seq:
    torch.manual_seed(0)
    return Seq2Seq(TOKENS, **{**TINY, **options})


def poem_batch(poems: list[list[int]], titles: list[list[int]]) -> Batch:
    """``<bos>`` + each poem's ids, padded at the end, with its title as context."""
    lengths = torch.tensor([len(poem) + 1 for poem in poems])
    inputs = torch.full((len(poems), int(lengths.max())), TOKENS.pad_id)
    for row, poem in enumerate(poems):
        inputs[row, : len(poem) + 1] = torch.tensor([TOKENS.bos_id, *poem])
    context = torch.full((len(titles), max(1, max(map(len, titles)))), TOKENS.pad_id)
    for row, title in enumerate(titles):
        context[row, : len(title)] = torch.tensor(title, dtype=torch.long)
    context_lengths = torch.tensor([len(title) for title in titles])
    return Batch(inputs, inputs, lengths, context, context_lengths)


# Three lines of four characters: line 1 occupies inputs 1-4 and its mark 5, line 2 6-9 and 10, line 3 11-14 and 15.
THREE_LINES = [10, 11, 12, 13, COMMA, 14, 15, 16, 17, STOP, 18, 19, 20, 21, COMMA]
LINE_2 = slice(5, 10)  # positions whose memory is line 1 (from its mark to the last character of line 2)
LINE_3 = slice(10, 16)


# -- the conformance kit ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"attention": "luong", "bidirectional": True, "cell": "lstm", "num_layers": 2},
        {"attention": "luong", "bidirectional": False, "cell": "gru"},
        {"attention": "bahdanau", "bidirectional": True, "cell": "gru"},
        {"attention": "bahdanau", "bidirectional": False, "cell": "lstm", "max_line_chars": 3},
    ],
    ids=["luong-bi-lstm", "luong-uni-gru", "bahdanau-bi-gru", "bahdanau-uni-lstm-short-lines"],
)
def test_follows_the_plugin_api(options, tmp_path):
    # Among the rules: another title changes the logits, step == forward and prefill with titles,
    # reorder_state, a checkpoint round trip with weights_only=True, and a constrained poem.
    check_architecture(Seq2Seq, options={**TINY, **options}, tmp_path=tmp_path)


def test_registered_as_seq2seq_with_its_capabilities():
    assert resolve_architecture("seq2seq") is Seq2Seq
    assert Seq2Seq.capabilities == {"causal", "conditional"}


# -- what the memory holds ---------------------------------------------------------------------------------


@pytest.mark.parametrize("attention", ["luong", "bahdanau"])
def test_the_title_changes_the_logits_and_the_title_memory(attention):
    net = make(attention=attention).eval()
    with torch.no_grad():
        first, second = (net(poem_batch([THREE_LINES], [title])) for title in ([22, 23], [24, 25]))
        memories = [net.title_memory(poem_batch([THREE_LINES], [title])) for title in ([22, 23], [24, 25])]
    assert (first - second).abs().amax(-1).gt(1e-4).all()  # at every position, the first included
    torch.testing.assert_close(memories[0].values[:, 0], memories[1].values[:, 0])  # the null slot
    assert not torch.allclose(memories[0].values[:, 1:], memories[1].values[:, 1:])


@pytest.mark.parametrize("bidirectional", [True, False])
def test_the_line_memory_holds_the_previous_line_only(bidirectional):
    net = make(bidirectional=bidirectional).eval()
    changed = list(THREE_LINES)
    changed[1] = 27  # the second character of line 1
    batches = [poem_batch([poem], [[22]]) for poem in (THREE_LINES, changed)]
    with torch.no_grad():
        memory, other = (net.line_memory(batch) for batch in batches)
        logits, other_logits = (net(batch) for batch in batches)
    # Before line 1 ends, nothing is in the line memory; from its mark on, its four characters.
    assert not memory.mask[0, :5].any()
    assert memory.mask[0, LINE_2].all() and memory.mask[0, LINE_3].all()
    # Line 1 is the memory of line 2, so its change shows there ...
    assert (memory.values[0, LINE_2] - other.values[0, LINE_2]).abs().amax((-1, -2)).gt(1e-6).all()
    assert (logits[0, LINE_2] - other_logits[0, LINE_2]).abs().amax(-1).gt(1e-6).all()
    # ... but line 3 remembers line 2 alone: the change reaches it only through the decoder's state.
    torch.testing.assert_close(memory.values[0, LINE_3], other.values[0, LINE_3], rtol=0, atol=0)
    torch.testing.assert_close(memory.keys[0, LINE_3], other.keys[0, LINE_3], rtol=0, atol=0)
    assert not torch.allclose(logits[0, LINE_3], other_logits[0, LINE_3])
    # And before the mark that ends line 1, the change is in the decoder's input, not in any memory.
    torch.testing.assert_close(memory.values[0, :5], other.values[0, :5], rtol=0, atol=0)


def test_a_line_memory_is_the_encoded_line_itself():
    net = make(bidirectional=True).eval()
    batch = poem_batch([THREE_LINES], [[]])
    with torch.no_grad():
        memory = net.line_memory(batch)
        line_1 = net._encode_memory(torch.tensor([[10, 11, 12, 13]]), torch.tensor([4]))
        line_2 = net._encode_memory(torch.tensor([[14, 15, 16, 17]]), torch.tensor([4]))
    torch.testing.assert_close(memory.values[0, 5], line_1.values[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(memory.values[0, 10], line_2.values[0], atol=1e-6, rtol=0)


def test_long_lines_are_cut_and_empty_lines_leave_an_empty_memory():
    net = make(max_line_chars=3).eval()
    # line 1 has five characters; then an empty line (two marks in a row)
    batch = poem_batch([[10, 11, 12, 13, 14, COMMA, STOP, 15, 16]], [[22]])
    with torch.no_grad():
        memory = net.line_memory(batch)
    assert memory.mask.shape[-1] == 3
    assert memory.mask[0, 6].tolist() == [True, True, True]  # the first three characters of line 1
    assert not memory.mask[0, 7:].any()  # the empty line


def test_batches_mix_lengths_empty_titles_and_poems_without_marks():
    net = make().eval()
    batch = poem_batch([THREE_LINES, [10, 11, 12], [10, COMMA, 11]], [[22, 23, 24], [], [25]])
    with torch.no_grad():
        full = net(batch)
        alone = [net(poem_batch([poem], [title])) for poem, title in (([10, 11, 12], []), ([10, COMMA, 11], [25]))]
    assert torch.isfinite(full).all()
    torch.testing.assert_close(full[1, :4], alone[0][0], atol=1e-5, rtol=0)
    torch.testing.assert_close(full[2, :4], alone[1][0], atol=1e-5, rtol=0)


def test_a_missing_context_is_an_empty_title():
    net = make().eval()
    with_empty = poem_batch([THREE_LINES], [[]])
    without = Batch(with_empty.inputs, with_empty.targets, with_empty.lengths)
    with torch.no_grad():
        torch.testing.assert_close(net(without), net(with_empty))
        logits, _ = net.step(without.inputs[:, 0], net.initial_state(1, None))
    torch.testing.assert_close(logits, net(without)[:, 0])


def test_title_dropout_empties_titles_in_training_only():
    batch = poem_batch([THREE_LINES] * 2, [[22, 23], [22, 23]])
    empty = poem_batch([THREE_LINES] * 2, [[], []])
    net = make(title_dropout=1.0)
    with torch.no_grad():
        torch.testing.assert_close(net.train()(batch), net(empty))
        assert not torch.allclose(net.eval()(batch), net(empty))
    # a share of the rows, drawn anew at every batch
    net = make(title_dropout=0.5).train()
    rows = poem_batch([THREE_LINES] * 64, [[22, 23]] * 64)
    empty_rows = poem_batch([THREE_LINES] * 64, [[]] * 64)
    with torch.no_grad():
        dropped = (net(rows) - net(empty_rows)).abs().amax((1, 2)).lt(1e-6)
    assert 16 < int(dropped.sum()) < 48


def test_int8_decoding_steps_like_fp32():
    net = make(num_layers=2, bidirectional=True).eval()
    batch = poem_batch([THREE_LINES], [[22, 23]])
    quantized = int8_for_decoding(net)
    context = Batch(batch.inputs[:, :0], batch.inputs[:, :0], batch.lengths * 0, batch.context, batch.context_lengths)
    with torch.no_grad():
        expected = net(batch)[0, -1]
        logits, _ = quantized.prefill(batch.inputs, quantized.initial_state(1, context))
    assert (logits[0] - expected).abs().max() < 0.1


@pytest.mark.parametrize("attention", ["luong", "bahdanau"])
def test_every_parameter_gets_a_gradient(attention):
    # DDP's default (find_unused_parameters=False) needs it, and it shows that no part is left unwired.
    net = make(attention=attention, num_layers=2).train()
    net(poem_batch([THREE_LINES, THREE_LINES[:3]], [[22, 23], []])).sum().backward()
    missing = [name for name, parameter in net.named_parameters() if parameter.grad is None]
    assert missing == []


@pytest.mark.parametrize("attention", ["luong", "bahdanau"])
def test_forward_backward_and_step_under_cpu_bf16_autocast(attention):
    # oneDNN's recurrent kernels refuse an fp32 input with bf16 weights; the plugin casts its inputs.
    net = make(attention=attention, num_layers=2).train()
    batch = poem_batch([THREE_LINES, THREE_LINES[:7]], [[22, 23], []])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        net(batch).float().sum().backward()
    assert net.embedding.weight.grad is not None and torch.isfinite(net.embedding.weight.grad).all()
    net.eval()
    context = Batch(batch.inputs[:, :0], batch.inputs[:, :0], batch.lengths * 0, batch.context, batch.context_lengths)
    with torch.no_grad():
        reference = net(batch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = net(batch).float()
            stepped, _ = net.prefill(batch.inputs[:, :7], net.initial_state(2, context))
    assert (low - reference).abs().max() < 0.1
    assert (stepped.float() - reference[:, 6]).abs().max() < 0.1


@pytest.mark.parametrize(
    "options",
    [
        {"hidden_size": 0},
        {"encoder_size": 0},
        {"max_line_chars": 0},
        {"dropout": 1.0},
        {"title_dropout": 1.5},
        {"attention": "dot"},
        {"cell": "rnn"},
    ],
    ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()),
)
def test_invalid_options_are_refused(options):
    with pytest.raises(ValueError):
        Seq2Seq(TOKENS, **options)


def test_options_are_type_checked_through_the_core():
    from tangrnn_core.errors import ConfigError

    with pytest.raises(ConfigError, match="attention"):
        build_architecture("seq2seq", {"attention": "dot"}, TOKENS)


# -- through the command ------------------------------------------------------------------------------------

FORMS = {"五绝": Form.WUJUE, "七绝": Form.QIJUE, "五律": Form.WULV, "七律": Form.QILV}


def test_fit_then_generate_to_a_title_through_the_command(tmp_path, small_corpus):
    path = tiny_config(tmp_path, small_corpus, architecture="seq2seq")
    config = json.loads(path.read_text(encoding="utf-8"))
    config["model"]["architecture_options"] = {**TINY, "attention": "bahdanau", "title_dropout": 0.2}
    path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    fit = run_tangrnn("fit", "--config", str(path))
    assert fit.returncode == 0, fit.stderr[-3000:]
    ckpt = next((tmp_path / "runs").rglob("last.ckpt"))

    base = ["generate", "--ckpt_path", str(ckpt), "--seed", "1", "--output", "json"]
    titled = [*base, "--title", "春夜喜雨"]
    cases = {name: {"argv": [*titled, "--form", name, "--num_poems", "3"]} for name in FORMS}
    cases["acrostic"] = {"argv": [*titled, "--form", "五绝", "--acrostic", "春夜喜雨", "--num_poems", "2"]}
    cases["first line"] = {"argv": [*titled, "--form", "五律", "--first_line", "好雨知时节", "--num_poems", "2"]}
    cases["beams"] = {"argv": [*titled, "--form", "七绝", "--num_beams", "3", "--num_poems", "2"]}
    cases["no title"] = {"argv": [*base, "--form", "七绝", "--num_poems", "2"]}
    cases["unknown title"] = {"argv": [*base, "--form", "五绝", "--title", "春夜龘雨"]}
    results = run_batch(cases, tmp_path)

    def poems(name: str) -> list[str]:
        result = results[name]
        assert result.returncode == 0, result.stderr[-3000:]
        found = [json.loads(line)["poem"] for line in result.stdout.splitlines() if line.startswith("{")]
        assert found, result.stdout
        return found

    for name, form in FORMS.items():
        assert all(classify(poem) is form for poem in poems(name)), poems(name)
    for poem in poems("acrostic"):
        assert classify(poem) is Form.WUJUE
        assert "".join(line[0] for line in split_lines_with_marks(poem)) == "春夜喜雨"
    for poem in poems("first line"):
        assert classify(poem) is Form.WULV and poem.startswith("好雨知时节，")
    assert all(classify(poem) is Form.QIJUE for poem in poems("beams") + poems("no title"))
    assert results["unknown title"].returncode == 2
    assert_one_line_error(results["unknown title"], "--title", "龘")
