"""``tangrnn generate``: poems in about a second, without importing Lightning when nothing asks for it.

A poem needs torch, the plugin's network and a checkpoint, not Lightning, whose import alone takes seconds.
So when ``generate`` is given nothing but the request's flags (``--form``, ``--acrostic`` ... ``--seed``),
``--ckpt_path FILE``, ``--output`` and ``--quantize``, it reads the checkpoint and decodes here, with the same
checks, the same parser of the same flags and the same decoding as the LightningCLI verb, so the same command
prints the same poems either way. Anything else (``--config``, ``--trainer.*``, ``--model.*``,
``--seed_everything``, ``--print_config``, ``--help``, ``--ckpt_path last``) and any flag it cannot parse goes
to LightningCLI, which runs the verb or reports the error in its one line, as before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from tangrnn_core.checkpoint_files import names_no_file
from tangrnn_core.decoding.quantize import WeightFormat
from tangrnn_core.decoding.request import PoemRequest

__all__ = ["QUICK_FLAGS", "decodes_without_lightning", "run"]

#: The flags of ``tangrnn generate`` besides the request's own that the quick path takes.
QUICK_FLAGS = ("ckpt_path", "output", "quantize")


def run(args: Sequence[str]) -> None:
    """Runs ``tangrnn generate``; ``args`` start with the verb, as LightningCLI's verbs take them.

    Raises:
        TangrnnError: a bad request, an unusable checkpoint (one line, from the same checks as every verb).
    """
    options = _parse_quickly(list(args[1:]))
    if options is None:
        from tangrnn_core.lightning_cli import run_lightning_cli

        run_lightning_cli(list(args))
        return
    decode(**options)


def decodes_without_lightning(args: Sequence[str]) -> bool:
    """Whether ``tangrnn generate ARGS`` (the words after the verb) runs without importing Lightning."""
    return _parse_quickly(list(args)) is not None


def decode(request: PoemRequest, ckpt_path: str | None, output: str, quantize: str) -> list[str]:
    """Reads the checkpoint (the bundled model when ``ckpt_path`` is ``None``), rebuilds its network on the
    device LightningCLI's ``accelerator: auto`` would take, and writes and prints the poems."""
    import torch

    from tangrnn_core.allocator import keep_freed_memory
    from tangrnn_core.checkpoint_files import check_checkpoint
    from tangrnn_core.decoding.printing import write_and_print
    from tangrnn_core.network import network_from_checkpoint

    keep_freed_memory()
    request.validate()  # before the checkpoint is read: a bad option costs nothing
    if ckpt_path is None:
        from tangrnn_core.models import DEFAULT_MODEL, bundled_model

        path: str | Path = bundled_model(DEFAULT_MODEL).path
    else:
        path = ckpt_path
    trained = network_from_checkpoint(check_checkpoint(path), path)
    return write_and_print(trained.net.to(_auto_device(torch)), trained.vocabulary, request, output, quantize)


def _auto_device(torch: Any) -> Any:
    # Lightning's `accelerator: auto`: the first GPU, else Apple's MPS, else the CPU.
    if torch.cuda.is_available():
        return torch.device("cuda", 0)
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps", 0)
    return torch.device("cpu")


def _parse_quickly(args: list[str]) -> dict[str, Any] | None:
    """The request and flags of ``args``, or ``None`` when LightningCLI must run the verb (a flag this path does
    not take, ``--ckpt_path last``, or anything it cannot parse: LightningCLI then says what is wrong)."""
    names = {field.name for field in dataclasses.fields(PoemRequest)} | set(QUICK_FLAGS)
    for arg in args:
        if arg.startswith("-") and not _is_number(arg):
            if not arg.startswith("--") or arg[2:].split("=", 1)[0] not in names:
                return None
    from argparse import ArgumentError

    from jsonargparse import ArgumentParser

    parser = ArgumentParser(prog="tangrnn generate", exit_on_error=False)
    parser.add_class_arguments(PoemRequest, nested_key=None, as_group=False, instantiate=False)
    parser.add_argument("--ckpt_path", type=str | None, default=None)
    parser.add_argument("--output", type=Literal["text", "json"], default="text")
    parser.add_argument("--quantize", type=WeightFormat, default="auto")
    try:
        parsed = parser.parse_args(args).as_dict()
    except (ArgumentError, ValueError, TypeError):
        return None
    ckpt_path = parsed.pop("ckpt_path")
    if ckpt_path is not None and names_no_file(ckpt_path):
        return None  # resolved within a run folder or by Lightning
    output, quantize = parsed.pop("output"), parsed.pop("quantize")
    parsed.pop("config", None)
    return {"request": PoemRequest(**parsed), "ckpt_path": ckpt_path, "output": output, "quantize": quantize}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
