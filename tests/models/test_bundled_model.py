"""The model that ships with tangrnn: poems right after install, and the verbs that fall back on it."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_batch

from tangrnn_core.checkpoint_files import check_checkpoint
from tangrnn_core.data.forms import Form, classify
from tangrnn_core.lightning_cli import with_bundled_model
from tangrnn_core.models import DEFAULT_MODEL, bundled_model, bundled_models
from tangrnn_core.prosody.checker import check_poem


def test_the_default_model_ships_as_a_safe_checkpoint_under_30_mb():
    model = bundled_model()
    assert model.name == DEFAULT_MODEL and model in bundled_models()
    assert model.path.stat().st_size < 30 * 2**20
    check_checkpoint(model.path)  # what --ckpt_path checks, loaded with weights_only=True
    state = torch.load(model.path, weights_only=True)
    assert "optimizer_states" not in state
    card = model.card
    for key in ("architecture", "parameters", "corpus_sha256", "global_step", "val_perplexity", "config", "license"):
        assert card.get(key) is not None, key
    # the corpus it was trained on is the one that ships
    import hashlib

    from tangrnn_core.data.corpus import bundled_corpus_path

    assert card["corpus_sha256"] == hashlib.sha256(bundled_corpus_path().read_bytes()).hexdigest()
    assert model.card_path.read_text(encoding="utf-8").startswith(f"# {DEFAULT_MODEL}")


def test_verbs_without_a_checkpoint_get_the_bundled_model():
    path = str(bundled_model().path)
    assert with_bundled_model(["generate", "--form", "五绝"]) == ["generate", "--ckpt_path", path, "--form", "五绝"]
    evaluate = with_bundled_model(["evaluate", "--form", "all"])
    assert evaluate[:2] == ["evaluate", "--data"] and evaluate[3:5] == ["--ckpt_path", path]
    assert json.loads(evaluate[2]) == bundled_model().data_options
    # a config is the user's own run, an explicit checkpoint wins, fit trains
    assert with_bundled_model(["generate", "--config", "g.yaml"]) == [
        "generate",
        "--ckpt_path",
        path,
        "--config",
        "g.yaml",
    ]
    for args in (
        ["test", "--config", "c.yaml"],
        ["evaluate", "-c", "c.yaml"],
        ["generate", "--ckpt_path", "x.ckpt"],
        ["generate", "--ckpt_path=x.ckpt"],
        ["fit", "--config", "c"],
        ["generate", "--help"],
    ):
        assert with_bundled_model(list(args)) == args


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bundled")
    return run_batch(
        {
            "plain": {"argv": ["generate", "--form", "五绝", "--num_poems", "1", "--seed", "1"]},
            "strict": {
                "argv": [
                    "generate",
                    "--form",
                    "七绝",
                    "--tones",
                    "strict",
                    "--rhyme",
                    "auto",
                    "--num_poems",
                    "3",
                    "--seed",
                    "2",
                    "--output",
                    "json",
                ]
            },
            "acrostic": {
                "argv": [
                    "generate",
                    "--acrostic",
                    "春江花月",
                    "--form",
                    "五绝",
                    "--num_poems",
                    "1",
                    "--seed",
                    "3",
                    "--output",
                    "json",
                ]
            },
            "models": {"argv": ["models"]},
            "card": {"argv": ["models", "card"]},
        },
        tmp,
    )


def test_generate_without_a_checkpoint_prints_a_poem(results):
    result = results["plain"]
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 4 and all(len(line) == 6 for line in lines)  # five characters and a mark
    assert classify("".join(lines)) is Form.WUJUE


def test_the_bundled_model_keeps_strict_tones_and_acrostics(results):
    poems = [json.loads(line)["poem"] for line in results["strict"].stdout.splitlines()]
    assert len(poems) == 3
    for poem in poems:
        assert check_poem(poem, strict=True).passed, poem
    acrostic = json.loads(results["acrostic"].stdout)
    assert [line[0] for line in acrostic["lines"]] == list("春江花月")


def test_models_lists_the_default_and_prints_its_card(results):
    assert results["models"].returncode == 0
    assert f"{DEFAULT_MODEL} (default)" in results["models"].stdout
    assert results["card"].stdout == bundled_model().card_path.read_text(encoding="utf-8")


def test_validate_without_a_checkpoint_scores_the_bundled_model_on_its_own_splits(tmp_path):
    result = run_batch(
        {"v": {"argv": ["validate", "--trainer.limit_val_batches", "2", "--trainer.enable_progress_bar", "false"]}},
        tmp_path,
    )["v"]
    assert result.returncode == 0, result.stderr
    assert f"using the bundled model {DEFAULT_MODEL}" in result.stderr
    assert "val/ppl" in result.stdout
