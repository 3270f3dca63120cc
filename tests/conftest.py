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
    import lzma

    from tangrnn_core.data.corpus import bundled_corpus_path

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
            # fp32 whatever the machine: the tests' figures must not depend on its bf16 units
            "precision": "32-true",
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


# Runs `tangrnn_core.cli.main(argv)` for each case of a JSON list ({"argv": [...], "env": {...}}) and writes
# a JSON list of {"returncode", "stdout", "stderr"}. Like a fresh process, each case sees its own environment
# and discovers the plugins anew; an exception that escapes main() is printed as Python would print it.
RUNNER = r"""
import json, os, sys, tempfile, traceback
from tangrnn_core import cli, registry

cases = json.load(open(sys.argv[1], encoding="utf-8"))
results = []
for case in cases:
    env = case.get("env", {})
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    registry._DEFAULT = None  # a new process would discover the plugins anew
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    sys.stdout.flush()
    sys.stderr.flush()
    fd1, fd2 = os.dup(1), os.dup(2)
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)
    code = 0
    try:
        cli.main(case["argv"])
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        if isinstance(exit.code, str):
            print(exit.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(fd1, 1)
        os.dup2(fd2, 2)
        os.close(fd1)
        os.close(fd2)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    out.seek(0)
    err.seek(0)
    results.append(
        {
            "returncode": code,
            "stdout": out.read().decode("utf-8", "replace"),
            "stderr": err.read().decode("utf-8", "replace"),
        }
    )
json.dump(results, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False)
"""


def make_distribution(root: Path, name: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """Writes an installed distribution (dist-info with entry points, and its modules) under ``root``."""
    info = root / f"{name.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    lines = "\n".join(f"{key} = {value}" for key, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[tangrnn.architectures]\n{lines}\n")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source)


def run_batch(cases: dict[str, dict], tmp: Path, env: dict[str, str] | None = None, timeout: float = 400):
    """Runs named cases in one process (see ``RUNNER``); returns name -> CompletedProcess."""
    names = list(cases)
    (tmp / "cases.json").write_text(json.dumps([cases[name] for name in names], ensure_ascii=False), encoding="utf-8")
    process = subprocess.run(
        [sys.executable, "-c", RUNNER, str(tmp / "cases.json"), str(tmp / "results.json")],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    results = json.loads((tmp / "results.json").read_text(encoding="utf-8"))
    return {
        name: subprocess.CompletedProcess(cases[name]["argv"], result["returncode"], result["stdout"], result["stderr"])
        for name, result in zip(names, results)
    }


def untrained_checkpoint(path: Path, data, architecture: str, options: dict, seed: int) -> str:
    """Saves, as `tangrnn fit` does, an untrained model initialised from ``seed``: its poems depend on torch's
    random stream only, not on training arithmetic that may differ between CPUs. Returns the path."""
    import lightning.pytorch as pl

    from tangrnn_core.module import PoetryModel

    pl.seed_everything(seed, verbose=False)
    model = PoetryModel(
        vocab_size=data.vocab_size,
        line_end_ids=data.line_end_ids,
        architecture=architecture,
        architecture_options=options,
    )
    trainer = pl.Trainer(
        max_steps=0, limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.fit(model, datamodule=data)
    trainer.save_checkpoint(path)
    return str(path)
