"""The GPU path in one run: training throughput in fp32 and bf16-mixed, peak memory, and batched generation.

On a CUDA machine it trains the reference LSTM (configs/lstm.yaml: embedding 256, hidden 512, 2 layers, tied
output, batch 64, the four regular forms of the bundled corpus) through tangrnn's own LightningModule and data
module with Lightning's Trainer, once per precision, side by side in one process, and prints:

- real (non-padding) characters per second, after ``--warmup`` steps, and the ratio to fp32;
- the useful arithmetic rate (6 FLOPs per weight per real character: forward and backward matrix products)
  and its share of the bf16 matrix-product peak measured in the same run (a large bf16 matmul);
- peak GPU memory (``torch.cuda.max_memory_allocated``);
- 五绝 per second written by ``tangrnn generate``'s decoder, 1,024 at once and one at a time, with fp32 and bf16
  weights and every form constraint on, plus strict tones and rhyme;
- whether cuDNN served the fused LSTM (its version) and the device's name.

Usage (under 5 minutes on one modern GPU):

    python bench/gpu_check.py
    python bench/gpu_check.py --steps 300 --precisions 32-true bf16-mixed 16-mixed
    python bench/gpu_check.py --device cpu --tiny --steps 2 --warmup 1 --max_poems 300 --rounds 1  # smoke run

With ``--tiny`` the model is small (for checking the script itself, not for figures).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import lightning.pytorch as pl
import torch

from tangrnn_core.data.datamodule import PoetryDataModule
from tangrnn_core.decoding.quantize import weights_for_decoding
from tangrnn_core.decoding.request import PoemRequest
from tangrnn_core.decoding.write import write_poems
from tangrnn_core.module import PoetryModel

REFERENCE = {"embedding_size": 256, "hidden_size": 512, "num_layers": 2, "dropout": 0.1, "tie_weights": True}
TINY = {"embedding_size": 32, "hidden_size": 32, "num_layers": 1, "dropout": 0.0, "tie_weights": True}
FORMS = ["五绝", "七绝", "五律", "七律"]


class StepTimer(pl.Callback):
    """Times training steps after ``warmup`` of them and counts their real characters."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.seconds: list[float] = []
        self.chars: list[int] = []
        self._started = 0.0

    def _sync(self, module: pl.LightningModule) -> None:
        if module.device.type == "cuda":
            torch.cuda.synchronize(module.device)

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self._sync(module)
        self._started = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self._sync(module)
        if batch_idx >= self.warmup:
            self.seconds.append(time.perf_counter() - self._started)
            self.chars.append(int((batch.targets != module.net.tokens.pad_id).sum()))


