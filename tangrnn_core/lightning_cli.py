"""LightningCLI set up for tangrnn: the model, the data module, the trainer defaults and the argument links.

Parse errors (bad YAML, unknown options, values of the wrong type) and unusable checkpoints become
:class:`~tangrnn_core.errors.TangrnnError`\\ s, which the command line prints as one ``tangrnn: error:`` line,
instead of jsonargparse's usage block or a traceback from deep inside Lightning.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import sys
from argparse import ArgumentError
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import Namespace, set_parsing_settings
from lightning.fabric.utilities.seed import seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_only

from tangrnn_core.allocator import keep_freed_memory
from tangrnn_core.callbacks import FinalCheckpoint, PoemSamples
from tangrnn_core.checkpoint_files import check_checkpoint
from tangrnn_core.checkpointing import AtomicCheckpointIO
from tangrnn_core.data.datamodule import PoetryDataModule
from tangrnn_core.decoding.request import PoemRequest
from tangrnn_core.errors import CheckpointError, ConfigError, one_line, shorten
from tangrnn_core.evaluation.callback import SampleQuality
from tangrnn_core.module import PoetryModel
from tangrnn_core.network import RETIRED_MODEL_OPTIONS
from tangrnn_core.precision import precision_for
from tangrnn_core.run_folders import newest_last_checkpoint
from tangrnn_core.trainer import TangrnnTrainer

#: Verbs whose flags are the fields of a :class:`~tangrnn_core.decoding.request.PoemRequest`, with those they
#: leave out: predict's data decides how many poems and how many at once.
REQUEST_SUBCOMMANDS: dict[str, set[str]] = {"generate": set(), "predict": {"num_poems", "batch_size"}}
#: Verbs that take everything from a checkpoint and read no corpus.
NO_DATA_SUBCOMMANDS = ("generate",)
#: The largest seed every random generator a run seeds accepts (numpy's are 32-bit).
MAX_SEED = 2**32 - 1
#: Verbs whose precision follows the hardware when none is set (evaluate reports figures in fp32 unless told).
HARDWARE_PRECISION_SUBCOMMANDS = ("fit", "validate", "test")
#: Verbs that use the bundled model (:data:`~tangrnn_core.models.DEFAULT_MODEL`) when given no ``--ckpt_path``.
BUNDLED_MODEL_SUBCOMMANDS = ("generate", "predict", "evaluate", "validate", "test")


class TangrnnCLI(LightningCLI):
    """LightningCLI with tangrnn's links: the data module's vocabulary decides the model's sizes."""

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """Lightning's verbs, ``generate``, which needs a checkpoint and no data, and ``evaluate``, which needs
        both (the test split for perplexity and first lines, the training split for copied lines)."""
        return {
            **LightningCLI.subcommands(),
            "predict": {"model", "dataloaders", "datamodule", "request"},
            "generate": {"model", "request", "checkpoint"},
            "evaluate": {"model", "datamodule"},
        }

    def _prepare_subcommand_parser(self, klass: type, subcommand: str, **kwargs: Any) -> LightningArgumentParser:
        self._preparing = subcommand
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        if subcommand in REQUEST_SUBCOMMANDS:
            # The request's fields as flags of their own (--form, not --request.form), with its docstrings as help.
            skip = REQUEST_SUBCOMMANDS[subcommand]
            parser.add_class_arguments(PoemRequest, nested_key=None, as_group=False, instantiate=False, skip=skip)
        return parser

    def _prepare_subcommand_kwargs(self, subcommand: str) -> dict[str, Any]:
        kwargs = super()._prepare_subcommand_kwargs(subcommand)
        if subcommand in REQUEST_SUBCOMMANDS:
            section = self.config_init[subcommand]
            fields = [f.name for f in dataclasses.fields(PoemRequest) if f.name not in REQUEST_SUBCOMMANDS[subcommand]]
            kwargs["request"] = PoemRequest(**{name: section[name] for name in fields})
        if subcommand == "generate":
            kwargs["checkpoint"] = getattr(self, "_checkpoint", None)
        return kwargs

    def add_core_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        if getattr(self, "_preparing", None) not in NO_DATA_SUBCOMMANDS:
            return super().add_core_arguments_to_parser(parser)
        # A checkpoint holds the vocabulary: these verbs read no corpus, and the model comes from the checkpoint.
        parser.add_lightning_class_args(self.trainer_class, "trainer")
        parser.set_defaults({"trainer." + k: v for k, v in self.trainer_defaults.items() if k != "callbacks"})
        parser.add_lightning_class_args(self._model_class, "model", subclass_mode=self.subclass_mode_model)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        if getattr(self, "_preparing", None) in NO_DATA_SUBCOMMANDS:
            return
        # The data module builds its vocabulary in __init__, so these exist before the model is built.
        parser.link_arguments("data.vocab_size", "model.vocab_size", apply_on="instantiate")
        parser.link_arguments("data.line_end_ids", "model.line_end_ids", apply_on="instantiate")
        # A forced callback with options of its own (--sample_quality.num_poems 0 turns it off), saved in config.yaml.
        parser.add_lightning_class_args(SampleQuality, "sample_quality")

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        # Lightning's own version warns whenever args are given while sys.argv has some too, which is always
        # the case for a command that passes on its arguments (minus --debug); parse without that warning.
        if isinstance(args, (dict, Namespace)):
            self.config = parser.parse_object(args)
        else:
            self.config = parser.parse_args(args)
        subcommand = self.config.get("subcommand")
        if subcommand:
            section = self.config[subcommand]
            ckpt_path = section.get("ckpt_path")
            if ckpt_path is None and subcommand != "fit":
                # Without one, the model keeps its random initial weights: a meaningless perplexity, gibberish.
                raise CheckpointError(
                    f"`tangrnn {subcommand}` needs a trained model: pass --ckpt_path with a .ckpt file written by "
                    "`tangrnn fit` (or --ckpt_path last for the newest run under trainer.default_root_dir), or "
                    "leave out --config to use the bundled model"
                )
            if ckpt_path is not None:
                model = section.get("model")
                model = model.as_dict() if hasattr(model, "as_dict") else model
                path, self._checkpoint = resolve_checkpoint(ckpt_path, subcommand, section.get("trainer"), model)
                section["ckpt_path"] = path

    def _parse_ckpt_path(self) -> None:
        # Lightning's version reads the file once more; the model's hyperparameters come from the checkpoint
        # already read and checked, less the options retired since it was written.
        subcommand = self.config.get("subcommand")
        checkpoint = getattr(self, "_checkpoint", None)
        if not subcommand or checkpoint is None:
            return super()._parse_ckpt_path()
        hparams = {k: v for k, v in checkpoint.get("hyper_parameters", {}).items() if k not in RETIRED_MODEL_OPTIONS}
        hparams.pop("_instantiator", None)
        if not hparams:
            return None
        self._compare_with_checkpoint(subcommand, hparams)
        try:
            self.config = self.parser.parse_object({subcommand: {"model": hparams}}, self.config)
        except ArgumentError as error:
            path = self.config[subcommand].get("ckpt_path")
            raise CheckpointError(
                f"the model hyperparameters in checkpoint {path} do not fit this tangrnn ({one_line(error)}); "
                "use a checkpoint written by `tangrnn fit`"
            ) from error
        return None

    def _compare_with_checkpoint(self, subcommand: str, hparams: dict[str, Any]) -> None:
        """The checkpoint's network is the one it holds: a config that asks for another architecture is refused,
        and architecture options it sets differently are named in one line before the checkpoint's are used.

        Only what the config or the command line set counts (values equal to the parser's defaults do not), so a
        checkpoint used without a config is never questioned.
        """
        asked = self.config[subcommand].get("model") or {}
        defaults = self._subcommand_parsers[subcommand].get_defaults().get("model") or {}
        path = self.config[subcommand].get("ckpt_path")
        wanted, held = asked.get("architecture"), hparams.get("architecture")
        if wanted and held and wanted != defaults.get("architecture") and wanted != held:
            raise ConfigError(
                f"the config asks for architecture {wanted!r}, but checkpoint {path} holds a {held!r} network; "
                f"drop model.architecture from the config (the checkpoint's is used) or pass a checkpoint of {wanted!r}"
            )
        options = dict(asked.get("architecture_options") or {})
        default_options = dict(defaults.get("architecture_options") or {})
        held_options = dict(hparams.get("architecture_options") or {})
        differ = [
            f"{name}={value!r} (checkpoint: {held_options[name]!r})"
            for name, value in sorted(options.items())
            if name in held_options and value != held_options[name] and default_options.get(name) != value
        ]
        if differ:
            _say(
                f"tangrnn: note: checkpoint {path} was trained with other architecture options than the config's "
                f"{', '.join(differ)}; its own are used (a checkpoint's network is the one it holds)"
            )

    def _set_seed(self) -> None:
        # Lightning's own version logs "Seed set to N" to stderr on every run, before any error line.
        seed = self._get(self.config, "seed_everything")
        if seed is False:
            return
        if seed is not True and seed is not None and not 0 <= int(seed) <= MAX_SEED:
            raise ConfigError(f"seed_everything must be from 0 to {MAX_SEED} (numpy's range), got {seed}")
        seed = seed_everything(None if seed is True else seed, workers=True, verbose=False)
        if self.subcommand:
            self.config[self.subcommand]["seed_everything"] = seed
        else:
            self.config["seed_everything"] = seed

    def before_instantiate_classes(self) -> None:
        config = self.config.get(str(self.subcommand), self.config)
        if config.get("trainer", {}).get("use_distributed_sampler"):
            raise ConfigError(
                "trainer.use_distributed_sampler must stay false: tangrnn's bucketing sampler shards batches itself"
            )
        if self.subcommand in HARDWARE_PRECISION_SUBCOMMANDS and config["trainer"].get("precision") is None:
            choice = precision_for(config["trainer"].get("accelerator"))
            if choice is not None:
                # Set in the config, so that the run's saved config.yaml says what it trained with.
                config["trainer"]["precision"] = choice[0]
                _say(f"tangrnn: precision {choice[0]}: {choice[1]} (set trainer.precision to choose)")

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Any]) -> Any:
        config["plugins"] = with_atomic_checkpoints(config.get("plugins"), config.get("strategy"))
        return super()._instantiate_trainer(config, callbacks)

    @rank_zero_only
    def after_predict(self) -> None:
        # As `tangrnn generate` prints them: one verse per line, a blank line between poems.
        from tangrnn_core.trainer import print_poems

        printed = 0
        for batch in self.trainer.predict_loop.predictions or []:
            print_poems(batch, "text", first=printed)
            printed += len(batch)


