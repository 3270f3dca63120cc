"""`tangrnn generate` through the command: exact forms, acrostics, continuations, seeds, beams, and bad input."""

from __future__ import annotations

import json

import lightning.pytorch as pl
import pytest
import torch
from conftest import assert_one_line_error, run_batch

from tangrnn_core.data.datamodule import PoetryDataModule
from tangrnn_core.data.forms import Form, classify, split_lines_with_marks
from tangrnn_core.decoding.quantize import has_bf16_units
from tangrnn_core.module import PoetryModel
from tangrnn_core.prosody.checker import check_poem

FORMS = {"五绝": Form.WUJUE, "qijue": Form.QIJUE, "五律": Form.WULV, "qilv": Form.QILV}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, small_corpus):
    """A small model trained for a few steps, saved as `tangrnn fit` saves it."""
    tmp = tmp_path_factory.mktemp("generate")
    data = PoetryDataModule(corpus=str(small_corpus), batch_size=16, val_fraction=0.1, test_fraction=0.1)
    model = PoetryModel(
        vocab_size=data.vocab_size,
        line_end_ids=data.line_end_ids,
        architecture="gru",
        architecture_options={"embedding_size": 16, "hidden_size": 32, "num_layers": 1},
    )
    trainer = pl.Trainer(
        max_steps=20, limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.fit(model, datamodule=data)
    path = tmp / "model.ckpt"
    trainer.save_checkpoint(path)
    return {"path": str(path), "vocabulary": data.vocabulary, "tmp": tmp}


@pytest.fixture(scope="module")
def results(checkpoint):
    ckpt = ["generate", "--ckpt_path", checkpoint["path"]]
    vocabulary = checkpoint["vocabulary"]
    heads = "".join(c for c in "春夏秋冬山水花月" if c in vocabulary)[:4]
    cases = {
        **{
            f"form {name}": {
                "argv": [*ckpt, "--form", name, "--num_poems", "24", "--temperature", "1.5", "--output", "json"]
            }
            for name in FORMS
        },
        "chars lines": {"argv": [*ckpt, "--chars", "7", "--lines", "4", "--num_poems", "8", "--output", "json"]},
        "acrostic": {"argv": [*ckpt, "--acrostic", heads, "--chars", "5", "--num_poems", "8", "--output", "json"]},
        "acrostic beams": {
            "argv": [
                *ckpt,
                "--acrostic",
                heads,
                "--form",
                "七绝",
                "--num_poems",
                "4",
                "--num_beams",
                "3",
                "--no_repeat",
                "true",
                "--output",
                "json",
            ]
        },
        "first line": {
            "argv": [*ckpt, "--first_line", "白日依山尽", "--form", "五律", "--num_poems", "6", "--output", "json"]
        },
        "seed a": {"argv": [*ckpt, "--form", "五绝", "--seed", "7", "--num_poems", "5"]},
        "seed b": {"argv": [*ckpt, "--form", "五绝", "--seed", "7", "--num_poems", "5"]},
        "seed c": {"argv": [*ckpt, "--form", "五绝", "--seed", "8", "--num_poems", "5"]},
        "batches": {
            "argv": [
                *ckpt,
                "--form",
                "五绝",
                "--seed",
                "7",
                "--num_poems",
                "5",
                "--batch_size",
                "2",
                "--output",
                "json",
            ]
        },
        "first batch alone": {"argv": [*ckpt, "--form", "五绝", "--seed", "7", "--num_poems", "2", "--output", "json"]},
        "batch size 0": {"argv": [*ckpt, "--form", "五绝", "--batch_size", "0"]},
        "out of memory": {
            "argv": [*ckpt, "--form", "五绝", "--num_poems", "10000000000000", "--batch_size", "10000000000000"]
        },
        "text batches": {"argv": [*ckpt, "--form", "五绝", "--num_poems", "3", "--batch_size", "2"]},
        "int8": {"argv": [*ckpt, "--form", "七绝", "--quantize", "int8", "--num_poems", "8", "--output", "json"]},
        "bf16": {
            "argv": [
                *ckpt,
                "--form",
                "五律",
                "--quantize",
                "bf16",
                "--tones",
                "strict",
                "--rhyme",
                "auto",
                "--num_poems",
                "6",
                "--output",
                "json",
            ]
        },
        "no repeat": {
            "argv": [
                *ckpt,
                "--form",
                "七律",
                "--no_repeat",
                "true",
                "--num_poems",
                "16",
                "--temperature",
                "1.5",
                "--output",
                "json",
            ]
        },
        "text": {"argv": [*ckpt, "--form", "五绝", "--num_poems", "2", "--prefix", "白日"]},
        "template": {"argv": [*ckpt, "--template", TEMPLATE, "--num_poems", "6", "--output", "json"]},
        "template acrostic": {
            "argv": [
                *ckpt,
                "--template",
                "□□□□□，□□□□□。□□□□□，更上一层楼。",
                "--acrostic",
                "春夏",
                "--no_repeat",
                "true",
                "--num_poems",
                "4",
                "--output",
                "json",
            ]
        },
        "template tones": {
            "argv": [
                *ckpt,
                "--template",
                "白日□□□，□□□□□。□□□□□，□□□□□。",
                "--tones",
                "strict",
                "--rhyme",
                "auto",
                "--num_poems",
                "6",
                "--output",
                "json",
            ]
        },
        "template against form": {"argv": [*ckpt, "--template", TEMPLATE, "--form", "七绝"]},
        "template outside vocabulary": {"argv": [*ckpt, "--template", "龘日依山尽，□□□□□。"]},
        "template without blanks": {"argv": [*ckpt, "--template", "白日依山尽，黄河入海流。"]},
        "title for a model without titles": {"argv": [*ckpt, "--title", "春夜喜雨", "--form", "五绝"]},
        # bad input, one line each
        "heads outside vocabulary": {"argv": [*ckpt, "--acrostic", "龘靐", "--chars", "5"]},
        "first line outside vocabulary": {"argv": [*ckpt, "--first_line", "龘日依山尽", "--form", "五绝"]},
        "first line too long": {"argv": [*ckpt, "--first_line", "白日依山尽也", "--form", "五绝"]},
        "more heads than lines": {"argv": [*ckpt, "--acrostic", "春夏秋冬山", "--form", "五绝"]},
        "unknown form": {"argv": [*ckpt, "--form", "六绝"]},
        "top_p": {"argv": [*ckpt, "--form", "五绝", "--top_p", "1.5"]},
        "temperature": {"argv": [*ckpt, "--form", "五绝", "--temperature", "-1"]},
        "not a checkpoint": {"argv": ["generate", "--ckpt_path", str(checkpoint["tmp"] / "nope.ckpt")]},
    }
    (checkpoint["tmp"] / "nope.ckpt").write_bytes(b"not a checkpoint at all")
    return run_batch(cases, checkpoint["tmp"]), heads


def verse_repeats(poem: str) -> list[str]:
    """Characters used twice in a poem, an immediate reduplication (青青) excepted."""
    verse = [c for c in poem if c not in "，。？！；："]
    seen = [
        c for i, c in enumerate(verse) if c in verse[:i] and not (verse[i - 1] == c and (i < 2 or verse[i - 2] != c))
    ]
    return seen


TEMPLATE = "白日依山尽，黄河入海流。欲穷□□□，更上一层楼。"


def records(result) -> list[dict]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("name", list(FORMS))
def test_every_poem_has_the_requested_form_at_high_temperature(results, name):
    poems = records(results[0][f"form {name}"])
    assert len(poems) == 24
    for poem in poems:
        assert classify(poem["poem"]) is FORMS[name], poem
        lines = split_lines_with_marks(poem["poem"])
        assert all(line.endswith("，") for line in lines[0::2]), poem
        assert all(line[-1] in "。？！" for line in lines[1::2]), poem


def test_chars_and_lines_give_the_form(results):
    assert {classify(p["poem"]) for p in records(results[0]["chars lines"])} == {Form.QIJUE}


def test_acrostic_heads_open_the_lines(results):
    table, heads = results
    for case in ("acrostic", "acrostic beams"):
        for poem in records(table[case]):
            lines = split_lines_with_marks(poem["poem"])
            assert len(lines) == 4, poem
            assert "".join(line[0] for line in lines) == heads, poem


def test_beams_and_no_repeat_keep_the_constraints(results):
    for poem in records(results[0]["acrostic beams"]) + records(results[0]["no repeat"]):
        seen: set[str] = set()
        for line in poem["lines"]:
            verse = line[:-1]
            for index, char in enumerate(verse):
                doubled = index > 0 and verse[index - 1] == char and (index < 2 or verse[index - 2] != char)
                assert char not in seen or doubled, poem  # only an immediate reduplication (青青) repeats
                seen.add(char)


def test_first_line_is_kept(results):
    for poem in records(results[0]["first line"]):
        assert poem["lines"][0] == "白日依山尽，"
        assert classify(poem["poem"]) is Form.WULV


def test_same_seed_same_poems(results):
    table = results[0]
    assert table["seed a"].returncode == 0
    assert table["seed a"].stdout == table["seed b"].stdout
    assert table["seed a"].stdout != table["seed c"].stdout


def test_more_poems_than_a_batch_are_written_in_successive_batches(results):
    poems = [record["poem"] for record in records(results[0]["batches"])]
    assert len(poems) == 5 and {classify(poem) for poem in poems} == {Form.WUJUE}
    # the first batch is what a call for that many poems writes; the later ones go on from the same stream
    assert poems[:2] == [record["poem"] for record in records(results[0]["first batch alone"])]
    assert len(set(poems)) == 5


def test_text_output_runs_on_across_batches(results):
    out = results[0]["text batches"].stdout
    assert results[0]["text batches"].returncode == 0
    poems = out.strip().split("\n\n")
    assert len(poems) == 3 and "\n\n\n" not in out
    assert all(classify("".join(poem.splitlines())) is Form.WUJUE for poem in poems)


def test_text_output_is_one_verse_per_line_with_blank_lines_between_poems(results):
    out = results[0]["text"].stdout.strip()
    poems = out.split("\n\n")
    assert len(poems) == 2
    for poem in poems:
        lines = poem.splitlines()
        assert len(lines) == 4 and all(len(line) == 6 for line in lines), out


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("heads outside vocabulary", ("龘", "靐")),
        ("first line outside vocabulary", ("龘",)),
        ("first line too long", ("6",)),
        ("more heads than lines", ("5 heads", "4 lines")),
        ("unknown form", ("六绝", "五绝")),
        ("top_p", ("top_p",)),
        ("temperature", ("temperature",)),
        ("not a checkpoint", ("nope.ckpt",)),
        ("template against form", ("五绝", "七绝")),
        ("template outside vocabulary", ("龘",)),
        ("template without blanks", ("blank",)),
        ("title for a model without titles", ("title", "conditional")),
        ("batch size 0", ("batch_size", "at least 1")),
        ("out of memory", ("GiB", "is available", "lower --batch_size")),
    ],
)
def test_bad_input_is_one_clear_line(results, case, fragments):
    assert_one_line_error(results[0][case], *fragments)


