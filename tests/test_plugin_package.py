"""A real third-party plugin package (tests/plugin_package, `tangrnn-ngram`), installed with pip and found
through its entry point alone: it is listed, it trains, and without it installed its name is unknown."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import assert_one_line_error, run_tangrnn, tiny_config

PACKAGE = Path(__file__).resolve().parent / "plugin_package"
NGRAM_OPTIONS = {"context": 3, "embedding_size": 8, "hidden_size": 16}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """tangrnn-ngram installed into a folder of its own (to be put on PYTHONPATH), built from a copy."""
    tmp = tmp_path_factory.mktemp("ngram")
    source = tmp / "source"
    # Build from a copy, so that no build/ or *.egg-info lands in the repository.
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp / "site"
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
            str(target),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (target / "tangrnn_ngram" / "__init__.py").is_file()
    return target


def ngram_config(tmp: Path, corpus: Path) -> Path:
    config = tiny_config(tmp, corpus, architecture="ngram")
    data = json.loads(config.read_text(encoding="utf-8"))
    data["model"]["architecture_options"] = NGRAM_OPTIONS
    config.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return config


def with_path(site: Path) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])}


def test_installed_plugin_is_listed(installed):
    result = run_tangrnn("plugins", env=with_path(installed))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("ngram ")]
    assert rows == [["ngram", "tangrnn_ngram:NeuralNGram", "tangrnn-ngram", "0.3.0", "ok"]], result.stdout
    assert any(line.startswith("lstm ") for line in result.stdout.splitlines())


def test_installed_plugin_trains_and_writes_poems(installed, small_corpus, tmp_path):
    config = ngram_config(tmp_path, small_corpus)
    result = run_tangrnn("fit", "--config", str(config), env=with_path(installed))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Poems after 3 steps:" in result.stdout and "Poems after 6 steps:" in result.stdout, result.stdout
    assert "NeuralNGram" in result.stdout + result.stderr  # Lightning's model summary names the network
    assert list((tmp_path / "runs").glob("lightning_logs/version_*/checkpoints/last.ckpt"))


def test_without_the_package_its_name_is_unknown(small_corpus, tmp_path):
    config = ngram_config(tmp_path, small_corpus)
    result = run_tangrnn("fit", "--config", str(config))
    assert_one_line_error(result, "unknown architecture 'ngram'", "tangrnn plugins")
    assert not (tmp_path / "runs").exists()
