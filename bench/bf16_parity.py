"""Quality parity of bf16-mixed against fp32: the same run twice, only ``trainer.precision`` differs.

Both runs use one config, one seed, one schedule (the cosine ends at ``--steps`` on both sides) and validate at
the same steps on the regular-form validation split; the table gives both validation perplexities at every
validation and their ratio. bf16 is worth having where the ratio stays within 1% of 1.00 (issue 15's bar).
Run it where bf16 is native (a CPU with AVX-512 BF16 or AMX, or a GPU): elsewhere bf16-mixed is emulated and
only slow, though the comparison of quality still holds.

    python bench/bf16_parity.py                           # configs/lstm.yaml, 2,000 steps each
    python bench/bf16_parity.py --steps 200 --max_poems 2000 --tiny     # a smoke run
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recipe_study import REPO, Candidate, fit, read_curve  # noqa: E402

PRECISIONS = ("32-true", "bf16-mixed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/lstm.yaml", help="the config both runs train (default lstm)")
    parser.add_argument("--steps", type=int, default=2000, help="training steps of each run (default 2,000)")
    parser.add_argument("--val_every", type=int, default=250, help="validate every N steps (default 250)")
    parser.add_argument("--seed", type=int, default=1234, help="seed_everything for both runs")
    parser.add_argument("--max_poems", type=int, help="train on the first N poems only (smoke tests)")
    parser.add_argument("--tiny", action="store_true", help="shrink the network to 16 units (smoke tests)")
    parser.add_argument("--output", type=Path, help="write both curves as JSON here")
    parser.add_argument("--root", type=Path, help="where runs are written (default: a temporary folder)")
    args = parser.parse_args()

    extra = [
        "--seed_everything", str(args.seed),
        "--trainer.max_steps", str(args.steps),
        "--trainer.max_time", "null",
        "--trainer.val_check_interval", str(min(args.val_every, args.steps)),
        "--trainer.check_val_every_n_epoch", "null",
    ]  # fmt: skip
    if args.max_poems:
        extra += ["--data.max_poems", str(args.max_poems), "--data.val_fraction", "0.1", "--data.test_fraction", "0.1"]
    if args.tiny:
        extra += ["--model.architecture_options.embedding_size", "16", "--model.architecture_options.hidden_size", "16"]

    root = args.root or Path(tempfile.mkdtemp(prefix="bf16-parity-"))
    candidate = Candidate("parity", str(Path(args.config).resolve().relative_to(REPO)))
    curves: dict[str, list[tuple[float, int, float]]] = {}
    minutes: dict[str, float] = {}
    for precision in PRECISIONS:
        started = time.perf_counter()
        fit(candidate, root / precision, [*extra, "--trainer.precision", precision])
        minutes[precision] = (time.perf_counter() - started) / 60
        curves[precision] = read_curve(root / precision)
        print(f"{precision}: {len(curves[precision])} validations in {minutes[precision]:.1f} min", file=sys.stderr)

    by_step = {precision: {step: ppl for _, step, ppl in curve} for precision, curve in curves.items()}
    steps = sorted(set(by_step["32-true"]) & set(by_step["bf16-mixed"]))
    print(f"val perplexity, {args.config}, {args.steps} steps, seed {args.seed}")
    print(f"{'step':>6}  {'fp32':>8}  {'bf16-mixed':>10}  {'bf16 / fp32':>11}")
    for step in steps:
        fp32, bf16 = by_step["32-true"][step], by_step["bf16-mixed"][step]
        print(f"{step:>6}  {fp32:>8.2f}  {bf16:>10.2f}  {bf16 / fp32:>11.3f}")
    print(f"wall clock: fp32 {minutes['32-true']:.1f} min, bf16-mixed {minutes['bf16-mixed']:.1f} min")
    if args.output:
        args.output.write_text(json.dumps({"curves": curves, "minutes": minutes}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
