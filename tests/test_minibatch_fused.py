"""The fused minibatch-discrimination node against straightforward references.

`minibatch_features` computes M = f T and o(x) in one autograd node with its own backward
(ganapp/techniques/minibatch_discrimination.py). Here it is
compared with two plain autograd versions written out below: the pairwise formula over
the (n, n, B, C) difference tensor, and the torch.cdist form ganapp used before the
fused node. Forward and gradients, both reductions, batch sizes 1 to 64, float64 to
~1e-12 and float32 at the default sizes; gradcheck on small sizes; the sample itself
masked out.
"""

from __future__ import annotations

import pytest
import torch

from ganapp.techniques import minibatch_features

DOUBLE = torch.float64


def randn(*shape: int, seed: int, scale: float = 1.0, dtype=DOUBLE) -> torch.Tensor:
    return (torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DOUBLE) * scale).to(dtype)


def reference_pairwise(features, tensor, reduction):
    """o_b(i) = sum (or mean) over j != i of exp(-sum_c |M_i,b,c - M_j,b,c|), plain autograd."""
    n = features.shape[0]
    m = torch.einsum("na,abc->nbc", features, tensor)  # (n, B, C)
    closeness = torch.exp(-(m[:, None] - m[None, :]).abs().sum(-1))  # (n, n, B)
    others = (closeness * (1 - torch.eye(n, dtype=features.dtype))[..., None]).sum(1)  # self masked out
    return others / (n - 1) if reduction == "mean" and n > 1 else others


def reference_cdist(features, tensor, reduction):
    """The implementation before the fused node (torch.cdist, then exp, sum, minus the self term)."""
    n = features.shape[0]
    m = (features @ tensor.flatten(1)).view(n, tensor.shape[1], tensor.shape[2]).transpose(0, 1)  # (B, n, C)
    others = torch.exp(-torch.cdist(m, m, p=1)).sum(dim=2).t() - 1.0
    return others / (n - 1) if reduction == "mean" and n > 1 else others


def outputs_and_gradients(function, features, tensor, reduction, upstream):
    features = features.detach().clone().requires_grad_()
    tensor = tensor.detach().clone().requires_grad_()
    others = function(features, tensor, reduction)
    grad_features, grad_tensor = torch.autograd.grad((others * upstream).sum(), (features, tensor))
    return others.detach(), grad_features, grad_tensor


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 16, 31, 64])
def test_forward_and_gradients_match_the_pairwise_formula_in_float64(n, reduction):
    features, tensor = randn(n, 6, seed=n), randn(6, 4, 3, seed=100 + n, scale=0.3)
    upstream = randn(n, 4, seed=200 + n)
    fused = outputs_and_gradients(minibatch_features, features, tensor, reduction, upstream)
    for reference in (reference_pairwise, reference_cdist):
        expected = outputs_and_gradients(reference, features, tensor, reduction, upstream)
        for got, want, what in zip(fused, expected, ("o(x)", "d/d features", "d/d T")):
            assert torch.allclose(got, want, rtol=1e-12, atol=1e-14), (reference.__name__, what)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_gradcheck(n, reduction):
    features = randn(n, 5, seed=n).requires_grad_()
    tensor = randn(5, 3, 2, seed=50 + n, scale=0.4).requires_grad_()
    assert torch.autograd.gradcheck(lambda f, t: minibatch_features(f, t, reduction), (features, tensor))


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_float32_agrees_with_the_previous_implementation_at_the_default_sizes(reduction):
    # ring8's defaults: batch 64, hidden 128 (A), 16 kernels (B) of dimension 5 (C).
    features = randn(64, 128, seed=1, dtype=torch.float32).clamp(min=0)
    tensor = randn(128, 16, 5, seed=2, scale=0.05, dtype=torch.float32)
    upstream = randn(64, 16, seed=3, dtype=torch.float32)
    fused = outputs_and_gradients(minibatch_features, features, tensor, reduction, upstream)
    before = outputs_and_gradients(reference_cdist, features, tensor, reduction, upstream)
    exact = outputs_and_gradients(reference_pairwise, features.double(), tensor.double(), reduction,
                                  upstream.double())
    for got, old, want in zip(fused, before, exact):
        scale = want.abs().max()
        # The fused node is as close to the float64 result as the previous code was.
        assert (got.double() - want).abs().max() <= 1e-5 * scale
        assert (old.double() - want).abs().max() <= 1e-5 * scale
        assert torch.allclose(got, old, rtol=1e-5, atol=1e-6 * float(scale))


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_the_sample_itself_is_masked_out(reduction):
    # One row far from all the others: its o is exactly 0 (self excluded), and the others
    # see one another only.
    features = torch.cat([randn(4, 6, seed=7, scale=0.1), randn(1, 6, seed=8, scale=1e4)])
    tensor = randn(6, 4, 3, seed=9, scale=0.3)
    others = minibatch_features(features, tensor, reduction)
    assert torch.equal(others[4], torch.zeros(4, dtype=DOUBLE))
    near = minibatch_features(features[:4], tensor, "sum")
    expected = near / 4 if reduction == "mean" else near  # the far row adds 0 but counts in n - 1
    assert torch.allclose(others[:4], expected, rtol=1e-12, atol=1e-14)
    # Identical rows: every c_b(i, j) is 1, and the self term would add one more.
    same = randn(1, 6, seed=10).expand(6, 6).contiguous()
    value = 5.0 if reduction == "sum" else 1.0
    assert torch.equal(minibatch_features(same, tensor, reduction), torch.full((6, 4), value, dtype=DOUBLE))


def test_a_single_sample_gives_zero_and_zero_gradients():
    features = randn(1, 6, seed=11).requires_grad_()
    tensor = randn(6, 4, 3, seed=12).requires_grad_()
    others = minibatch_features(features, tensor, "mean")
    assert torch.equal(others, torch.zeros(1, 4, dtype=DOUBLE))
    others.sum().backward()
    assert torch.equal(features.grad, torch.zeros_like(features))
    assert torch.equal(tensor.grad, torch.zeros_like(tensor))


def test_gradient_reaches_only_the_inputs_that_ask_for_it():
    features = randn(5, 6, seed=13)  # no grad, as for a detached batch
    tensor = randn(6, 4, 3, seed=14).requires_grad_()
    minibatch_features(features, tensor).sum().backward()
    assert tensor.grad is not None and features.grad is None


def test_repeated_calls_are_bitwise_identical():
    features = randn(64, 32, seed=15, dtype=torch.float32).requires_grad_()
    tensor = randn(32, 16, 5, seed=16, scale=0.1, dtype=torch.float32).requires_grad_()
    runs = []
    for _ in range(2):
        features.grad = tensor.grad = None
        others = minibatch_features(features, tensor, "mean")
        (others * torch.arange(16.0)).sum().backward()
        runs.append((others.detach(), features.grad.clone(), tensor.grad.clone()))
    assert all(torch.equal(a, b) for a, b in zip(*runs))
