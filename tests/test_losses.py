"""The chunked output layer and cross-entropy (tangrnn_core.losses) against F.cross_entropy over full logits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from tangrnn_core.losses import chunked_cross_entropy

PAD = 0


def _inputs(rows: int, dim: int, vocab: int, seed: int, bias: bool = True, ignored: float = 0.3):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(rows, dim, generator=generator, requires_grad=True)
    weight = (torch.randn(vocab, dim, generator=generator) * 0.5).requires_grad_()
    bias_ = (torch.randn(vocab, generator=generator) * 0.1).requires_grad_() if bias else None
    targets = torch.randint(1, vocab, (rows,), generator=generator)
    targets[torch.rand(rows, generator=generator) < ignored] = PAD
    return features, weight, bias_, targets


def _reference(features: Tensor, weight: Tensor, bias: Tensor | None, targets: Tensor) -> Tensor:
    return F.cross_entropy(F.linear(features, weight, bias), targets, ignore_index=PAD, reduction="sum")


def _grads(loss: Tensor, tensors: list[Tensor]) -> list[Tensor]:
    return list(torch.autograd.grad(loss, tensors))


@pytest.mark.parametrize(
    ("rows", "chunk_size"),
    [(48, 16), (50, 16), (50, 7), (50, 1), (50, 50), (50, 1000), (1, 4)],
    ids=lambda value: str(value),
)
@pytest.mark.parametrize("seed", [0, 1])
def test_value_and_gradients_equal_full_logits(rows, chunk_size, seed):
    features, weight, bias, targets = _inputs(rows, 12, 37, seed)
    # A scale other than 1, as the mean loss (summed / count) gives: backward must scale the stored gradients.
    chunked = chunked_cross_entropy(features, weight, bias, targets, ignore_index=PAD, chunk_size=chunk_size)
    expected = _reference(features, weight, bias, targets)
    torch.testing.assert_close(chunked, expected, rtol=1e-6, atol=1e-5)
    actual = _grads(chunked * 0.37, [features, weight, bias])
    wanted = _grads(expected * 0.37, [features, weight, bias])
    for got, want in zip(actual, wanted):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_ignored_rows_get_zero_gradient_and_no_loss():
    features, weight, bias, targets = _inputs(30, 8, 20, seed=3, ignored=0.5)
    loss = chunked_cross_entropy(features, weight, bias, targets, ignore_index=PAD, chunk_size=4)
    (grad,) = _grads(loss, [features])
    assert (targets == PAD).any()
    assert torch.equal(grad[targets == PAD], torch.zeros_like(grad[targets == PAD]))
    assert grad[targets != PAD].abs().sum() > 0


def test_every_row_ignored_gives_zero():
    features, weight, bias, targets = _inputs(10, 8, 20, seed=4)
    targets.fill_(PAD)
    loss = chunked_cross_entropy(features, weight, bias, targets, ignore_index=PAD, chunk_size=3)
    assert loss.item() == 0.0
    for grad in _grads(loss, [features, weight, bias]):
        assert torch.count_nonzero(grad) == 0


def test_without_bias():
    features, weight, _, targets = _inputs(33, 10, 25, seed=5, bias=False)
    chunked = chunked_cross_entropy(features, weight, None, targets, ignore_index=PAD, chunk_size=8)
    expected = _reference(features, weight, None, targets)
    torch.testing.assert_close(chunked, expected, rtol=1e-6, atol=1e-5)
    for got, want in zip(_grads(chunked, [features, weight]), _grads(expected, [features, weight])):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_tied_weights_accumulate_both_gradients():
    """The output weight is the embedding matrix: its gradient is the embedding's plus the output layer's."""
    torch.manual_seed(6)
    embedding = torch.nn.Embedding(25, 10)
    bias = torch.zeros(25, requires_grad=True)
    inputs = torch.randint(0, 25, (4, 9))
    targets = torch.randint(1, 25, (36,))
    targets[::5] = PAD

    def loss(chunked: bool) -> Tensor:
        features = torch.tanh(embedding(inputs)).reshape(-1, 10)
        if chunked:
            return chunked_cross_entropy(features, embedding.weight, bias, targets, ignore_index=PAD, chunk_size=5)
        return _reference(features, embedding.weight, bias, targets)

    chunked, expected = loss(True), loss(False)
    torch.testing.assert_close(chunked, expected, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(_grads(chunked, [embedding.weight])[0], _grads(expected, [embedding.weight])[0])


def test_only_the_inputs_that_need_gradients_get_them():
    features, weight, bias, targets = _inputs(20, 8, 15, seed=7)
    weight.requires_grad_(False)  # a frozen output layer
    loss = chunked_cross_entropy(features, weight, bias, targets, ignore_index=PAD, chunk_size=6)
    grad_features, grad_bias = _grads(loss, [features, bias])
    expected = _grads(_reference(features, weight, bias, targets), [features, bias])
    torch.testing.assert_close(grad_features, expected[0])
    torch.testing.assert_close(grad_bias, expected[1])


@pytest.mark.parametrize("mode", ["no_grad", "inference_mode", "no_input_requires_grad"])
def test_without_gradients_only_the_loss_is_computed(mode):
    features, weight, bias, targets = _inputs(40, 8, 15, seed=8)
    expected = _reference(features, weight, bias, targets).detach()
    if mode == "no_input_requires_grad":
        features, weight, bias = features.detach(), weight.detach(), bias.detach()
        loss = chunked_cross_entropy(features, weight, bias, targets, ignore_index=PAD, chunk_size=9)
    else:
        context = torch.no_grad() if mode == "no_grad" else torch.inference_mode()
        with context:
            loss = chunked_cross_entropy(features, weight, bias, targets, ignore_index=PAD, chunk_size=9)
    assert not loss.requires_grad and loss.grad_fn is None
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-5)


def test_gradcheck_in_float64():
    features, weight, bias, targets = _inputs(9, 4, 7, seed=9)
    inputs = tuple(tensor.detach().double().requires_grad_() for tensor in (features, weight, bias))
    assert torch.autograd.gradcheck(
        lambda x, w, b: chunked_cross_entropy(x, w, b, targets, ignore_index=PAD, chunk_size=4), inputs
    )


def test_bf16_autocast_computes_the_products_in_bf16_and_the_softmax_in_fp32():
    features, weight, bias, targets = _inputs(64, 32, 300, seed=10)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        chunked = chunked_cross_entropy(features, weight, bias, targets, ignore_index=PAD, chunk_size=24)
        expected = _reference(features, weight, bias, targets)
    exact = _reference(features, weight, bias, targets)
    assert chunked.dtype == torch.float32
    # bf16 logits: the same products as F.linear under autocast, so nearly the same loss as autocast's ...
    torch.testing.assert_close(chunked, expected.float(), rtol=1e-3, atol=1e-2)
    # ... and different from the fp32 loss (the products did run in bf16), though close to it.
    assert chunked.item() != exact.item()
    torch.testing.assert_close(chunked, exact, rtol=2e-2, atol=0.5)
    actual = _grads(chunked, [features, weight, bias])
    wanted = _grads(expected, [features, weight, bias])
    for got, want, tensor in zip(actual, wanted, (features, weight, bias)):
        assert got.dtype == tensor.dtype
        scale = want.abs().max().item()
        assert (got - want.float()).abs().max().item() <= 2e-2 * scale


def test_bf16_features_get_bf16_gradients():
    """Under autocast a plugin's projection hands over bf16 features; their gradient must be bf16 too."""
    features, weight, bias, targets = _inputs(20, 8, 30, seed=11)
    low = features.detach().to(torch.bfloat16).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = chunked_cross_entropy(low, weight, bias, targets, ignore_index=PAD, chunk_size=6)
    grad_low, grad_weight = _grads(loss, [low, weight])
    assert grad_low.dtype == torch.bfloat16 and grad_weight.dtype == torch.float32


def test_a_graph_kept_with_retain_graph_gives_the_same_gradients_twice():
    features, weight, bias, targets = _inputs(20, 8, 15, seed=12)
    loss = chunked_cross_entropy(features, weight, bias, targets, ignore_index=PAD, chunk_size=6)
    first = torch.autograd.grad(loss * 2, [weight], retain_graph=True)[0]
    second = torch.autograd.grad(loss * 2, [weight])[0]
    torch.testing.assert_close(first, second, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("shapes", "chunk_size", "message"),
    [
        (((10, 8), (15, 7), (10,)), 4, "do not fit"),
        (((10, 8), (15, 8), (9,)), 4, "targets must be"),
        (((10, 8), (15, 8), (10,)), 0, "chunk_size"),
    ],
)
def test_bad_arguments_are_value_errors(shapes, chunk_size, message):
    features, weight, targets = (
        torch.randn(*shapes[0]),
        torch.randn(*shapes[1]),
        torch.zeros(shapes[2], dtype=torch.long),
    )
    with pytest.raises(ValueError, match=message):
        chunked_cross_entropy(features, weight, None, targets, chunk_size=chunk_size)
