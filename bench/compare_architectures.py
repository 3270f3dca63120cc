"""Every built-in architecture under the same training-time budget, on this machine: one table.

For each plugin the ``tangrnn`` distribution registers (found through the entry points, like any plugin), the
script trains ``configs/<name>.yaml`` on the bundled corpus for ``--minutes`` of wall-clock training time (no
validation inside the budget), then evaluates the last weights as ``tangrnn evaluate`` does: test-split
perplexity and ``--num-poems`` unconstrained samples (no form, no title, no tone rule imposed). Each plugin runs
in its own process, one after the other, so they never compete for the cores.

Columns: parameters; training characters per second (real characters, padding excluded, over the whole budget);
test perplexity; the share of unconstrained samples in a regular form (五绝 七绝 五律 七律); of those, the share
whose tones fit a pattern strictly and whose rhymes keep to one 平声 group; distinct-2; and the share of sampled
lines copied from the training split.

Minutes are equal compute only on the same kind of machine, so the table is headed by the machine (CPU and its
bf16/int8 flags), the precision and torch's version, and a ``load`` column gives the load average while each
plugin trained. Seven plugins at 30 minutes take about four hours of two cores, longer than a machine is kept:
``--record FILE`` appends each plugin's row to FILE the moment it finishes, so the comparison can grow over
several sessions on machines of one kind, and ``--report FILE`` prints the record's tables, one per kind of
machine, precision and budget; the repository's record goes in ``bench/results/compare_architectures.json``.

Not comparable, and marked so: an infilling network's perplexity is over masked characters seen from both sides
(an easier task than predicting the next character), and it fills the layout of a regular form it is given, so
its form rate is 100% by construction.

    python bench/compare_architectures.py                    # every built-in plugin, 30 minutes each
    python bench/compare_architectures.py --minutes 4 --plugins lstm gru
    python bench/compare_architectures.py --plugins rnn lstm --record bench/results/compare_architectures.json
    python bench/compare_architectures.py --report bench/results/compare_architectures.json
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import record
from machine import LoadWatch

REPO = Path(__file__).resolve().parents[1]


def builtin_plugins() -> list[str]:
    from tangrnn_core.registry import default_registry

    return [status.source.name for status in default_registry().statuses() if status.source.builtin]


def run_one(name: str, minutes: float, num_poems: int, root: Path) -> dict:
    """Trains and evaluates one plugin in this process; returns its row."""
    from lightning.pytorch.callbacks import Callback

    from tangrnn_core.allocator import keep_freed_memory
    from tangrnn_core.data.datamodule import PoetryDataModule
    from tangrnn_core.evaluation.evaluate import run_evaluation
    from tangrnn_core.lightning_cli import TangrnnCLI
    from tangrnn_core.module import PoetryModel
    from tangrnn_core.objectives import is_masked_model
    from tangrnn_core.trainer import TangrnnTrainer

    class CharactersPerSecond(Callback):
        """Real characters trained on and the wall-clock time of the training batches."""

        def __init__(self) -> None:
            self.characters = 0
            self.started: float | None = None
            self.seconds = 0.0

        def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
            self.started = time.perf_counter()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            self.seconds += time.perf_counter() - self.started
            self.characters += int(batch.lengths.sum())

    keep_freed_memory()
    speed = CharactersPerSecond()
    budget = f"00:00:{int(minutes):02d}:{int(round(minutes % 1 * 60)):02d}"
    cli = TangrnnCLI(
        PoetryModel,
        PoetryDataModule,
        trainer_class=TangrnnTrainer,
        trainer_defaults={"callbacks": [speed], "use_distributed_sampler": False},
        seed_everything_default=1234,
        run=False,
        auto_configure_optimizers=False,
        save_config_callback=None,
        args=[
            "--config",
            str(REPO / "configs" / f"{name}.yaml"),
            "--trainer.max_time",
            budget,
            "--trainer.max_steps",
            "-1",
            "--trainer.max_epochs",
            "1000",
            "--trainer.limit_val_batches",
            "0",
            "--trainer.num_sanity_val_steps",
            "0",
            "--trainer.enable_checkpointing",
            "false",
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.logger",
            "false",
            "--trainer.default_root_dir",
            str(root / name),
            "--sample_quality.num_poems",
            "0",
        ],
    )
    trainer, model, data = cli.trainer, cli.model, cli.datamodule
    trainer.fit(model, datamodule=data)
    checkpoint = root / name / "budget.ckpt"
    trainer.save_checkpoint(checkpoint)
    report = run_evaluation(trainer, model, data, str(checkpoint), num_poems, None, 0.8, 1234)
    free = report["samples"]["free"]
    return {
        "plugin": name,
        "precision": str(trainer.precision),
        "parameters": sum(p.numel() for p in model.net.parameters()),
        "steps": trainer.global_step,
        "chars_per_s": speed.characters / max(speed.seconds, 1e-9),
        "perplexity": report["test"]["perplexity"],
        "masked": is_masked_model(model.net),
        "form_rate": free["form_rate"],
        "tone_rate": free["tone_rate"],
        "rhyme_rate": free["rhyme_rate"],
        "distinct_2": free["distinct_2"],
        "copied_lines": free["copied_lines"],
    }


def _percent(value) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.0f}%"


def table(rows: list[dict], minutes: float) -> str:
    header = (
        "| plugin | parameters | train chars/s | steps | test ppl | regular form | tones (strict) | rhyme | "
        "distinct-2 | copied lines | load |"
    )
    lines = [header, "|" + "---|" * 11]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['plugin']} | failed: {row['error']} |" + " |" * 9)
            continue
        mark = " *" if row["masked"] else ""
        lines.append(
            f"| {row['plugin']} | {row['parameters'] / 1e6:.2f} M | {row['chars_per_s']:,.0f} | {row['steps']} | "
            f"{row['perplexity']:.1f}{mark} | {_percent(row['form_rate'])}{mark} | {_percent(row['tone_rate'])} | "
            f"{_percent(row['rhyme_rate'])} | {row['distinct_2']:.2f} | {_percent(row['copied_lines'])} | "
            "{:.1f}/{:.1f} |".format(*row["load_run"])
        )
    lines.append("")
    lines.append(
        f"{minutes:g} minutes of training each; tones, rhyme: shares of the regular-form samples. "
        "* not comparable: masked-character perplexity, and a regular layout given to fill. "
        "load: the 1-minute load average while it trained, median/highest (above the cores: shared)."
    )
    return "\n".join(lines)


def report(path: Path) -> None:
    """Prints the record's tables, one for each kind of machine, precision, budget and sample count."""
    for (*_, minutes, _), rows in record.grouped(
        record.read(path), "machine", "precision", "minutes", "num_poems"
    ).items():
        print(f"\n{record.heading(rows)}")
        print(table(rows, minutes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="training time of each plugin (default 30)")
    parser.add_argument("--plugins", nargs="*", help="plugin names (default: every built-in one)")
    parser.add_argument(
        "--num-poems", type=int, default=100, help="unconstrained samples per plugin (and test poems continued)"
    )
    parser.add_argument(
        "--record", type=Path, help="append each plugin's row, machine and date to this JSON record as it finishes"
    )
    parser.add_argument("--report", type=Path, help="print the tables of a record and exit (no training)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child mode: one plugin, a JSON row on stdout
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.report:
        if not args.report.is_file():
            parser.error(f"no record at {args.report}: give the file a run wrote with --record")
        report(args.report)
        return
    if args.one:
        row = run_one(args.one, args.minutes, args.num_poems, Path(args.root))
        print("ROW " + json.dumps(row))
        return
    names = args.plugins or builtin_plugins()
    rows = []
    with tempfile.TemporaryDirectory(prefix="tangrnn-compare-") as root:
        for name in names:
            command = [
                sys.executable,
                __file__,
                "--one",
                name,
                "--minutes",
                str(args.minutes),
                "--num-poems",
                str(args.num_poems),
                "--root",
                root,
            ]
            started = time.time()
            with LoadWatch() as load:
                result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
            found = [line[4:] for line in result.stdout.splitlines() if line.startswith("ROW ")]
            if result.returncode != 0 or not found:
                last = (result.stderr.strip().splitlines() or ["no output"])[-1]
                rows.append({"plugin": name, "error": last[:120]})
            else:
                row = json.loads(found[-1])
                row.update(
                    minutes=args.minutes,
                    num_poems=args.num_poems,
                    load_run=list(load.summary()),
                    **record.stamp(started),
                )
                rows.append(row)
                if args.record:
                    record.append(args.record, row)
            print(f"{name}: done", file=sys.stderr, flush=True)
    measured = [row for row in rows if "error" not in row]
    if measured:
        print(record.heading(measured))
    print(table(rows, args.minutes))


if __name__ == "__main__":
    main()
