"""The Tang poets themselves against a model, form by form: the bar for the diversity and regularity goals.

``tangrnn evaluate`` reports distinct-2 over a sample of poems, and distinct-2 falls as a sample grows (more
bigrams, more chances to meet one twice): 200 七律 hold 9,600 bigrams, 200 五绝 3,200. So a goal such as
"distinct-2 >= 0.85" means something only beside real poems of the same form and number. This bench draws real
poems of each regular form from the training split (``--draws`` samples of ``--num_poems``; medians, with the
range) and scores them with the metrics ``evaluate`` uses (the same code: distinct-1/2, tones and rhyme of
``tangrnn check``), plus the share of characters that recur in a poem other than as an immediate reduplication
(青青, 萧萧) and the share of poems with such a repeat, what ``generate --no_repeat`` forbids. Beside each form it
scores ``--num_poems`` poems of a model written as ``evaluate`` writes them (the decoding defaults, its seeds).

    python bench/poets_reference.py                                  # the bundled model, 200 poems, 10 draws
    python bench/poets_reference.py --ckpt_path model.ckpt --config configs/lstm.yaml --num_poems 100
"""

from __future__ import annotations

import argparse
import random
import statistics
from pathlib import Path

from tangrnn_core.data.forms import REGULAR_FORMS, split_lines
from tangrnn_core.decoding.request import DEFAULT_TEMPERATURE, DEFAULT_TOP_P
from tangrnn_core.evaluation.evaluate import poem_quality, write_sample

FIGURES = ("distinct_1", "distinct_2", "repeated_chars", "poems_with_repeat", "tone_rate", "rhyme_rate")


def repeats(poem: str) -> tuple[int, int]:
    """``(characters met before in the poem, not right after themselves; characters)``: careless repetition as
    ``generate --no_repeat`` sees it, reduplication aside."""
    text = "".join(split_lines(poem))
    seen: set[str] = set()
    count = 0
    for index, char in enumerate(text):
        if char in seen and text[index - 1] != char:
            count += 1
        seen.add(char)
    return count, len(text)


def figures(poems: list[str], form) -> dict[str, float]:
    """The figures of one sample of poems of ``form``."""
    metrics = poem_quality(set(), form)
    metrics.update(poems)
    values = {key: float(value) for key, value in metrics.compute().items()}
    counts = [repeats(poem) for poem in poems]
    values["repeated_chars"] = sum(c for c, _ in counts) / max(1, sum(n for _, n in counts))
    values["poems_with_repeat"] = sum(c > 0 for c, _ in counts) / max(1, len(counts))
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt_path", help="the model to set beside the poets (default: the bundled model)")
    parser.add_argument(
        "--config",
        help="the config whose data the real poems come from (default: the bundled model's own data options)",
    )
    parser.add_argument("--num_poems", type=int, default=200, help="poems in each sample (default 200)")
    parser.add_argument("--draws", type=int, default=10, help="samples of real poems per form (default 10)")
    parser.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE)
    parser.add_argument("--top_p", type=float, default=DEFAULT_TOP_P)
    parser.add_argument("--seed", type=int, default=1234, help="the model's poems (as evaluate's --seed)")
    args = parser.parse_args()

    from tangrnn_core.checkpoint_files import check_checkpoint
    from tangrnn_core.data.datamodule import PoetryDataModule
    from tangrnn_core.models.pack import DATA_KEYS
    from tangrnn_core.network import network_from_checkpoint

    if args.ckpt_path is None:
        from tangrnn_core.models import bundled_model

        path = bundled_model().path
    else:
        path = args.ckpt_path
    checkpoint = check_checkpoint(path)
    if args.config:
        import yaml

        options = (yaml.safe_load(Path(args.config).read_text(encoding="utf-8")) or {}).get("data") or {}
    else:
        options = dict(checkpoint.get("datamodule_hyper_parameters") or {})
    # The options that decide which poems are in which split, as a bundled model's card records them.
    data = PoetryDataModule(**{key: options[key] for key in DATA_KEYS if key in options})
    data.setup("fit")
    train = data.split("train")
    by_form: dict[str, list[str]] = {}
    for text, form in zip(train.texts, train.forms):
        by_form.setdefault(getattr(form, "value", str(form)), []).append(text)
    trained = network_from_checkpoint(checkpoint, path)

    print(
        f"{args.num_poems} poems a sample; the poets: medians of {args.draws} draws from the training split "
        f"(min-max); the model {path}: temperature {args.temperature:g}, top_p {args.top_p:g}, seed {args.seed}"
    )
    header = f"{'form':4}  {'who':6}  " + "  ".join(f"{name:>17}" for name in FIGURES)
    print(header)
    for form in REGULAR_FORMS:
        real = by_form.get(form.value, [])
        if len(real) < args.num_poems:
            print(f"{form.value:4}  poets   only {len(real)} poems of this form in the training split")
            continue
        rng = random.Random(0)
        draws = [figures(rng.sample(real, args.num_poems), form) for _ in range(args.draws)]
        cells = []
        for name in FIGURES:
            values = [draw[name] for draw in draws]
            cells.append(f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})")
        print(f"{form.value:4}  poets   " + "  ".join(f"{cell:>17}" for cell in cells))
        poems = write_sample(
            trained.net, trained.vocabulary, form, args.num_poems, args.temperature, args.seed, top_p=args.top_p
        )
        model = figures(poems, form)
        print(f"{form.value:4}  model  " + "  ".join(f"{model[name]:>17.3f}" for name in FIGURES))


if __name__ == "__main__":
    main()
