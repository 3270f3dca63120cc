"""The deep RNN plugin: the conformance kit over combinations of the four ways and the three cells, parity with
torch's modules, the deep transition's shortcut, options, and training and writing poems through the command."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest
import torch
from conftest import run_batch, run_tangrnn
from torch import nn

from tangrnn_core.api import Batch, TokenSpec
from tangrnn_core.data.forms import Form, classify, split_lines_with_marks
from tangrnn_core.decoding.quantize import int8_for_decoding
from tangrnn_core.errors import ConfigError
from tangrnn_core.network import build_architecture
from tangrnn_core.registry import resolve_architecture
from tangrnn_core.testing import check_architecture
from tangrnn_deep import DeepRNN, DeepTransitionLayer

VOCAB = 23
TOKENS = TokenSpec(vocab_size=VOCAB)
#: The first id after every special one (whatever specials this core has): characters of the random batches.
FIRST_CHAR = 1 + max(getattr(TOKENS, field.name) for field in fields(TOKENS) if field.name.endswith("_id"))
TORCH_MODULES = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
TINY = {"embedding_size": 8, "hidden_size": 12, "dropout": 0.0}

#: Combinations of the four ways (stacked, deep input, deep transition with or without shortcut, deep output)
#: that together cover every cell on both the fused and the looped path.
COMBINATIONS = {
    "lstm-stacked": {"cell": "lstm", "num_layers": 2, "input_layers": 0, "output_layers": 0},
    "gru-input-output": {"cell": "gru", "num_layers": 1, "input_layers": 2, "output_layers": 1},
    "rnn-stacked-input-output": {"cell": "rnn", "num_layers": 2, "input_layers": 1, "output_layers": 2},
    "rnn-dt": {"cell": "rnn", "num_layers": 1, "input_layers": 0, "transition_layers": 2, "output_layers": 0},
    "gru-dts": {"cell": "gru", "num_layers": 2, "input_layers": 0, "transition_layers": 1, "shortcut": True},
    "lstm-dts-all-four": {
        "cell": "lstm",
        "num_layers": 2,
        "input_layers": 1,
        "transition_layers": 1,
        "shortcut": True,
        "output_layers": 1,
        "activation": "relu",
    },
}


def make(**options) -> DeepRNN:
    torch.manual_seed(0)
    return DeepRNN(TOKENS, **{**TINY, **options})


def make_batch(batch_size: int = 3, time: int = 7, seed: int = 1) -> Batch:
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randint(FIRST_CHAR, VOCAB, (batch_size, time), generator=generator)
    inputs[:, 0] = TOKENS.bos_id
    targets = torch.cat([inputs[:, 1:], torch.full((batch_size, 1), TOKENS.eos_id)], dim=1)
    return Batch(inputs=inputs, targets=targets, lengths=torch.full((batch_size,), time))


def state_tensors(state) -> list[torch.Tensor]:
    return [state] if isinstance(state, torch.Tensor) else [t for part in state for t in state_tensors(part)]


# -- the conformance kit ------------------------------------------------------------------------------------


@pytest.mark.parametrize("options", list(COMBINATIONS.values()), ids=list(COMBINATIONS))
def test_follows_the_plugin_api(options, tmp_path):
    # Among the rules: step == forward and prefill == forward on both paths, reorder_state, a checkpoint round
    # trip with weights_only=True, and a constrained poem.
    check_architecture(DeepRNN, options={**TINY, **options}, tmp_path=tmp_path)


def test_registered_as_deep():
    assert resolve_architecture("deep") is DeepRNN


# -- parity with torch's modules ----------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_stacked_only_network_equals_the_torch_module(cell):
    net = make(cell=cell, num_layers=2, input_layers=0, output_layers=0, tie_weights=False).eval()
    assert isinstance(net.rnn, TORCH_MODULES[cell]) and net.layers is None  # the fused kernel
    plain = TORCH_MODULES[cell](8, 12, num_layers=2, batch_first=True).eval()
    plain.load_state_dict(net.rnn.state_dict())
    batch = make_batch(batch_size=2, time=9, seed=5)
    with torch.no_grad():
        hidden, expected_state = plain(net.embedding.weight[batch.inputs])
        expected = hidden @ net.output.weight.T + net.output.bias
        torch.testing.assert_close(net(batch), expected, atol=1e-5, rtol=1e-5)
        logits, state = net.prefill(batch.inputs, net.initial_state(2))
        stepped, stepped_state = None, net.initial_state(2)
        for position in range(batch.inputs.shape[1]):
            stepped, stepped_state = net.step(batch.inputs[:, position], stepped_state)
    torch.testing.assert_close(logits, expected[:, -1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(stepped, expected[:, -1], atol=1e-5, rtol=1e-5)
    for ours in (state, stepped_state):
        for a, b in zip(state_tensors(ours), state_tensors(expected_state), strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_looped_layers_without_transition_equal_the_torch_module(cell):
    # The looped path's cell arithmetic (gate order, the gru's reset gate) is torch's: stack two layers of it
    # with torch's weights and compare outputs and final states with the fused module.
    torch.manual_seed(3)
    plain = TORCH_MODULES[cell](8, 12, num_layers=2, batch_first=True)
    layers = [DeepTransitionLayer(cell, 8 if k == 0 else 12, 12, transition_layers=0) for k in range(2)]
    with torch.no_grad():
        for k, layer in enumerate(layers):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(layer, name).copy_(getattr(plain, f"{name}_l{k}"))
    inputs = torch.randn(3, 10, 8)
    expected, expected_state = plain(inputs)
    expected_hidden = expected_state[0] if cell == "lstm" else expected_state
    outputs, zeros = inputs, torch.zeros(3, 12)
    for k, layer in enumerate(layers):
        outputs, hidden, memory = layer(outputs, zeros, zeros)
        torch.testing.assert_close(hidden, expected_hidden[k], atol=1e-5, rtol=1e-5)
        if cell == "lstm":
            torch.testing.assert_close(memory, expected_state[1][k], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(outputs, expected, atol=1e-5, rtol=1e-5)
    # and its gradients are torch's too
    outputs.sum().backward()
    expected.sum().backward()
    torch.testing.assert_close(layers[0].weight_hh.grad, plain.weight_hh_l0.grad, atol=1e-4, rtol=1e-4)


# -- the deep transition and its shortcut -------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_shortcut_adds_a_path_that_changes_the_network(cell):
    options = dict(cell=cell, num_layers=2, input_layers=0, transition_layers=1, output_layers=0)
    dt = make(**options).eval()
    dts = make(**options, shortcut=True).eval()
    missing = dts.load_state_dict(dt.state_dict(), strict=False).missing_keys
    assert missing == ["layers.0.shortcut_weight", "layers.1.shortcut_weight"]
    batch = make_batch()
    with torch.no_grad():
        assert not torch.allclose(dts(batch), dt(batch), atol=1e-3)
        for layer in dts.layers:
            layer.shortcut_weight.zero_()  # with the shortcut closed, DT(S) is DT
        torch.testing.assert_close(dts(batch), dt(batch))


def test_the_transition_is_deep_and_used_at_every_step():
    net = make(cell="gru", num_layers=1, transition_layers=2).eval()
    layer = net.layers[0]
    assert len(layer.transition_weights) == 2 and tuple(layer.transition_weights[0].shape) == (12, 12)
    batch = make_batch()
    with torch.no_grad():
        before = net(batch)
        layer.transition_weights[1].mul_(2.0)
        after = net(batch)
    assert not torch.allclose(before, after, atol=1e-4)


def test_fused_path_without_transition_and_looped_path_with_one():
    assert isinstance(make(cell="lstm").rnn, nn.LSTM)
    looped = make(cell="lstm", num_layers=3, transition_layers=1)
    assert looped.rnn is None and len(looped.layers) == 3
    assert all(isinstance(layer, DeepTransitionLayer) for layer in looped.layers)


def test_input_and_output_functions_have_the_requested_depth():
    net = make(input_layers=3, output_layers=2, activation="relu")
    assert sum(isinstance(m, nn.Linear) for m in net.input_mlp) == 3
    assert sum(isinstance(m, nn.ReLU) for m in net.output_mlp) == 2
    assert net.input_mlp[0].in_features == 8 and net.rnn.input_size == 12
    shallow = make(input_layers=0, output_layers=0)
    assert len(shallow.input_mlp) == 0 and len(shallow.output_mlp) == 0 and shallow.rnn.input_size == 8


@pytest.mark.parametrize("transition_layers", [0, 1])
def test_training_mode_applies_dropout(transition_layers):
    net = make(num_layers=2, transition_layers=transition_layers, dropout=0.3).train()
    batch = make_batch()
    torch.manual_seed(1)
    first = net(batch)
    torch.manual_seed(2)
    assert not torch.allclose(first, net(batch))


@pytest.mark.parametrize("transition_layers", [0, 1])
def test_int8_decoding_and_bf16_autocast(transition_layers):
    net = make(cell="lstm", transition_layers=transition_layers, shortcut=bool(transition_layers)).eval()
    batch = make_batch()
    with torch.no_grad():
        reference = net(batch)[:, -1]
        quantized = int8_for_decoding(net)
        logits, _ = quantized.prefill(batch.inputs[:, :-1], quantized.initial_state(3))
        logits, _ = quantized.step(batch.inputs[:, -1], _)
        assert (logits - reference).abs().max() < 0.1
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low, state = net.prefill(batch.inputs[:, :-1], net.initial_state(3))
            low, _ = net.step(batch.inputs[:, -1], state)
        assert (low.float() - reference).abs().max() < 0.1
    net.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = net(batch).float().logsumexp(-1).mean()
    loss.backward()
    assert torch.isfinite(net.embedding.weight.grad).all()


def test_compiled_transition_computes_what_the_eager_loop_computes():
    eager = make(cell="lstm", transition_layers=1, shortcut=True)
    compiled = make(cell="lstm", transition_layers=1, shortcut=True, compile_transition=True)
    compiled.load_state_dict(eager.state_dict())  # same parameter names: checkpoints are interchangeable
    batch = make_batch(time=6)
    for net in (eager, compiled):
        net(batch).logsumexp(-1).mean().backward()
    assert torch.allclose(compiled(batch), eager(batch), atol=1e-5)
    for (name, mine), theirs in zip(compiled.named_parameters(), eager.parameters()):
        assert torch.allclose(mine.grad, theirs.grad, atol=1e-5), name
    with torch.no_grad():
        state = compiled.initial_state(3)
        logits, _ = compiled.step(batch.inputs[:, 0], state)
        assert torch.allclose(logits, eager(batch)[:, 0], atol=1e-5)


@pytest.mark.parametrize(
    "options",
    [
        {"shortcut": True},  # no intermediate layer to skip
        {"transition_layers": -1},
        {"input_layers": -1},
        {"output_layers": -1},
        {"num_layers": 0},
        {"hidden_size": 0},
        {"dropout": 1.0},
        {"compile_transition": True},  # nothing to compile on the fused path
    ],
    ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()),
)
def test_invalid_options_are_refused(options):
    with pytest.raises(ValueError):
        DeepRNN(TOKENS, **options)
    with pytest.raises(ConfigError):
        build_architecture("deep", options, TOKENS)


def test_unknown_cell_is_a_config_error():
    with pytest.raises(ConfigError, match="cell"):
        build_architecture("deep", {"cell": "mgu"}, TOKENS)


# -- through the command ------------------------------------------------------------------------------------

FORMS = {"五绝": Form.WUJUE, "七绝": Form.QIJUE, "五律": Form.WULV, "七律": Form.QILV}


def test_fit_then_generate_every_form_through_the_command(tmp_path, small_corpus):
    options = {
        "cell": "gru",
        "embedding_size": 16,
        "hidden_size": 16,
        "num_layers": 2,
        "input_layers": 1,
        "transition_layers": 1,
        "shortcut": True,
        "output_layers": 1,
    }
    config = {
        "model": {"architecture": "deep", "architecture_options": options},
        "data": {"corpus": str(small_corpus), "batch_size": 16, "val_fraction": 0.1, "test_fraction": 0.1},
        "trainer": {
            "max_steps": 4,
            "val_check_interval": 2,
            "limit_val_batches": 1,
            "default_root_dir": str(tmp_path / "runs"),
            "enable_progress_bar": False,
        },
    }
    path = tmp_path / "deep.yaml"
    path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    fit = run_tangrnn("fit", "--config", str(path))
    assert fit.returncode == 0, fit.stdout + fit.stderr
    (last,) = (tmp_path / "runs").glob("lightning_logs/version_*/checkpoints/last.ckpt")
    assert "architecture: deep" in (last.parents[1] / "config.yaml").read_text(encoding="utf-8")

    ckpt = ["generate", "--ckpt_path", str(last), "--seed", "1", "--num_poems", "2", "--output", "json"]
    cases = {name: {"argv": [*ckpt, "--form", name]} for name in FORMS}
    cases["acrostic"] = {"argv": [*ckpt, "--form", "五绝", "--acrostic", "春山"]}
    cases["options"] = {"argv": ["plugins", "--options", "deep"]}
    results = run_batch(cases, tmp_path)

    def poems(case: str) -> list[dict]:
        result = results[case]
        assert result.returncode == 0, result.stdout + result.stderr
        return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]

    for name, form in FORMS.items():
        written = poems(name)
        assert len(written) == 2
        assert all(classify(poem["poem"]) is form for poem in written), written
    for poem in poems("acrostic"):
        assert classify(poem["poem"]) is Form.WUJUE
        assert [line[0] for line in split_lines_with_marks(poem["poem"])[:2]] == ["春", "山"], poem
    help_text = results["options"].stdout
    for option in ("cell", "num_layers", "input_layers", "transition_layers", "shortcut", "output_layers"):
        assert option in help_text, help_text
