"""Temperature and top_p against fluency and diversity: the measurements behind the decoding defaults.

For every (temperature, top_p) of the grid the generator (default: the bundled model) writes ``--num_poems``
poems with one seed. Each sample is scored on:

- **fluency**: the poems' mean log-probability per character (line marks and the end included) under a *second,
  independently trained* model, the judge (``--judge_ckpt_path``), so the generator does not grade itself.
  Shown as nats per character and as the judge's perplexity of the poems (lower is more fluent to the judge);
- **diversity**: distinct-2 (in-line character bigrams, over all poems of the sample) and the share of lines
  copied verbatim from the generator's training split;
- the share of free poems that come out in a regular form (with ``--form free``).

The choice: the most fluent setting (lowest judge perplexity) among those that keep distinct-2 at or above
``--min_distinct2`` and copied lines below ``--max_copied``; greedy-like settings score fluent but repeat
themselves and copy, hot ones are varied but garbled.

    python bench/decoding_sweep.py --judge_ckpt_path runs/judge/.../last.ckpt
    python bench/decoding_sweep.py --judge_ckpt_path J --temperatures 0.6 0.8 1.0 --top_p 1.0 0.9 --form 五绝
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import torch


def load_model(path: str | Path):
    """The network (``.net``) and vocabulary of checkpoint ``path``, ready to decode or score, and the checkpoint."""
    from tangrnn_core.checkpoint_files import check_checkpoint
    from tangrnn_core.network import network_from_checkpoint

    checkpoint = check_checkpoint(path)
    return network_from_checkpoint(checkpoint, path), checkpoint


@torch.no_grad()
def judge_log_probability(judge, poems: list[str], batch_size: int = 128) -> float:
    """Mean log-probability per position (characters, marks and ``<eos>``) of ``poems`` under ``judge``."""
    from tangrnn_core.data.datamodule import PadCollate

    collate = PadCollate(judge.vocabulary)
    total, count = 0.0, 0
    for start in range(0, len(poems), batch_size):
        encoded = [
            torch.tensor(judge.vocabulary.encode(poem), dtype=torch.long) for poem in poems[start : start + batch_size]
        ]
        batch = collate(encoded)
        logits = judge.net(batch).float()
        scores = torch.log_softmax(logits, dim=-1).gather(-1, batch.targets.unsqueeze(-1)).squeeze(-1)
        real = batch.targets != judge.net.tokens.pad_id
        total += float(scores[real].sum())
        count += int(real.sum())
    return total / max(count, 1)


def training_lines_of(checkpoint: dict[str, Any]) -> set[str]:
    """The training split's lines of the data the generator was trained on (its saved data options)."""
    from tangrnn_core.data.datamodule import PoetryDataModule
    from tangrnn_core.evaluation.evaluate import training_lines
    from tangrnn_core.models.pack import DATA_KEYS

    saved = checkpoint.get("datamodule_hyper_parameters") or {}
    datamodule = PoetryDataModule(**{key: saved[key] for key in DATA_KEYS if key in saved})
    return training_lines(datamodule)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--judge_ckpt_path", required=True, help="a second, independently trained model that scores fluency"
    )
    parser.add_argument("--ckpt_path", help="the generator (default: the bundled model)")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.6, 0.7, 0.8, 0.9, 1.0])
    parser.add_argument("--top_p", type=float, nargs="+", default=[1.0, 0.9, 0.8])
    parser.add_argument("--form", default="free", help="free (no form imposed) or 五绝 七绝 五律 七律")
    parser.add_argument(
        "--no_repeat",
        nargs="+",
        choices=("false", "true"),
        default=["false"],
        help="generate's --no_repeat (no character twice in a poem) for each setting: false, true or both",
    )
    parser.add_argument("--num_poems", type=int, default=256, help="poems per setting (default 256)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--min_distinct2", type=float, default=0.85)
    parser.add_argument("--max_copied", type=float, default=0.01)
    parser.add_argument("--output", type=Path, help="write the rows as JSON here")
    args = parser.parse_args()

    from tangrnn_core.allocator import keep_freed_memory
    from tangrnn_core.data.forms import Form
    from tangrnn_core.decoding.request import PoemRequest
    from tangrnn_core.decoding.write import write_poems
    from tangrnn_core.evaluation.metrics import DistinctN, FormCompliance, Novelty
    from tangrnn_core.models import bundled_model

    keep_freed_memory()
    generator, checkpoint = load_model(args.ckpt_path or bundled_model().path)
    judge, _ = load_model(args.judge_ckpt_path)
    lines = training_lines_of(checkpoint)
    form = None if args.form == "free" else Form.parse(args.form).value

    rows = []
    settings = [
        (temperature, top_p, no_repeat == "true")
        for temperature in args.temperatures
        for top_p in args.top_p
        for no_repeat in args.no_repeat
    ]
    for temperature, top_p, no_repeat in settings:
        request = PoemRequest(
            form=form,
            num_poems=args.num_poems,
            temperature=temperature,
            top_p=top_p,
            no_repeat=no_repeat,
            seed=args.seed,
        )
        poems = write_poems(generator.net, generator.vocabulary, request)
        distinct, novelty, shape = DistinctN(2), Novelty(lines), FormCompliance(form)
        for metric in (distinct, novelty, shape):
            metric.update(poems)
        log_probability = judge_log_probability(judge, poems)
        copied = novelty.compute()
        rows.append(
            {
                "temperature": temperature,
                "top_p": top_p,
                "no_repeat": no_repeat,
                "judge_nats": -log_probability,
                "judge_ppl": math.exp(-log_probability),
                "distinct_2": float(distinct.compute()),
                "copied_lines": float(copied["copied_lines"]),
                "form_rate": float(shape.compute()),
                "mean_chars": sum(map(len, poems)) / len(poems),
            }
        )
    eligible = [r for r in rows if r["distinct_2"] >= args.min_distinct2 and r["copied_lines"] < args.max_copied]
    chosen = min(eligible, key=lambda r: r["judge_ppl"]) if eligible else None

    print(
        f"{args.num_poems} {args.form} poems per setting, seed {args.seed}; fluency under the judge {args.judge_ckpt_path}"
    )
    print(
        f"{'temperature':>11}  {'top_p':>5}  {'no_repeat':>9}  {'judge ppl':>9}  {'nats/char':>9}  {'distinct-2':>10}  {'copied':>7}  {'form':>6}  {'chars':>5}"
    )
    for r in rows:
        mark = "  <- chosen" if r is chosen else ""
        print(
            f"{r['temperature']:>11g}  {r['top_p']:>5g}  {str(r['no_repeat']).lower():>9}  {r['judge_ppl']:>9.1f}  {r['judge_nats']:>9.3f}  "
            f"{r['distinct_2']:>10.3f}  {100 * r['copied_lines']:>6.2f}%  {100 * r['form_rate']:>5.1f}%  {r['mean_chars']:>5.1f}{mark}"
        )
    if chosen is None:
        print(f"no setting keeps distinct-2 >= {args.min_distinct2} with copied lines < {100 * args.max_copied:g}%")
    if args.output:
        args.output.write_text(json.dumps({"rows": rows, "chosen": chosen}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