def matmul_peak(device: torch.device, dtype: torch.dtype, size: int) -> float:
    """FLOP/s of a square matrix product of ``size`` in ``dtype``: the reachable peak of this device."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(5):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        for _ in range(10):
            a @ b
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - started) / 10)
    return 2 * size**3 / statistics.median(times)


def train(data: PoetryDataModule, options: dict[str, Any], precision: str, args) -> dict[str, float]:
    """Trains a fresh model for ``warmup + steps`` steps; returns its throughput and peak memory."""
    pl.seed_everything(0, verbose=False)
    model = PoetryModel(
        vocab_size=data.vocab_size, line_end_ids=data.line_end_ids, architecture="lstm", architecture_options=options
    )
    timer = StepTimer(args.warmup)
    trainer = pl.Trainer(
        accelerator=args.device,
        devices=1,
        precision=precision,
        max_steps=args.warmup + args.steps,
        limit_val_batches=0,
        gradient_clip_val=1.0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    trainer.fit(model, datamodule=data)
    # Every weight matrix takes part in one product per character forward and two backward: 2 FLOPs each.
    weights = sum(p.numel() for p in model.net.parameters() if p.dim() == 2)
    rate = sum(timer.chars) / sum(timer.seconds)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else float("nan")
    return {"chars/s": rate, "flop/s": 6 * weights * rate, "peak": peak, "model": model}


def poems_per_second(net, vocabulary, request: PoemRequest, calls: int) -> float:
    started = time.perf_counter()
    for call in range(calls):
        write_poems(net, vocabulary, PoemRequest(**{**request.__dict__, "seed": call}))
    if next(net.parameters()).device.type == "cuda":
        torch.cuda.synchronize()
    return calls * request.num_poems / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--precisions", nargs="+", default=["32-true", "bf16-mixed"])
    parser.add_argument("--steps", type=int, default=200, help="timed training steps per precision")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first (cuDNN plans, allocator)")
    parser.add_argument("--batch", type=int, default=1024, help="poems decoded together")
    parser.add_argument("--single", type=int, default=10, help="poems written one at a time per round")
    parser.add_argument("--rounds", type=int, default=3, help="generation rounds (the table gives medians)")
    parser.add_argument("--max_poems", type=int, default=None, help="use only this many poems of the corpus")
    parser.add_argument("--tiny", action="store_true", help="a small model, to check the script itself")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device here; this check is for GPU machines (--device cpu runs a smoke check)")
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32: the baseline is not silently TF32
    torch.backends.cudnn.allow_tf32 = False

    data = PoetryDataModule(forms=FORMS, batch_size=64, min_count=2, max_poems=args.max_poems)
    options = TINY if args.tiny else REFERENCE
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    cudnn = torch.backends.cudnn.version() if device.type == "cuda" and torch.backends.cudnn.is_available() else None
    peak_size = 256 if args.tiny else 8192
    bf16_peak = matmul_peak(device, torch.bfloat16, peak_size)
    fp32_peak = matmul_peak(device, torch.float32, peak_size)
    print(f"device: {name}; torch {torch.__version__}; cuDNN {cudnn or 'not used'}; vocabulary {data.vocab_size}")
    print(f"measured matmul peak ({peak_size}^3): bf16 {bf16_peak / 1e12:.1f} TFLOP/s, fp32 {fp32_peak / 1e12:.1f}")
    print()

    results = {precision: train(data, options, precision, args) for precision in args.precisions}
    baseline = results[args.precisions[0]]["chars/s"]
    print(f"training, {args.steps} steps after {args.warmup} of warm-up, batch 64:")
    print(
        f"{'precision':<12} {'chars/s':>12} {'vs ' + args.precisions[0]:>12} {'TFLOP/s':>9} {'of bf16 peak':>13} {'peak memory':>12}"
    )
    for precision, result in results.items():
        peak = result["peak"]
        memory = f"{peak / 2**30:.2f} GiB" if peak == peak else "n/a"
        print(
            f"{precision:<12} {result['chars/s']:>12,.0f} {result['chars/s'] / baseline:>11.2f}x "
            f"{result['flop/s'] / 1e12:>9.2f} {result['flop/s'] / bf16_peak:>12.1%} {memory:>12}"
        )
    print()

    model = results[args.precisions[0]]["model"].to(device)
    vocabulary = data.vocabulary
    rows = []
    for weights in ("none", "bf16"):
        net = weights_for_decoding(model.net, weights)
        for label, request, calls in (
            (f"{args.batch} at once", PoemRequest(num_poems=args.batch, form="五绝"), 2),
            ("one at a time", PoemRequest(num_poems=1, form="五绝"), args.single),
            (
                f"{args.batch}, strict tones+rhyme",
                PoemRequest(num_poems=args.batch, form="五绝", tones="strict", rhyme="auto"),
                2,
            ),
        ):
            write_poems(net, vocabulary, request)  # warm-up
            rate = statistics.median(poems_per_second(net, vocabulary, request, calls) for _ in range(args.rounds))
            rows.append(("fp32" if weights == "none" else "bf16", label, rate))
    print(f"generation, 五绝 with the form constraint (medians of {args.rounds}):")
    print(f"{'weights':<8} {'mode':<28} {'poems/s':>10} {'ms/poem':>9}")
    for weights, label, rate in rows:
        print(f"{weights:<8} {label:<28} {rate:>10,.1f} {1000 / rate:>9.2f}")


if __name__ == "__main__":
    main()
