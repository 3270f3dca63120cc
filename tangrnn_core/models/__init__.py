"""Trained models that ship inside the package, so that ``tangrnn generate`` writes poems right after install.

Each model is a slimmed checkpoint (``NAME.pt``: the weights and what rebuilds the network, no optimiser state)
with its model card beside it (``NAME.md``). ``tangrnn models`` lists them; ``generate``, ``predict``,
``evaluate``, ``validate`` and ``test`` use :data:`DEFAULT_MODEL` when no ``--ckpt_path`` is given.
"""

from tangrnn_core.models.catalogue import DEFAULT_MODEL, MODELS_DIR, BundledModel, bundled_model, bundled_models

__all__ = ["DEFAULT_MODEL", "MODELS_DIR", "BundledModel", "bundled_model", "bundled_models"]
