"""The GPU check script, run on the CPU as a smoke check: it must keep working until a GPU machine runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_check_runs_end_to_end_on_the_cpu():
    command = [
        sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--device", "cpu", "--tiny", "--precisions", "32-true",
        "--steps", "2", "--warmup", "1", "--max_poems", "300", "--batch", "4",
        "--rounds", "1", "--single", "2",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "measured matmul peak" in out
    training = out.split("training,")[1].split("generation,")[0]
    row = next(line for line in training.splitlines() if line.startswith("32-true"))
    assert float(row.split()[1].replace(",", "")) > 0  # characters per second
    generation = out.split("generation,")[1]
    assert sum(line.startswith(("fp32", "bf16")) for line in generation.splitlines()) == 6


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU machine: the check would run for real")
def test_gpu_check_says_so_without_a_gpu():
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_check.py")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2 and "no CUDA device here" in result.stderr
