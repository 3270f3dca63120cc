"""torchmetrics Metrics of tangrnn; they sync counts (not strings or logits) across processes."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric


class TokenPerplexity(Metric):
    """Perplexity over real characters: ``exp(total cross-entropy / number of characters)``.

    The same figure as ``torchmetrics.text.Perplexity(ignore_index=pad)``, fed with the loss the training step
    already computed instead of a softmax over the whole vocabulary; exact under DDP (sums are reduced).
    """

    full_state_update = False
    higher_is_better = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("total_nll", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, summed_nll: Tensor, count: Tensor | int) -> None:
        self.total_nll += summed_nll.detach().double()
        self.count += int(count)

    def compute(self) -> Tensor:
        return torch.exp(self.total_nll / self.count.clamp(min=1)).float()
