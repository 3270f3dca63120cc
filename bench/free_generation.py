"""Free poems (no form asked) per second, with and without dropping finished poems from the batch.

A free poem ends where the model writes ``<eos>``: anywhere from about 20 to over 100 characters. The decoder
drops the rows of finished poems once a quarter of the batch is done (``Sampling.drop_finished_share``), so the
rest no longer pay for the longest poem; it draws one random number per poem of the call either way, so both
sides write the same poems from the same seed (checked here) with fp32 weights. With int8 weights they need
not: dynamic quantization scales activations by the batch's range, so a poem's scores move slightly with the
rows around it. Both sides run in one process, alternating, and
the table gives medians. Needs a trained model, whose ``<eos>`` decides the lengths: a checkpoint
(``--ckpt_path``) or the reference LSTM trained here for ``--train_steps`` steps.

    python bench/free_generation.py --ckpt_path runs/lstm/.../last.ckpt --quantize int8
    python bench/free_generation.py --ckpt_path runs/lstm/.../last.ckpt --batch 1024 --temperature 1.0
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from constrained_generation import loaded_model, trained_model

from tangrnn_core.allocator import keep_freed_memory
from tangrnn_core.decoding import decoder
from tangrnn_core.decoding.quantize import weights_for_decoding
from tangrnn_core.decoding.request import DEFAULT_TEMPERATURE, DEFAULT_TOP_P, PoemRequest
from tangrnn_core.decoding.write import write_poems

#: The two sides: the share of finished rows at which the decoder drops them.
SIDES = {"keep every row": 2.0, "drop finished poems": decoder.Sampling.drop_finished_share}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt_path", default=None, help="a tangrnn checkpoint (default: train one briefly)")
    parser.add_argument("--train_steps", type=int, default=200, help="training steps of the model trained here")
    parser.add_argument("--batch", type=int, default=256, help="poems decoded together")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE, help="default: tangrnn generate's")
    parser.add_argument("--top_p", type=float, default=DEFAULT_TOP_P, help="default: tangrnn generate's")
    parser.add_argument("--quantize", choices=["none", "int8", "bf16"], default="none")
    args = parser.parse_args()
    tuned = keep_freed_memory()  # as `tangrnn generate` runs
    torch.manual_seed(0)
    model = loaded_model(args.ckpt_path) if args.ckpt_path else trained_model(args.train_steps, 64)
    source = args.ckpt_path or f"the reference LSTM after {args.train_steps} training steps"
    net, vocabulary = weights_for_decoding(model.net.eval(), args.quantize), model.vocabulary

    def write(share: float, seed: int) -> tuple[list[str], float]:
        decoder.Sampling.drop_finished_share = share
        started = time.perf_counter()
        request = PoemRequest(num_poems=args.batch, temperature=args.temperature, top_p=args.top_p, seed=seed)
        poems = write_poems(net, vocabulary, request)
        return poems, time.perf_counter() - started

    for share in SIDES.values():
        write(share, 0)  # warm-up
    rates: dict[str, list[float]] = {side: [] for side in SIDES}
    lengths: list[int] = []
    same = True
    for round_ in range(args.rounds):
        written = {}
        for side, share in SIDES.items():
            written[side], seconds = write(share, round_ + 1)
            rates[side].append(args.batch / seconds)
        same &= len(set(map(tuple, written.values()))) == 1
        lengths += [len(poem) for poem in written["keep every row"]]
    decoder.Sampling.drop_finished_share = SIDES["drop finished poems"]

    print(
        f"{source}; weights {'fp32' if args.quantize == 'none' else args.quantize}; vocabulary {len(vocabulary):,}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.batch} free poems a call at "
        f"temperature {args.temperature}; {args.rounds} rounds (medians); malloc tuning {'on' if tuned else 'off'}"
    )
    print(
        f"poem length (characters and marks): mean {statistics.mean(lengths):.1f}, median "
        f"{statistics.median(lengths):.0f}, longest {max(lengths)}; same poems on both sides: {'yes' if same else 'no'}"
        f"{' (int8 activations are scaled per batch)' if not same and args.quantize == 'int8' else ''}"
    )
    print(f"{'side':<22} {'poems/s':>9} {'ms/poem':>9} {'vs keep':>8}")
    baseline = statistics.median(rates["keep every row"])
    for side in SIDES:
        rate = statistics.median(rates[side])
        print(f"{side:<22} {rate:>9,.1f} {1000 / rate:>9.2f} {rate / baseline:>7.2f}x")
    if not same and args.quantize != "int8":
        raise SystemExit("the two sides wrote different poems")


if __name__ == "__main__":
    main()
