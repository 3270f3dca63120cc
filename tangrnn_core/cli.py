"""The ``tangrnn`` command: LightningCLI's verbs (fit, validate, test, predict) plus tangrnn's own.

tangrnn's own verbs that are no Trainer method (``plugins``, ``data``, ``check``) are dispatched here before LightningCLI
is built. Errors a user can fix are printed as one line with exit status 2; ``--debug`` (or
``TANGRNN_DEBUG=1``) shows the traceback instead. A stop from outside exits as Unix shells report signals: 130
after Ctrl-C (SIGINT), 143 after SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import sys
import warnings
from collections.abc import Sequence

from tangrnn_core.errors import ConfigError, TangrnnError

DEBUG_ENV = "TANGRNN_DEBUG"

USAGE = """\
tangrnn: recurrent neural networks that learn to write Tang poems.

Training and evaluation (LightningCLI; `tangrnn VERB --help` lists every option):
  tangrnn fit --config configs/quickstart.yaml     train, printing sample poems at each validation
  tangrnn validate|test --config C --ckpt_path P   perplexity of a checkpoint on the val/test split
  tangrnn predict --config C --ckpt_path P         write poems with a checkpoint
  tangrnn generate --form 五绝                      write poems of a form, acrostics, continuations
  tangrnn evaluate --form all                       test perplexity and the quality of the poems it writes
  (generate, predict, evaluate, validate and test use the bundled model unless given --ckpt_path P)

tangrnn's own verbs:
  tangrnn plugins [--options NAME]                 list the architectures found through entry points
  tangrnn models [card NAME | pack ...]            the trained models that ship with tangrnn
  tangrnn data build|info ...                      rebuild or inspect a corpus file
  tangrnn check [POEM | --file F] [--tones loose]  does a poem follow the rules of regulated verse

Add --debug (or set TANGRNN_DEBUG=1) to see tracebacks.
"""


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the ``tangrnn`` command with ``argv`` (default: the process's arguments) and exits on errors."""
    # Lightning 2.6 trips over its own deprecation in torch's pytree on every run; it is not the user's concern.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
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
    if status:
        sys.exit(status)


def _dispatch(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    if args[0] == "plugins":
        return plugins_command(args[1:])
    if args[0] == "models":
        from tangrnn_core.models.command import run as models

        return models(args[1:])
    if args[0] == "data":
        from tangrnn_core.data.commands import run

        return run(args[1:])
    if args[0] == "check":
        from tangrnn_core.prosody.command import run as check

        return check(args[1:])
    from tangrnn_core.lightning_cli import run_lightning_cli

    run_lightning_cli(args)
    return 0


def plugins_command(args: list[str]) -> int:
    """``tangrnn plugins``: every architecture found, with its class, distribution and version."""
    from tangrnn_core.registry import DISABLE_AUTOLOAD_ENV, default_registry

    parser = _OneLineArgumentParser(
        prog="tangrnn plugins",
        description="List the architectures registered in the 'tangrnn.architectures' entry-point group. "
        f"Set {DISABLE_AUTOLOAD_ENV}=1 to ignore third-party plugins.",
    )
    parser.add_argument("--options", metavar="NAME", help="print the options of one architecture and their help")
    options = parser.parse_args(args)
    registry = default_registry()
    if options.options:
        return _print_options(options.options)
    rows = [("NAME", "CLASS", "DISTRIBUTION", "VERSION", "STATUS")]
    for status in registry.statuses():
        source = status.source
        rows.append(
            (source.name, source.target, source.distribution, source.version, status.problem or "ok")
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4])
    return 0


def _print_options(name: str) -> int:
    from jsonargparse import ArgumentParser

    from tangrnn_core.registry import resolve_architecture

    cls = resolve_architecture(name)
    summary = (cls.__doc__ or "").strip().split("\n\n")[0]
    parser = ArgumentParser(prog=f"tangrnn plugins --options {name}", description=summary)
    parser.add_class_arguments(cls, skip={"tokens"})
    print(parser.format_help())
    return 0


class _OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad argument is a :class:`ConfigError` (one line) rather than a usage block."""

    def error(self, message: str):  # type: ignore[override]
        raise ConfigError(f"{message}; run `{self.prog} --help` for the usage")


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
    match = re.match(r"`val_check_interval` \((\d+)\) must be less than or equal to the number of the training batches \((\d+)\)", text)
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
    if isinstance(error, pickle.UnpicklingError) or (
        isinstance(error, RuntimeError) and "PytorchStreamReader" in text
    ):
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


def _fail(message: str, status: int = 2) -> None:
    print(f"tangrnn: error: {message}", file=sys.stderr)
    sys.exit(status)
