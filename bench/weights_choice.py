"""Which weights write a request's poems soonest when making them counts: the measurement behind ``--quantize auto``.

``auto`` takes int8 weights on x86 CPUs, and ``tangrnn generate`` makes them (torch's dynamic quantization of
the loaded network) before its first poem, a fixed cost that a request of one poem might not win back; on CPUs
with bf16 units, bf16 copies compete too. This bench measures the choice: for each number of poems, the seconds
from a loaded network (fp32 weights, as ``generate`` has it) to the last poem, each weight format's making
included, medians of rounds in which the formats alternate, and what ``auto`` picks against the fastest
(docs/performance.md, "Which weights auto picks", says why it keeps int8 where bf16 is a little faster).

    python bench/weights_choice.py                          # the bundled model, 1 to 256 五绝
    python bench/weights_choice.py --poems 1,2,4,8 --rounds 9 --ckpt_path model.ckpt
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from tangrnn_core.allocator import keep_freed_memory
from tangrnn_core.checkpoint_files import check_checkpoint
from tangrnn_core.decoding.quantize import (
    choose_weights,
    has_bf16_units,
    has_int8_kernels,
    weights_for_decoding,
)
from tangrnn_core.decoding.request import PoemRequest
from tangrnn_core.decoding.write import write_poems
from tangrnn_core.network import network_from_checkpoint


def seconds_to_poems(net, vocabulary, weights: str, poems: int, seed: int) -> float:
    """Seconds to make ``weights`` from ``net`` and write ``poems`` 五绝 with them."""
    started = time.perf_counter()
    prepared = weights_for_decoding(net, weights)
    write_poems(prepared, vocabulary, PoemRequest(form="五绝", num_poems=poems, seed=seed))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt_path", help="the checkpoint to write with (default: the bundled model)")
    parser.add_argument(
        "--poems", default="1,4,16,64,256", help="comma-separated numbers of poems (default 1,4,16,64,256)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds, formats alternating in each (default 5)")
    args = parser.parse_args()
    keep_freed_memory()  # what `tangrnn generate` runs with

    if args.ckpt_path is None:
        from tangrnn_core.models import DEFAULT_MODEL, bundled_model

        path = bundled_model(DEFAULT_MODEL).path
    else:
        path = args.ckpt_path
    trained = network_from_checkpoint(check_checkpoint(path), path)
    cpu = torch.device("cpu")
    int8, bf16 = has_int8_kernels(), has_bf16_units(cpu)
    formats = ["none", *(["int8"] if int8 else []), *(["bf16"] if bf16 else [])]
    sizes = [int(size) for size in args.poems.split(",")]
    for weights in formats:  # warm-up: the first use of each kernel and allocation is not what is measured
        seconds_to_poems(trained.net, trained.vocabulary, weights, max(sizes), seed=0)

    times: dict[tuple[str, int], list[float]] = {(weights, size): [] for weights in formats for size in sizes}
    for round_ in range(args.rounds):
        for size in sizes:
            for weights in formats:
                times[weights, size].append(seconds_to_poems(trained.net, trained.vocabulary, weights, size, round_))

    print(
        f"{path}; torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}, int8 kernels: {'yes' if int8 else 'no'}, bf16 units: "
        f"{'yes' if bf16 else 'no'}; {args.rounds} rounds (medians); seconds from a loaded fp32 network to the "
        "last 五绝, making the weights included"
    )
    if not bf16:
        print("bf16 weights: not measured (no bf16 units on this CPU, where they are emulated and slow)")
    print(
        f"{'poems':>6} "
        + " ".join(f"{weights:>8}" for weights in formats)
        + f" {'fastest':>8} {'auto':>6} auto/fastest"
    )
    for size in sizes:
        medians = {weights: statistics.median(times[weights, size]) for weights in formats}
        fastest = min(medians, key=medians.__getitem__)
        auto = choose_weights("cpu", int8, bf16)[0]
        print(
            f"{size:>6} "
            + " ".join(f"{medians[weights]:>8.3f}" for weights in formats)
            + f" {fastest:>8} {auto:>6} {medians[auto] / medians[fastest]:>12.2f}"
        )


if __name__ == "__main__":
    main()
