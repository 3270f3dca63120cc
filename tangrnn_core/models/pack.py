"""From a training checkpoint to a bundled model: slim weights and a model card.

A training checkpoint carries the optimiser's moments (twice the weights again), the loops' state and the
callbacks'; a bundled model keeps what decoding and evaluation read (the weights, the hyper-parameters that
rebuild the network, the vocabulary, the data options its figures were measured with) and a card with those
figures. ``tangrnn models pack`` writes both; the files are replaced only with ``--force``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path
from typing import Any

import torch
import yaml

from tangrnn_core.checkpointing import atomic_save
from tangrnn_core.data.corpus import bundled_corpus_path
from tangrnn_core.errors import ConfigError
from tangrnn_core.models.catalogue import WEIGHTS_SUFFIX

#: The data options that decide which poems a model saw and was scored on (the rest only tune loading).
DATA_KEYS = (
    "corpus",
    "script",
    "forms",
    "eval_forms",
    "authors",
    "min_chars",
    "max_chars",
    "max_poems",
    "min_count",
    "val_fraction",
    "test_fraction",
    "max_title_chars",
)
#: Weight formats a bundled model can be stored in (decoding and evaluation compute in fp32 either way).
WEIGHT_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
LICENSE = (
    "The weights are released under the MIT license, as tangrnn is. They were trained on the chinese-poetry "
    "data set (MIT license, Copyright (c) 2016 JackeyGao), which ships with tangrnn."
)


def pack_model(
    ckpt_path: str | Path,
    name: str,
    output_dir: str | Path,
    weights: str = "bf16",
    evaluation: dict[str, Any] | None = None,
    trained_on: str | None = None,
    config: dict[str, Any] | None = None,
    force: bool = False,
) -> tuple[Path, Path]:
    """Writes ``NAME.pt`` and ``NAME.md`` into ``output_dir``; returns their paths.

    Args:
        ckpt_path: a checkpoint written by ``tangrnn fit``.
        name: the model's name (the stem of both files).
        output_dir: the folder to write to (``tangrnn_core/models`` to bundle it).
        weights: ``bf16`` (half the size) or ``fp32``.
        evaluation: the JSON report of ``tangrnn evaluate --output json`` on this checkpoint.
        trained_on: where and how long it trained (hardware, hours), as the card should say it.
        config: the training config (``config.yaml`` of the run); ``None`` reads the one beside the run.
        force: replace existing files.
    """
    if weights not in WEIGHT_DTYPES:
        raise ConfigError(f"--weights must be one of {', '.join(WEIGHT_DTYPES)}, got {weights!r}")
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ConfigError(f"--name must be a plain file stem such as tang-lstm, got {name!r}")
    folder = Path(output_dir)
    targets = (folder / f"{name}{WEIGHTS_SUFFIX}", folder / f"{name}.md")
    existing = [str(path) for path in targets if path.exists()]
    if existing and not force:
        raise ConfigError(f"{' and '.join(existing)} already exist; pass --force to replace them")
    checkpoint = _read_checkpoint(Path(ckpt_path))
    if config is None:
        config = _run_config(Path(ckpt_path))
    card = model_card(checkpoint, ckpt_path, name, weights, evaluation, trained_on, config)
    slim = {
        "state_dict": _cast(checkpoint["state_dict"], WEIGHT_DTYPES[weights]),
        "hyper_parameters": checkpoint["hyper_parameters"],
        "hparams_name": checkpoint.get("hparams_name", "kwargs"),
        "datamodule_hyper_parameters": card["data"],
        "pytorch-lightning_version": checkpoint["pytorch-lightning_version"],
        "epoch": checkpoint.get("epoch", 0),
        "global_step": checkpoint.get("global_step", 0),
        "tangrnn": {**checkpoint["tangrnn"], "card": card},
    }
    folder.mkdir(parents=True, exist_ok=True)
    atomic_save(slim, targets[0])
    targets[1].write_text(render_card(card), encoding="utf-8")
    return targets


def model_card(
    checkpoint: dict[str, Any],
    ckpt_path: str | Path,
    name: str,
    weights: str,
    evaluation: dict[str, Any] | None,
    trained_on: str | None,
    config: dict[str, Any] | None,
) -> dict[str, Any]:
    """The card's facts, as plain data (stored in the weights file, rendered by :func:`render_card`)."""
    hparams = checkpoint["hyper_parameters"]
    data_hparams = checkpoint.get("datamodule_hyper_parameters") or {}
    data = {key: data_hparams[key] for key in DATA_KEYS if key in data_hparams}
    corpus = data.get("corpus")
    corpus_file = bundled_corpus_path() if corpus is None else Path(corpus)
    corpus_sha256 = hashlib.sha256(corpus_file.read_bytes()).hexdigest() if corpus_file.is_file() else None
    parameters = _parameter_count(checkpoint["state_dict"])
    card: dict[str, Any] = {
        "name": name,
        "architecture": hparams.get("architecture"),
        "architecture_options": dict(hparams.get("architecture_options") or {}),
        "parameters": parameters,
        "vocabulary_size": len(checkpoint["tangrnn"]["vocabulary"]),
        "weights": weights,
        "corpus": "bundled Tang corpus (tangrnn data info)" if corpus is None else str(corpus),
        "corpus_sha256": corpus_sha256,
        "data": data,
        "global_step": int(checkpoint.get("global_step", 0)),
        "epoch": int(checkpoint.get("epoch", 0)),
        "val_perplexity": _val_perplexity(checkpoint),
        "training_minutes": _training_minutes(checkpoint, ckpt_path),
        "trained_on": trained_on,
        "config": config,
        "packed": datetime.date.today().isoformat(),
        "license": LICENSE,
    }
    start = _starting_model_card(hparams.get("init_from"), weights, trained_on)
    if start is not None:
        card["fine_tuned_from"] = start
        card["data"] = _data_seen(data, start["data"])
    if evaluation is not None:
        card["test_perplexity"] = evaluation.get("test", {}).get("perplexity")
        card["evaluation"] = evaluation
    return card


