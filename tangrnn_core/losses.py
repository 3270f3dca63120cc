"""The output layer and cross-entropy computed chunk by chunk, so that the ``(rows, vocab)`` logits never exist.

For a character model the output layer dominates a training step's memory: the reference LSTM's batch of
64 x 45 positions over a vocabulary of 8,000 makes logits of 92 MB in fp32, and autograd keeps them (and a
gradient of the same size) alive until the backward pass. :func:`chunked_cross_entropy` instead walks over
the rows in chunks; for each chunk it computes the logits, the loss, and at once the chunk's share of the
gradients of the features, the weight and the bias. Only those gradients (the size of the inputs, not of the
logits) are kept for the backward pass, which merely scales them by the incoming gradient.

The gradients are made in the forward pass whenever autograd may ask for them (under ``torch.no_grad`` only
the loss is computed). Rows whose target is ignored (padding; the unmasked positions of an infill batch) are
left out before the chunks are formed, so they cost no arithmetic at all.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


def chunked_cross_entropy(
    features: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    targets: Tensor,
    *,
    ignore_index: int = -100,
    chunk_size: int = 1024,
) -> Tensor:
    """The summed cross-entropy of ``features @ weight.T + bias`` against ``targets``, in chunks of rows.

    Equal (to round-off) to ``F.cross_entropy(F.linear(features, weight, bias), targets, reduction="sum",
    ignore_index=ignore_index)``, and so are the gradients, but no tensor larger than ``(chunk_size, vocab)``
    is ever made. Under ``torch.autocast`` the matrix products run in the autocast dtype, as ``F.linear``
    would, and the log-sum-exp and softmax in fp32. With gradients off (``torch.no_grad``, inference mode) or
    when no input requires them, only the loss is computed.

    Args:
        features: ``(rows, d)`` what goes into the output layer.
        weight: ``(vocab, d)`` the output layer's weight (may be shared with an embedding: tied weights).
        bias: ``(vocab,)`` the output layer's bias, or ``None``.
        targets: ``(rows,)`` target ids; rows equal to ``ignore_index`` count for nothing.
        ignore_index: the target id that is not a target (tangrnn passes ``pad_id``).
        chunk_size: rows per chunk; the peak extra memory is about three ``(chunk_size, vocab)`` fp32 tensors.

    Returns:
        A scalar: the summed loss over the rows with a target (0 when there is none), in fp32 (or in the
        dtype of fp64 inputs).
    """
    if features.dim() != 2 or weight.dim() != 2 or features.shape[1] != weight.shape[1]:
        shapes = f"{tuple(features.shape)}, {tuple(weight.shape)}"
        raise ValueError(f"features (rows, d) and weight (vocab, d) do not fit: {shapes}")
    if targets.shape != features.shape[:1]:
        raise ValueError(f"targets must be (rows,) = {tuple(features.shape[:1])}, got {tuple(targets.shape)}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    compute = _compute_dtype(features, weight)
    inputs = (features, weight) if bias is None else (features, weight, bias)
    if torch.is_grad_enabled() and any(tensor.requires_grad for tensor in inputs):
        return _ChunkedLinearCrossEntropy.apply(features, weight, bias, targets, ignore_index, chunk_size, compute)
    # Inside an autograd.Function's forward the input-grad flags stay True under no_grad, so decide out here.
    with torch.no_grad():
        no_grads = (False, False, False)
        loss, _ = _chunked_pass(features, weight, bias, targets, ignore_index, chunk_size, compute, no_grads)
    return loss


def _compute_dtype(features: Tensor, weight: Tensor) -> torch.dtype:
    """The dtype of the matrix products: autocast's when it is on (as F.linear's), else the inputs'."""
    device = features.device.type
    if torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return torch.promote_types(features.dtype, weight.dtype)