@rank_zero_only
def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_lightning_cli(args: Sequence[str]) -> TangrnnCLI:
    """Builds and runs the CLI on ``args`` (``fit``, ``validate``, ``test``, ``predict`` and their options)."""
    args = with_bundled_model(list(args))
    _check_config_files(args)
    _quiet_lightning(args)
    keep_freed_memory()
    # The generation request documents its fields where they are declared (attribute docstrings): the help.
    set_parsing_settings(docstring_parse_attribute_docstrings=True)
    try:
        return TangrnnCLI(
            PoetryModel,
            PoetryDataModule,
            trainer_class=TangrnnTrainer,
            trainer_defaults={
                "callbacks": [
                    ModelCheckpoint(monitor="val/ppl", mode="min", save_last=True, filename="best-{step}"),
                    PoemSamples(),
                    FinalCheckpoint(),
                ],
                # The bucketing sampler shards batches across processes itself.
                "use_distributed_sampler": False,
                "gradient_clip_val": 1.0,
            },
            seed_everything_default=1234,
            save_config_kwargs={"overwrite": True},
            auto_configure_optimizers=False,
            parser_kwargs={
                "description": "tangrnn: recurrent neural networks that learn to write Tang poems.",
                # Raise ArgumentError instead of printing the usage and exiting; it becomes one line below.
                "exit_on_error": False,
            },
            args=args,
        )
    except ArgumentError as error:
        raise ConfigError(describe_parse_error(error, args)) from error


