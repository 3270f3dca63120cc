"""The ``tangrnn models`` verb: list the bundled models, print a card, pack a checkpoint into a bundled model."""

from __future__ import annotations

import argparse
from pathlib import Path

from tangrnn_core.arguments import OneLineArgumentParser, add_verbs, parse_arguments
from tangrnn_core.models.catalogue import DEFAULT_MODEL, MODELS_DIR, bundled_model, bundled_models


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tangrnn models``: a bad argument raises a one-line
    :class:`~tangrnn_core.errors.ConfigError`, in the sub-verbs' parsers too."""
    parser = OneLineArgumentParser(
        prog="tangrnn models",
        description="The trained models that ship with tangrnn. Without a verb: list them. "
        f"generate, predict, evaluate, validate and test use '{DEFAULT_MODEL}' when given no --ckpt_path.",
    )
    verbs = add_verbs(parser, ("list", "card", "pack"), required=False)  # no verb: list
    verbs.add_parser("list", prog="tangrnn models list", help="list the bundled models (the default verb)")
    card = verbs.add_parser("card", prog="tangrnn models card", help="print a bundled model's card (Markdown)")
    card.add_argument("name", nargs="?", default=DEFAULT_MODEL, help=f"the model (default: {DEFAULT_MODEL})")
    pack = verbs.add_parser(
        "pack",
        prog="tangrnn models pack",
        help="turn a training checkpoint into a bundled model: slim weights and a model card",
        description="Write NAME.pt (weights without optimiser state, loaded with weights_only=True) and its card "
        "NAME.md. With --output_dir tangrnn_core/models in a checkout, the model ships with the package.",
    )
    pack.add_argument(
        "--ckpt_path", required=True, help="a checkpoint written by `tangrnn fit` (e.g. best-step=N.ckpt)"
    )
    pack.add_argument(
        "--name", default=DEFAULT_MODEL, help=f"the model's name, the stem of its files (default: {DEFAULT_MODEL})"
    )
    pack.add_argument("--output_dir", default=".", help="where to write the two files (default: the current folder)")
    pack.add_argument(
        "--weights",
        choices=("bf16", "fp32"),
        default="bf16",
        help="how the weights are stored (default: bf16, half the size)",
    )
    pack.add_argument(
        "--evaluation",
        metavar="FILE",
        help="the output of `tangrnn evaluate ... --output json` on this checkpoint, for the card",
    )
    pack.add_argument(
        "--trained_on",
        metavar="TEXT",
        help="hardware and time of the training, for the card (of every stage, for a model fine-tuned from a "
        "checkpoint file: its card names the model it started from, which must still be readable)",
    )
    pack.add_argument("--force", action="store_true", help="replace existing files (never replaced otherwise)")
    return parser


def run(argv: list[str]) -> int:
    """Runs ``tangrnn models`` with ``argv`` (the words after ``models``); returns the exit status.

    Args:
        argv: the words after ``models``: nothing or ``list``, ``card [NAME]``, or ``pack`` and its options.

    Raises:
        ConfigError: a bad argument, or ``pack`` options it refuses (an existing output without ``--force``).
        CheckpointError: an unknown model, or a checkpoint ``pack`` cannot read.
    """
    args = parse_arguments(build_parser(), argv)
    if isinstance(args, int):  # --help
        return args
    if args.verb in (None, "list"):
        return _list()
    if args.verb == "card":
        print(bundled_model(args.name).card_path.read_text(encoding="utf-8"), end="")
        return 0
    from tangrnn_core.models.pack import pack_model, read_evaluation

    evaluation = read_evaluation(args.evaluation) if args.evaluation else None
    weights, card = pack_model(
        args.ckpt_path,
        args.name,
        args.output_dir,
        weights=args.weights,
        evaluation=evaluation,
        trained_on=args.trained_on,
        force=args.force,
    )
    print(f"wrote {weights} ({weights.stat().st_size / 2**20:.1f} MiB) and {card}")
    return 0


def _list() -> int:
    models = bundled_models()
    if not models:
        print(f"no bundled model in {MODELS_DIR}; reinstall tangrnn")
        return 1
    rows = [("NAME", "ARCHITECTURE", "PARAMETERS", "VAL PPL", "TEST PPL", "SIZE", "FILE")]
    for model in models:
        card = model.card
        rows.append(
            (
                model.name + (" (default)" if model.name == DEFAULT_MODEL else ""),
                str(card.get("architecture", "?")),
                f"{card['parameters'] / 1e6:.1f} M" if card.get("parameters") else "?",
                _figure(card.get("val_perplexity")),
                _figure(card.get("test_perplexity")),
                f"{model.path.stat().st_size / 2**20:.1f} MiB",
                str(_relative(model.path)),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    print("\n`tangrnn models card NAME` prints a model's card; `--ckpt_path` picks another model.")
    return 0


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _relative(path: Path) -> Path:
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path