def test_int8_decoding_keeps_the_form(results):
    poems = records(results[0]["int8"])
    assert len(poems) == 8 and {classify(p["poem"]) for p in poems} == {Form.QIJUE}


def test_bf16_decoding_keeps_form_tones_and_rhyme(results):
    result = results[0]["bf16"]
    poems = records(result)
    assert len(poems) == 6 and {classify(p["poem"]) for p in poems} == {Form.WULV}
    for poem in poems:
        assert check_poem(poem["poem"], strict=True).passed, poem
    # On a CPU without bf16 units the user is told that it is emulated; with them, nothing is said.
    assert ("no bf16 units" in result.stderr) != has_bf16_units(torch.device("cpu"))


def test_a_left_to_right_model_fills_a_template(results):
    poems = [record["poem"] for record in records(results[0]["template"])]
    assert len(poems) == 6
    for poem in poems:
        assert classify(poem) == Form.WUJUE
        assert poem.startswith("白日依山尽，黄河入海流。欲穷") and poem.endswith("，更上一层楼。")


def test_a_template_takes_acrostic_heads_and_no_repeat(results):
    for record in records(results[0]["template acrostic"]):
        lines = record["lines"]
        assert lines[0][0] == "春" and lines[1][0] == "夏" and lines[3] == "更上一层楼。"
        assert verse_repeats(record["poem"]) == []


def test_a_template_takes_tones_and_rhyme(results):
    poems = [record["poem"] for record in records(results[0]["template tones"])]
    assert len(poems) == 6
    for poem in poems:
        assert poem.startswith("白日") and classify(poem) == Form.WUJUE
        assert check_poem(poem).passed, poem


def test_requests_that_would_exhaust_memory_are_refused_before_decoding(tmp_path):
    # Beams alone used to exceed --batch_size, and a huge batch grew until the kernel killed the process.
    results = run_batch(
        {
            "beams": {"argv": ["generate", "--form", "五绝", "--num_beams", "1000000"]},
            "batch": {"argv": ["generate", "--form", "五绝", "--num_poems", "10000000", "--batch_size", "100000000"]},
        },
        tmp_path,
    )
    assert_one_line_error(results["beams"], "--num_beams 1000000 needs 1,000,000 rows", "more than --batch_size 1,024")
    assert_one_line_error(
        results["batch"], "a batch of 10,000,000 rows needs about", "GiB", "lower --batch_size to at most"
    )
    assert results["beams"].stdout == "" and results["batch"].stdout == ""
