"""The ``tangrnn`` command: one table, :data:`VERBS`, maps every verb to the function that runs it.

LightningCLI's verbs (fit, validate, test, predict, and tangrnn's generate and evaluate) go to
:func:`~tangrnn_core.lightning_cli.run_lightning_cli`; tangrnn's own verbs, which are no Trainer method
(``plugins``, ``models``, ``data``, ``check``), to their modules. A verb's module is imported only when the verb
runs, so that ``tangrnn --help`` and a mistyped verb answer at once instead of after importing torch and
Lightning.

Errors a user can fix are printed as one line, ``tangrnn: error: ...``, with exit status 2, whichever verb
found them (tangrnn's own verbs parse with :class:`~tangrnn_core.arguments.OneLineArgumentParser`);
``--debug`` (or ``TANGRNN_DEBUG=1``) shows the traceback instead. A stop from outside exits as Unix shells
report signals: 130 after Ctrl-C (SIGINT), 143 after SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import os
import pickle
import re
import sys
import unicodedata
import warnings
from collections.abc import Callable, Sequence
from typing import NamedTuple

from tangrnn_core.arguments import OneLineArgumentParser, parse_arguments, usage_hint
from tangrnn_core.errors import ConfigError, TangrnnError

__all__ = ["GENERATE", "LIGHTNING", "USAGE", "VERBS", "Verb", "main", "plugins_command", "resolve"]

DEBUG_ENV = "TANGRNN_DEBUG"

#: The function that runs every LightningCLI verb; it parses the verb itself.
LIGHTNING = "tangrnn_core.lightning_cli:run_lightning_cli"
#: ``generate``: LightningCLI's verb, but a poem from a checkpoint alone is written without importing Lightning.
GENERATE = "tangrnn_core.generate_command:run"


class Verb(NamedTuple):
    """One verb of the ``tangrnn`` command: what runs it, and its line in ``tangrnn --help``.

    Args:
        target: ``"module:function"``, imported only when the verb runs. The function of a ``lightning`` verb
            is given every argument from the verb on (LightningCLI parses the verb); any other is given the
            words after the verb and returns the exit status.
        summary: what the verb does, in a few words.
        example: the arguments shown after the verb in the usage (``--config C --ckpt_path P``).
        lightning: whether it is a LightningCLI verb (the usage lists those first, in a section of their own):
            its function is given the verb too, and LightningCLI parses it (``generate`` decodes without
            Lightning when it needs none of it, :mod:`tangrnn_core.generate_command`).
    """

    target: str
    summary: str
    example: str = ""
    lightning: bool = False


#: Every verb of ``tangrnn``, in the order ``tangrnn --help`` lists them.
VERBS: dict[str, Verb] = {
    "fit": Verb(
        LIGHTNING, "train, printing sample poems at each validation", "--config configs/quickstart.yaml", lightning=True
    ),
    "validate": Verb(
        LIGHTNING, "perplexity of a checkpoint on the val split", "--config C --ckpt_path P", lightning=True
    ),
    "test": Verb(LIGHTNING, "perplexity of a checkpoint on the test split", "--config C --ckpt_path P", lightning=True),
    "predict": Verb(LIGHTNING, "write poems with a checkpoint", "--config C --ckpt_path P", lightning=True),
    "generate": Verb(GENERATE, "write poems of a form, acrostics, continuations", "--form 五绝", lightning=True),
    "evaluate": Verb(LIGHTNING, "test perplexity and the quality of the poems it writes", "--form all", lightning=True),
    "plugins": Verb(
        "tangrnn_core.cli:plugins_command", "list the architectures found through entry points", "[--options NAME]"
    ),
    "models": Verb(
        "tangrnn_core.models.command:run", "the trained models that ship with tangrnn", "[card NAME | pack ...]"
    ),
    "data": Verb("tangrnn_core.data.commands:run", "rebuild or inspect a corpus file", "build|info ..."),
    "check": Verb(
        "tangrnn_core.prosody.command:run",
        "does a poem follow the rules of regulated verse",
        "[POEM | --file F] [--tones loose]",
    ),
    "serve": Verb("tangrnn_core.serve.command:run", "poems and the checker over HTTP", "[--ckpt_path P] [--port 8000]"),
}


def _usage(verbs: dict[str, Verb]) -> str:
    """The text of ``tangrnn --help``, written from the table so that it lists exactly the verbs there are.

    Args:
        verbs: the verb table (:data:`VERBS`).
    """
    commands = {name: f"tangrnn {name} {verb.example}".rstrip() for name, verb in verbs.items()}
    # East Asian wide characters (五绝) take two columns in a terminal: pad by columns, not by characters.
    width = max(map(_columns, commands.values())) + 3

    def rows(lightning: bool) -> list[str]:
        return [
            f"  {commands[name]}{' ' * (width - _columns(commands[name]))}{verb.summary}"
            for name, verb in verbs.items()
            if verb.lightning == lightning
        ]

    return "\n".join(
        [
            "tangrnn: recurrent neural networks that learn to write Tang poems.",
            "",
            "Training and evaluation (LightningCLI; `tangrnn VERB --help` lists every option):",
            *rows(lightning=True),
            "  (generate, predict, evaluate, validate and test use the bundled model unless given --ckpt_path P)",
            "",
            "tangrnn's own verbs (`tangrnn VERB --help` for their options):",
            *rows(lightning=False),
            "",
            "Add --debug (or set TANGRNN_DEBUG=1) to see tracebacks.",
        ]
    )


def _columns(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


USAGE = _usage(VERBS)


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the ``tangrnn`` command with ``argv`` (default: the process's arguments) and exits on errors."""
    # Lightning 2.6 trips over its own deprecation in torch's pytree on every run; it is not the user's concern.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # torchdata 0.11's StatefulDataLoader calls a deprecated torch function of its own at every epoch.
    warnings.filterwarnings("ignore", message=r"'set_vital' is deprecated")
    args = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")
    if "--debug" in args:
        args.remove("--debug")
        debug = True
    try:
        status = _dispatch(args)
    except TangrnnError as error:
        if debug:
            raise
        _fail(str(error))
    except BrokenPipeError:
        # The reader went away (`tangrnn generate | head -1`): stop quietly, as Unix tools do on SIGPIPE.
        _quiet_broken_pipe()
    except KeyboardInterrupt:
        if args and args[0] in QUICK_EXIT_VERBS:
            _interrupted_now()
        _fail("interrupted (Ctrl-C)", 130)
    except SystemExit as exit_:
        # Lightning ends a run stopped by SIGTERM (a scheduler's stop, `kill`) with a bare SystemExit: exit 0,
        # which scripts would take for success.
        if type(exit_).__name__ == "SIGTERMException":
            _fail("stopped by SIGTERM", 143)
        raise
    except Exception as error:
        if debug:
            raise
        cause = _user_error_in_chain(error)
        if cause is not None:
            _fail(str(cause))
        known = _known_user_error(error)
        if known is not None:
            _fail(known)
        _fail(
            f"unexpected {type(error).__name__}: {_first_line(error)} "
            f"(this may be a bug; rerun with --debug for the traceback)"
        )
    if argv is None and args and args[0] in QUICK_EXIT_VERBS:
        _exit_now(status)  # the command's own process: nothing left to save, skip torch's teardown
    if status:
        sys.exit(status)


