"""Start-up: seconds from starting a ``tangrnn`` process to its first poem, and to its exit, run as a user runs it.

Each command is a fresh process (``python -m tangrnn_core``, what the ``tangrnn`` script runs, without the
start-up of a shell shim such as pyenv's). Rounds interleave the commands, so that a busy spell of a noisy
machine falls on all of them alike; the table gives min / median / max over the rounds. The baseline in the
same run is the same ``generate`` through LightningCLI (``--trainer.accelerator cpu`` sends it there, as any
trainer option does), the same with int8 weights (what ``--quantize auto`` takes from 16 poems: making them is
part of the wait), and the floors are Python alone and ``import torch`` alone.

    python bench/startup.py                  # 7 rounds
    python bench/startup.py --rounds 15 --ckpt_path model.ckpt
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
import unicodedata

from machine import cpu

POEM = "床前明月光，疑是地上霜。举头望明月，低头思故乡。"


def commands(ckpt_path: str | None) -> dict[str, list[str]]:
    tangrnn = [sys.executable, "-m", "tangrnn_core"]
    ckpt = ["--ckpt_path", ckpt_path] if ckpt_path else []
    generate = [*tangrnn, "generate", *ckpt, "--form", "五绝", "--num_poems", "1", "--seed", "1"]
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import torch'": [sys.executable, "-c", "import torch"],
        "tangrnn check POEM": [*tangrnn, "check", POEM],
        "tangrnn generate --form 五绝": generate,
        "same, --quantize int8": [*generate, "--quantize", "int8"],
        "same through LightningCLI": [*generate, "--trainer.accelerator", "cpu"],
    }


def run_once(command: list[str]) -> tuple[float | None, float]:
    """Seconds to the first line on stdout (``None`` if it printed none) and to the exit."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    first = process.stdout.readline()
    first_at = time.perf_counter() - started if first else None
    _, stderr = process.communicate()
    ended = time.perf_counter() - started
    # check exits 1 on a poem with faults (this one has some); anything else is a failure
    if process.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}): {stderr.decode().strip()[-300:]}")
    return first_at, ended


def pad(text: str, width: int) -> str:
    """``text`` padded to ``width`` terminal columns (五绝 takes four)."""
    columns = sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)
    return text + " " * max(0, width - columns)


def spread(values: list[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="runs of every command (default 7)")
    parser.add_argument("--ckpt_path", help="the checkpoint to write with (default: the bundled model)")
    args = parser.parse_args()

    table = commands(args.ckpt_path)
    first: dict[str, list[float]] = {name: [] for name in table}
    total: dict[str, list[float]] = {name: [] for name in table}
    for command in table.values():  # one unmeasured run each: the files are in the page cache for all
        run_once(command)
    for _ in range(args.rounds):
        for name, command in table.items():
            first_at, ended = run_once(command)
            if first_at is not None:
                first[name].append(first_at)
            total[name].append(ended)

    import torch

    print(f"{cpu()}; torch {torch.__version__}, Python {platform.python_version()}; {args.rounds} rounds")
    print(f"{'command':32s} {'first line, s (min / median / max)':36s} exit, s (min / median / max)")
    for name in table:
        shown = spread(first[name]) if first[name] else "-"
        print(f"{pad(name, 32)} {shown:36s} {spread(total[name])}")
    quick = statistics.median(first["tangrnn generate --form 五绝"])
    slow = statistics.median(first["same through LightningCLI"])
    print(f"first poem: {quick:.2f} s without Lightning against {slow:.2f} s through it ({slow / quick:.1f}x sooner)")


if __name__ == "__main__":
    main()
