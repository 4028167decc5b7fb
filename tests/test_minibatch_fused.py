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


# ---------------------------------------------------------------------------------------
# Groups: (G, n, A) features are G minibatches, each compared with its own rows only.

def separate_calls(features, tensor, reduction):
    return torch.stack([minibatch_features(group, tensor, reduction) for group in features])


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("groups,n", [(2, 1), (2, 2), (3, 5), (2, 8), (2, 31), (2, 64)])
def test_groups_equal_separate_calls_and_the_pairwise_formula_in_float64(groups, n, reduction):
    features, tensor = randn(groups, n, 6, seed=300 + n), randn(6, 4, 3, seed=400 + n, scale=0.3)
    upstream = randn(groups, n, 4, seed=500 + n)
    grouped = outputs_and_gradients(minibatch_features, features, tensor, reduction, upstream)
    for reference in (separate_calls,
                      lambda f, t, r: torch.stack([reference_pairwise(group, t, r) for group in f])):
        expected = outputs_and_gradients(reference, features, tensor, reduction, upstream)
        for got, want, what in zip(grouped, expected, ("o(x)", "d/d features", "d/d T")):
            assert got.shape == want.shape and torch.allclose(got, want, rtol=1e-12, atol=1e-14), what


def test_a_group_does_not_see_the_other_groups():
    # Group 1 holds identical rows: o = n - 1 there, the same numbers whatever group 0 holds.
    tensor = randn(6, 4, 3, seed=20, scale=0.3)
    same = randn(1, 6, seed=21).expand(5, 6)
    outputs = [minibatch_features(torch.stack([other, same]), tensor, "sum")[1]
               for other in (randn(5, 6, seed=22), same, randn(5, 6, seed=23) * 1e3)]
    assert all(torch.equal(out, outputs[0]) for out in outputs)
    assert torch.allclose(outputs[0], torch.full((5, 4), 4.0, dtype=DOUBLE), rtol=0, atol=1e-12)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_gradcheck_of_groups(reduction):
    features = randn(2, 5, 4, seed=23).requires_grad_()
    tensor = randn(4, 3, 2, seed=24, scale=0.4).requires_grad_()
    assert torch.autograd.gradcheck(lambda f, t: minibatch_features(f, t, reduction), (features, tensor))


def test_features_of_other_ranks_are_refused():
    with pytest.raises(ValueError, match="features must be"):
        minibatch_features(randn(2, 2, 3, 6, seed=25), randn(6, 4, 3, seed=26))


# ---------------------------------------------------------------------------------------
# The scratch buffers the node reuses between calls.

def test_two_graphs_alive_at_once_keep_their_own_numbers():
    # The D update: two forward passes, then one backward through both (the second pass
    # reuses the first one's scratch buffers; what the backward needs is saved apart).
    tensor = randn(6, 4, 3, seed=27, scale=0.3).requires_grad_()
    a, b = randn(16, 6, seed=28).requires_grad_(), randn(16, 6, seed=29).requires_grad_()
    wa, wb = randn(16, 4, seed=30), randn(16, 4, seed=31)
    ((minibatch_features(a, tensor, "mean") * wa).sum() + (minibatch_features(b, tensor, "mean") * wb).sum()).backward()
    expected = [torch.autograd.grad((reference_pairwise(x, tensor, "mean") * w).sum(), (x, tensor))
                for x, w in ((a, wa), (b, wb))]
    assert torch.allclose(a.grad, expected[0][0], rtol=1e-12, atol=1e-14)
    assert torch.allclose(b.grad, expected[1][0], rtol=1e-12, atol=1e-14)
    assert torch.allclose(tensor.grad, expected[0][1] + expected[1][1], rtol=1e-12, atol=1e-14)


def test_calls_from_several_threads_at_once_give_the_numbers_of_calls_one_at_a_time():
    import threading
    tensor = randn(32, 16, 5, seed=32, scale=0.1, dtype=torch.float32)
    inputs = [randn(n, 32, seed=33 + n, dtype=torch.float32) for n in (64, 48, 64, 17, 64, 33)]
    expected = [minibatch_features(x, tensor, "mean") for x in inputs]
    results: dict[int, list[torch.Tensor]] = {}

    def work(index: int) -> None:
        results[index] = [minibatch_features(inputs[index], tensor, "mean") for _ in range(20)]
    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, outputs in results.items():
        assert all(torch.equal(out, expected[index]) for out in outputs), index
    assert len(results) == len(inputs)


# ---------------------------------------------------------------------------------------
# The discriminator's grouped call (the training step's D update).

def test_discriminator_forward_batches_equals_one_call_per_batch():
    from ganapp.config import GANConfig
    from ganapp.models import build_models
    real, fake = randn(64, 2, seed=34, dtype=torch.float32), randn(64, 2, seed=35, dtype=torch.float32) * 0.1
    for reduction in ("sum", "mean"):
        _, discriminator = build_models(GANConfig(data="ring8", minibatch_discrimination=True,
                                                  minibatch_reduction=reduction), (2,))
        grouped = discriminator.forward_batches(real, fake)
        separate = [discriminator(real), discriminator(fake)]
        for (logit, features), (want_logit, want_features) in zip(grouped, separate):
            assert torch.equal(features, want_features)
            assert torch.allclose(logit, want_logit, rtol=1e-5, atol=1e-6)
        # Gradients too: D's update through both batches.
        grads = []
        for outputs in (grouped, separate):
            loss = outputs[0][0].sum() - 2 * outputs[1][0].sum()
            grads.append(torch.autograd.grad(loss, list(discriminator.parameters())))
        for got, want in zip(*grads):  # float32 sums in another order: relative to the largest entry
            assert (got - want).abs().max() <= 1e-5 * want.abs().max()
    # Without minibatch discrimination, or with batches of different sizes: exactly D(batch).
    _, plain = build_models(GANConfig(data="ring8"), (2,))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(plain.forward_batches(real, fake), [plain(real), plain(fake)]))
    mixed = discriminator.forward_batches(real, fake[:10])
    assert torch.equal(mixed[1][0], discriminator(fake[:10])[0])


def test_the_training_step_computes_both_batches_minibatch_features_in_one_grouped_call(monkeypatch):
    import ganapp.models
    from ganapp.config import GANConfig
    from ganapp.training import Trainer
    shapes = []

    def recording(features, tensor, reduction="sum"):
        shapes.append(tuple(features.shape))
        return minibatch_features(features, tensor, reduction)
    monkeypatch.setattr(ganapp.models, "minibatch_features", recording)
    trainer = Trainer(GANConfig(data="ring8", minibatch_discrimination=True, batch_size=32))
    trainer.train_step()
    assert shapes == [(2, 32, trainer.config.hidden_dim), (32, trainer.config.hidden_dim)]  # D's update, then G's
