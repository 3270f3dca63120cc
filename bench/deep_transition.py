"""Deep-transition throughput: the same recurrent layer's Python loop over time, eager, TorchScript and compiled.

A deep hidden-to-hidden transition (DT-RNN, DT(S)-RNN) has no fused torch kernel, so ``tangrnn_deep`` loops over
time. This measures, on one layer and the same random batch, forward + backward of every way of running that
loop, with the fused ``nn.LSTM``/``nn.GRU``/``nn.RNN`` (no deep transition) as the ceiling:

- ``eager loop``: ``transition_loop`` as plain Python (the baseline of the ratios; what the plugin runs);
- ``TorchScript loop``: ``torch.jit.script(transition_loop)``;
- ``compiled step``: ``torch.compile`` of one step, called from the Python loop;
- ``compiled loop``: ``torch.compile`` of the whole loop (unrolled over time: one graph per sequence length).

The variants alternate within each round (their order rotates), so all see the same machine state; the table
gives the median of real characters per second (batch x time / seconds of forward + backward) over the rounds,
and the median of each round's ratio to the eager loop. Compile time (first calls) is reported apart.

    python bench/deep_transition.py                                  # lstm, 1 transition layer with shortcut
    python bench/deep_transition.py --cell gru --hidden_size 512 --rounds 7
    python bench/deep_transition.py --skip "compiled loop"           # compiling the unrolled loop takes minutes

Measured on 2026-11-30 on the development machine (2 cores of an AMD EPYC, torch 2.13.0 CPU build, no LLVM so
no TorchScript CPU fuser) while other jobs shared it (load average 8 to 11 on 2 cores: the absolute figures are
low and vary between runs; the ratios, measured side by side, are what to read). ``--threads 1``, because two
threads on a busy machine wait for each other (the same run with 2 threads gave 245 chars/s for the eager loop):

    python bench/deep_transition.py --input_size 512 --hidden_size 512 --rounds 5 --repeats 2 --threads 1
    lstm, input 512, hidden 512, 1 transition layer(s) with shortcut, batch 64 x 33 steps, 1 threads
    variant                               chars/s  vs eager loop  first 2 calls (s)
    eager loop                                903          1.00x                5.5
    TorchScript loop                          863          0.94x                5.5
    compiled step                             802          0.95x               50.2
    compiled loop                             900          1.04x              334.7
    fused nn.LSTM (no deep transition)      1,852          2.08x                2.7

    python bench/deep_transition.py --input_size 64 --hidden_size 64 --batch_size 32 --rounds 5 --repeats 3 --threads 1
    lstm, input 64, hidden 64, 1 transition layer(s) with shortcut, batch 32 x 33 steps, 1 threads
    variant                               chars/s  vs eager loop  first 2 calls (s)
    eager loop                             11,650          1.00x                0.2
    TorchScript loop                       10,214          0.91x                0.8
    compiled step                           9,743          0.84x               46.5
    compiled loop                          18,604          1.67x                6.3
    fused nn.LSTM (no deep transition)     43,497          3.73x                0.1

(The compiled loop's 6.3 s there came from torch.compile's on-disk cache of an earlier run of the same shapes;
compiling it cold took about 5 minutes at both sizes.) At the size of a real model the matrix products are the
time, and no compiler makes them cheaper: the plugin keeps the eager loop. Only for tiny states, where the
per-operation overhead dominates, does compiling the whole loop pay (1.67x), at minutes of compilation for each
sequence length and batch size, which training (several poem lengths) and decoding (a new prefix length on
every call) would pay again and again. Against the fused plain cell (2.1x faster at 512) much of the gap is
arithmetic: with one transition layer and a shortcut an lstm layer does 1.6 times the multiply-adds of the
plain cell (input projection included), and its backward pass runs step by step through autograd.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import torch
from torch import nn

from tangrnn_deep.transition import DeepTransitionLayer, step_loop, transition_loop, transition_step

FUSED = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


def variants(args: argparse.Namespace) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """name -> a function of the input ``(batch, time, input)`` returning the layer's outputs."""
    torch.manual_seed(0)
    layer = DeepTransitionLayer(
        args.cell, args.input_size, args.hidden_size, args.transition_layers, shortcut=args.shortcut
    )
    fused = FUSED[args.cell](args.input_size, args.hidden_size, batch_first=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.script announces torch.compile
        scripted = torch.jit.script(transition_loop)
    loops: dict[str, Callable] = {
        "eager loop": transition_loop,
        "TorchScript loop": scripted,
        "compiled step": step_loop(torch.compile(transition_step, dynamic=False)),
        "compiled loop": torch.compile(transition_loop, dynamic=False),
    }

    def run_layer(loop: Callable) -> Callable[[torch.Tensor], torch.Tensor]:
        def run(inputs: torch.Tensor) -> torch.Tensor:
            zeros = inputs.new_zeros(inputs.shape[0], args.hidden_size)
            gates_x = torch.nn.functional.linear(inputs.transpose(0, 1), layer.weight_ih, layer.bias_ih)
            outputs, _, _ = loop(layer.cell, layer.activation, gates_x, zeros, zeros, *layer._recurrent_weights())
            return outputs

        return run

    table = {name: run_layer(loop) for name, loop in loops.items()}
    table[f"fused nn.{FUSED[args.cell].__name__} (no deep transition)"] = lambda inputs: fused(inputs)[0]
    return {name: run for name, run in table.items() if name not in args.skip}


def forward_backward(run: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, repeats: int) -> float:
    """Seconds for ``repeats`` forward + backward passes."""
    start = time.perf_counter()
    for _ in range(repeats):
        outputs = run(inputs)
        outputs.square().mean().backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cell", choices=list(FUSED), default="lstm")
    parser.add_argument("--input_size", type=int, default=256)
    parser.add_argument("--hidden_size", type=int, default=256)
    parser.add_argument("--transition_layers", type=int, default=1)
    parser.add_argument("--shortcut", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--time", type=int, default=33, help="steps per sequence: a 七绝 and <bos> is 33")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="forward + backward passes per variant and round")
    parser.add_argument("--skip", nargs="*", default=[], help="variant names to leave out")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 keeps torch's default")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    table = variants(args)
    inputs = torch.randn(args.batch_size, args.time, args.input_size, requires_grad=True)
    compile_seconds = {}
    for name, run in table.items():  # first calls: TorchScript profiling runs, torch.compile's compilation
        start = time.perf_counter()
        forward_backward(run, inputs, 2)
        compile_seconds[name] = time.perf_counter() - start
    names = list(table)
    speeds: dict[str, list[float]] = {name: [] for name in names}
    ratios: dict[str, list[float]] = {name: [] for name in names}
    characters = args.batch_size * args.time * args.repeats
    for round_ in range(args.rounds):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        seconds = {name: forward_backward(table[name], inputs, args.repeats) for name in order}
        for name in names:
            speeds[name].append(characters / seconds[name])
            if "eager loop" in seconds:
                ratios[name].append(seconds["eager loop"] / seconds[name])

    print(
        f"{args.cell}, input {args.input_size}, hidden {args.hidden_size}, {args.transition_layers} transition "
        f"layer(s){' with shortcut' if args.shortcut else ''}, batch {args.batch_size} x {args.time} steps, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of {args.rounds} rounds of "
        f"{args.repeats} forward + backward passes"
    )
    width = max(len(name) for name in names)
    print(f"{'variant':<{width}}  {'chars/s':>9}  {'vs eager loop':>13}  {'first 2 calls (s)':>17}")
    for name in names:
        ratio = f"{statistics.median(ratios[name]):.2f}x" if ratios[name] else "-"
        print(f"{name:<{width}}  {statistics.median(speeds[name]):>9,.0f}  {ratio:>13}  {compile_seconds[name]:>17.1f}")


if __name__ == "__main__":
    main()
