"""The plugin conformance kit (tangrnn_core.testing): it passes for good architectures and names the rule a
broken one breaks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from tangrnn_core.api import Architecture, Batch, State, TokenSpec
from tangrnn_core.decoding.quantize import has_int8_kernels
from tangrnn_core.testing import check_architecture
from tangrnn_recurrent import GRU, LSTM, RNN

PLUGIN_PACKAGE = Path(__file__).resolve().parent / "plugin_package"
TINY = {"embedding_size": 8, "hidden_size": 12, "num_layers": 2, "dropout": 0.2}


@pytest.mark.parametrize("cls", [RNN, LSTM, GRU], ids=lambda c: c.__name__)
def test_builtin_architectures_pass(cls, tmp_path):
    check_architecture(cls, options=TINY, tmp_path=tmp_path)


def test_a_plugin_name_passes(tmp_path):
    check_architecture("gru", options={**TINY, "tie_weights": False}, steps=2, tmp_path=tmp_path)


def test_the_ngram_plugin_package_passes(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGIN_PACKAGE))
    from tangrnn_ngram import NeuralNGram

    check_architecture(NeuralNGram, options={"context": 3, "embedding_size": 8, "hidden_size": 16}, tmp_path=tmp_path)


def test_without_tmp_path_a_temporary_folder_is_used():
    check_architecture(GRU, options={"embedding_size": 8, "hidden_size": 8, "num_layers": 1}, steps=1)


# -- broken plugins: module level, so that a class path finds them -------------------------------------------


class _Base(Architecture):
    """A small GRU language model written by hand; the broken plugins below each break one rule.

    Args:
        tokens: vocabulary size and special ids.
        hidden_size: size of the state.
    """

    plugin_api = 1

    def __init__(self, tokens: TokenSpec, hidden_size: int = 8) -> None:
        super().__init__(tokens)
        self.embedding = nn.Embedding(tokens.vocab_size, hidden_size)
        self.cell = nn.GRUCell(hidden_size, hidden_size)
        self.output = nn.Linear(hidden_size, tokens.vocab_size)
        self.hidden_size = hidden_size

    def forward(self, batch: Batch) -> Tensor:
        state = self.initial_state(batch.size)
        outputs = []
        for position in range(batch.inputs.shape[1]):
            logits, state = self.step(batch.inputs[:, position], state)
            outputs.append(logits)
        return torch.stack(outputs, dim=1)

    def initial_state(self, batch_size: int, context: Batch | None = None) -> State:
        weight = self.embedding.weight  # an embedding stays a tensor in every weight format
        return weight.new_zeros(batch_size, self.hidden_size)

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        state = self.cell(self.embedding(tokens), state)
        return self.output(state), state


class GoodHandWritten(_Base):
    __doc__ = _Base.__doc__


class WrongShape(_Base):
    __doc__ = _Base.__doc__

    def forward(self, batch: Batch) -> Tensor:
        return super().forward(batch)[:, -1]  # (batch, vocab): only the last position


class IgnoresState(_Base):
    __doc__ = _Base.__doc__

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        fresh = self.cell(self.embedding(tokens), torch.zeros_like(state))  # forgets what it has read
        return self.output(fresh), state

    def forward(self, batch: Batch) -> Tensor:
        state, outputs = _Base.initial_state(self, batch.size), []
        for position in range(batch.inputs.shape[1]):
            logits, state = _Base.step(self, batch.inputs[:, position], state)
            outputs.append(logits)
        return torch.stack(outputs, dim=1)


class NoPluginApi(Architecture):
    """No plugin_api declared."""

    def __init__(self, tokens: TokenSpec) -> None:
        super().__init__(tokens)


class FuturePluginApi(_Base):
    __doc__ = _Base.__doc__
    plugin_api = 99


class NoReorder(_Base):
    __doc__ = _Base.__doc__

    def reorder_state(self, state: State, index: Tensor) -> State:
        return state


class ReorderAlongTheWrongDim(_Base):
    __doc__ = _Base.__doc__
    state_batch_dim = 1  # the state is (batch, hidden): dimension 0 holds the batch


class NotAnArchitecture(nn.Module):
    plugin_api = 1


class NaNLogits(_Base):
    __doc__ = _Base.__doc__

    def forward(self, batch: Batch) -> Tensor:
        return super().forward(batch) * float("nan")


class OptsIn(_Base):
    """The hand-written GRU, exposing its output layer for the chunked loss.

    Args:
        tokens: vocabulary size and special ids.
        hidden_size: size of the state.
    """

    def features(self, batch: Batch) -> Tensor:
        state, states = self.initial_state(batch.size), []
        for position in range(batch.inputs.shape[1]):
            state = self.cell(self.embedding(batch.inputs[:, position]), state)
            states.append(state)
        return torch.stack(states, dim=1)

    def output_layer(self) -> nn.Linear | None:
        return self.output


class FeaturesDisagree(OptsIn):
    __doc__ = OptsIn.__doc__

    def features(self, batch: Batch) -> Tensor:
        return torch.tanh(super().features(batch))  # not what forward() feeds its output layer


class DetachedFeatures(OptsIn):
    __doc__ = OptsIn.__doc__

    def features(self, batch: Batch) -> Tensor:
        return super().features(batch).detach()  # right values, but the recurrent weights would never learn


class ForeignOutputLayer(OptsIn):
    __doc__ = OptsIn.__doc__

    def output_layer(self) -> nn.Linear | None:
        layer = nn.Linear(self.hidden_size, self.tokens.vocab_size)  # a copy the optimiser never sees
        layer.load_state_dict(self.output.state_dict())
        return layer


class OutputLayerOfTheWrongSize(OptsIn):
    __doc__ = OptsIn.__doc__

    def output_layer(self) -> nn.Linear | None:
        return nn.Linear(self.hidden_size, 3)


class ReadsTheOutputLayersWeight(_Base):
    __doc__ = _Base.__doc__

    def initial_state(self, batch_size: int, context: Batch | None = None) -> State:
        # Works in fp32; after dynamic int8 quantization `self.output.weight` is a method.
        return self.output.weight.new_zeros(batch_size, self.hidden_size)


@pytest.mark.skipif(not has_int8_kernels(), reason="no int8 kernels on this CPU: the int8 decode is not checked")
def test_a_network_that_breaks_under_int8_is_caught_before_users_see_it(tmp_path):
    with pytest.raises(AssertionError) as caught:
        check_architecture(ReadsTheOutputLayersWeight, tmp_path=tmp_path, steps=1)
    message = str(caught.value)
    for fragment in ("[quantize]", "--quantize int8", "nn.Linear.weight is a method"):
        assert fragment in message, message


def test_a_hand_written_network_passes(tmp_path):
    check_architecture(GoodHandWritten, tmp_path=tmp_path, steps=2)


@pytest.mark.parametrize(
    ("cls", "fragments"),
    [
        (WrongShape, ["[forward]", "(batch, time, vocab_size)"]),
        (NaNLogits, ["[forward]", "NaN"]),
        (IgnoresState, ["[step == forward]", "step() at position 1", "state"]),
        (NoPluginApi, ["[static]", "declares no plugin_api"]),
        (FuturePluginApi, ["[static]", "needs plugin API 99"]),
        (NotAnArchitecture, ["[static]", "not a subclass of tangrnn_core.api.Architecture"]),
        (NoReorder, ["[reorder_state]", "does not equal stepping rows [2, 0, 1]"]),
        (ReorderAlongTheWrongDim, ["[reorder_state]", "state_batch_dim"]),
        (FeaturesDisagree, ["[output_layer]", "forward(batch) differs from output_layer()(features(batch))"]),
        (DetachedFeatures, ["[output_layer]", "embedding.weight gets no gradient", "keep the graph"]),
        (ForeignOutputLayer, ["[output_layer]", "not part of the network"]),
        (OutputLayerOfTheWrongSize, ["[output_layer]", "vocab_size"]),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else None,
)
def test_broken_plugins_are_caught_with_the_rule_named(cls, fragments, tmp_path):
    with pytest.raises(AssertionError) as caught:
        check_architecture(cls, tmp_path=tmp_path)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message


def test_a_network_that_opts_in_to_the_chunked_loss_passes(tmp_path):
    check_architecture(OptsIn, tmp_path=tmp_path, steps=2)


def test_an_opted_in_network_trains_through_the_chunked_loss(tmp_path, monkeypatch):
    """[train] goes through features() and output_layer(), not forward(), when the network opts in."""
    from tangrnn_core import losses

    calls = []
    original = losses.chunked_cross_entropy

    def counting(*args, **kwargs):
        calls.append(kwargs["chunk_size"])
        return original(*args, **kwargs)

    monkeypatch.setattr("tangrnn_core.module.chunked_cross_entropy", counting)
    check_architecture(OptsIn, tmp_path=tmp_path, steps=2)
    assert calls and set(calls) == {16}


def test_unknown_options_are_a_build_failure(tmp_path):
    with pytest.raises(AssertionError, match=r"^\[build\].*no option 'depth'"):
        check_architecture(GoodHandWritten, options={"depth": 3}, tmp_path=tmp_path)


def test_an_unknown_plugin_name_is_a_static_failure(tmp_path):
    with pytest.raises(AssertionError, match=r"^\[static\].*unknown architecture 'nosuchnet'"):
        check_architecture("nosuchnet", tmp_path=tmp_path)
