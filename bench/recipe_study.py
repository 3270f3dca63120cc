"""Training recipes side by side: validation perplexity against wall-clock minutes, the same budget for each.

Each candidate is a config plus command-line overrides, trained with ``tangrnn fit`` exactly as a user would,
one after the other so that they never share the cores. Every candidate's cosine schedule follows the clock
(``WarmupCosine``'s ``schedule_by: time``) and ``trainer.max_time`` ends it, so each one ends at its low
learning rate when the budget does, however fast it steps; no speed is measured in advance (a calibration
disturbed for a minute would plan a whole run wrong). Every candidate validates on the same poems: the
regular-form validation split (splits follow poem ids; ``data.eval_forms`` keeps a model trained on every form
scored on the regular ones). The test split is never touched here; select on these figures, then test the winner
once.

The table gives the validation perplexity each candidate had reached at a quarter, half, three quarters and
all of the budget (the last validation at or before that minute), its best, its steps and steps a second, and
the machine's load while it trained (a candidate that shared the cores had less compute, and the table says
so); ``--output`` writes every curve as JSON.

Two cores take about seven hours for the seven candidates at an hour each, longer than a machine is kept, so
``--record FILE`` appends each candidate's curve to FILE the moment it finishes, with the machine (CPU, its
bf16 and int8 flags), the precision the run chose, torch's version and the date; the repository's record is
``bench/results/recipe_study.json``. ``--report FILE`` prints that record's tables without training: one
per kind of machine, precision and budget, since minutes are only comparable on the same kind, with a second
table at equal steps, which shows how much a bigger network learns per step whatever its speed.

    python bench/recipe_study.py --minutes 60                         # every candidate, an hour each
    python bench/recipe_study.py --minutes 60 --candidates reference awd-all --record bench/results/recipe_study.json
    python bench/recipe_study.py --report bench/results/recipe_study.json
    python bench/recipe_study.py --list                               # the candidates and what they change
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import record
from machine import LoadWatch

REPO = Path(__file__).resolve().parents[1]
REGULAR = "[五绝, 七绝, 五律, 七律]"
AWD = {
    "dropout": 0.2,
    "input_dropout": 0.2,
    "output_dropout": 0.3,
    "embedding_dropout": 0.05,
    "weight_dropout": 0.2,
    "variational": True,
}


@dataclass(frozen=True)
class Candidate:
    """A recipe: a config and the overrides that make it this candidate."""

    name: str
    config: str
    overrides: dict[str, object] = field(default_factory=dict)
    about: str = ""

    def args(self) -> list[str]:
        args = ["--config", str(REPO / self.config)]
        for key, value in self.overrides.items():
            args += [f"--{key}", value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)]
        return args


def _awd(**extra) -> dict[str, object]:
    return {f"model.architecture_options.{key}": value for key, value in {**AWD, **extra}.items()}


CANDIDATES = [
    Candidate("reference", "configs/lstm.yaml", {}, "the reference LSTM (2x512, dropout 0.1), regular forms"),
    Candidate("awd", "configs/lstm.yaml", _awd(), "the reference with AWD-LSTM's regularisation, regular forms"),
    Candidate("awd-all", "configs/tang.yaml", {}, "AWD on every form, scored on the regular ones (the bundled recipe)"),
    Candidate(
        "awd-all-2x1024",
        "configs/tang.yaml",
        {"model.architecture_options.hidden_size": 1024},
        "wider: two layers of 1,024",
    ),
    Candidate(
        "awd-all-3x768",
        "configs/tang.yaml",
        {"model.architecture_options.hidden_size": 768, "model.architecture_options.num_layers": 3},
        "deeper: three layers of 768",
    ),
    Candidate(
        "gru-awd-all",
        "configs/tang.yaml",
        {"model.architecture": "gru", "model.architecture_options.hidden_size": 592},
        "a GRU of about the LSTM's cost (3 gates: 592 units for its 512)",
    ),
    Candidate(
        "awd-all-batch128",
        "configs/tang.yaml",
        {"data.batch_size": 128, "model.optimizer.init_args.lr": 0.003},
        "batches of 128 at a higher learning rate",
    ),
]


def fit(candidate: Candidate, folder: Path, extra: list[str]) -> None:
    command = [
        sys.executable, "-m", "tangrnn_core", "fit", *candidate.args(),
        "--trainer.default_root_dir", str(folder), "--trainer.enable_progress_bar", "false",
        "--sample_quality.num_poems", "0", *extra,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{candidate.name}: tangrnn fit failed: {result.stderr.strip().splitlines()[-1:]}")


def read_curve(folder: Path) -> list[tuple[float, int, float]]:
    """``(minutes since the run's log was opened, step, val perplexity)`` from a run's TensorBoard log."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    curve: list[tuple[float, int, float]] = []
    for events in sorted(folder.glob("**/events.out.tfevents*")):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        tags = accumulator.Tags()["scalars"]
        if "val/ppl" not in tags:
            continue
        # The log opens when training starts (after the data is prepared), the same moment for every candidate.
        start = accumulator.FirstEventTimestamp()
        curve += [((e.wall_time - start) / 60, e.step, e.value) for e in accumulator.Scalars("val/ppl")]
    return curve


def at_minute(curve: list[tuple[float, int, float]], minute: float) -> float | None:
    reached = [ppl for when, _, ppl in curve if when <= minute]
    return reached[-1] if reached else None


def run_precision(folder: Path) -> str:
    """The precision a run trained in, as its saved config has it (chosen by the hardware when none was set)."""
    import yaml

    for saved in sorted(folder.glob("**/config.yaml")):
        trainer = (yaml.safe_load(saved.read_text(encoding="utf-8")) or {}).get("trainer") or {}
        if trainer.get("precision") is not None:
            return str(trainer["precision"])
    return "unknown"


def result_of(
    candidate: Candidate,
    folder: Path,
    budget: float,
    started: float,
    load: tuple[float, float],
    extra: list[str],
) -> dict[str, object]:
    """One candidate's run as the record keeps it: its curve and everything that decides what its minutes mean.

    Args:
        candidate: the recipe that trained.
        folder: the run's folder (its TensorBoard log and saved config).
        budget: the minutes it was given.
        started: when it started, seconds since the epoch.
        load: the median and highest load average while it trained.
        extra: the options every candidate of the study was given (a smaller corpus, tiny networks, a precision),
            so that a smoke test's run never shares a table with real ones.
    """
    curve = read_curve(folder)
    minutes, steps = (curve[-1][0], curve[-1][1]) if curve else (0.0, 0)
    return {
        "name": candidate.name,
        "about": candidate.about,
        "minutes": budget,
        **record.stamp(started),
        "precision": run_precision(folder),
        "steps": steps,
        "steps_per_second": steps / (minutes * 60) if minutes > 0 else 0.0,
        "load_run": list(load),
        "study_options": extra,
        "curve": curve,
    }


def print_tables(results: list[dict], budget: float, cores: int) -> None:
    """The study's tables: perplexity at each quarter of the budget, then at steps every candidate reached."""
    quarters = [budget * q for q in (0.25, 0.5, 0.75, 1.0)]
    header = ["candidate", "steps/s", "steps", *(f"ppl@{m:g}min" for m in quarters), "best", "best at", "load"]
    rows = [header]
    for result in results:
        curve = result["curve"]
        best = min(curve, key=lambda point: point[2]) if curve else None
        rows.append(
            [
                result["name"],
                f"{result['steps_per_second']:.2f}",
                str(result["steps"]),
                *(_figure(at_minute(curve, minute)) for minute in quarters),
                _figure(best[2] if best else None),
                f"{best[0]:.0f} min" if best else "-",
                "{:.1f}/{:.1f}".format(*result["load_run"]),
            ]
        )
    print(f"validation perplexity (regular-form validation split) against minutes of training, {budget:g} min each")
    print(f"load: the 1-minute load average during the run, median/highest, on {cores} cores (above {cores}: shared)")
    _print_rows(rows)
    shared = sorted(set.intersection(*(set(step for _, step, _ in r["curve"]) for r in results))) if results else []
    if len(results) > 1 and shared:
        columns = shared[:: max(1, len(shared) // 6)][-6:]
        rows = [["candidate", *(f"step {step:,}" for step in columns)]]
        for result in results:
            at_step = {step: ppl for _, step, ppl in result["curve"]}
            rows.append([result["name"], *(_figure(at_step[step]) for step in columns)])
        print("the same runs at equal steps (what each learns per step, whatever its speed)")
        _print_rows(rows)


def report(path: Path) -> None:
    """Prints the record's tables, one for each kind of machine, precision, budget and study options, in the
    order the record has them."""
    for (*_, budget, options), results in record.grouped(
        record.read(path), "machine", "precision", "minutes", "study_options"
    ).items():
        print(f"\n{record.heading(results)}")
        if options:
            print(f"study options: {options}")
        print_tables(results, budget, results[0]["cores"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="training budget per candidate (default 60)")
    parser.add_argument("--candidates", nargs="+", help="a subset by name (default: all; see --list)")
    parser.add_argument("--val_every", type=int, default=250, help="validate every N steps (default 250)")
    parser.add_argument("--max_poems", type=int, help="train on the first N poems only (smoke tests)")
    parser.add_argument("--tiny", action="store_true", help="shrink every network to 16 units (smoke tests)")
    parser.add_argument(
        "--precision", default=None, help="trainer.precision for every candidate (default: each config's)"
    )
    parser.add_argument("--output", type=Path, help="write every curve as JSON here")
    parser.add_argument(
        "--record", type=Path, help="append each candidate's curve and machine to this JSON record as it finishes"
    )
    parser.add_argument("--report", type=Path, help="print the tables of a record and exit (no training)")
    parser.add_argument("--root", type=Path, help="where runs are written (default: a temporary folder)")
    parser.add_argument("--list", action="store_true", help="list the candidates and exit")
    args = parser.parse_args()

    if args.report:
        if not args.report.is_file():
            parser.error(f"no record at {args.report}: give the file a run wrote with --record")
        report(args.report)
        return
    chosen = CANDIDATES
    if args.candidates:
        known = {c.name: c for c in CANDIDATES}
        unknown = [name for name in args.candidates if name not in known]
        if unknown:
            parser.error(f"unknown candidate(s) {', '.join(unknown)}; choose from {', '.join(known)}")
        chosen = [known[name] for name in args.candidates]
    if args.list:
        for candidate in chosen:
            print(f"{candidate.name:18s} {candidate.about}")
        return
    extra: list[str] = []
    if args.max_poems:
        extra += ["--data.max_poems", str(args.max_poems), "--data.val_fraction", "0.1", "--data.test_fraction", "0.1"]
    if args.tiny:
        extra += ["--model.architecture_options.embedding_size", "16", "--model.architecture_options.hidden_size", "16"]
    if args.precision:
        extra += ["--trainer.precision", args.precision]

    root = args.root or Path(tempfile.mkdtemp(prefix="recipe-study-"))
    budget = args.minutes
    results = []
    cores = os.cpu_count() or 1
    hours, rest = divmod(int(budget * 60), 3600)
    for candidate in chosen:
        started = time.time()
        with LoadWatch() as run_load:
            fit(
                candidate,
                root / candidate.name / "run",
                [
                    "--model.lr_scheduler.init_args.schedule_by", "time",
                    "--trainer.max_steps", "-1",
                    "--trainer.max_time", f"00:{hours:02d}:{rest // 60:02d}:{rest % 60:02d}",
                    "--trainer.val_check_interval", str(args.val_every),
                    "--trainer.check_val_every_n_epoch", "null",
                    *extra,
                ],
            )  # fmt: skip
        result = result_of(candidate, root / candidate.name / "run", budget, started, run_load.summary(), extra)
        results.append(result)
        if args.record:
            record.append(args.record, result)
        curve = result["curve"]
        print(
            f"{candidate.name}: {len(curve)} validations, last {curve[-1] if curve else None}",
            file=sys.stderr,
            flush=True,
        )
        median, _ = run_load.summary()
        if median > cores + 0.5:  # the run itself keeps every core busy: more than that is other work
            print(
                f"warning: the machine was busy during {candidate.name}'s run (load {median:.1f} on {cores} "
                "cores): its minutes are not the same compute as a quiet run's",
                file=sys.stderr,
                flush=True,
            )

    if results:
        print(record.heading(results))
    print_tables(results, budget, cores)
    if args.output:
        args.output.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")


def _print_rows(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(
                cell.ljust(width) if i == 0 else cell.rjust(width) for i, (cell, width) in enumerate(zip(row, widths))
            )
        )


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


if __name__ == "__main__":
    main()
