"""A plugin's network: built from its options, checked against a vocabulary, rebuilt from a checkpoint.

Nothing here imports Lightning: the verbs that only decode (``tangrnn generate``, ``tangrnn serve``) rebuild a
trained network with this module and torch alone, and start in about a second instead of paying seconds for
importing Lightning (docs/performance.md, "Start-up"). :class:`~tangrnn_core.module.PoetryModel` builds its
network with the same :func:`build_architecture`, so both ways give the same network from the same options.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn
from torch.overrides import TorchFunctionMode

from tangrnn_core.api import Architecture, TokenSpec
from tangrnn_core.data.normalize import LINE_END_MARKS
from tangrnn_core.data.vocab import SPECIALS, Vocabulary
from tangrnn_core.errors import CheckpointError, ConfigError
from tangrnn_core.registry import resolve_architecture

__all__ = [
    "RETIRED_MODEL_OPTIONS",
    "TrainedNetwork",
    "build_architecture",
    "check_vocabulary",
    "network_from_checkpoint",
    "network_weights",
]

#: Model options that checkpoints of older versions hold and this one no longer has (decoding settings moved to
#: the request of `generate` and `predict`); dropped when a checkpoint is read.
RETIRED_MODEL_OPTIONS = ("sample_temperature",)
#: :class:`~tangrnn_core.module.PoetryModel`'s default architecture, for checkpoints that do not name one.
DEFAULT_ARCHITECTURE = "lstm"
#: The prefix of the network's weights in a checkpoint's ``state_dict`` (the LightningModule's ``net``).
NET_PREFIX = "net."


def build_architecture(
    name: str, options: dict[str, Any] | None, tokens: TokenSpec, initialise: bool = True
) -> Architecture:
    """Resolves ``name`` (a plugin name or class path) and builds it with type-checked ``options``.

    Args:
        name: a registered architecture (``tangrnn plugins``) or a ``module:Class`` path.
        options: the architecture's keyword arguments (``model.architecture_options``), checked against its
            signature's types by jsonargparse, as the configs are.
        tokens: what the network is told about the vocabulary.
        initialise: ``False`` leaves the parameters as allocated instead of drawing them, for a caller that
            loads every one of them next (:func:`network_from_checkpoint`).

    Raises:
        ConfigError: an option the architecture does not have, a value of the wrong type, or one it rejects.
    """
    from jsonargparse import ArgumentParser  # a tenth of a second; only a network being built needs it

    cls = resolve_architecture(name)
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls, skip={"tokens"})
    known = {action.dest for action in parser._actions if action.dest not in ("help", "config")}
    unknown = sorted(set(options or {}) - known)
    if unknown:
        raise ConfigError(
            f"architecture '{name}' has no option {', '.join(repr(u) for u in unknown)}; "
            f"its options are: {', '.join(sorted(known)) or 'none'}"
        )
    try:
        parsed = parser.parse_object(dict(options or {}))
    except Exception as error:  # jsonargparse reports a type error over several lines: join them into one
        detail = " ".join(line.strip() for line in str(error).strip().splitlines()) or type(error).__name__
        detail = re.sub(r'^Parser key "([^"]+)":\s*', r"\1: ", detail).replace("<class '", "").replace("'>", "")
        detail = detail.replace("Expected a ", "expected ").replace(". Got value:", ", got")
        raise ConfigError(
            f"invalid model.architecture_options for '{name}': {detail[:300]}; `tangrnn plugins --options {name}` "
            "lists the options and their types"
        ) from error
    kwargs = {key: value for key, value in parsed.as_dict().items() if key in known}
    try:
        if initialise:
            return cls(tokens, **kwargs)
        with _ParametersUndrawn():
            return cls(tokens, **kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"architecture '{name}' rejected its options: {error}") from error


class _ParametersUndrawn(TorchFunctionMode):
    """Within it, ``torch.nn.init``'s functions leave parameters as allocated.

    A network whose every parameter is loaded from a checkpoint next need not draw random ones first: for the
    bundled model the draws are most of the network's construction, which ``tangrnn generate`` waits for before
    its first poem. Only parameters are skipped (a strict ``load_state_dict`` then fills every one of them, or
    fails); buffers, which a checkpoint may not hold, are initialised as the plugin says.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204 (torch's protocol)
        kwargs = kwargs or {}
        if getattr(func, "__module__", None) == "torch.nn.init":
            tensor = args[0] if args else kwargs.get("tensor")
            if isinstance(tensor, nn.Parameter):
                return tensor
        return func(*args, **kwargs)


def check_vocabulary(vocabulary: Vocabulary, vocab_size: int, tokens: TokenSpec) -> None:
    """Refuses a vocabulary that is not the one a network of ``vocab_size`` and ``tokens`` was built for.

    Raises:
        CheckpointError: another size, or other special and line-end ids.
    """
    if len(vocabulary) != vocab_size:
        raise CheckpointError(
            f"the vocabulary has {len(vocabulary)} characters but the model was built for "
            f"{vocab_size}; use the data options the model was trained with"
        )
    if vocabulary.token_spec(LINE_END_MARKS) != tokens:
        raise CheckpointError(
            "the vocabulary's special and line-end ids differ from those the model was built with; "
            "use the data options the model was trained with"
        )


@dataclass
class TrainedNetwork:
    """A network rebuilt from a checkpoint, in eval mode, with fp32 weights on the CPU.

    Args:
        architecture: the architecture's registered name (``lstm`` ...).
        options: its options as the checkpoint records them.
        net: the network.
        vocabulary: the vocabulary it was trained with.
    """

    architecture: str
    options: dict[str, Any]
    net: Architecture
    vocabulary: Vocabulary


def network_weights(state_dict: dict[str, Any]) -> dict[str, Any]:
    """The network's weights in a checkpoint's ``state_dict``, named as the network names them (no ``net.``)."""
    return {key[len(NET_PREFIX) :]: value for key, value in state_dict.items() if key.startswith(NET_PREFIX)}


def network_from_checkpoint(checkpoint: dict[str, Any], path: str | Path) -> TrainedNetwork:
    """The network a checkpoint holds, rebuilt from its hyperparameters as ``PoetryModel`` builds it.

    Args:
        checkpoint: what :func:`~tangrnn_core.checkpoint_files.check_checkpoint` read (``weights_only=True``).
        path: the file it came from, for messages.

    Raises:
        CheckpointError: hyperparameters, vocabulary or weights that do not fit this tangrnn's networks.
        ConfigError: an architecture or options a plugin refuses (an uninstalled plugin names itself).
    """
    hparams = {
        key: value
        for key, value in dict(checkpoint.get("hyper_parameters") or {}).items()
        if key not in RETIRED_MODEL_OPTIONS and not key.startswith("_")
    }
    fix = "use a checkpoint written by `tangrnn fit`"
    vocab_size = hparams.get("vocab_size")
    if not isinstance(vocab_size, int) or vocab_size <= len(SPECIALS):
        raise CheckpointError(f"checkpoint {path} records no usable vocab_size ({vocab_size!r}); {fix}")
    architecture = hparams.get("architecture") or DEFAULT_ARCHITECTURE
    options = dict(hparams.get("architecture_options") or {})
    tokens = TokenSpec(vocab_size=vocab_size, line_end_ids=tuple(hparams.get("line_end_ids") or ()))
    net = build_architecture(architecture, options, tokens, initialise=False)  # every weight is loaded below
    vocabulary = Vocabulary(checkpoint["tangrnn"]["vocabulary"])
    check_vocabulary(vocabulary, vocab_size, net.tokens)
    # Weights may be stored in bf16 (the bundled model): decoding starts from fp32, as the LightningModule does.
    state = {
        name: value.float() if value.is_floating_point() else value
        for name, value in network_weights(checkpoint["state_dict"]).items()
    }
    try:
        net.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError) as error:
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"the weights in {path} do not fit its '{architecture}' network ({first}); {fix}"
        ) from error
    return TrainedNetwork(architecture=architecture, options=options, net=net.eval(), vocabulary=vocabulary)