def with_bundled_model(args: list[str]) -> list[str]:
    """``args`` with ``--ckpt_path`` set to the bundled model where a verb that needs a model was given none.

    ``generate`` reads no corpus and always can. The verbs that read one (``evaluate``, ``predict``,
    ``validate``, ``test``) take the bundled model only without a ``--config``, together with its data options
    (the splits its figures were measured on; options given after them still win): a config is the user's own
    run, and scoring another model on it would be a silent mix-up.
    """
    verb_index = next((i for i, arg in enumerate(args) if arg in TangrnnCLI.subcommands()), None)
    if verb_index is None or args[verb_index] not in BUNDLED_MODEL_SUBCOMMANDS:
        return args
    verb, rest = args[verb_index], args[verb_index + 1 :]
    if _has_option(rest, "--ckpt_path", "-h", "--help"):
        return args
    if verb not in NO_DATA_SUBCOMMANDS and _has_option(rest, "--config", "-c"):
        return args
    from tangrnn_core.models import DEFAULT_MODEL, bundled_model

    model = bundled_model(DEFAULT_MODEL)
    extra = ["--ckpt_path", str(model.path)]
    if verb not in NO_DATA_SUBCOMMANDS:
        extra = ["--data", json.dumps(model.data_options, ensure_ascii=False), *extra]
        # Figures refer to a model: say which one, on stderr, so that stdout stays the command's own.
        print(f"tangrnn: no --ckpt_path: using the bundled model {model.name} (`tangrnn models`)", file=sys.stderr)
    return [*args[: verb_index + 1], *extra, *rest]


