"""Errors a user can cause and fix.

The command line prints a :class:`TangrnnError` as one line (no traceback unless ``TANGRNN_DEBUG=1`` or
``--debug``) and exits with status 2. Every message says what is wrong and how to fix it.
"""

import re


class TangrnnError(Exception):
    """A problem the user can fix: bad input, a missing file, an unknown plugin."""


class CorpusError(TangrnnError):
    """A corpus file is missing, corrupt, empty or in an unknown format."""


class PluginError(TangrnnError):
    """An architecture plugin is unknown, broken, duplicated or of an unsupported API version."""


class ConfigError(TangrnnError):
    """A configuration value is invalid."""


class CheckpointError(TangrnnError):
    """A file is not a usable tangrnn checkpoint."""


# -- writing messages: every error line is one line ------------------------------------------------------------


def one_line(text: object) -> str:
    """``text`` (an error, a message) on one line, with ``<class 'x.Y'>`` written ``x.Y``."""
    text = re.sub(r"<class '([\w.]+)'>", r"\1", str(text))
    return " ".join(text.split())


def first_sentence(error: BaseException) -> str:
    """The first sentence of ``error``'s message, on one line (its type's name if it has none)."""
    text = one_line(error) or type(error).__name__
    return text.split(". ")[0].rstrip(".")


def shorten(text: str, limit: int = 300) -> str:
    """``text`` cut to ``limit`` characters, with ``...`` where it was cut."""
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."
