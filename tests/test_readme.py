"""The README's first screen and CI stay in step: CI runs the README's test command, word for word."""

from __future__ import annotations

import re

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
