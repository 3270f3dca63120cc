"""Evaluation of a poetry model: perplexity, and the quality of the poems it writes.

``metrics`` holds torchmetrics Metrics of generated poems (form, distinct-n, copying from the training corpus,
continuation BLEU-2) that sync across processes; ``evaluate`` runs them all for ``tangrnn evaluate``; ``callback``
logs a cheap sampled version of them at every validation during ``tangrnn fit``.
"""

from tangrnn_core.evaluation.metrics import ContinuationBLEU, DistinctN, FormCompliance, Novelty, corpus_lines

__all__ = ["ContinuationBLEU", "DistinctN", "FormCompliance", "Novelty", "corpus_lines"]