def _dispatch(args: list[str]) -> int:
    """Runs the verb ``args`` begin with; returns its exit status.

    Args:
        args: the command's arguments, ``--debug`` removed.

    Raises:
        ConfigError: a word that is no verb.
    """
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    if args[0].startswith("-"):
        # Options before the verb (`tangrnn --config all.yaml fit`) are LightningCLI's own top-level options.
        resolve(LIGHTNING)(args)
        return 0
    verb = VERBS.get(args[0])
    if verb is None:
        raise ConfigError(_unknown_verb(args[0]))
    function = resolve(verb.target)
    if verb.lightning:
        function(args)  # LightningCLI parses the verb too; its errors are raised, its success is status 0
        return 0
    return function(args[1:])


def resolve(target: str) -> Callable[[list[str]], object]:
    """The function named by ``target``, importing its module.

    Args:
        target: ``"module:function"``, as in :attr:`Verb.target`.

    Raises:
        ImportError: the module is missing or fails to import.
        AttributeError: the module has no such function.
    """
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


def _unknown_verb(word: str) -> str:
    """The one line for a word that is no verb: the nearest verb if it looks mistyped, and every verb."""
    close = difflib.get_close_matches(word, VERBS, n=1)
    guess = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown verb '{word}'{guess}; the verbs are {', '.join(VERBS)}; {usage_hint('tangrnn')}"


def plugins_command(args: list[str]) -> int:
    """``tangrnn plugins``: every architecture found, with its class, distribution and version.

    Args:
        args: the words after ``plugins``.

    Returns:
        The exit status.

    Raises:
        ConfigError: a bad argument.
    """
    from tangrnn_core.registry import DISABLE_AUTOLOAD_ENV, default_registry

    parser = OneLineArgumentParser(
        prog="tangrnn plugins",
        description="List the architectures registered in the 'tangrnn.architectures' entry-point group. "
        f"Set {DISABLE_AUTOLOAD_ENV}=1 to ignore third-party plugins.",
    )
    parser.add_argument("--options", metavar="NAME", help="print the options of one architecture and their help")
    options = parse_arguments(parser, args)
    if isinstance(options, int):  # --help
        return options
    registry = default_registry()
    if options.options:
        return _print_options(options.options)
    rows = [("NAME", "CLASS", "DISTRIBUTION", "VERSION", "STATUS")]
    for status in registry.statuses():
        source = status.source
        rows.append((source.name, source.target, source.distribution, source.version, status.problem or "ok"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4])
    return 0


