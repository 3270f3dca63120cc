"""Training that starts from a trained model: its vocabulary for the data, its weights for the network.

Fine-tuning the bundled model on fewer poems (the regular forms alone, one poet's poems) needs two things a run
from scratch does not: the data encoded with the model's own vocabulary, so that every character keeps its id
(``data.vocabulary_from``), and the network started from the model's weights (``model.init_from``). Both take a
bundled model's name (``tangrnn models``) or a checkpoint file written by ``tangrnn fit``, read with
``weights_only=True`` like every checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from tangrnn_core.checkpoint_files import check_checkpoint, names_no_file
from tangrnn_core.data.vocab import Vocabulary
from tangrnn_core.errors import CheckpointError, ConfigError
from tangrnn_core.network import network_weights

__all__ = ["TrainedModel", "read_trained_model"]


class TrainedModel:
    """A trained model to start from, as ``data.vocabulary_from`` or ``model.init_from`` names it.

    Args:
        checkpoint: what :func:`~tangrnn_core.checkpoint_files.check_checkpoint` read from it.
        path: its file.
        option: the option that named it, for messages.
    """

    def __init__(self, checkpoint: dict[str, Any], path: Path, option: str) -> None:
        self.checkpoint = checkpoint
        self.path = path
        self.option = option
        section = checkpoint.get("tangrnn")
        tokens = section.get("vocabulary") if isinstance(section, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(token, str) for token in tokens):
            raise CheckpointError(
                f"{option}: {path} holds no tangrnn vocabulary; name a bundled model (`tangrnn models`) or a "
                "checkpoint written by `tangrnn fit`"
            )
        self.vocabulary = Vocabulary(tokens)
        hparams = checkpoint.get("hyper_parameters")
        self.architecture = hparams.get("architecture") if isinstance(hparams, dict) else None

    def check_fits(self, net: nn.Module, architecture: str) -> None:
        """Refuses a ``net`` of another ``architecture`` or with weights of other names or shapes.

        Raises:
            ConfigError: one line naming the first difference and the fix.
        """
        if self.architecture is not None and self.architecture != architecture:
            raise ConfigError(
                f"{self.option}: {self.path} is a '{self.architecture}' model, this one '{architecture}'; set "
                f"model.architecture to '{self.architecture}' with its sizes to start from it"
            )
        fix = "give model.architecture_options the sizes it was trained with (dropout rates may differ)"
        own = net.state_dict()
        theirs = self._network_weights()
        unmatched = sorted(set(own) ^ set(theirs))
        if unmatched:
            side = "this network has" if unmatched[0] in own else "it has"
            raise ConfigError(
                f"{self.option}: the weights of {self.path} do not fit: {side} '{unmatched[0]}' alone; {fix}"
            )
        for name, tensor in own.items():
            shape = getattr(theirs[name], "shape", None)
            if shape is None or tuple(shape) != tuple(tensor.shape):
                there = "no tensor" if shape is None else str(tuple(shape))
                raise ConfigError(
                    f"{self.option}: the weights of {self.path} do not fit: '{name}' is {there} there, "
                    f"{tuple(tensor.shape)} here; {fix}"
                )

    def load_network_weights(self, net: nn.Module) -> None:
        """Copies the model's network weights into ``net`` (checked by :meth:`check_fits`), in ``net``'s dtypes."""
        own = net.state_dict()
        net.load_state_dict({name: value.to(own[name].dtype) for name, value in self._network_weights().items()})

    def _network_weights(self) -> dict[str, Any]:
        state = self.checkpoint.get("state_dict")
        if not isinstance(state, dict):
            raise CheckpointError(f"{self.option}: {self.path} holds no weights (state_dict); name another model")
        return network_weights(state)


def read_trained_model(source: str, option: str) -> TrainedModel:
    """The model ``source`` names: a bundled model's name (``tangrnn models``) or a checkpoint file.

    Args:
        source: the option's value.
        option: the option's name (``data.vocabulary_from`` ...), for messages.

    Raises:
        ConfigError: ``source`` names neither.
        CheckpointError: a damaged or foreign file (one line, from the checks every verb makes).
    """
    from tangrnn_core.models import bundled_model, bundled_models

    names = [model.name for model in bundled_models()]
    if source in names:
        path = bundled_model(source).path
    else:
        path = Path(source)
        if names_no_file(source) or not path.is_file():
            raise ConfigError(
                f"{option}: '{source}' is neither a bundled model ({', '.join(names) or 'none installed'}) nor a "
                "checkpoint file; name one of them"
            )
    checkpoint = check_checkpoint(path)
    assert checkpoint is not None  # a file, not one of Lightning's special names
    return TrainedModel(checkpoint, path, option)
