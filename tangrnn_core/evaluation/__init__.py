"""Evaluation of a poetry model: perplexity, and the quality of the poems it writes.

``metrics`` holds torchmetrics Metrics of generated poems (form, distinct-n, copying from the training corpus,
continuation BLEU-2) and ``regulation`` those of tones and rhyme (on the checker of ``tangrnn check``); all sync
across processes. ``evaluate`` runs them for ``tangrnn evaluate``; ``callback`` logs a cheap sampled version of
them at every validation during ``tangrnn fit``.
"""

from tangrnn_core.evaluation.metrics import ContinuationBLEU, DistinctN, FormCompliance, Novelty, corpus_lines
from tangrnn_core.evaluation.regulation import RhymeCompliance, ToneCompliance

__all__ = [
    "ContinuationBLEU",
    "DistinctN",
    "FormCompliance",
    "Novelty",
    "RhymeCompliance",
    "ToneCompliance",
    "corpus_lines",
]
