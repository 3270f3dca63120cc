"""Fine-tuning: `model.init_from` starts `tangrnn fit` from a trained model's weights, `data.vocabulary_from`
encodes the data with its vocabulary; both through the command line, with one-line errors for what cannot work."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import assert_one_line_error, run_tangrnn, tiny_config

from tangrnn_core.api import TokenSpec
from tangrnn_core.errors import ConfigError
from tangrnn_core.finetuning import read_trained_model
from tangrnn_core.models import DEFAULT_MODEL, bundled_model
from tangrnn_core.network import build_architecture


def checkpoints(root):
    return sorted(root.glob("runs/lightning_logs/version_*/checkpoints/last.ckpt"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, small_corpus):
    """A tiny model trained for a few steps on the first 600 poems: the model to fine-tune."""
    tmp = tmp_path_factory.mktemp("base")
    result = run_tangrnn("fit", "--config", str(tiny_config(tmp, small_corpus)))
    assert result.returncode == 0, result.stderr
    (path,) = checkpoints(tmp)
    return path


def test_a_bundled_model_is_named_by_its_name():
    model = read_trained_model(DEFAULT_MODEL, "model.init_from")
    assert model.path == bundled_model(DEFAULT_MODEL).path
    assert model.architecture == "lstm" and len(model.vocabulary) > 5000


def test_a_name_that_is_neither_lists_the_bundled_models(tmp_path):
    with pytest.raises(ConfigError, match=f"'nothing' is neither a bundled model \\({DEFAULT_MODEL}"):
        read_trained_model("nothing", "model.init_from")


def test_another_architecture_or_other_sizes_are_refused_in_one_line():
    model = read_trained_model(DEFAULT_MODEL, "model.init_from")
    tokens = TokenSpec(vocab_size=len(model.vocabulary), line_end_ids=(5, 6))
    with pytest.raises(ConfigError, match="is a 'lstm' model, this one 'gru'"):
        model.check_fits(build_architecture("gru", {}, tokens), "gru")
    narrow = build_architecture("lstm", {"hidden_size": 64}, tokens)
    with pytest.raises(ConfigError, match=r"'rnn.weight_ih_l0' is \(2048, 256\) there, \(256, 256\) here"):
        model.check_fits(narrow, "lstm")


def test_fit_starts_from_the_weights_and_keeps_the_vocabulary(tmp_path, trained, small_corpus):
    # At learning rate 0 the fine-tuned model is the one it started from, weight for weight; its data (a third
    # of the poems, whose own vocabulary would be smaller) is encoded with the trained model's vocabulary.
    config = tiny_config(tmp_path, small_corpus, max_steps=2, val_check_interval=2)
    result = run_tangrnn(
        "fit", "--config", str(config), "--model.init_from", str(trained), "--data.vocabulary_from", str(trained),
        "--data.max_poems", "200",
        "--model.optimizer", json.dumps({"class_path": "torch.optim.AdamW", "init_args": {"lr": 0, "weight_decay": 0}}),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (tuned,) = checkpoints(tmp_path)
    before = torch.load(trained, weights_only=True)
    after = torch.load(tuned, weights_only=True)
    assert after["tangrnn"]["vocabulary"] == before["tangrnn"]["vocabulary"]
    assert after["global_step"] == 2
    for name, tensor in before["state_dict"].items():
        assert torch.equal(after["state_dict"][name], tensor), name


def test_fine_tuning_changes_the_weights_it_started_from(tmp_path, trained, small_corpus):
    config = tiny_config(tmp_path, small_corpus, max_steps=2, val_check_interval=2)
    result = run_tangrnn(
        "fit", "--config", str(config), "--model.init_from", str(trained), "--data.vocabulary_from", str(trained)
    )
    assert result.returncode == 0, result.stderr
    (tuned,) = checkpoints(tmp_path)
    before = torch.load(trained, weights_only=True)["state_dict"]
    after = torch.load(tuned, weights_only=True)["state_dict"]
    assert not torch.equal(after["net.rnn.weight_hh_l0"], before["net.rnn.weight_hh_l0"])
    # trained for 2 steps from the start point, not from random weights: still close to it
    assert (after["net.rnn.weight_hh_l0"] - before["net.rnn.weight_hh_l0"]).abs().max() < 0.05


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--data.max_poems", "200"], ["the data's vocabulary", "set data.vocabulary_from:"]),
        (
            ["--model.architecture_options", json.dumps({"embedding_size": 16, "hidden_size": 16, "num_layers": 2})],
            ["do not fit: this network has 'rnn.bias_hh_l1' alone"],
        ),
        (["--model.architecture", "gru"], ["is a 'lstm' model, this one 'gru'"]),
    ],
    ids=["another vocabulary", "other sizes", "another architecture"],
)
def test_what_cannot_be_fine_tuned_ends_in_one_line_and_writes_no_run(tmp_path, trained, small_corpus, extra, words):
    config = tiny_config(tmp_path, small_corpus)
    result = run_tangrnn("fit", "--config", str(config), "--model.init_from", str(trained), *extra)
    assert_one_line_error(result, "model.init_from", *words)
    assert not checkpoints(tmp_path)


def test_an_unknown_model_to_start_from_ends_in_one_line(tmp_path, small_corpus):
    config = tiny_config(tmp_path, small_corpus)
    result = run_tangrnn("fit", "--config", str(config), "--data.vocabulary_from", "tang-gpt")
    assert_one_line_error(result, "data.vocabulary_from: 'tang-gpt' is neither a bundled model", DEFAULT_MODEL)
