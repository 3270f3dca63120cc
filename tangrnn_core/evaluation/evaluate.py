"""``tangrnn evaluate``: test-split perplexity, then the quality of poems the model writes, as a table or JSON.

Everything generated goes through :func:`~tangrnn_core.decoding.request.write_poems`, like ``tangrnn generate``,
so the figures hold for every architecture plugin. On several processes each writes its share of the poems
(seeded by its rank) and the metrics sync counts; the printed report comes from rank 0.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_only
from torchmetrics import MetricCollection

from tangrnn_core.api import CONDITIONAL
from tangrnn_core.data.forms import REGULAR_FORMS, Form, split_lines
from tangrnn_core.decoding.request import DEFAULT_TOP_P, FREE_MAX_LENGTH, PoemRequest
from tangrnn_core.decoding.sampling import check_sampling_options
from tangrnn_core.decoding.write import write_poems
from tangrnn_core.errors import ConfigError
from tangrnn_core.evaluation.metrics import (
    ContinuationBLEU,
    DistinctN,
    FormCompliance,
    Novelty,
    corpus_lines,
    regular_form,
)
from tangrnn_core.evaluation.regulation import RhymeCompliance, ToneCompliance
from tangrnn_core.objectives import is_masked_model

#: Figures of a sample of poems, in the order of the printed table (``None`` where not measured: tone and rhyme
#: rates when no poem had a regular form).
SAMPLE_KEYS = ("form_rate", "distinct_1", "distinct_2", "copied_lines", "poems_with_copy", "tone_rate", "rhyme_rate")
#: Poems decoded in one batch: bounds memory whatever ``--num_poems`` is.
CHUNK = 256


def poem_quality(
    training_lines: set[str], form: str | Form | None = None, check_tones: str = "strict"
) -> MetricCollection:
    """The metrics of a sample of poems, updated with a list of poem texts.

    Args:
        training_lines: the training split's lines (:func:`~tangrnn_core.evaluation.metrics.corpus_lines`).
        form: the form the poems were asked for (``None``: free poems, checked against any regular form).
        check_tones: ``strict`` or ``loose`` (see :class:`~tangrnn_core.evaluation.regulation.ToneCompliance`).
    """
    metrics = {
        "form_rate": FormCompliance(form),
        "distinct_1": DistinctN(1),
        "distinct_2": DistinctN(2),
        "novelty": Novelty(training_lines),  # computes copied_lines and poems_with_copy
        "tone_rate": ToneCompliance(check_tones),
        "rhyme_rate": RhymeCompliance(check_tones),
    }
    # Each metric has its own states: nothing for compute groups to share, only a check to pay for.
    return MetricCollection(metrics, compute_groups=False)


def sample_modes(form: str | None) -> list[tuple[str, Form | None]]:
    """What ``--form`` asks for: ``free`` poems (the default), one regular form, or ``all`` (free and each form)."""
    if form is None or str(form).strip().lower() == "free":
        return [("free", None)]
    if str(form).strip().lower() == "all":
        return [("free", None), *((f.value, f) for f in REGULAR_FORMS)]
    try:
        parsed = regular_form(form)
    except ConfigError:
        raise ConfigError(
            f"unknown --form {form!r}: choose free, all, or one of 五绝 七绝 五律 七律 (wujue qijue wulv qilv)"
        ) from None
    return [(parsed.value, parsed)]


def shard(count: int, rank: int, world_size: int) -> range:
    """The indices of ``count`` items that process ``rank`` of ``world_size`` handles."""
    return range(rank, count, world_size)


def write_sample(
    net: torch.nn.Module,
    vocabulary: Any,
    form: Form | None,
    count: int,
    temperature: float,
    seed: int,
    max_length: int = FREE_MAX_LENGTH,
    top_p: float = DEFAULT_TOP_P,
) -> list[str]:
    """``count`` poems (free, or of ``form``), decoded in chunks of :data:`CHUNK`, each chunk seeded anew;
    ``max_length`` bounds free poems."""
    poems: list[str] = []
    for chunk, start in enumerate(range(0, count, CHUNK)):
        request = PoemRequest(
            form=form.value if form is not None else None,
            num_poems=min(CHUNK, count - start),
            temperature=temperature,
            top_p=top_p,
            seed=seed + chunk,
            max_length=max_length,
        )
        poems += write_poems(net, vocabulary, request)
    return poems


def continuation_pairs(
    texts: Sequence[str], forms: Sequence[str], vocabulary: Any, limit: int
) -> list[tuple[int, Form]]:
    """Up to ``limit`` test poems that a model can be asked to continue, by index, with their form: of a regular
    form (the continuation needs a shape) and with a first line made only of characters the model knows."""
    pairs = []
    for index, (text, name) in enumerate(zip(texts, forms)):
        if len(pairs) >= limit:
            break
        form = Form.parse(name)
        if form is Form.OTHER:
            continue
        if not vocabulary.unknown(split_lines(text)[0]):
            pairs.append((index, form))
    return pairs


def run_evaluation(
    trainer: pl.Trainer,
    model: pl.LightningModule,
    datamodule: pl.LightningDataModule,
    ckpt_path: str,
    num_poems: int,
    form: str | None,
    temperature: float,
    seed: int,
    check_tones: str = "strict",
    top_p: float = DEFAULT_TOP_P,
) -> dict[str, Any]:
    """Computes the whole report of ``tangrnn evaluate`` (see :meth:`TangrnnTrainer.evaluate`)."""
    # Options are checked before the test loop, so that a typo costs no minutes of work.
    if num_poems < 1:
        raise ConfigError(f"--num_poems must be at least 1, got {num_poems}")
    if not math.isfinite(temperature) or temperature < 0:
        raise ConfigError(f"--temperature must be 0 or more, got {temperature}")
    check_sampling_options(temperature, 0, top_p)  # the same words as generate's for top_p
    modes = sample_modes(form)
    if check_tones not in ("strict", "loose"):
        raise ConfigError(f"--check_tones must be strict or loose, got {check_tones!r}")

    # Perplexity through the model's own test loop; it loads the checkpoint (weights_only=True) and its vocabulary.
    results = trainer.test(model, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False)
    test_split = datamodule.split("test")
    report: dict[str, Any] = {
        "checkpoint": str(ckpt_path),
        "settings": {
            "num_poems": num_poems,
            "form": form or "free",
            "temperature": temperature,
            "top_p": top_p,
            "seed": seed,
            "check_tones": check_tones,
        },
        "test": {
            "perplexity": _round(results[0]["test/ppl"]),
            # ln(perplexity): nats per character. The logged test/loss is a mean over batches, not characters.
            "cross_entropy": _round(math.log(results[0]["test/ppl"])),
            "poems": len(test_split),
            "characters": int(test_split.lengths().sum()),
        },
    }

    # The test loop may leave the model on the CPU and in training mode; decoding sets eval mode itself.
    model.to(trainer.strategy.root_device)
    net, vocabulary = model.net, model.vocabulary
    report["notes"] = []
    if is_masked_model(net):
        report["notes"].append(
            "an infilling network: its perplexity is over hidden characters restored from both sides, not "
            "comparable with a left-to-right model's; it fills regular-form layouts, so its free poems have a "
            "form by construction"
        )
    rank, world_size = trainer.global_rank, trainer.world_size
    device = trainer.strategy.root_device

    # Continuations of real first lines, against the originals.
    pairs = continuation_pairs(test_split.texts, test_split.forms, vocabulary, num_poems)
    bleu = ContinuationBLEU().to(device)
    # A network that reads titles (seq2seq) is given the poem's own, as in its test loop, when it knows them.
    conditional = CONDITIONAL in getattr(net, "capabilities", ())
    titles = getattr(test_split, "titles", None)
    for index in shard(len(pairs), rank, world_size):
        poem, poem_form = pairs[index]
        text = test_split.texts[poem]
        title = titles[poem] if conditional and titles else None
        request = PoemRequest(
            form=poem_form.value,
            first_line=split_lines(text)[0],
            title=title if title and not vocabulary.unknown(title) else None,
            num_poems=1,
            temperature=temperature,
            top_p=top_p,
            seed=seed + index,
        )
        bleu.update(write_poems(net, vocabulary, request), [text])
    report["continuation"] = {"bleu2": _round(bleu.compute()) if pairs else None, "poems": len(pairs)}

    # Samples: free poems and/or poems of each form asked for.
    lines = training_lines(datamodule)
    report["samples"] = {}
    for label, mode_form in modes:
        count = len(shard(num_poems, rank, world_size))
        poems = write_sample(net, vocabulary, mode_form, count, temperature, seed + 100_003 * rank, top_p=top_p)
        metrics = poem_quality(lines, mode_form, check_tones).to(device)
        metrics.update(poems)
        values = {key: _round(value) for key, value in metrics.compute().items()}
        report["samples"][label] = {
            "poems": num_poems,
            **{key: values.get(key) for key in SAMPLE_KEYS},
            "examples": poems[:2],
        }
    return report


def _round(value: Any) -> float | None:
    # Metrics compute in float32: 6 significant digits is all they hold (0.975, not 0.9750000238418579).
    # NaN (nothing to measure) becomes None: JSON has no NaN.
    value = float(value)
    return None if math.isnan(value) else float(f"{value:.6g}")


def training_lines(datamodule: pl.LightningDataModule) -> set[str]:
    """The lines of the data module's training split, for :class:`Novelty`."""
    return corpus_lines(datamodule.split("train").texts)


