"""The output layer and loss of one training step: full logits against the chunked loss (model.loss_chunk_size).

By default it times the forward and backward pass of the reference LSTM's output layer and cross-entropy alone:
features of 64 x 45 rows by 256 (a batch of 七律-length poems after the tied projection) against a vocabulary
of 8,000, with full logits (``F.linear`` then ``F.cross_entropy``) and with
``tangrnn_core.losses.chunked_cross_entropy`` at each chunk size. ``--full`` times the whole step of the reference
LSTM instead (embedding, 2 x 512 LSTM, projection, output layer, loss; forward and backward) through
``PoetryModel._summed_loss``, on random ids.

The variants alternate in one process (round r starts with variant r mod n), so all see the same machine
state. The table gives, per variant, the median over the rounds of the mean step time, the median of the
rounds' paired ratios against full logits (with their range), and the median minor page faults per step
(``getrusage`` of this process: what allocating and zeroing fresh buffers costs the kernel).

Peak memory: tracemalloc does not see torch's allocations, so each variant also runs alone in a fresh
subprocess that builds its tensors, resets the kernel's resident high-water mark (``VmHWM``, by writing 5 to
``/proc/self/clear_refs``), runs ``--steps`` steps and reads the mark again; the table's "step peak" is that
mark less the resident memory before the steps: what the steps themselves needed at their peak. Where the mark
cannot be reset it falls back to ``resource.getrusage(RUSAGE_SELF).ru_maxrss``, which also covers the imports.
``--memory off`` skips those subprocesses.

    python bench/output_layer.py                          # output layer alone, 5 rounds of 3 steps
    python bench/output_layer.py --full --rounds 7        # the whole reference LSTM step
    python bench/output_layer.py --chunk_sizes 256,1024,4096 --precision bf16
    python bench/output_layer.py --rows 720 --vocab 2000 --rounds 2 --steps 1   # a quick smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from tangrnn_core.allocator import keep_freed_memory
from tangrnn_core.api import Batch
from tangrnn_core.losses import chunked_cross_entropy

#: The reference LSTM of configs/lstm.yaml.
MODEL = {"embedding_size": 256, "hidden_size": 512, "num_layers": 2, "dropout": 0.1, "tie_weights": True}
PAD = 0


def output_layer_step(args: argparse.Namespace) -> Callable[[int], None]:
    """A step function ``step(chunk_size)`` (0: full logits) over fixed features, weight, bias and targets."""
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(args.rows, args.dim, generator=generator).requires_grad_()
    weight = (torch.randn(args.vocab, args.dim, generator=generator) * 0.05).requires_grad_()
    bias = torch.zeros(args.vocab, requires_grad=True)
    targets = torch.randint(PAD + 1, args.vocab, (args.rows,), generator=generator)
    targets[torch.rand(args.rows, generator=generator) < args.padding] = PAD
    count = int((targets != PAD).sum())

    def step(chunk_size: int) -> None:
        with autocast(args):
            if chunk_size:
                summed = chunked_cross_entropy(features, weight, bias, targets, ignore_index=PAD, chunk_size=chunk_size)
            else:
                logits = F.linear(features, weight, bias)
                summed = F.cross_entropy(logits, targets, ignore_index=PAD, reduction="sum")
        (summed / count).backward()
        for tensor in (features, weight, bias):  # as optimizer.zero_grad(set_to_none=True)
            tensor.grad = None

    return step


def full_model_step(args: argparse.Namespace) -> Callable[[int], None]:
    """A step function ``step(chunk_size)`` of the whole reference LSTM on one batch of random poems."""
    from tangrnn_core.module import PoetryModel

    torch.manual_seed(0)
    model = PoetryModel(vocab_size=args.vocab, line_end_ids=[5, 6], architecture="lstm", architecture_options=MODEL)
    model.train()
    batch_size, width = max(1, args.rows // 45), 45
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randint(7, args.vocab, (batch_size, width), generator=generator)
    inputs[:, 0] = 2
    targets = torch.cat([inputs[:, 1:], torch.full((batch_size, 1), 3)], dim=1)
    # Length-bucketed batches: rows a little shorter than the longest, padded at the end.
    lengths = width - (torch.rand(batch_size, generator=generator) * args.padding * 2 * width).long().clamp(
        max=width - 2
    )
    for row, length in enumerate(lengths.tolist()):
        inputs[row, length:] = PAD
        targets[row, length - 1] = 3
        targets[row, length:] = PAD
    batch = Batch(inputs, targets, lengths)

    def step(chunk_size: int) -> None:
        model.loss_chunk_size = chunk_size
        with autocast(args):
            summed, count = model._summed_loss(batch)
        (summed / count).backward()
        model.zero_grad(set_to_none=True)

    return step


def autocast(args: argparse.Namespace):
    return torch.autocast("cpu", dtype=torch.bfloat16) if args.precision == "bf16" else nullcontext()


def build(args: argparse.Namespace) -> Callable[[int], None]:
    return full_model_step(args) if args.full else output_layer_step(args)


def label(chunk_size: int) -> str:
    return f"chunk {chunk_size}" if chunk_size else "full logits"


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def resident_mib(field: str) -> float | None:
    """``VmRSS`` (now) or ``VmHWM`` (the high-water mark) of this process in MiB, from /proc (Linux)."""
    try:
        for line in open("/proc/self/status", encoding="ascii"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_high_water_mark() -> bool:
    """Resets ``VmHWM`` (Linux 4.0+), so that imports and set-up before the steps do not hide their peak."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def measure_memory(args: argparse.Namespace, chunk_size: int) -> dict[str, float]:
    """Runs in a fresh process: resident memory (MiB) after set-up and its peak during ``args.steps`` steps.

    The peak is ``VmHWM`` reset after set-up where Linux allows it, else ``getrusage``'s ``ru_maxrss``, which
    also covers the imports (so a small step peak may then read as 0).
    """
    step = build(args)
    reset = reset_high_water_mark()
    before = resident_mib("VmRSS") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for _ in range(args.steps):
        step(chunk_size)
    after = resident_mib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"setup": before, "peak": after}


