"""Shared fixtures: a small slice of the real corpus, an isolated cache, and a runner for the `tangrnn` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory):
    # Tests never read or write the user's cache; subprocesses inherit the variable.
    os.environ["TANGRNN_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    os.environ.pop("TANGRNN_DISABLE_PLUGIN_AUTOLOAD", None)
    yield


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 600 poems of the bundled corpus as a tangrnn JSON Lines file."""
    from tangrnn_core.data.corpus import bundled_corpus_path

    import lzma

    path = tmp_path_factory.mktemp("corpus") / "small.jsonl"
    with lzma.open(bundled_corpus_path(), "rt", encoding="utf-8") as source:
        lines = [next(source) for _ in range(600)]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def tiny_config(tmp: Path, corpus: Path, architecture: str = "lstm", **trainer) -> Path:
    """A config that trains a tiny model for a few steps on ``corpus``, writing under ``tmp``."""
    config = {
        "model": {
            "architecture": architecture,
            "architecture_options": {"embedding_size": 16, "hidden_size": 16, "num_layers": 1}
            if architecture in ("rnn", "lstm", "gru")
            else {},
        },
        "data": {"corpus": str(corpus), "batch_size": 16, "val_fraction": 0.1, "test_fraction": 0.1},
        "trainer": {
            "max_steps": 6,
            "val_check_interval": 3,
            "limit_val_batches": 2,
            "default_root_dir": str(tmp / "runs"),
            "enable_progress_bar": False,
            **trainer,
        },
    }
    path = tmp / "tiny.yaml"
    path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    return path


def run_tangrnn(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300):
    """Runs the `tangrnn` command as a user would (through `python -m tangrnn_core`)."""
    return subprocess.run(
        [sys.executable, "-m", "tangrnn_core", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=timeout,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """A user error: non-zero exit, no traceback, one line on stderr naming the problem."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("tangrnn: error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
