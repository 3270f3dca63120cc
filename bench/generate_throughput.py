"""Generation throughput: 五绝 per second, one poem at a time against many at once, fp32, int8 and bf16 weights.

The reference LSTM (embedding 256, hidden 512, 2 layers, tied output) over a vocabulary of the size of the
real one; the weights are random, which changes nothing here: with the form constraint every poem has exactly
24 decoding steps. Both sides run in the same process, alternating, and the table gives medians. bf16 weights
are measured only on a CPU with bf16 units (AVX-512 BF16 or AMX), where they pay off; ``--bf16 always``
measures them anyway (emulated bf16 is many times slower than fp32).

    python bench/generate_throughput.py
    python bench/generate_throughput.py --batch 256,1024 --rounds 5 --constraints form,no_repeat,acrostic
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from tangrnn_core.allocator import keep_freed_memory
from tangrnn_core.data.normalize import LINE_END_MARKS
from tangrnn_core.data.vocab import SPECIALS, Vocabulary
from tangrnn_core.decoding.quantize import bf16_for_decoding, has_bf16_units, int8_for_decoding
from tangrnn_core.decoding.request import PoemRequest
from tangrnn_core.decoding.write import write_poems
from tangrnn_recurrent import LSTM


def synthetic_vocabulary(size: int) -> Vocabulary:
    """Punctuation and ``size`` CJK characters (the decoder cares about the count, not which ones)."""
    chars = [chr(0x4E00 + index) for index in range(size - len(SPECIALS) - len(LINE_END_MARKS))]
    return Vocabulary([*SPECIALS, *LINE_END_MARKS, *chars])


def poems_per_second(net, vocabulary, request: PoemRequest, calls: int) -> float:
    started = time.perf_counter()
    for call in range(calls):
        write_poems(net, vocabulary, PoemRequest(**{**request.__dict__, "seed": call}))
    return calls * request.num_poems / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab_size", type=int, default=8000)
    parser.add_argument(
        "--batch", default="256", help="poems decoded together; comma-separated sizes are measured side by side"
    )
    parser.add_argument("--single", type=int, default=20, help="poems written one at a time per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--constraints", default="form", help="comma-separated: form, no_repeat, acrostic (all with form)"
    )
    parser.add_argument("--bf16", choices=["auto", "always", "never"], default="auto", help="measure bf16 weights")
    parser.add_argument(
        "--malloc_tuning",
        choices=["on", "off"],
        default="on",
        help="what `tangrnn generate` does (tangrnn_core.allocator)",
    )
    args = parser.parse_args()
    # Process-wide, so every row of the table gets the allocator that `tangrnn generate` runs with.
    tuned = args.malloc_tuning == "on" and keep_freed_memory()
    torch.manual_seed(0)
    vocabulary = synthetic_vocabulary(args.vocab_size)
    net = LSTM(vocabulary.token_spec(LINE_END_MARKS), embedding_size=256, hidden_size=512, num_layers=2).eval()
    chosen = set(args.constraints.split(","))
    options = {"form": "五绝", "temperature": 1.0}
    if "no_repeat" in chosen:
        options["no_repeat"] = True
    if "acrostic" in chosen:
        options["acrostic"] = "".join(vocabulary.tokens[-4:])
    sizes = [int(size) for size in args.batch.split(",")]
    single = PoemRequest(num_poems=1, **options)
    batched = {size: PoemRequest(num_poems=size, batch_size=size, **options) for size in sizes}
    nets = {"fp32": net, "int8": int8_for_decoding(net)}
    bf16_native = has_bf16_units(torch.device("cpu"))
    if args.bf16 == "always" or (args.bf16 == "auto" and bf16_native):
        nets["bf16"] = bf16_for_decoding(net)
    for model in nets.values():
        for request in batched.values():
            write_poems(model, vocabulary, request)  # warm-up: allocations, oneDNN primitives

    rows: dict[tuple[str, int], list[float]] = {(weights, size): [] for weights in nets for size in [1, *sizes]}
    for _ in range(args.rounds):
        for weights, model in nets.items():
            rows[weights, 1].append(poems_per_second(model, vocabulary, single, args.single))
            for size, request in batched.items():
                rows[weights, size].append(poems_per_second(model, vocabulary, request, 1))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, vocabulary {len(vocabulary)}, "
        f"constraints: {', '.join(sorted(chosen))}, {args.rounds} rounds (medians), "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}, bf16 units: {'yes' if bf16_native else 'no'}, "
        f"malloc tuning {'on' if tuned else 'off'}"
    )
    if "bf16" not in nets:
        print("bf16 weights: not measured (no bf16 units on this CPU; --bf16 always measures the emulation)")
    print(f"{'weights':<8} {'mode':<16} {'poems/s':>9} {'ms/poem':>9} {'vs fp32 one at a time':>22}")
    baseline = statistics.median(rows["fp32", 1])
    for (weights, size), values in rows.items():
        rate = statistics.median(values)
        label = "one at a time" if size == 1 else f"{size} at once"
        print(f"{weights:<8} {label:<16} {rate:>9,.1f} {1000 / rate:>9.2f} {rate / baseline:>21.1f}x")


if __name__ == "__main__":
    main()
