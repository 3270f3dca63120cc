"""Regulated verse at speed: 五绝 per second, batched, without and with tone and rhyme constraints, and how
many of the poems pass ``tangrnn check``.

The reference LSTM (embedding 256, 2 layers of 512, tied output) over the real vocabulary of the four regular
forms, trained for a few steps here (``--train_steps``; the speed does not depend on how well it writes, since
every 五绝 is 24 decoding steps), or a checkpoint of yours (``--ckpt_path``). Every mode decodes ``--batch``
poems in one call (several sizes: each is measured); modes and sizes alternate within each round and the table
gives medians over rounds, side by side with the form-only decoder of the same size (every mode samples from
the whole distribution, top_p 1, but ``nucleus``, which measures what generate's default top_p costs). Each logit processor is timed as it runs, so the table also gives the constraints' own
cost per decoding step and their share of the decoding time, figures that a busy machine skews far less than
poems per second. The pass rates are over every poem of every round, with ``tangrnn check``'s rules
(``--tones strict`` and ``--strict``: warnings fail too).

    python bench/constrained_generation.py
    python bench/constrained_generation.py --ckpt_path runs/lstm/.../last.ckpt --batch 128,256,512 --modes strict
    python bench/constrained_generation.py --ckpt_path runs/lstm/.../last.ckpt --quantize int8
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from tangrnn_core.allocator import keep_freed_memory
from tangrnn_core.data.forms import REGULAR_FORMS
from tangrnn_core.decoding.decoder import generate
from tangrnn_core.decoding.pipeline import build_processors
from tangrnn_core.decoding.plan import plan_request
from tangrnn_core.decoding.processors import LogitsProcessor
from tangrnn_core.decoding.quantize import weights_for_decoding
from tangrnn_core.decoding.request import PoemRequest
from tangrnn_core.prosody.checker import check_poem

#: What each mode asks for, on top of ``--form 五绝``, by the key ``--modes`` takes: (row label, options).
MODES: dict[str, tuple[str, dict]] = {
    "form": ("form only", {}),
    "strict": ("tones strict, rhyme auto", {"tones": "strict", "rhyme": "auto"}),
    "loose": ("tones loose, rhyme auto", {"tones": "loose", "rhyme": "auto"}),
    "combined": (
        "strict+acrostic+no_repeat",
        {"tones": "strict", "rhyme": "auto", "acrostic": "春山秋月", "no_repeat": True},
    ),
    # Nucleus sampling (generate's default top_p) is not a constraint but costs a search of every row per step.
    "nucleus": ("form, top_p 0.9", {"top_p": 0.9}),
}
REFERENCE = {"embedding_size": 256, "hidden_size": 512, "num_layers": 2, "tie_weights": True}


class Timed(LogitsProcessor):
    """A logit processor that times the one it wraps (and passes the decoder's reorders on)."""

    def __init__(self, inner: LogitsProcessor) -> None:
        self.inner, self.seconds = inner, 0.0

    def __call__(self, state, logits):
        started = time.perf_counter()
        logits = self.inner(state, logits)
        self.seconds += time.perf_counter() - started
        return logits

    def reorder(self, index) -> None:
        self.inner.reorder(index)


def decode(net, vocabulary, request: PoemRequest) -> tuple[list[str], float, float]:
    """Writes the request's poems as ``write_poems`` does; returns them, the seconds the call took and the
    seconds its constraint processors took."""
    started = time.perf_counter()
    plan = plan_request(vocabulary, request)
    processors = [Timed(p) for p in build_processors(vocabulary, plan)]
    poems = generate(
        net,
        vocabulary,
        request.num_poems,
        max_length=plan.max_steps,
        temperature=request.temperature,
        processors=processors,
        generator=torch.Generator().manual_seed(request.seed or 0),
    )
    return poems, time.perf_counter() - started, sum(p.seconds for p in processors)


def trained_model(steps: int, batch_size: int):
    """The reference LSTM trained for ``steps`` steps on the four regular forms of the bundled corpus."""
    import lightning.pytorch as pl

    from tangrnn_core.data.datamodule import PoetryDataModule
    from tangrnn_core.module import PoetryModel

    data = PoetryDataModule(forms=[form.value for form in REGULAR_FORMS], batch_size=batch_size, min_count=2)
    model = PoetryModel(
        vocab_size=data.vocab_size, line_end_ids=data.line_end_ids, architecture="lstm", architecture_options=REFERENCE
    )
    trainer = pl.Trainer(
        max_steps=steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=data)
    return model


def loaded_model(path: str):
    """The network and vocabulary of a checkpoint of ``tangrnn fit`` or of a bundled model's file."""
    from tangrnn_core.checkpoint_files import check_checkpoint
    from tangrnn_core.network import network_from_checkpoint

    return network_from_checkpoint(check_checkpoint(path), path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt_path", default=None, help="a tangrnn checkpoint (default: train one briefly)")
    parser.add_argument("--train_steps", type=int, default=30, help="training steps of the model trained here")
    parser.add_argument(
        "--batch", default="256", help="poems decoded together; comma-separated sizes are measured side by side"
    )
    parser.add_argument(
        "--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)} (form is always measured)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument(
        "--quantize",
        choices=["none", "int8", "bf16"],
        default="none",
        help="decode with these weights, as generate does",
    )
    parser.add_argument(
        "--malloc_tuning",
        choices=["on", "off"],
        default="on",
        help="what `tangrnn generate` does (tangrnn_core.allocator)",
    )
    args = parser.parse_args()
    batches = [int(size) for size in args.batch.split(",")]
    modes = ["form", *(key for key in args.modes.split(",") if key != "form")]
    unknown = [key for key in modes if key not in MODES]
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(MODES)}")
    # Process-wide, so every mode gets the allocator that `tangrnn generate` runs with.
    tuned = args.malloc_tuning == "on" and keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)  # on a machine others share, fewer threads wait less for each other

    torch.manual_seed(0)
    started = time.perf_counter()
    model = loaded_model(args.ckpt_path) if args.ckpt_path else trained_model(args.train_steps, 64)
    source = args.ckpt_path or f"the reference LSTM after {args.train_steps} training steps"
    prepared = time.perf_counter() - started
    net, vocabulary = weights_for_decoding(model.net.eval(), args.quantize), model.vocabulary
    requests = {
        (batch, key): PoemRequest(
            form="五绝", num_poems=batch, temperature=args.temperature, **{"top_p": 1.0, **MODES[key][1]}
        )
        for batch in batches
        for key in modes
    }
    for request in requests.values():
        decode(net, vocabulary, request)  # warm-up: allocations, oneDNN primitives, the prosody tables

    steps = plan_request(vocabulary, PoemRequest(form="五绝")).max_steps  # 4 lines of 5 characters and a mark each
    rates: dict[tuple, list[float]] = {case: [] for case in requests}
    cost: dict[tuple, list[float]] = {case: [] for case in requests}
    share: dict[tuple, list[float]] = {case: [] for case in requests}
    poems: dict[tuple, list[str]] = {case: [] for case in requests}
    for round_ in range(args.rounds):
        for case, request in requests.items():
            written, seconds, constraints = decode(net, vocabulary, PoemRequest(**{**request.__dict__, "seed": round_}))
            rates[case].append(len(written) / seconds)
            cost[case].append(1000 * constraints / steps)
            share[case].append(constraints / seconds)
            poems[case] += written

    print(
        f"{source}; weights {'fp32' if args.quantize == 'none' else args.quantize}; vocabulary {len(vocabulary):,}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.rounds} rounds (medians), "
        f"malloc tuning {'on' if tuned else 'off'}; model ready in {prepared:.0f} s"
    )
    print(
        f"{'batch':>6} {'mode':<30} {'poems/s':>8} {'ms/poem':>8} {'vs form':>8} {'constraints':>12} {'share':>6} "
        f"{'pass strict':>12} {'pass loose':>11}"
    )
    print(f"{'':>6} {'':<30} {'':>8} {'':>8} {'':>8} {'ms/step':>12} {'':>6}")
    for batch, key in requests:
        rate = statistics.median(rates[batch, key])
        baseline = statistics.median(rates[batch, "form"])
        written = poems[batch, key]
        strict = sum(check_poem(p, tones="strict", strict=True).passed for p in written) / len(written)
        loose = sum(check_poem(p, tones="loose", strict=True).passed for p in written) / len(written)
        print(
            f"{batch:>6} {MODES[key][0]:<30} {rate:>8,.1f} {1000 / rate:>8.2f} {rate / baseline:>7.2f}x "
            f"{statistics.median(cost[batch, key]):>12.2f} {statistics.median(share[batch, key]):>6.1%} "
            f"{strict:>12.1%} {loose:>11.1%}"
        )


if __name__ == "__main__":
    main()
