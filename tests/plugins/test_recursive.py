"""The recursive plugin: the plugin API (conformance kit), the prosodic tree, the causal context, and training
and writing every regular form through the `tangrnn` command."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_batch, run_tangrnn, tiny_config

from tangrnn_core.api import Batch, TokenSpec
from tangrnn_core.data.forms import Form, classify, split_lines
from tangrnn_core.testing import check_architecture
from tangrnn_recursive import GatedComposition, ProsodicTree, RecursiveRNN, feet_of
from tangrnn_recursive.model import BUFFER_SIZE

TINY = {"embedding_size": 12, "tree_size": 10, "context_size": 8, "hidden_size": 16, "num_layers": 2}
VOCAB = 40
END, STOP = 5, 6  # two line-end marks of the synthetic vocabulary; ids from 7 are characters
TOKENS = TokenSpec(vocab_size=VOCAB, line_end_ids=(END, STOP))


def make(**options) -> RecursiveRNN:
    torch.manual_seed(0)
    return RecursiveRNN(TOKENS, **{**TINY, "dropout": 0.0, **options})


def encode(poems: list[list[int]]) -> Batch:
    """A batch of id lists, ``<bos>`` first, padded at the end as the data module pads."""
    lengths = torch.tensor([len(poem) + 1 for poem in poems])
    inputs = torch.full((len(poems), int(lengths.max())), TOKENS.pad_id)
    targets = torch.full_like(inputs, TOKENS.pad_id)
    for row, poem in enumerate(poems):
        inputs[row, 0] = TOKENS.bos_id
        inputs[row, 1 : len(poem) + 1] = torch.tensor(poem)
        targets[row, : len(poem)] = torch.tensor(poem)
        targets[row, len(poem)] = TOKENS.eos_id
    return Batch(inputs=inputs, targets=targets, lengths=lengths)


def poem(*lines: list[int], marks: tuple[int, ...] = (END, STOP)) -> list[int]:
    ids: list[int] = []
    for index, line in enumerate(lines):
        ids += [*line, marks[index % len(marks)]]
    return ids


def chars(count: int, first: int = 7) -> list[int]:
    return [first + (index * 7) % (VOCAB - first) for index in range(count)]


# -- the plugin API ----------------------------------------------------------------------------------------


def test_conformance_kit(tmp_path):
    check_architecture(RecursiveRNN, options=TINY, tmp_path=tmp_path)


def test_plugin_api_and_capabilities():
    assert RecursiveRNN.plugin_api == 1
    assert "causal" in RecursiveRNN.capabilities
    assert RecursiveRNN.state_batch_dim == 0


@pytest.mark.parametrize(
    "options",
    [{"dropout": 1.0}, {"dropout": -0.1}, {"tree_size": 0}, {"context_size": 0}, {"hidden_size": 0}, {"num_layers": 0}],
    ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()),
)
def test_invalid_options_raise_value_error(options):
    with pytest.raises(ValueError):
        RecursiveRNN(TOKENS, **options)


def test_tied_and_untied_output():
    tied = make(tie_weights=True)
    assert tied.output.weight.data_ptr() == tied.embedding.weight.data_ptr()
    untied = make(tie_weights=False)
    assert untied.output.weight.data_ptr() != untied.embedding.weight.data_ptr()
    assert untied.output.in_features == TINY["hidden_size"] + TINY["context_size"]


def test_step_equals_forward_on_irregular_lines():
    # Lines of 1 to 20 characters (the step buffer starts at BUFFER_SIZE and must grow), an empty line (two marks
    # in a row), a poem without a closing mark, and rows of different lengths.
    assert BUFFER_SIZE < 20
    poems = [
        poem(chars(1), chars(2), chars(3), chars(4), chars(6), chars(9)),
        poem(chars(20, 9), chars(5, 11), [], chars(7, 13)),
        poem(chars(7), chars(7, 8)) + chars(3, 10),
    ]
    batch = encode(poems)
    net = make().eval()
    with torch.no_grad():
        full = net(batch)
        state = net.initial_state(batch.size)
        for position in range(batch.inputs.shape[1]):
            logits, state = net.step(batch.inputs[:, position], state)
            real = batch.lengths > position
            torch.testing.assert_close(logits[real], full[real, position], atol=1e-5, rtol=1e-5)
    assert state[3].shape[1] >= 20  # the buffer grew for the 20-character line


def test_forward_is_causal():
    net = make().eval()
    batch = encode([poem(chars(5), chars(5, 9), chars(5, 11), chars(5, 13))])
    changed = batch.inputs.clone()
    cut = 9  # inside the second line
    changed[:, cut:] = torch.randint(7, VOCAB, changed[:, cut:].shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = net(batch)
        after = net(Batch(inputs=changed, targets=batch.targets, lengths=batch.lengths))
    torch.testing.assert_close(after[:, :cut], before[:, :cut])
    assert not torch.allclose(after[:, cut:], before[:, cut:])


def test_forward_backward_and_step_under_cpu_bf16_autocast():
    # oneDNN's LSTM refuses fp32 inputs or states with bf16 weights; the plugin casts them.
    net = make().train()
    batch = encode([poem(chars(5), chars(5, 9), chars(5, 11)), poem(chars(7), chars(7, 12))])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = net(batch)
    logits.float().sum().backward()
    assert torch.isfinite(net.tree.compose.linear.weight.grad).all()
    net.eval()
    with torch.no_grad():
        reference = net(batch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = net(batch).float()
            state = net.initial_state(batch.size)
            for position in range(batch.inputs.shape[1]):
                stepped, state = net.step(batch.inputs[:, position], state)
    assert (low - reference).abs().max() < 0.1
    last = batch.lengths - 1
    assert (stepped.float() - reference[torch.arange(batch.size), last]).abs().max() < 0.1


# -- the prosodic tree -------------------------------------------------------------------------------------


def test_feet_follow_the_prosody_of_five_and_seven_character_lines():
    assert feet_of(5) == [(0, 2), (2, 3)]  # 2+3
    assert feet_of(7) == [(0, 2), (2, 2), (4, 3)]  # 2+2+3
    # The generic rule for irregular lines: feet of two, the last of three when the length is odd.
    assert feet_of(0) == [] and feet_of(1) == [(0, 1)] and feet_of(2) == [(0, 2)] and feet_of(3) == [(0, 3)]
    assert feet_of(4) == [(0, 2), (2, 2)] and feet_of(6) == [(0, 2), (2, 2), (2 * 2, 2)]
    for length in range(30):
        feet = feet_of(length)
        assert sum(size for _, size in feet) == length
        assert all(start == sum(size for _, size in feet[:i]) for i, (start, _) in enumerate(feet))


def reference_line(tree: ProsodicTree, leaves: torch.Tensor) -> torch.Tensor:
    """One line composed node by node from the tree's own modules and `feet_of`, written independently of the
    batched implementation: the tree the module documentation describes."""
    compose = tree.compose
    if len(leaves) == 0:
        return tree.empty
    nodes = []
    for start, size in feet_of(len(leaves)):
        a = leaves[start]
        if size == 2:
            a = compose(a, leaves[start + 1])
        elif size == 3:
            b, c = leaves[start + 1], leaves[start + 2]
            two_one, one_two = compose(compose(a, b), c), compose(a, compose(b, c))
            gate = torch.sigmoid(tree.split_gate(torch.cat([two_one, one_two])))
            a = gate * two_one + (1 - gate) * one_two
        nodes.append(a)
    while len(nodes) > 1:
        nodes = [compose(*nodes[i : i + 2]) if i + 1 < len(nodes) else nodes[i] for i in range(0, len(nodes), 2)]
    return nodes[0]


def make_tree(size: int = 6, seed: int = 0) -> ProsodicTree:
    torch.manual_seed(seed)
    tree = ProsodicTree(input_size=5, size=size)
    with torch.no_grad():
        tree.empty.normal_()  # zeros by default: make the empty line distinguishable in the test
    return tree


def test_batched_tree_equals_the_reference_tree_for_every_length():
    tree = make_tree()
    lengths = torch.tensor([5, 7, 0, 1, 2, 3, 4, 6, 8, 9, 13, 21, 5])
    inputs = torch.randn(len(lengths), int(lengths.max()), 5)
    with torch.no_grad():
        batched = tree(inputs, lengths)
        leaves = torch.tanh(tree.leaf(inputs))
        for row, length in enumerate(lengths.tolist()):
            expected = reference_line(tree, leaves[row, :length])
            torch.testing.assert_close(batched[row], expected, atol=1e-6, rtol=1e-6, msg=f"length {length}")


def test_five_and_seven_character_lines_are_exactly_2_3_and_2_2_3():
    # Spelled out, without feet_of: 5 = (c0 c1) + mix[(c2 c3) c4, c2 (c3 c4)], 7 = ((c0 c1) (c2 c3)) + mix[...]
    tree = make_tree()
    compose = tree.compose

    def tail(a, b, c):
        two_one, one_two = compose(compose(a, b), c), compose(a, compose(b, c))
        gate = torch.sigmoid(tree.split_gate(torch.cat([two_one, one_two])))
        return gate * two_one + (1 - gate) * one_two

    with torch.no_grad():
        inputs = torch.randn(2, 7, 5)
        batched = tree(inputs, torch.tensor([5, 7]))
        x = torch.tanh(tree.leaf(inputs))
        five = compose(compose(x[0, 0], x[0, 1]), tail(x[0, 2], x[0, 3], x[0, 4]))
        seven = compose(compose(compose(x[1, 0], x[1, 1]), compose(x[1, 2], x[1, 3])), tail(x[1, 4], x[1, 5], x[1, 6]))
    torch.testing.assert_close(batched[0], five, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(batched[1], seven, atol=1e-6, rtol=1e-6)


def symmetric_tree() -> ProsodicTree:
    """A tree whose composition is symmetric, compose(l, r) == compose(r, l), and whose split gate is 1/2: then
    a line's vector is unchanged by exactly the permutations that its tree's mirror symmetries allow."""
    tree = make_tree()
    size = tree.size
    with torch.no_grad():
        weight = tree.compose.linear.weight  # (4 * size, 2 * size): [candidate; w_new; w_left; w_right] x [l, r]
        weight[:, size:] = weight[:, :size]  # the same weights for left and right inputs
        gates = slice(2 * size, 3 * size), slice(3 * size, 4 * size)
        weight[gates[1]] = weight[gates[0]]  # the left and right pass-through gates are equal
        tree.compose.linear.bias[gates[1]] = tree.compose.linear.bias[gates[0]]
        tree.split_gate.weight.zero_()
        tree.split_gate.bias.zero_()
    left, right = torch.randn(3, size), torch.randn(3, size)
    torch.testing.assert_close(tree.compose(left, right), tree.compose(right, left))
    return tree


def line_vectors(tree: ProsodicTree, lines: list[str]) -> torch.Tensor:
    table = {char: torch.randn(5, generator=torch.Generator().manual_seed(ord(char))) for char in "ABCDEFG"}
    inputs = torch.stack([torch.stack([table[char] for char in line]) for line in lines])
    with torch.no_grad():
        return tree(inputs, torch.full((len(lines),), len(lines[0])))


def test_permutations_of_a_five_character_line_act_as_2_plus_3_implies():
    tree = symmetric_tree()
    #                           swaps within the 2 | swaps of the 3's ends | swaps across the 2|3 boundary
    v = line_vectors(tree, ["ABCDE", "BACDE", "ABEDC", "BAEDC", "ACBDE", "ABDCE", "CBADE", "ABCED", "EBCDA"])
    same = [1, 2, 3]  # AB|CDE is the same tree after mirroring the foot, the three's bracketings, or both
    different = [4, 5, 6, 7, 8]  # a character moved across the 2|3 boundary, or inside the three
    for row in same:
        torch.testing.assert_close(v[row], v[0], atol=1e-6, rtol=1e-6)
    for row in different:
        assert not torch.allclose(v[row], v[0], atol=1e-4), row


def test_permutations_of_a_seven_character_line_act_as_2_2_3_implies():
    tree = symmetric_tree()
    v = line_vectors(tree, ["ABCDEFG", "CDABEFG", "BADCEFG", "DCBAGFE", "ACBDEFG", "ABCEDFG", "EFGABCD", "ABCDEGF"])
    same = [1, 2, 3]  # the two feet swapped, each mirrored, and all mirrors at once
    different = [4, 5, 6, 7]  # across the first foot boundary, across the 4|3 boundary, 3+4, inside the three
    for row in same:
        torch.testing.assert_close(v[row], v[0], atol=1e-6, rtol=1e-6)
    for row in different:
        assert not torch.allclose(v[row], v[0], atol=1e-4), row


def test_a_line_vector_depends_on_its_own_characters_only():
    tree = make_tree()
    lengths = torch.tensor([5, 7, 3, 5])
    inputs = torch.randn(4, 7, 5)
    changed = inputs.clone()
    changed[1] = torch.randn(7, 5)  # another line entirely
    changed[0, 5:] = torch.randn(2, 5)  # and the padding past line 0's five characters
    with torch.no_grad():
        before, after = tree(inputs, lengths), tree(changed, lengths)
    torch.testing.assert_close(after[[0, 2, 3]], before[[0, 2, 3]])
    assert not torch.allclose(after[1], before[1])
    # every one of a line's own characters counts
    for position in range(5):
        moved = inputs.clone()
        moved[3, position] += 1.0
        with torch.no_grad():
            assert not torch.allclose(tree(moved, lengths)[3], before[3]), position


def test_gated_composition_is_a_convex_mix_of_children_and_candidate():
    torch.manual_seed(0)
    compose = GatedComposition(4)
    left, right = torch.rand(8, 4) * 2 - 1, torch.rand(8, 4) * 2 - 1
    parent = compose(left, right)
    assert parent.shape == (8, 4)
    assert parent.abs().max() <= 1  # a convex mix of values in [-1, 1] stays there: deep trees stay bounded


# -- the context model -------------------------------------------------------------------------------------


def test_the_context_of_line_k_sees_exactly_the_lines_before_k():
    net = make().eval()
    lines = [chars(5, 7 + k) for k in range(4)]
    batch = encode([poem(*lines), poem(chars(7), chars(7, 12))])
    inputs = batch.inputs
    embedded = net.embedding(inputs).detach().requires_grad_(True)
    contexts = net._contexts(inputs, embedded)
    # Position of every line-end mark in row 0: <bos> then 4 lines of 5 characters and a mark each.
    marks = [6 * (k + 1) for k in range(4)]
    for time in range(int(batch.lengths[0])):
        (gradient,) = torch.autograd.grad(contexts[0, time].sum(), embedded, retain_graph=True)
        seen = gradient.abs().sum(-1) > 0
        completed = sum(mark <= time for mark in marks)  # a line counts once its mark is read
        expected = torch.zeros_like(seen)
        for k in range(completed):
            expected[0, marks[k] - 5 : marks[k]] = True  # the characters of line k, not its mark
        assert torch.equal(seen, expected), (time, seen.nonzero().tolist())


def test_changing_a_line_changes_the_context_from_its_mark_on():
    net = make().eval()
    lines = [chars(5, 7 + k) for k in range(4)]
    batch = encode([poem(*lines)])
    changed = encode([poem(lines[0], chars(5, 30), lines[2], lines[3])])
    with torch.no_grad():
        before = net._contexts(batch.inputs, net.embedding(batch.inputs))
        after = net._contexts(changed.inputs, net.embedding(changed.inputs))
    mark = 12  # the second line's mark
    torch.testing.assert_close(after[:, :mark], before[:, :mark])
    assert not torch.allclose(after[:, mark:], before[:, mark:])


# -- end to end through the command ------------------------------------------------------------------------

FORMS = {"五绝": Form.WUJUE, "七绝": Form.QIJUE, "五律": Form.WULV, "七律": Form.QILV}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, small_corpus):
    tmp = tmp_path_factory.mktemp("recursive")
    config = tiny_config(tmp, small_corpus, "recursive")
    settings = json.loads(config.read_text(encoding="utf-8"))
    settings["model"]["architecture_options"] = {**TINY, "hidden_size": 24}
    config.write_text(json.dumps(settings, ensure_ascii=False), encoding="utf-8")
    result = run_tangrnn("fit", "--config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    checkpoints = sorted((tmp / "runs").rglob("last.ckpt"))
    assert checkpoints, result.stdout + result.stderr
    return {"ckpt": str(checkpoints[-1]), "tmp": tmp}


def test_fit_then_generate_every_regular_form_and_an_acrostic(trained):
    generate = ["generate", "--ckpt_path", trained["ckpt"], "--seed", "1"]
    cases = {name: {"argv": [*generate, "--form", name, "--num_poems", "3", "--output", "json"]} for name in FORMS}
    cases["acrostic"] = {
        "argv": [*generate, "--form", "七绝", "--acrostic", "春山明月", "--num_poems", "2", "--output", "json"]
    }
    cases["int8"] = {
        "argv": [*generate, "--form", "五律", "--quantize", "int8", "--num_poems", "2", "--output", "json"]
    }
    cases["options"] = {"argv": ["plugins", "--options", "recursive"]}
    results = run_batch(cases, trained["tmp"])
    for name, form in FORMS.items():
        result = results[name]
        assert result.returncode == 0, result.stderr
        poems = [json.loads(line)["poem"] for line in result.stdout.splitlines() if line.startswith("{")]
        assert len(poems) == 3, result.stdout
        assert all(classify(text) is form for text in poems), (name, poems)
    acrostic = [json.loads(line)["poem"] for line in results["acrostic"].stdout.splitlines() if line.startswith("{")]
    assert len(acrostic) == 2, results["acrostic"].stderr
    for text in acrostic:
        assert classify(text) is Form.QIJUE
        assert "".join(line[0] for line in split_lines(text)) == "春山明月"
    int8 = [json.loads(line)["poem"] for line in results["int8"].stdout.splitlines() if line.startswith("{")]
    assert len(int8) == 2 and all(classify(text) is Form.WULV for text in int8), results["int8"].stderr
    # The class docstring's Args: become the options' help.
    assert results["options"].returncode == 0, results["options"].stderr
    assert all(option in results["options"].stdout for option in ("tree_size", "context_size", "hidden_size"))
