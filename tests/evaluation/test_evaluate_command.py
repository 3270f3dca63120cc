"""`tangrnn fit` a tiny model, then `tangrnn evaluate` it through the command: the report, and bad input."""

from __future__ import annotations

import csv
import json
import math

import pytest
from conftest import assert_one_line_error, run_batch, tiny_config

from tangrnn_core.decoding.request import DEFAULT_TEMPERATURE, DEFAULT_TOP_P

RATES = ("form_rate", "distinct_1", "distinct_2", "copied_lines", "poems_with_copy")
#: Rates of the poems in a regular form: None when a free sample has none.
REGULAR_RATES = ("tone_rate", "rhyme_rate")


@pytest.fixture(scope="module")
def results(tmp_path_factory, small_corpus):
    tmp = tmp_path_factory.mktemp("evaluate")
    # A CSV logger, so that the figures logged at each validation can be read back.
    logger = {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(tmp / "runs")}}
    config = str(tiny_config(tmp, small_corpus, logger=logger))
    evaluate = ["evaluate", "--config", config, "--ckpt_path", "last"]
    cases = {
        "fit": {"argv": ["fit", "--config", config, "--sample_quality.num_poems", "6"]},
        "json": {"argv": [*evaluate, "--num_poems", "8", "--form", "all", "--output", "json"]},
        "text": {"argv": [*evaluate, "--num_poems", "4", "--form", "wujue"]},
        "text again": {"argv": [*evaluate, "--num_poems", "4", "--form", "wujue"]},
        "missing checkpoint": {"argv": ["evaluate", "--config", config, "--ckpt_path", str(tmp / "nope.ckpt")]},
        "no checkpoint": {"argv": ["evaluate", "--config", config]},
        "unknown form": {"argv": [*evaluate, "--form", "六绝"]},
        "no poems": {"argv": [*evaluate, "--num_poems", "0"]},
        "unknown tones": {"argv": [*evaluate, "--check_tones", "lenient"]},
    }
    return run_batch(cases, tmp), tmp


def report(result) -> dict:
    assert result.returncode == 0, result.stderr[-3000:]
    objects = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(objects) == 1, result.stdout  # one JSON object, nothing else on stdout but poems of training
    return json.loads(objects[0])


def test_json_report_has_every_figure_in_range(results):
    figures = report(results[0]["json"])
    assert figures["settings"] == {
        "num_poems": 8,
        "form": "all",
        "temperature": DEFAULT_TEMPERATURE,
        "top_p": DEFAULT_TOP_P,
        "seed": 1234,
        "check_tones": "strict",
    }
    test = figures["test"]
    assert 1 < test["perplexity"] < 10_000
    assert math.isclose(math.log(test["perplexity"]), test["cross_entropy"], rel_tol=1e-4)
    assert test["poems"] > 0 and test["characters"] > test["poems"]
    continuation = figures["continuation"]
    assert 0 < continuation["poems"] <= 8 and 0 <= continuation["bleu2"] <= 1
    assert list(figures["samples"]) == ["free", "五绝", "七绝", "五律", "七律"]
    assert figures["notes"] == []  # notes are for infilling networks
    for label, sample in figures["samples"].items():
        assert sample["poems"] == 8
        assert all(0 <= sample[key] <= 1 for key in RATES), sample
        assert sample["distinct_1"] > 0 and len(sample["examples"]) == 2
        if label != "free":
            assert sample["form_rate"] == 1.0, label  # the decoder's form constraint holds for every poem
            assert all(0 <= sample[key] <= 1 for key in REGULAR_RATES), sample
        else:
            assert all(sample[key] is None or 0 <= sample[key] <= 1 for key in REGULAR_RATES), sample


def test_the_same_seed_gives_the_same_report(results):
    assert results[0]["text"].returncode == 0, results[0]["text"].stderr[-3000:]
    assert results[0]["text"].stdout == results[0]["text again"].stdout


def test_text_report_is_a_table(results):
    result = results[0]["text"]
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert any(line.startswith("test split   perplexity") for line in lines), result.stdout
    assert any(line.startswith("BLEU-2") for line in lines), result.stdout
    header = next(line for line in lines if line.startswith("sample"))
    assert header.split()[:5] == ["sample", "poems", "form", "distinct-1", "distinct-2"]
    assert header.split()[-2:] == ["tones", "rhyme"]
    row = lines[lines.index(header) + 1].split()
    assert row[:3] == ["五绝", "4", "1.000"]


def test_fit_logs_sampled_figures_at_each_validation(results):
    table, tmp = results
    assert table["fit"].returncode == 0, table["fit"].stderr[-3000:]
    rows = list(csv.DictReader(open(tmp / "runs" / "lightning_logs" / "version_0" / "metrics.csv", encoding="utf-8")))
    logged = [row for row in rows if row.get("val/form_rate")]
    assert len(logged) == 2  # validations after steps 3 and 6
    for row in logged:
        for key in ("val/form_rate", "val/distinct_1", "val/distinct_2", "val/novelty"):
            assert 0 <= float(row[key]) <= 1, row


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("missing checkpoint", ("nope.ckpt", "does not exist")),
        ("no checkpoint", ("--ckpt_path",)),
        ("unknown form", ("六绝", "free, all")),
        ("no poems", ("--num_poems",)),
        ("unknown tones", ("check_tones", "lenient")),
    ],
)
def test_bad_input_is_one_clear_line(results, case, fragments):
    assert_one_line_error(results[0][case], *fragments)
