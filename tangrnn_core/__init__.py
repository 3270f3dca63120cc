"""tangrnn: recurrent neural networks trained on the complete corpus of Tang poetry, and the poems they write.

The plugin API lives in :mod:`tangrnn_core.api`; the command line in :mod:`tangrnn_core.cli`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tangrnn")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