def _print_options(name: str) -> int:
    from jsonargparse import ArgumentParser

    from tangrnn_core.registry import resolve_architecture

    cls = resolve_architecture(name)
    summary = (cls.__doc__ or "").strip().split("\n\n")[0]
    # Listed under the names fit, validate and the configs take them by, with a usage line that works as shown.
    parser = ArgumentParser(
        prog=f"tangrnn plugins --options {name}",
        usage=f"tangrnn fit --model.architecture {name} [--model.architecture_options.OPTION VALUE ...]",
        description=summary,
    )
    parser.add_class_arguments(cls, nested_key="model.architecture_options", skip={"tokens"})
    for action in parser._actions:  # the group's own option loads a file here; `tangrnn fit` takes a JSON object
        if action.dest == "model.architecture_options":
            action.help = argparse.SUPPRESS
    print(parser.format_help())
    return 0


def _known_user_error(error: BaseException) -> str | None:
    """A message with a fix for errors from outside tangrnn that a user causes (a missing or corrupt file).

    Checkpoints given with ``--ckpt_path`` are checked before Lightning reads them; this catches what slips
    past that check (``--ckpt_path last`` resolving to a damaged file, a file deleted meanwhile).
    """
    text = _first_line(error)
    if isinstance(error, (FileNotFoundError, IsADirectoryError, NotADirectoryError)):
        return f"{text}; check the path"
    if isinstance(error, PermissionError):
        return f"{text}; check the file's permissions"
    if type(error).__name__ == "MisconfigurationException":  # Lightning's word for a trainer option it refuses
        return f"{text.rstrip('.')}; fix the trainer options in the config or on the command line"
    match = re.match(
        r"`val_check_interval` \((\d+)\) must be less than or equal to the number of the training batches \((\d+)\)",
        text,
    )
    if match:
        return (
            f"trainer.val_check_interval ({match.group(1)}) is more than the {match.group(2)} training batches of an "
            "epoch; lower it, or set trainer.check_val_every_n_epoch to null to validate every N steps across epochs"
        )
    if _out_of_memory(error):
        wanted = re.search(r"tried to allocate (\d+ bytes|[\d.]+ ?[KMGT]i?B\b)", str(error), re.IGNORECASE)
        return (
            f"out of memory{' (tried to allocate ' + wanted.group(1) + ')' if wanted else ''}; lower --batch_size "
            "(generate), --data.batch_size (fit, validate, test, evaluate) or the model's size"
        )
    if isinstance(error, pickle.UnpicklingError) or (isinstance(error, RuntimeError) and "PytorchStreamReader" in text):
        return (
            f"a checkpoint or cache file could not be read, it is truncated or corrupt "
            f"({text.split('. ')[0].rstrip('.')[:200]}); use an intact checkpoint"
        )
    return None


def _out_of_memory(error: BaseException) -> bool:
    """Python's MemoryError, torch's CPU allocator refusing, or a CUDA out-of-memory error (by name, so that
    the command's error path imports nothing)."""
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":
        return True
    return isinstance(error, RuntimeError) and "can't allocate memory" in str(error)


def _user_error_in_chain(error: BaseException) -> TangrnnError | None:
    """LightningCLI and jsonargparse wrap errors raised while building objects; find the user's one."""
    seen = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, TangrnnError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _quiet_broken_pipe() -> None:
    # Python would report the unflushed output at exit once more: point stdout at nothing first.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    sys.exit(128 + 13)  # what a shell reports for a process ended by SIGPIPE


#: Verbs that hold nothing to save when they end or are interrupted: they stop at once instead of spending half a
#: second or more unloading torch and Lightning (a decode is stopped between two steps, what it printed is kept).
QUICK_EXIT_VERBS = ("generate", "check")


def _exit_now(status: int) -> None:
    """Ends the process at once after flushing what it printed: unloading torch takes over half a second after
    the last poem, which a person at the prompt waits through for nothing."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a reader that went away cannot take the rest: nothing to keep
            stream.flush()
    os._exit(status)


def _interrupted_now() -> None:
    with contextlib.suppress(Exception):  # a reader that went away cannot take the rest: nothing to keep
        sys.stdout.flush()
    print("tangrnn: error: interrupted (Ctrl-C)", file=sys.stderr, flush=True)
    os._exit(130)


def _fail(message: str, status: int = 2) -> None:
    print(f"tangrnn: error: {message}", file=sys.stderr)
    sys.exit(status)