def _chunked_pass(
    features: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    targets: Tensor,
    ignore_index: int,
    chunk_size: int,
    compute: torch.dtype,
    needs: tuple[bool, bool, bool],
) -> tuple[Tensor, tuple[Tensor | None, Tensor | None, Tensor | None]]:
    """The summed loss and, where ``needs`` says so, its gradients w.r.t. ``(features, weight, bias)``.

    Args:
        features, weight, bias, targets, ignore_index, chunk_size: as in :func:`chunked_cross_entropy`.
        compute: dtype of the matrix products.
        needs: whether the gradient of features, weight and bias is wanted.
    """
    # fp32 at least for the softmax: bf16 sums over 8,000 classes lose whole nats.
    accurate = torch.promote_types(compute, torch.float32)
    rows = torch.nonzero(targets != ignore_index).squeeze(1)
    if rows.numel() == features.shape[0]:
        rows = None  # every row counts: no gather, no scatter
    with torch.autocast(features.device.type, enabled=False):  # the dtypes below are chosen explicitly
        x = features if rows is None else features.index_select(0, rows)
        y = targets if rows is None else targets.index_select(0, rows)
        x = x.to(compute)
        w = weight.to(compute)
        b = None if bias is None else bias.to(compute)
        total = torch.zeros((), dtype=accurate, device=features.device)
        grad_x = torch.empty_like(x) if needs[0] else None
        grad_w = torch.zeros(weight.shape, dtype=accurate, device=weight.device) if needs[1] else None
        grad_b = torch.zeros(bias.shape, dtype=accurate, device=bias.device) if needs[2] and bias is not None else None
        any_grad = grad_x is not None or grad_w is not None or grad_b is not None
        for start in range(0, x.shape[0], chunk_size):
            x_chunk, y_chunk = x[start : start + chunk_size], y[start : start + chunk_size]
            logits = F.linear(x_chunk, w, b).to(accurate)
            lse = torch.logsumexp(logits, dim=1)
            picked = logits.gather(1, y_chunk.unsqueeze(1)).squeeze(1)
            total += (lse - picked).sum()
            if not any_grad:
                continue
            # d(loss)/d(logits) = softmax - one_hot(target), made in place in the logits' own buffer.
            grad_logits = logits.sub_(lse.unsqueeze(1)).exp_()
            grad_logits.scatter_add_(1, y_chunk.unsqueeze(1), grad_logits.new_full((len(y_chunk), 1), -1.0))
            if grad_b is not None:
                grad_b += grad_logits.sum(0)
            grad_logits = grad_logits.to(compute)
            if grad_x is not None:
                torch.mm(grad_logits, w, out=grad_x[start : start + chunk_size])
            if grad_w is not None:
                if compute == accurate:
                    grad_w.addmm_(grad_logits.t(), x_chunk)
                else:  # a low-precision product, accumulated in fp32 over the chunks
                    grad_w += torch.mm(grad_logits.t(), x_chunk)
            del logits, grad_logits  # no chunk's logits outlive its iteration
        if grad_x is not None:
            if rows is None:
                grad_x = grad_x.to(features.dtype)
            else:  # ignored rows get a zero gradient
                grad_x = features.new_zeros(features.shape).index_copy_(0, rows, grad_x.to(features.dtype))
        grads = (
            grad_x,
            None if grad_w is None else grad_w.to(weight.dtype),
            None if grad_b is None else grad_b.to(bias.dtype),
        )
    return total, grads


class _ChunkedLinearCrossEntropy(torch.autograd.Function):
    """Autograd for :func:`chunked_cross_entropy`: the gradients are made in ``forward``, scaled in ``backward``."""

    @staticmethod
    def forward(
        ctx: Any,
        features: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        targets: Tensor,
        ignore_index: int,
        chunk_size: int,
        compute: torch.dtype,
    ) -> Tensor:
        needs = tuple(ctx.needs_input_grad[:3])
        loss, ctx.grads = _chunked_pass(features, weight, bias, targets, ignore_index, chunk_size, compute, needs)
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        # Out of place: a graph kept with retain_graph=True may be backpropagated again. The 0-dim grad_output
        # keeps each gradient's dtype without being rounded to it first (1/count in bf16 is off by up to 0.4%).
        scaled = tuple(None if grad is None else grad * grad_output for grad in ctx.grads)
        return (*scaled, None, None, None, None)


__all__ = ["chunked_cross_entropy"]