def _check_config_files(args: Sequence[str]) -> None:
    """Refuses a ``--config`` file that is no text (a checkpoint given as a config, say) before jsonargparse
    fails on it with a decoding error."""
    for name in _config_files(args):
        path = Path(name)
        if not path.is_file():
            continue  # YAML text, or a missing file: the parser reports those
        try:
            path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            hint = " (a checkpoint goes to --ckpt_path)" if path.suffix in (".ckpt", ".pt") else ""
            raise ConfigError(
                f"config file {path} is not UTF-8 YAML text{hint}; pass a config written in YAML"
            ) from None


def _has_option(args: Sequence[str], *names: str) -> bool:
    return any(arg in names or any(arg.startswith(f"{name}=") for name in names) for arg in args)


def with_atomic_checkpoints(plugins: Any, strategy: Any = None) -> list[Any]:
    """``trainer.plugins`` plus an :class:`AtomicCheckpointIO`, unless the user chose a CheckpointIO already
    (in ``--trainer.plugins`` or on a strategy object): Lightning accepts one CheckpointIO per trainer."""
    from lightning.fabric.plugins import CheckpointIO

    if plugins is None:
        plugins = []
    elif not isinstance(plugins, list):
        plugins = [plugins]
    else:
        plugins = list(plugins)
    if any(isinstance(plugin, CheckpointIO) for plugin in plugins):
        return plugins
    if getattr(strategy, "_checkpoint_io", None) is not None:
        return plugins
    return [*plugins, AtomicCheckpointIO()]


def _quiet_lightning(args: Sequence[str]) -> None:
    """Drops Lightning's advertising tip everywhere, and its start-up chatter where poems are the output."""
    logger = logging.getLogger("lightning.pytorch")
    if not any(isinstance(f, _DropTips) for f in logger.filters):
        for name in ("lightning.pytorch", "lightning.pytorch.utilities.rank_zero", "lightning.fabric"):
            logging.getLogger(name).addFilter(_DropTips())
    if any(arg in NO_DATA_SUBCOMMANDS for arg in args):
        logger.setLevel(logging.WARNING)


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith("💡 Tip")


# -- checkpoints ---------------------------------------------------------------------------------------------