def _starting_model_card(source: str | None, weights: str, trained_on: str | None) -> dict[str, Any] | None:
    """The card of the model a fine-tuned checkpoint started from (its ``model.init_from``), so that the packed
    card tells every stage of the training: a bundled model's own card, or one made from the checkpoint file
    (and, in turn, from the model that one started from). ``None`` for a model trained from scratch."""
    if not source:
        return None
    from tangrnn_core.finetuning import read_trained_model

    start = read_trained_model(str(source), "model.init_from (the model the checkpoint was fine-tuned from)")
    bundled = (start.checkpoint.get("tangrnn") or {}).get("card")
    if isinstance(bundled, dict):
        return {key: value for key, value in bundled.items() if key not in ("evaluation", "license")}
    card = model_card(start.checkpoint, start.path, str(source), weights, None, trained_on, _run_config(start.path))
    del card["license"]
    return card


def _data_seen(own: dict[str, Any], start: dict[str, Any]) -> dict[str, Any]:
    """The data options a fine-tuned model is scored with. When the fine-tuning kept to a subset of the forms
    of the data it started from (everything else equal, so the splits, which follow poem ids, are the same),
    its training split holds no poem the first stage's did not: the first stage's options then say what the
    model saw (copied lines are looked for in all of it), with the fine-tuning's validation and test forms."""
    keys = (set(own) | set(start)) - {"forms", "eval_forms", "min_count"}
    forms, start_forms = own.get("forms"), start.get("forms")
    subset = start_forms is None or (forms is not None and set(forms) <= set(start_forms))
    if not subset or any(own.get(key) != start.get(key) for key in keys):
        return own
    scored = own.get("eval_forms") if own.get("eval_forms") is not None else forms
    return {**start, "eval_forms": scored}


def render_card(card: dict[str, Any]) -> str:
    """The model card as Markdown."""
    from tangrnn_core.evaluation.evaluate import format_report

    options = ", ".join(f"{key} {value}" for key, value in card["architecture_options"].items())
    data = ", ".join(f"{key} {value}" for key, value in card["data"].items())
    test = card.get("test_perplexity")
    lines = [
        f"# {card['name']}",
        "",
        "The model `tangrnn generate`, `predict` and `evaluate` use when no `--ckpt_path` is given "
        "(`tangrnn models` lists the bundled models).",
        "",
        "| | |",
        "| --- | --- |",
        f"| architecture | `{card['architecture']}`: {options} |",
        f"| parameters | {card['parameters']:,} ({card['weights']} weights; computed in fp32 or bf16) |",
        f"| vocabulary | {card['vocabulary_size']:,} characters |",
        f"| corpus | {card['corpus']}, sha256 `{card['corpus_sha256']}` |",
        f"| data | {data} |",
        f"| training | {card['global_step']:,} steps ({card['epoch'] + 1} epochs begun){_duration(card.get('training_minutes'))}; "
        f"{card['trained_on'] or 'hardware not recorded'} |",
        *_stages(card.get("fine_tuned_from")),
        f"| validation perplexity | {_figure(card['val_perplexity'])} (regular-form validation split) |",
        f"| test perplexity | {_figure(test)} (regular-form test split, measured once) |",
        f"| packed | {card['packed']} |",
        "",
        "## License",
        "",
        card["license"],
    ]
    if card.get("evaluation"):
        lines += ["", "## `tangrnn evaluate`", "", "```", format_report(card["evaluation"]), "```"]
    if card.get("config"):
        dumped = yaml.safe_dump(card["config"], allow_unicode=True, sort_keys=False).rstrip()
        lines += ["", "## The training config", "", "```yaml", dumped, "```"]
    start = card.get("fine_tuned_from")
    while start is not None:
        if start.get("config"):
            dumped = yaml.safe_dump(start["config"], allow_unicode=True, sort_keys=False).rstrip()
            lines += ["", f"## The training config of {start['name']} (the model it started from)", ""]
            lines += ["```yaml", dumped, "```"]
        start = start.get("fine_tuned_from")
    return "\n".join(lines) + "\n"


