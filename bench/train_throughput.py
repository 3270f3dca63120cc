"""Training throughput: tangrnn's `fit` step against a plain PyTorch loop of the same model on the same batches.

Both sides train the reference LSTM (embedding 256, hidden 512, 2 layers, tied output, batch 64) on the same
length-bucketed batches of the bundled corpus, with AdamW, gradient clipping at 1.0 and the same precision.
They alternate in one process (the side that goes first rotates from round to round), so all see the same
machine state; the table gives the median of real (non-padding) characters per second of each side and the
median of the rounds' paired ratios, with their range (the machines are noisy: single rounds vary by 10%).
tangrnn computes the output layer and loss in chunks by default (``model.loss_chunk_size``); ``--chunk_sizes``
adds tangrnn sides with other chunk sizes (``0``: full logits, as the plain loop has them), all in the same
rounds. A third side splits the difference: tangrnn's network and loss driven by the plain loop, without a
Trainer, so that (plain loop -> it) is the network and loss code and (it -> fit) is Lightning's loop.

    python bench/train_throughput.py                   # fp32, 7 rounds of 20 steps
    python bench/train_throughput.py --precision both  # fp32 and bf16 autocast
    python bench/train_throughput.py --precision 32 --rounds 5 --steps 30
    python bench/train_throughput.py --chunk_sizes 512,0   # tangrnn with the chunked loss and with full logits
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from tangrnn_core.allocator import keep_freed_memory
from tangrnn_core.api import Batch
from tangrnn_core.data.datamodule import PoetryDataModule
from tangrnn_core.module import PoetryModel

MODEL = {"embedding_size": 256, "hidden_size": 512, "num_layers": 2, "dropout": 0.1, "tie_weights": True}


class PlainLSTM(nn.Module):
    """The same network written without tangrnn: what a tutorial's training loop would train."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, 256, padding_idx=0)
        self.dropout = nn.Dropout(0.1)
        self.rnn = nn.LSTM(256, 512, num_layers=2, dropout=0.1, batch_first=True)
        self.projection = nn.Linear(512, 256, bias=False)
        self.output = nn.Linear(256, vocab_size)
        self.output.weight = self.embedding.weight

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        embedded = self.dropout(self.embedding(inputs))
        if torch.is_autocast_enabled("cpu"):  # oneDNN's LSTM refuses fp32 input with bf16 weights
            embedded = embedded.to(torch.bfloat16)
        hidden, _ = self.rnn(embedded)
        return self.output(self.projection(self.dropout(hidden)))


def loop_steps(model: nn.Module, loss_of: Callable[[Batch], torch.Tensor], batches: list[Batch], bf16: bool) -> float:
    """Trains ``model`` on ``batches`` in a plain loop (AdamW, clipping at 1.0), the loss of a batch given by
    ``loss_of``; returns seconds from the end of the first step to the end of the last."""
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    start = None
    for batch in batches:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_of(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if start is None:
            start = time.perf_counter()
    return time.perf_counter() - start


def plain_loss(model: PlainLSTM) -> Callable[[Batch], torch.Tensor]:
    """The tutorial's loss: full logits, then cross-entropy."""

    def loss_of(batch: Batch) -> torch.Tensor:
        logits = model(batch.inputs)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.targets.reshape(-1), ignore_index=0)

    return loss_of


def module_loss(model: PoetryModel) -> Callable[[Batch], torch.Tensor]:
    """tangrnn's network and loss (``PoetryModel._summed_loss``, chunked as configured) without a Trainer: in the
    plain loop, the difference to the plain loss is the network and loss code, the difference to ``fit`` is
    Lightning's loop (hooks, logging, the optimizer closure)."""

    def loss_of(batch: Batch) -> torch.Tensor:
        summed, count = model._summed_loss(batch)
        return summed / count

    return loss_of


class StepClock(pl.Callback):
    """Seconds from the end of the first training batch to the end of the last (start-up excluded)."""

    def __init__(self) -> None:
        self.start = self.end = 0.0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if batch_idx == 0:
            self.start = now
        self.end = now


