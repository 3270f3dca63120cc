"""`tangrnn check` end to end: reports, exit statuses, JSON, several poems, and input it cannot check."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import assert_one_line_error, run_batch

DENGGUAN = "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。"
BROKEN = "白日依山尽，黄河入海流。欲有千里目，更上一层楼。"  # line 3, position 2: 仄 where 平 is needed
LOOSE_ONLY = "白日依山尽，黄河山海流。欲穷千里目，更上一层楼。"  # line 2, position 3: strict only
XINGGONG = "寥落古行宫，宫花寂寞红。白头宫女在，闲坐说玄宗。"  # 宗 borrows from a neighbouring group


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("check")
    (tmp / "two.txt").write_text(f"{DENGGUAN}\n\n{BROKEN}\n", encoding="utf-8")
    records = [{"poem": DENGGUAN, "lines": [], "form": "五绝"}, {"poem": XINGGONG, "lines": [], "form": "五绝"}]
    lines = "\n".join(json.dumps(record, ensure_ascii=False) for record in records)
    (tmp / "generated.jsonl").write_text(lines, encoding="utf-8")
    (tmp / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    cases = {
        "pass": ["check", DENGGUAN],
        "traditional": ["check", "白日依山盡，黃河入海流。欲窮千里目，更上一層樓。"],
        "broken": ["check", BROKEN],
        "loose": ["check", LOOSE_ONLY, "--tones", "loose"],
        "strict tones": ["check", LOOSE_ONLY],
        "json": ["check", DENGGUAN, "--output", "json"],
        "json broken": ["check", BROKEN, "--output", "json"],
        "file": ["check", "--file", str(tmp / "two.txt")],
        "generated": ["check", "--file", str(tmp / "generated.jsonl"), "--output", "json"],
        "neighbour": ["check", XINGGONG],
        "neighbour strict": ["check", XINGGONG, "--strict"],
        "pattern": ["check", DENGGUAN, "--pattern", "平起首句入韵"],
        "help": ["check", "--help"],
        # input that cannot be checked: one line, status 2
        "empty": ["check", " "],
        "not regular": ["check", "白日依山尽，黄河入海流。"],
        "not verse": ["check", "hello world"],
        "no file": ["check", "--file", str(tmp / "missing.txt")],
        "not utf8": ["check", "--file", str(tmp / "latin1.txt")],
        "both": ["check", DENGGUAN, "--file", str(tmp / "two.txt")],
        "bad tones": ["check", DENGGUAN, "--tones", "medium"],
        "bad pattern": ["check", DENGGUAN, "--pattern", "平起"],
        "irregular among several": ["check", f"{DENGGUAN}\n\n白日依山尽，黄河入海流。"],
    }
    return run_batch({name: {"argv": argv} for name, argv in cases.items()}, tmp)


def test_a_passing_poem(results):
    result = results["pass"]
    assert result.returncode == 0, result.stderr
    for fragment in ("form      五绝", "仄起首句不入韵 五绝 (a B b A)", "下平声十一尤: 流 楼", "passes: 0 violations"):
        assert fragment in result.stdout
    assert results["traditional"].returncode == 0


def test_a_violation_by_line_and_position(results):
    result = results["broken"]
    assert result.returncode == 1 and result.stderr == ""
    assert "violation: line 3, position 2 (有): tone: 仄 where the pattern needs 平" in result.stdout
    assert "fails: 1 violation" in result.stdout


def test_loose_tones(results):
    assert results["loose"].returncode == 0
    assert results["strict tones"].returncode == 1
    assert "line 2, position 3 (山)" in results["strict tones"].stdout


def test_json_records(results):
    record = json.loads(results["json"].stdout)
    assert record["passed"] is True and record["pattern"] == "仄起首句不入韵" and record["form"] == "五绝"
    assert record["rhyme_group"] == "十一尤" and record["rhymes"] == ["流", "楼"]
    assert [line["tones"] for line in record["lines"]][0] == "仄仄平平仄"
    broken = json.loads(results["json broken"].stdout)
    assert results["json broken"].returncode == 1 and broken["passed"] is False
    assert [(v["line"], v["position"], v["rule"]) for v in broken["violations"]] == [(3, 2, "tone")]


def test_several_poems(results):
    result = results["file"]
    assert result.returncode == 1 and "2 poems: 1 pass, 1 fail" in result.stdout
    generated = [json.loads(line) for line in results["generated"].stdout.splitlines()]
    assert results["generated"].returncode == 0 and [r["passed"] for r in generated] == [True, True]
    assert [len(r["warnings"]) for r in generated] == [0, 1]


def test_warnings_fail_only_when_strict(results):
    assert results["neighbour"].returncode == 0
    assert "warning: line 4, position 5 (宗): 邻韵" in results["neighbour"].stdout
    assert results["neighbour strict"].returncode == 1


def test_a_given_pattern(results):
    assert results["pattern"].returncode == 1 and "平起首句入韵 五绝" in results["pattern"].stdout


def test_help(results):
    assert results["help"].returncode == 0 and "一三五不论" in results["help"].stdout


@pytest.mark.parametrize(
    "case, fragment",
    [
        ("empty", "no poem given"),
        ("not regular", "not a regular form (2 lines of 5, 5 characters)"),
        ("not verse", "cannot read 'hello' as verse"),
        ("no file", "does not exist"),
        ("not utf8", "is not UTF-8"),
        ("both", "either as an argument or with --file"),
        ("bad tones", "invalid choice: 'medium'"),
        ("bad pattern", "unknown pattern '平起'"),
        ("irregular among several", "poem 2 (白日依山尽，黄河入海流。): not a regular form"),
    ],
)
def test_input_it_cannot_check(results, case, fragment):
    result = results[case]
    assert result.returncode == 2
    assert_one_line_error(result, fragment)


def test_one_poem_that_cannot_be_checked_does_not_hide_the_others(results):
    result = results["irregular among several"]
    assert "平起首句不入韵" in result.stdout or "仄起首句不入韵" in result.stdout  # poem 1, checked
    assert "poem 2 cannot be checked: not a regular form" in result.stdout
    assert "2 poems: 1 pass, 0 fail, 1 cannot be checked" in result.stdout


def test_standard_input():
    process = subprocess.run(
        [sys.executable, "-m", "tangrnn_core", "check", "--output", "json"],
        input=f"{DENGGUAN}\n\n{BROKEN}\n",
        capture_output=True,
        text=True,
        env=os.environ,
        timeout=120,
    )
    assert process.returncode == 1, process.stderr
    assert [json.loads(line)["passed"] for line in process.stdout.splitlines()] == [True, False]


def test_standard_input_closed_is_one_line():
    # `tangrnn check <&-`: no poem and no standard input at all, as a detached job may run it.
    process = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m tangrnn_core check <&-"],
        capture_output=True,
        text=True,
        env=os.environ,
        timeout=120,
    )
    assert process.returncode == 2, process.stderr
    assert process.stderr.strip().splitlines() == [
        "tangrnn: error: no poem given: pass it as an argument, with --file PATH, or on standard input"
    ]
