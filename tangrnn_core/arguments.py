"""The one argument-parser style of the ``tangrnn`` verbs: a bad argument is one line, never a usage block.

Every verb that parses its own arguments (``plugins``, ``models``, ``data``, ``check``) builds a
:class:`OneLineArgumentParser`; the command line (:mod:`tangrnn_core.cli`) prints the
:class:`~tangrnn_core.errors.ConfigError` it raises as ``tangrnn: error: MESSAGE; run `PROG --help` for the
usage`` and exits with status 2, as it does for the errors LightningCLI's verbs report.

This module imports nothing heavier than :mod:`argparse`, so that a verb's parser (and ``--help``) costs no
import of torch or Lightning.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import NoReturn

from tangrnn_core.errors import ConfigError

__all__ = ["OneLineArgumentParser", "SubVerbParser", "add_verbs", "parse_arguments", "usage_hint"]


def usage_hint(prog: str) -> str:
    """The tail of every usage error: where to read the usage of ``prog``.

    Args:
        prog: the command as the user types it, e.g. ``"tangrnn data build"``.
    """
    return f"run `{prog} --help` for the usage"


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad argument raises :class:`~tangrnn_core.errors.ConfigError` instead of printing the
    usage block and exiting.

    argparse's own ``error()`` prints several lines to stderr and calls ``sys.exit(2)``; raising instead lets the
    command line print it the way it prints every other user error (one line, ``--debug`` for the traceback).
    Sub-parsers must be of this class too (see :func:`add_verbs`), or their errors go back to argparse's style.
    """

    def error(self, message: str) -> NoReturn:
        """Raises the parse error ``message`` as one line naming the help to read.

        Args:
            message: argparse's description of what is wrong (``unrecognized arguments: --bogus``).

        Raises:
            ConfigError: always.
        """
        raise ConfigError(f"{message}; {usage_hint(self.prog)}")


class SubVerbParser(OneLineArgumentParser):
    """The parser of a sub-verb (``tangrnn data build``): words it does not know are its own error.

    argparse hands a sub-parser's unknown words back to the verb's parser, which reports them with its own
    ``--help`` (``tangrnn data --help``), where the sub-verb's options are not listed. A sub-parser takes every
    word after the sub-verb, so whatever it leaves over is unknown to all parsers: it can refuse it at once.
    """

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        """argparse's ``parse_known_args``, except that leftover words raise one-line errors here.

        Args:
            args: the words after the sub-verb.
            namespace: where to store the values (argparse passes ``None``: a new one).

        Raises:
            ConfigError: an unknown or missing argument.
        """
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras


def add_verbs(parser: argparse.ArgumentParser, verbs: Sequence[str], *, required: bool) -> argparse._SubParsersAction:
    """Adds the sub-verbs ``verbs`` of a verb (``tangrnn data build|info``): ``add_parser`` makes a
    :class:`SubVerbParser`.

    The chosen verb is stored as ``verb`` in the parsed namespace (``None`` when none was given and ``required``
    is false).

    Args:
        parser: the verb's parser (a :class:`OneLineArgumentParser`).
        verbs: the sub-verbs' names, in the order ``--help`` lists them.
        required: whether a sub-verb must be given; if it must, its absence is a one-line error listing them.

    Returns:
        The action to call ``add_parser`` on, once per name in ``verbs``.
    """
    # parser_class: argparse would otherwise build the sub-parsers as plain ArgumentParsers, whose errors print
    # a usage block and exit.
    return parser.add_subparsers(
        dest="verb", metavar="{" + ",".join(verbs) + "}", required=required, parser_class=SubVerbParser
    )


def parse_arguments(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace | int:
    """Parses ``argv`` with ``parser``; returns the namespace, or the exit status where argparse has finished
    the job itself (``--help`` printed: 0).

    A verb's ``run`` returns its exit status rather than exiting, so that it can be called from Python (and
    from tests) like any function; argparse ends ``--help`` with :class:`SystemExit`, which this turns back into
    a status.

    Args:
        parser: the verb's parser.
        argv: the words after the verb.

    Raises:
        ConfigError: a bad argument (from :class:`OneLineArgumentParser`).
    """
    try:
        return parser.parse_args(list(argv))
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
