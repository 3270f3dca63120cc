"""Request options through the command for every built-in architecture: `--avoid` (characters no poem uses)
and the one-line refusal of bad sampling options on every decoding path, mask-predict included."""

from __future__ import annotations

import json

import pytest
from conftest import assert_one_line_error, run_batch, untrained_checkpoint

from tangrnn_core.data.datamodule import PoetryDataModule
from tangrnn_core.decoding.tokens import is_punctuation
from tangrnn_core.prosody.checker import check_poem
from tangrnn_core.prosody.tables import convert_each, load_tables, token_prosody

#: Tiny options of each built-in plugin; the models are untrained, so every character is about as likely.
ARCHITECTURES = {
    "rnn": {"embedding_size": 8, "hidden_size": 12},
    "lstm": {"embedding_size": 8, "hidden_size": 12},
    "gru": {"embedding_size": 8, "hidden_size": 12},
    "deep": {"embedding_size": 8, "hidden_size": 12, "dropout": 0.0},
    "recursive": {"embedding_size": 12, "tree_size": 10, "context_size": 8, "hidden_size": 16, "num_layers": 2},
    "bidirectional": {"embedding_size": 8, "hidden_size": 6, "num_layers": 2, "dropout": 0.0},
    "seq2seq": {"embedding_size": 8, "hidden_size": 12, "num_layers": 1, "encoder_size": 6, "attention_size": 8},
}
#: Bad sampling options and the words of their one-line errors.
BAD_OPTIONS = {
    "top_p 0": (["--top_p", "0"], "top_p must be in (0, 1], got 0"),
    "top_p 1.5": (["--top_p", "1.5"], "top_p must be in (0, 1]"),
    "temperature": (["--temperature", "-1"], "temperature must be 0 or more"),
    "top_k": (["--top_k", "-2"], "top_k must be 0 (off) or more"),
    "iterations": (["--iterations", "0"], "iterations must be at least 1"),
    "num_poems": (["--num_poems", "0"], "num_poems must be at least 1"),
    "seed 2**64": (["--seed", str(2**64)], f"seed must be from 0 to {2**64 - 1}"),
    "seed -1": (["--seed", "-1"], "seed must be from 0 to"),
}
#: Verse characters left to the poems: everything else in the vocabulary is avoided.
KEPT = 60


@pytest.fixture(scope="module")
def setup(tmp_path_factory, small_corpus):
    tmp = tmp_path_factory.mktemp("avoid")
    data = PoetryDataModule(corpus=str(small_corpus), batch_size=16, val_fraction=0.1, test_fraction=0.1)
    paths = {
        name: untrained_checkpoint(tmp / f"{name}.ckpt", data, name, options, seed=7)
        for name, options in ARCHITECTURES.items()
    }
    verse = [t for t in data.vocabulary.tokens[5:] if not is_punctuation(t)]
    kept, avoided = set(verse[:KEPT]), "".join(verse[KEPT:])
    # The characters that can rhyme in 上平声一东, as the decoder reads them (through their traditional forms).
    tables = load_tables()
    group = tables.group("东")
    traditional = convert_each(tuple(verse))
    in_group = "".join(c for c, t in zip(verse, traditional) if token_prosody(tables, c, t)[2] >> group.index & 1)
    common = ["--num_poems", "12", "--temperature", "1.0", "--seed", "3", "--output", "json"]
    cases = {}
    for name, path in paths.items():
        cases[f"{name} avoid"] = {
            "argv": ["generate", "--ckpt_path", path, "--form", "五绝", "--avoid", avoided, *common]
        }
        cases[f"{name} free"] = {"argv": ["generate", "--ckpt_path", path, "--form", "五绝", *common]}
    lstm = ["generate", "--ckpt_path", paths["lstm"]]
    cases["tones"] = {
        "argv": [*lstm, "--form", "五律", "--tones", "strict", "--rhyme", "auto", "--no_repeat", "true", "--avoid",
                 "月风山人" + in_group[:-3], *common]
    }  # fmt: skip
    cases["whole group"] = {"argv": [*lstm, "--form", "五绝", "--rhyme", "东", "--avoid", in_group]}
    cases["clash acrostic"] = {"argv": [*lstm, "--form", "五绝", "--acrostic", "春风", "--avoid", "风月"]}
    cases["clash template"] = {"argv": [*lstm, "--template", "白日依山尽，□□□□□。□□□□□，□□□□□。", "--avoid", "山"]}
    cases["punctuation"] = {"argv": [*lstm, "--form", "五绝", "--avoid", "月，"]}
    for name, flags in BAD_OPTIONS.items():
        for architecture in ("lstm", "bidirectional", "seq2seq"):
            cases[f"{architecture} {name}"] = {"argv": ["generate", "--ckpt_path", paths[architecture], *flags[0]]}
    return run_batch(cases, tmp), kept, in_group


def poems(result) -> list[str]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line)["poem"] for line in result.stdout.splitlines() if line.startswith("{")]


def verse_characters(poem: str) -> set[str]:
    return {c for c in poem if not is_punctuation(c)}


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_avoided_characters_never_appear(setup, name):
    results, kept, _ = setup
    written = poems(results[f"{name} avoid"])
    assert len(written) == 12
    for poem in written:
        assert verse_characters(poem) <= kept, poem
    # Without --avoid the same model writes characters outside the kept ones: the test above can fail.
    assert any(verse_characters(poem) - kept for poem in poems(results[f"{name} free"]))


def test_avoid_with_tones_rhyme_and_no_repeat_keeps_every_rule(setup):
    results, _, in_group = setup
    for poem in poems(results["tones"]):
        assert not verse_characters(poem) & set("月风山人" + in_group[:-3]), poem
        assert check_poem(poem, strict=True).passed, poem


@pytest.mark.parametrize(
    "case, fragments",
    [
        ("whole group", ["0 characters of 上平声一东 left after --avoid", "--rhyme auto"]),
        ("clash acrostic", ["--avoid 风", "the acrostic or first line uses 风"]),
        ("clash template", ["--avoid 山", "the template uses 山"]),
        ("punctuation", ["--avoid takes verse characters, not punctuation (，)"]),
    ],
)
def test_impossible_avoid_requests_are_one_line_errors(setup, case, fragments):
    assert_one_line_error(setup[0][case], *fragments)


@pytest.mark.parametrize("architecture", ["lstm", "bidirectional", "seq2seq"])
@pytest.mark.parametrize("name", list(BAD_OPTIONS))
def test_bad_sampling_options_are_one_line_errors_on_every_path(setup, architecture, name):
    assert_one_line_error(setup[0][f"{architecture} {name}"], BAD_OPTIONS[name][1])
