"""The example plugin package examples/tangrnn-mgu, installed with pip into a folder of its own: its own tests
pass, its config parses, and it trains and writes poems through the `tangrnn` command, found by its entry point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_tangrnn, tiny_config

from tangrnn_core.data.forms import Form, classify

EXAMPLE = REPO / "examples" / "tangrnn-mgu"
MGU_OPTIONS = {"embedding_size": 16, "hidden_size": 16, "num_layers": 1}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, Path]:
    """tangrnn-mgu built from a copy (no build/ or *.egg-info in the repository) into <tmp>/site."""
    tmp = tmp_path_factory.mktemp("mgu")
    source = tmp / "tangrnn-mgu"
    shutil.copytree(
        EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".pytest_cache")
    )
    site = tmp / "site"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--quiet",
            "--target",
            str(site),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (site / "tangrnn_mgu" / "__init__.py").is_file()
    return {"source": source, "site": site}


def with_path(site: Path) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])}


def test_the_example_passes_its_own_tests(installed, tmp_path):
    source = installed["source"]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(source / "tests"),
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(source),
            "--basetemp",
            str(tmp_path / "basetemp"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **with_path(installed["site"])},
        cwd=tmp_path,  # not the copy: its tests must import the installed package
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout and "failed" not in result.stdout, result.stdout


def test_the_example_config_parses(installed, tmp_path):
    result = run_tangrnn(
        "fit", "--config", str(installed["source"] / "mgu.yaml"), "--print_config", env=with_path(installed["site"])
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "architecture: mgu" in result.stdout, result.stdout


def test_the_example_trains_and_writes_poems_of_a_form(installed, small_corpus, tmp_path):
    env = with_path(installed["site"])
    listed = run_tangrnn("plugins", env=env)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines() if line.startswith("mgu ")]
    assert rows == [["mgu", "tangrnn_mgu:MGU", "tangrnn-mgu", "0.1.0", "ok"]], listed.stdout

    config = tiny_config(tmp_path, small_corpus, architecture="mgu", max_steps=4, val_check_interval=4)
    data = json.loads(config.read_text(encoding="utf-8"))
    data["model"]["architecture_options"] = MGU_OPTIONS
    config.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = run_tangrnn("fit", "--config", str(config), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Poems after 4 steps:" in result.stdout, result.stdout
    checkpoints = list((tmp_path / "runs").glob("lightning_logs/version_*/checkpoints/last.ckpt"))
    assert len(checkpoints) == 1, checkpoints

    poems = run_tangrnn(
        "generate",
        "--ckpt_path",
        str(checkpoints[0]),
        "--form",
        "五绝",
        "--num_poems",
        "3",
        "--output",
        "json",
        env=env,
    )
    assert poems.returncode == 0, poems.stdout + poems.stderr
    records = [json.loads(line) for line in poems.stdout.splitlines() if line.startswith("{")]
    assert len(records) == 3, poems.stdout
    assert all(classify(record["poem"]) is Form.WUJUE for record in records), records
