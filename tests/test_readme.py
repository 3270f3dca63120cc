"""The README's first screen and CI stay in step: CI runs the README's test command, word for word; the poem it
shows is the one its command prints."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import REPO


def _commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    first_screen = text.split("---", 1)[0]
    return re.findall(r"```\n(.+?)\n```", first_screen)


def test_first_screen_has_the_two_commands():
    main_job, tests = _commands()[:2]
    assert "tangrnn fit --config configs/quickstart.yaml" in main_job
    assert "torch==2.13.0" in main_job and "torch==2.13.0" in tests
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command_exactly():
    tests = _commands()[1]
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert tests in ci_lines


def test_every_config_named_in_the_readme_exists():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    for name in set(re.findall(r"configs/[\w/]+\.yaml", text)):
        assert (REPO / name).is_file(), name


def test_the_shown_poems_are_found_with_their_commands():
    sys.path.insert(0, str(REPO / "scripts"))
    from doc_poems import shown_poems

    lines = ["text", "```", "$ tangrnn generate --form 五绝 --seed 1", "一", "二", "", "$ tangrnn check x", "```"]
    lines += ["```", "$ tangrnn generate --form 七绝", "三", "```", "$ tangrnn generate --seed 2"]
    found = shown_poems(lines)
    assert [(s.command, lines[s.start : s.end]) for s in found] == [
        ("tangrnn generate --form 五绝 --seed 1", ["一", "二"]),
        ("tangrnn generate --form 七绝", ["三"]),
    ]


def test_the_first_screen_poem_is_what_its_command_prints():
    # The bundled model, seeded; int8 weights (`--quantize auto`) compute in integers, alike on AVX2 and AVX-512.
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "doc_poems.py"), "--check", str(REPO / "README.md")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
