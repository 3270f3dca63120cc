"""How a training run ends: a `last.ckpt` at its final step whatever ended it, and exit statuses that say how.

SIGTERM (a scheduler's stop) exits 143 and SIGINT (Ctrl-C) 130, as shells report those signals, each after
saving the step it reached; a run that reaches its limit between two validations still saves its last step.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import tiny_config


def _last(root: Path) -> Path:
    (path,) = root.glob("**/checkpoints/last.ckpt")
    return path


def _step(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])


def test_a_run_that_stops_between_validations_saves_its_final_step(tmp_path, small_corpus):
    config = tiny_config(tmp_path, small_corpus, max_steps=7, val_check_interval=5)
    result = subprocess.run(
        [sys.executable, "-m", "tangrnn_core", "fit", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert _step(_last(tmp_path / "runs")) == 7
    assert "the run ended: saved" in result.stderr


@pytest.mark.parametrize("signum, status, why", [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "Ctrl-C")])
def test_a_signal_during_fit_saves_the_step_and_exits_with_its_status(tmp_path, small_corpus, signum, status, why):
    config = tiny_config(tmp_path, small_corpus, max_steps=100000, val_check_interval=10000, limit_val_batches=0)
    process = subprocess.Popen(
        [sys.executable, "-m", "tangrnn_core", "fit", "--config", str(config), "--trainer.log_every_n_steps", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Wait until training has taken some steps (the TensorBoard log gets its first event files).
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list((tmp_path / "runs").glob("**/events.out.tfevents*")):
        time.sleep(0.2)
    time.sleep(3)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == status, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("tangrnn: error:")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    last = _last(tmp_path / "runs")
    reached = _step(last)
    assert reached > 0 and f"{why}: saved {last} at step {reached}; resume with --ckpt_path last" in stderr

    # and the run goes on from there
    resumed = subprocess.run(
        [
            sys.executable, "-m", "tangrnn_core", "fit", "--config", str(config), "--ckpt_path", "last",
            "--trainer.max_steps", str(reached + 2),
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    newest = max((tmp_path / "runs").glob("**/checkpoints/last.ckpt"), key=os.path.getmtime)
    assert _step(newest) == reached + 2


def test_ctrl_c_stops_a_long_decode_at_once_keeping_what_it_printed():
    """Ctrl-C in the middle of 50,000 poems: exit 130 within a second of the signal (the decode stops between
    two steps and the process does not spend a second unloading torch), the poems printed so far intact."""
    command = [sys.executable, "-m", "tangrnn_core", "generate", "--form", "七律", "--num_poems", "50000"]
    command += ["--output", "json"]
    decode = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = decode.stdout.readline()  # the first batch is out: the decode is running
    signalled = time.monotonic()
    decode.send_signal(signal.SIGINT)
    rest = decode.stdout.read()  # through the same buffered reader as the first line, so nothing is skipped
    decode.wait(timeout=60)
    stopped = time.monotonic() - signalled
    stderr = decode.stderr.read()
    assert decode.returncode == 130, stderr[-2000:]
    assert stderr.strip().splitlines()[-1] == "tangrnn: error: interrupted (Ctrl-C)"
    assert stopped < 1.0, f"took {stopped:.2f} s to stop"
    lines = [line.strip() for line in [first, *rest.splitlines()] if line.strip()]
    assert lines and all(line.startswith("{") and line.endswith("}") for line in lines)