def tangrnn_steps(model: PoetryModel, batches: list[Batch], precision: str) -> float:
    clock = StepClock()
    trainer = pl.Trainer(
        max_steps=len(batches),
        precision=precision,
        gradient_clip_val=1.0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=[clock],
    )
    loader = DataLoader(batches, batch_size=None, collate_fn=lambda batch: batch)
    trainer.fit(model, train_dataloaders=loader)
    return clock.end - clock.start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--precision",
        choices=["bf16-mixed", "32", "both"],
        default="32",
        help="bf16-mixed is fast only where the CPU has bf16 instructions (AVX-512 BF16, AMX) or on a GPU",
    )
    parser.add_argument("--rounds", type=int, default=7, help="alternations of the two sides")
    parser.add_argument("--steps", type=int, default=20, help="training steps per side and round")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument(
        "--malloc_tuning", choices=["on", "off"], default="on", help="what `tangrnn fit` does (tangrnn_core.allocator)"
    )
    parser.add_argument(
        "--chunk_sizes",
        default="512",
        help="comma-separated model.loss_chunk_size values, one tangrnn side each (0: full logits, as the plain loop)",
    )
    args = parser.parse_args()
    chunk_sizes = [int(size) for size in args.chunk_sizes.split(",")]
    torch.manual_seed(0)
    # Process-wide, so it applies to both sides alike: the plain loop is given the same allocator as tangrnn.
    tuned = args.malloc_tuning == "on" and keep_freed_memory()

    data = PoetryDataModule(forms=["五绝", "七绝", "五律", "七律"], batch_size=args.batch_size)
    loader = data.train_dataloader()
    batches = []
    for batch in loader:
        batches.append(batch)
        if len(batches) == args.steps:
            break
    real = sum(int(b.lengths.sum()) for b in batches[1:])  # the first step is excluded from the clock
    padded = sum(b.inputs.numel() for b in batches)
    padding = 1 - sum(int(b.lengths.sum()) for b in batches) / padded
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, vocabulary {data.vocab_size}, "
        f"batch {args.batch_size}, {args.steps} steps x {args.rounds} rounds, padding {padding:.2%} "
        f"(epoch-wide: {loader.batch_sampler.padding_fraction():.2%}), malloc tuning {'on' if tuned else 'off'}"
    )
    print("ratio = side / plain loop, the median of the rounds' paired ratios")

    precisions = ["bf16-mixed", "32"] if args.precision == "both" else [args.precision]
    print(f"{'precision':<11} {'side':<42} {'chars/s':>9} {'ratio':>6} {'ratio range':>11}")
    for precision in precisions:
        bf16 = precision == "bf16-mixed"
        sides = ["plain", "module", *chunk_sizes]
        rates: dict = {side: [] for side in sides}
        for round_ in range(args.rounds):
            # rotate which side goes first, so that none always meets a warmer (or busier) machine
            for side in sides[round_ % len(sides) :] + sides[: round_ % len(sides)]:
                if side == "plain":
                    plain = PlainLSTM(data.vocab_size)
                    rates[side].append(real / loop_steps(plain, plain_loss(plain), batches, bf16))
                    continue
                model = PoetryModel(
                    vocab_size=data.vocab_size,
                    line_end_ids=data.line_end_ids,
                    architecture_options=MODEL,
                    loss_chunk_size=chunk_sizes[0] if side == "module" else side,
                )
                if side == "module":
                    rates[side].append(real / loop_steps(model, module_loss(model), batches, bf16))
                else:
                    rates[side].append(real / tangrnn_steps(model, batches, precision))
        for side in sides:
            ratios = [mine / plain for mine, plain in zip(rates[side], rates["plain"])]
            spread = f"{min(ratios):.2f}-{max(ratios):.2f}" if side != "plain" else ""
            print(
                f"{precision:<11} {describe(side):<42} {statistics.median(rates[side]):>9,.0f} "
                f"{statistics.median(ratios):>6.2f} {spread:>11}"
            )


def describe(side: str | int) -> str:
    if side == "plain":
        return "plain PyTorch loop (full logits)"
    if side == "module":
        return "tangrnn's network and loss, plain loop"
    return f"tangrnn fit, loss chunk {side or 'off (full logits)'}"


if __name__ == "__main__":
    main()
