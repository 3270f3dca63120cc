"""The ``tangrnn serve`` verb: poems and the checker over HTTP, on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import argparse
import logging
import os

from tangrnn_core.arguments import OneLineArgumentParser, parse_arguments
from tangrnn_core.errors import ConfigError
from tangrnn_core.serve.limits import Limits

__all__ = ["build_parser", "run"]

#: Threads torch uses on the main thread, which loads the model; the decoding thread sets its own
#: (:func:`~tangrnn_core.serve.decoding.decode_threads`).
LOAD_THREADS = 2

DESCRIPTION = """\
Serve poems over HTTP: POST /v1/poems (the options of `tangrnn generate` as a JSON object; each poem comes
with the report of `tangrnn check`), POST /v1/check, GET /v1/model, GET /healthz, the API at /docs and
/openapi.json. Requests that arrive together are decoded as one batch; docs/serve.md has the API and the limits.
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tangrnn serve``: a bad argument raises a one-line ConfigError."""
    defaults = Limits()
    parser = OneLineArgumentParser(
        prog="tangrnn serve", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--ckpt_path", metavar="P", help="a checkpoint written by `tangrnn fit` (default: the bundled model)"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument(
        "--quantize",
        choices=("auto", "none", "int8", "bf16"),
        default="auto",
        help="weights to decode with, as `tangrnn generate --quantize` (default auto: the same pick, so the same "
        "seed writes the same poems)",
    )
    parser.add_argument(
        "--max_batch_size",
        type=int,
        default=defaults.max_batch_size,
        metavar="N",
        help=f"rows (poems x beams) decoded together: requests that arrive together share a batch of at most N rows, "
        f"and one request may ask for N at most (default {defaults.max_batch_size})",
    )
    parser.add_argument(
        "--max_poems",
        type=int,
        default=defaults.max_poems,
        metavar="N",
        help=f"poems a request may ask (default {defaults.max_poems})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=defaults.timeout,
        metavar="S",
        help=f"seconds a request may take, the wait for the decoder included (default {defaults.timeout:g}; then 503/504)",
    )
    return parser


def run(argv: list[str]) -> int:
    """Runs ``tangrnn serve`` with ``argv`` (the words after ``serve``) until stopped; returns the exit status.

    Args:
        argv: the options.

    Raises:
        ConfigError: a bad option.
        CheckpointError: a ``--ckpt_path`` that is no usable checkpoint (checked before the server starts).
    """
    args = parse_arguments(build_parser(), argv)
    if isinstance(args, int):  # --help
        return args
    for name in ("max_batch_size", "max_poems"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name} must be at least 1, got {getattr(args, name)}")
    if not args.timeout > 0:
        raise ConfigError(f"--timeout must be more than 0 seconds, got {args.timeout}")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be from 0 to 65535, got {args.port}")

    import torch
    import uvicorn

    from tangrnn_core.serve.app import create_app
    from tangrnn_core.serve.model import load_model

    torch.set_num_threads(min(LOAD_THREADS, os.cpu_count() or 1))
    model = load_model(args.ckpt_path, args.quantize)
    limits = Limits(max_poems=args.max_poems, max_batch_size=args.max_batch_size, timeout=args.timeout)
    logging.basicConfig(level=logging.INFO, format="tangrnn serve: %(message)s")
    logging.getLogger("tangrnn.serve").info(
        "model %s (%s); http://%s:%d (API at /docs)", model.name, model.architecture, args.host, args.port
    )
    uvicorn.run(create_app(model, limits), host=args.host, port=args.port, log_level="info")
    return 0
