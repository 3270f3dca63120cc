"""The command line under drawn input: `generate` and `check` with options and text drawn by hypothesis.

Whatever is drawn, the command ends with status 0, 1 or 2, never a traceback, never "unexpected", and at most
one `tangrnn: error:` line. The number of examples is bounded so that CI stays fast; raise it locally with
HYPOTHESIS_PROFILE=thorough.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tangrnn_core import cli

settings.register_profile(
    "ci", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.register_profile(
    "thorough", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Characters of verse, the marks, and things that are neither.
CHARACTERS = "春江花月夜白日依山尽黄河入海流床前明月光疑是地上霜龘𠀋，。？！、 \nabc1□_*"
verse = st.text(alphabet=CHARACTERS, max_size=40)
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5).map(float))


def _option(name: str, strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.just([]), strategy.map(lambda value: [f"--{name}", str(value)]))


GENERATE_OPTIONS = st.tuples(
    _option("form", st.sampled_from(["五绝", "七绝", "五律", "七律", "qijue", "sonnet", ""])),
    _option("chars", st.integers(-1, 9)),
    _option("lines", st.integers(-1, 9)),
    _option("acrostic", verse),
    _option("first_line", verse),
    _option("prefix", verse),
    _option("template", verse),
    _option("temperature", numbers),
    _option("top_p", numbers),
    _option("top_k", st.integers(-3, 50)),
    _option("num_beams", st.integers(-1, 4)),
    _option("num_poems", st.integers(-1, 3)),
    _option("tones", st.sampled_from(["strict", "loose", "off", "medium"])),
    _option("rhyme", st.sampled_from(["auto", "东", "一东", "下平声十一尤", "x"])),
    _option("pattern", st.sampled_from(["auto", "平起首句入韵", "ze-rhymed", "平起"])),
    _option("no_repeat", st.sampled_from(["true", "false", "maybe"])),
    _option("seed", st.integers(-(2**70), 2**70)),
    _option("output", st.sampled_from(["text", "json", "xml"])),
)


def _run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        cli.main(argv)
        status = 0
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else 1
    return status, capsys.readouterr().err


def _assert_clean(status: int, err: str, argv: list[str]) -> None:
    assert status in (0, 1, 2), (argv, status, err)
    assert "Traceback" not in err and "unexpected" not in err, (argv, err)
    assert sum(line.startswith("tangrnn: error:") for line in err.splitlines()) <= 1, (argv, err)


@given(options=GENERATE_OPTIONS)
def test_generate_never_fails_unexpectedly(options, capsys):
    argv = ["generate", "--batch_size", "64", *[part for option in options for part in option]]
    _assert_clean(*_run(argv, capsys), argv)


@given(
    poem=st.one_of(verse, st.lists(verse, min_size=2, max_size=3).map("\n\n".join)),
    tones=st.sampled_from(["strict", "loose"]),
    strict=st.booleans(),
)
def test_check_never_fails_unexpectedly(poem, tones, strict, capsys):
    argv = ["check", poem, "--tones", tones, *(["--strict"] if strict else [])]
    if poem.startswith("-"):
        pytest.skip("an option, not a poem")
    _assert_clean(*_run(argv, capsys), argv)