def _stages(start: dict[str, Any] | None) -> list[str]:
    """Table rows for the models a fine-tuned model started from, the nearest first."""
    rows = []
    while start is not None:
        rows.append(
            f"| fine-tuned from | {start['name']}: {start['global_step']:,} steps"
            f"{_duration(start.get('training_minutes'))}, validation perplexity {_figure(start.get('val_perplexity'))}, "
            f"test perplexity {_figure(start.get('test_perplexity'))}; "
            f"{start.get('trained_on') or 'hardware not recorded'} |"
        )
        start = start.get("fine_tuned_from")
    return rows


def _duration(minutes: float | None) -> str:
    if minutes is None:
        return ""
    hours, rest = divmod(round(minutes), 60)
    return f" in {hours} h {rest} min" if hours else f" in {rest} min"


def _training_minutes(checkpoint: dict[str, Any], ckpt_path: str | Path) -> float | None:
    """Wall-clock minutes of training: the trainer's timer, which a resumed run carries on, when the checkpoint
    has it; else from the start of the checkpoint's run to its last logged value (TensorBoard log of ``<run>/``,
    beside ``checkpoints/``); ``None`` without either."""
    timer = (checkpoint.get("callbacks") or {}).get("Timer") or {}
    elapsed = (timer.get("time_elapsed") or {}).get("train") if isinstance(timer, dict) else None
    if isinstance(elapsed, (int, float)) and elapsed > 0:
        return round(elapsed / 60, 1)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = Path(ckpt_path).resolve().parent.parent
    spans = []
    for events in run.glob("events.out.tfevents*"):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        times = [event.wall_time for tag in accumulator.Tags()["scalars"] for event in accumulator.Scalars(tag)]
        if times:
            spans.append(max(times) - accumulator.FirstEventTimestamp())
    return round(sum(spans) / 60, 1) if spans else None


def _figure(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.2f}"


def _read_checkpoint(path: Path) -> dict[str, Any]:
    from tangrnn_core.checkpoint_files import check_checkpoint

    return check_checkpoint(path)


def _run_config(ckpt_path: Path) -> dict[str, Any] | None:
    # A run's checkpoints lie in <run>/checkpoints/, its resolved config in <run>/config.yaml.
    candidate = ckpt_path.resolve().parent.parent / "config.yaml"
    if not candidate.is_file():
        return None
    loaded = yaml.safe_load(candidate.read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else None


def _cast(state: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    # Tied weights (embedding and output layer) are one tensor under two names: keep them one.
    cast: dict[int, torch.Tensor] = {}
    result = {}
    for key, tensor in state.items():
        if not tensor.is_floating_point():
            result[key] = tensor
            continue
        ident = tensor.data_ptr()
        if ident not in cast:
            cast[ident] = tensor.detach().to(dtype).clone()
        result[key] = cast[ident]
    return result


def _parameter_count(state: dict[str, torch.Tensor]) -> int:
    seen: set[int] = set()
    total = 0
    for tensor in state.values():
        if tensor.data_ptr() in seen:
            continue
        seen.add(tensor.data_ptr())
        total += tensor.numel()
    return total


def _val_perplexity(checkpoint: dict[str, Any]) -> float | None:
    for key, state in (checkpoint.get("callbacks") or {}).items():
        if key.startswith("ModelCheckpoint") and isinstance(state, dict) and state.get("monitor") == "val/ppl":
            score = state.get("current_score")
            if score is not None:
                return round(float(score), 2)
    return None


def read_evaluation(path: str | Path) -> dict[str, Any]:
    """The JSON report written by ``tangrnn evaluate --output json``, checked for the figures a card needs."""
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8").strip().splitlines()[-1])
    except (OSError, ValueError, IndexError) as error:
        raise ConfigError(
            f"cannot read the evaluation {path} ({type(error).__name__}); write it with "
            "`tangrnn evaluate ... --output json > FILE`"
        ) from error
    if not isinstance(report, dict) or "test" not in report or "samples" not in report:
        raise ConfigError(f"{path} is no report of `tangrnn evaluate --output json`")
    return report


__all__ = ["pack_model", "model_card", "render_card", "read_evaluation"]
