"""Errors a user can cause and fix.

The command line prints a :class:`TangrnnError` as one line (no traceback unless ``TANGRNN_DEBUG=1`` or
``--debug``) and exits with status 2. Every message says what is wrong and how to fix it.
"""


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