@rank_zero_only
def print_report(report: dict[str, Any], output: str) -> None:
    """Prints ``report`` as a table (``text``) or as one JSON object (``json``)."""
    if output == "json":
        print(json.dumps(report, ensure_ascii=False), flush=True)
    else:
        print(format_report(report), flush=True)


def format_report(report: dict[str, Any]) -> str:
    """The report as an aligned plain-text table."""
    test, cont, settings = report["test"], report["continuation"], report["settings"]
    bleu = (
        "n/a (no regular test poem whose first line the model knows)"
        if cont["bleu2"] is None
        else (f"{cont['bleu2']:.4f}  (characters; {cont['poems']} test poems continued from their first line)")
    )
    lines = [
        f"checkpoint   {report['checkpoint']}",
        f"test split   perplexity {test['perplexity']:.2f}  ({test['cross_entropy']:.4f} nats a character; "
        f"{test['poems']:,} poems, {test['characters']:,} characters)",
        f"BLEU-2       {bleu}",
        "",
        f"poems written at temperature {settings['temperature']:g}, top_p {settings.get('top_p', 1.0):g}, "
        f"seed {settings['seed']} "
        f"(tones and rhyme of the regular ones, {settings['check_tones']} tones):",
    ]
    header = ("sample", "poems", "form", "distinct-1", "distinct-2", "copied lines", "poems w/ copy", "tones", "rhyme")
    rows = [header]
    for label, figures in report["samples"].items():
        rows.append((label, str(figures["poems"]), *(_rate(figures[key]) for key in SAMPLE_KEYS)))
    widths = [max(_width(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        cells = [_pad(row[0], widths[0], left=True)] + [_pad(cell, width) for cell, width in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
    lines += [f"note: {note}" for note in report.get("notes", ())]
    return "\n".join(lines)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _width(text: str) -> int:
    # CJK characters take two columns in a terminal.
    return sum(2 if ord(char) > 0x2E7F else 1 for char in text)


def _pad(text: str, width: int, left: bool = False) -> str:
    space = " " * (width - _width(text))
    return text + space if left else space + text