def resolve_checkpoint(
    ckpt_path: str | Path, subcommand: str, trainer: Any = None, model: dict | None = None
) -> tuple[str, dict | None]:
    """The checkpoint file ``--ckpt_path`` names, checked (see :func:`check_checkpoint`), and what it holds
    (``None`` where Lightning resolves the value).

    ``last`` is the newest ``last*.ckpt`` under ``trainer.default_root_dir`` of a run of the same network
    (``model``'s architecture and options; :func:`~tangrnn_core.run_folders.newest_last_checkpoint`), and the
    command says which file it took (Lightning itself would look only in the folder of the run being started,
    which the command line always makes anew, and silently use no checkpoint). ``fit --ckpt_path last`` with no checkpoint yet starts afresh, so that one command line can
    both start and resume a job; the other verbs refuse. ``best`` is refused: a new process knows no best model.
    """
    text = str(ckpt_path)
    if text == "best":
        raise CheckpointError(
            "--ckpt_path best needs a model trained in the same process; pass the path of a best-step=N.ckpt "
            "file from the run's checkpoints folder instead"
        )
    if text == "last":
        root = Path(_get(trainer, "default_root_dir") or Path.cwd())
        found, why = newest_last_checkpoint(root, model)
        if found is not None:
            text = str(found)
            if rank_zero_only.rank == 0:
                _say(f"tangrnn: --ckpt_path last: {text} ({why})")
        elif subcommand == "fit":
            return text, None  # Lightning warns and trains from the start
        else:
            raise CheckpointError(
                f"--ckpt_path last: there is no last*.ckpt under {root} (in checkpoints/ or "
                "lightning_logs/version_N/checkpoints/); train with `tangrnn fit` first, set "
                "trainer.default_root_dir to the folder of the runs, or pass the checkpoint's path"
            )
    return text, check_checkpoint(text)


def _get(namespace: Any, key: str) -> Any:
    if namespace is None:
        return None
    return namespace.get(key) if hasattr(namespace, "get") else getattr(namespace, key, None)


# -- parse errors --------------------------------------------------------------------------------------------


def describe_parse_error(error: ArgumentError, args: Sequence[str]) -> str:
    """One line for a jsonargparse error (which spans several lines), saying what is wrong and where to look."""
    message = str(error).strip()
    verb = next((arg for arg in args if arg in TangrnnCLI.subcommands()), "fit")
    options = f"`tangrnn {verb} --help` lists the options and their types"
    if message.startswith("Problems parsing config"):
        bad_file = _first_invalid_yaml(_config_files(args))
        if bad_file is not None:
            path, problem = bad_file
            return f"config file {path} is not valid YAML ({problem}); fix its syntax"
        return f"invalid --config value ({one_line(message.split(':', 1)[1])}); give a YAML file or YAML text"
    match = re.match(r"""Parser key "config":\s*File does not exist: '?([^'\n]+)'?""", message)
    if match:
        return f"config file {match.group(1)} does not exist; check the path given to --config"
    if message.startswith("Unexpected config"):
        got = shorten(one_line(message.split(":", 1)[1]), 80)
        return f"a config must be a YAML mapping of options (model:, data:, trainer:, ...), not: {got}"
    if message.startswith("argument subcommand:") or message.startswith('expected "subcommand"'):
        return f"{one_line(message)}; run `tangrnn --help` for the commands"
    match = re.match(r"Subcommand '(\w+)' does not accept option '([^']+)'", message)
    if match:
        option, verb = match.group(2), match.group(1)
        return f"unknown option '{option}' in the config of `tangrnn {verb}`; remove or correct it ({options})"
    if re.match(r"the following arguments are required: \w+\.ckpt_path", message):
        return f"`tangrnn {verb}` needs --ckpt_path: a checkpoint written by `tangrnn fit` (or `last`)"
    if message.startswith("unrecognized arguments:"):
        return f"{one_line(message)}; remove or correct them ({options})"
    match = re.match(r'Parser key "([^"]+)":\s*(.*)', message, re.DOTALL)
    if match:
        detail = one_line(match.group(2)).replace("typing.", "")
        simple = re.fullmatch(r"Expected an? (.+?)\. Got value: (.*)", detail)
        if simple:
            detail = f"expected {simple.group(1)}, got {simple.group(2)!r}"
        return f"invalid value for {match.group(1)}: {shorten(detail)}; {options}"
    return f"{shorten(one_line(message))}; {options}"


def _config_files(args: Sequence[str]) -> list[str]:
    files = []
    for index, arg in enumerate(args):
        if arg in ("-c", "--config") and index + 1 < len(args):
            files.append(args[index + 1])
        elif arg.startswith("--config="):
            files.append(arg.split("=", 1)[1])
    return files


def _first_invalid_yaml(candidates: list[str]) -> tuple[str, str] | None:
    for candidate in candidates:
        path = Path(candidate)
        if not path.is_file():
            continue
        try:
            yaml.safe_load(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            return candidate, "not UTF-8 text"
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
            problem = getattr(error, "problem", None) or one_line(error)
            return candidate, f"{where}{problem}"
    return None