def memory_in_subprocess(chunk_size: int) -> dict[str, float] | None:
    argv = [arg for arg in sys.argv[1:] if not arg.startswith("--_measure")]
    result = subprocess.run(
        [sys.executable, os.path.abspath(__file__), *argv, f"--_measure={chunk_size}"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        print(f"memory of {label(chunk_size)} not measured: {result.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--full", action="store_true", help="time the whole reference LSTM step, not the output layer alone"
    )
    parser.add_argument(
        "--chunk_sizes", default="256,512,2048", help="comma-separated rows per chunk, against full logits"
    )
    parser.add_argument("--rows", type=int, default=64 * 45, help="rows (positions) per step: batch x time")
    parser.add_argument("--dim", type=int, default=256, help="features per row (the output layer's input size)")
    parser.add_argument("--vocab", type=int, default=8000, help="vocabulary size (the output layer's output size)")
    parser.add_argument("--padding", type=float, default=0.05, help="share of rows whose target is padding")
    parser.add_argument("--precision", choices=["32", "bf16"], default="32", help="bf16: CPU autocast")
    parser.add_argument("--rounds", type=int, default=5, help="alternations of the variants")
    parser.add_argument("--steps", type=int, default=3, help="steps per variant and round (and in the memory runs)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument(
        "--memory", choices=["on", "off"], default="on", help="peak memory per variant, in subprocesses"
    )
    parser.add_argument(
        "--malloc_tuning", choices=["on", "off"], default="on", help="what `tangrnn fit` does (tangrnn_core.allocator)"
    )
    parser.add_argument("--_measure", type=int, default=None, help=argparse.SUPPRESS)  # the memory subprocess
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tuned = args.malloc_tuning == "on" and keep_freed_memory()
    if args._measure is not None:
        print(json.dumps(measure_memory(args, args._measure)))
        return

    chunk_sizes = [0, *(int(size) for size in args.chunk_sizes.split(",") if size.strip())]
    step = build(args)
    shapes = f"({args.rows} x {args.dim}) @ ({args.dim} x {args.vocab})"
    what = "reference LSTM step" if args.full else f"output layer + loss, {shapes}"
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {what}, precision {args.precision}, "
        f"padding {args.padding:.0%}, {args.rounds} rounds x {args.steps} steps, malloc tuning {'on' if tuned else 'off'}"
    )
    for chunk_size in chunk_sizes:  # warm-up: first-call costs (allocator, oneDNN primitives) out of the clock
        step(chunk_size)

    times: dict[int, list[float]] = {size: [] for size in chunk_sizes}
    faults: dict[int, list[float]] = {size: [] for size in chunk_sizes}
    for round_ in range(args.rounds):
        shift = round_ % len(chunk_sizes)
        for chunk_size in chunk_sizes[shift:] + chunk_sizes[:shift]:
            started, faulted = time.perf_counter(), minor_faults()
            for _ in range(args.steps):
                step(chunk_size)
            times[chunk_size].append((time.perf_counter() - started) / args.steps)
            faults[chunk_size].append((minor_faults() - faulted) / args.steps)

    memory = {size: memory_in_subprocess(size) for size in chunk_sizes} if args.memory == "on" else {}
    print("ratio = variant / full logits, the median of the rounds' paired step times (range in brackets)")
    print(f"{'variant':<12} {'ms/step':>9} {'ratio':>6} {'ratio range':>12} {'faults/step':>12} {'step peak MiB':>14}")
    for chunk_size in chunk_sizes:
        ratios = [mine / full for mine, full in zip(times[chunk_size], times[0])]
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
        used = memory.get(chunk_size)
        peak = f"{used['peak'] - used['setup']:.0f}" if used else "-"
        print(
            f"{label(chunk_size):<12} {statistics.median(times[chunk_size]) * 1000:>9.1f} "
            f"{statistics.median(ratios):>6.2f} {spread:>12} {statistics.median(faults[chunk_size]):>12.0f} {peak:>14}"
        )


if __name__ == "__main__":
    main()
