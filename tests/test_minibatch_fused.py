"""The fused minibatch-discrimination node against straightforward references.

`minibatch_features` computes M = f T and o(x) in one autograd node with its own backward
(ganapp/techniques/minibatch_discrimination.py), on the CPU with compiled loops
(minibatch_kernel.py, numba) and elsewhere with a tensor formula. Every test here runs
both ways (the `way` fixture). Each is compared with two plain autograd versions written
out below: the pairwise formula over the (n, n, B, C) difference tensor, and the
torch.cdist form ganapp used before the fused node. Forward and gradients, both
reductions, batch sizes 1 to 64, kernels of 1 to 7 dimensions, float64 to ~1e-12 and
float32 at the default sizes; gradcheck on small sizes; the sample itself masked out;
`minibatch_head` (D's output layer and the minibatch features in one node) against
nn.Linear on concat[f(x), o(x)], and a training run with it against one with the separate
layers, to the bit; `minibatch_head_pair` (D's step's two heads in one node) against two
`minibatch_head`s, to the bit; the float32 exp of the loops against float64's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganapp.techniques import minibatch_features, minibatch_head, minibatch_head_pair, minibatch_kernel

WAYS = ["compiled loops", "tensor formula"]


@pytest.fixture(autouse=True, params=WAYS)
def way(request, monkeypatch):
    """Each test once with the compiled loops (where numba is installed) and once without."""
    if request.param == "compiled loops" and minibatch_kernel.numba is None:
        pytest.skip("numba is not installed")
    monkeypatch.setattr(minibatch_kernel, "ENABLED", request.param == "compiled loops")
    return request.param

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
@pytest.mark.parametrize("n, kernels, kernel_dim", [(1, 4, 3), (2, 4, 3), (3, 4, 3), (4, 4, 3), (5, 4, 3), (7, 4, 3),
                                                    (8, 4, 3), (16, 4, 3), (31, 4, 3), (64, 4, 3), (9, 1, 1),
                                                    (9, 2, 2), (9, 3, 4), (9, 5, 5), (33, 2, 7), (17, 16, 5)])
def test_forward_and_gradients_match_the_pairwise_formula_in_float64(n, kernels, kernel_dim, reduction):
    features, tensor = randn(n, 6, seed=n), randn(6, kernels, kernel_dim, seed=100 + n, scale=0.3)
    upstream = randn(n, kernels, seed=200 + n)
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


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_minibatch_head_is_the_output_layer_on_the_features_and_the_minibatch_features(dtype, reduction):
    # D's output layer sees concat[f(x), o(x)] (the paper's layer): one nn.Linear(A + B, 1).
    features = randn(64, 128, seed=21, dtype=dtype).clamp(min=0)
    output_weight, output_bias = randn(1, 128, seed=25, scale=0.1, dtype=dtype), randn(1, seed=26, dtype=dtype)
    tensor = randn(128, 16, 5, seed=22, scale=0.05, dtype=dtype)
    weight = randn(1, 16, seed=23, dtype=dtype)
    upstream = randn(64, seed=24, dtype=dtype)
    results = []
    for fused in (True, False):
        inputs = [x.detach().clone().requires_grad_() for x in (features, output_weight, output_bias, tensor, weight)]
        f, w_f, b, t, w = inputs
        if fused:
            out = minibatch_head(f, w_f, b, t, w, reduction)
        else:
            out = torch.nn.functional.linear(torch.cat([f, minibatch_features(f, t, reduction)], dim=1),
                                             torch.cat([w_f, w], dim=1), b).squeeze(1)
        results.append((out.detach(), *torch.autograd.grad((out * upstream).sum(), inputs)))
    tolerance = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=2e-5, atol=2e-5)
    for got, want, what in zip(*results, ("logit", "d/d features", "d/d W_f", "d/d b", "d/d T", "d/d W")):
        assert got.shape == want.shape and torch.allclose(got, want, **tolerance), what
    with pytest.raises(ValueError, match="reduction must be one of sum, mean; got 'max'"):
        minibatch_head(features, output_weight, output_bias, tensor, weight, "max")


def test_minibatch_head_gradients_reach_only_the_inputs_that_ask_for_them():
    features = randn(5, 6, seed=30)  # a detached batch
    output_weight, output_bias = randn(1, 6, seed=31).requires_grad_(), randn(1, seed=32)
    tensor, weight = randn(6, 4, 3, seed=33).requires_grad_(), randn(1, 4, seed=34).requires_grad_()
    minibatch_head(features, output_weight, output_bias, tensor, weight, "mean").sum().backward()
    assert all(x.grad is not None for x in (output_weight, tensor, weight))
    assert features.grad is None and output_bias.grad is None
    # G's step: D held fixed, only the features ask; their gradient is the same as when all ask
    upstream = randn(5, seed=37)
    grads = []
    for weights_ask in (True, False):
        inputs = [x.detach().clone().requires_grad_(weights_ask) for x in (output_weight, output_bias, tensor, weight)]
        f = features.clone().requires_grad_()
        (minibatch_head(f, *inputs, "mean") * upstream).sum().backward()
        grads.append(f.grad)
        assert all((x.grad is not None) == weights_ask for x in inputs)
    assert torch.equal(grads[0], grads[1])


@pytest.mark.parametrize("settings", [dict(data="ring8"), dict(data="ring8", minibatch_reduction="sum",
                                                                feature_matching=True),
                                      dict(data="ring8", historical_averaging="uniform", label_smoothing=0.9),
                                      dict(data="digits", batch_size=16)])
def test_a_run_gives_the_same_numbers_to_the_bit_as_with_the_separate_output_layers(settings, monkeypatch):
    # minibatch_head is an optimisation only: every figure measured with the separate layers
    # (the README's tables, the ready-made runs) must stay exactly as it was.
    from ganapp import models
    from ganapp.config import GANConfig
    from ganapp.training import Trainer

    def separate_layers(self, x):  # the Discriminator's forward before minibatch_head
        features = self.body(x)
        others = minibatch_features(features, self.minibatch.tensor, self.minibatch.reduction)
        return (self.output(features) + self.minibatch_output(others)).squeeze(1), features

    def two_calls(self, x_real, x_fake):  # D's step before minibatch_head_pair: one call per batch
        return self(x_real)[0], self(x_fake)[0]

    config = GANConfig(minibatch_discrimination=True, steps=40, **settings)
    states = []
    for forward in (None, separate_layers):
        if forward is not None:
            monkeypatch.setattr(models.Discriminator, "forward", forward)
            monkeypatch.setattr(models.Discriminator, "logits", two_calls)
        trainer = Trainer(config)
        for _ in range(config.steps):
            trainer.train_step()
        states.append(trainer.state_tensors())
    assert states[0].keys() == states[1].keys()
    assert [name for name in states[0] if not torch.equal(states[0][name], states[1][name])] == []


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_the_pair_node_gives_two_heads_numbers_to_the_bit_with_a_third_gradient_on_the_weights(reduction):
    # D's step: the real and the generated batch's heads in one node, and historical
    # averaging's penalty adding a third gradient to each shared weight, which autograd sums
    # in an order (float addition of three is not associative): every number the same as
    # with two minibatch_head nodes, including the weights' accumulated gradients.
    dtype = torch.float32
    real, fake = randn(64, 32, seed=40, dtype=dtype).clamp(min=0), randn(64, 32, seed=41, dtype=dtype).clamp(min=0)
    weights = (randn(1, 32, seed=42, scale=0.2, dtype=dtype), randn(1, seed=43, dtype=dtype),
               randn(32, 8, 5, seed=44, scale=0.05, dtype=dtype), randn(1, 8, seed=45, dtype=dtype))
    averages = [randn(*w.shape, seed=46 + k, scale=0.1, dtype=dtype) for k, w in enumerate(weights)]
    upstream = randn(64, seed=50, dtype=dtype), randn(64, seed=51, dtype=dtype)
    results = []
    for pair in (True, False):
        shared = [w.detach().clone().requires_grad_() for w in weights]
        f_real, f_fake = real.detach().clone().requires_grad_(), fake.detach().clone()  # the fake batch detached
        if pair:
            logit_real, logit_fake = minibatch_head_pair(f_real, f_fake, *shared, reduction)
        else:
            logit_real, logit_fake = (minibatch_head(f, *shared, reduction) for f in (f_real, f_fake))
        penalty = sum(((w - a) ** 2).sum() for w, a in zip(shared, averages))
        ((logit_real * upstream[0]).sum() + (logit_fake * upstream[1]).sum() + penalty).backward()
        results.append((logit_real.detach(), logit_fake.detach(), f_real.grad, *(w.grad for w in shared)))
    for got, want, what in zip(*results, ("real logit", "fake logit", "d/d real f", "d/d W_f", "d/d b", "d/d T",
                                          "d/d W")):
        assert torch.equal(got, want), what


def test_the_pair_node_computes_only_the_gradients_asked_for(monkeypatch):
    # The generated batch comes detached (D's step): its features' product is skipped; a D
    # held fixed: no weight's product either (a gradient returned for an input that does not
    # ask is dropped without a word, so only the node's own bookkeeping tells).
    from ganapp.techniques import minibatch_discrimination as mbd

    asked = []
    head_backward = mbd._head_backward
    monkeypatch.setattr(mbd, "_head_backward", lambda *args: asked.append(args[-1]) or head_backward(*args))
    real, fake = randn(8, 6, seed=60).requires_grad_(), randn(8, 6, seed=61)
    weights = [randn(1, 6, seed=62), randn(1, seed=63), randn(6, 4, 3, seed=64), randn(1, 4, seed=65)]
    sum(minibatch_head_pair(real, fake, *(w.clone().requires_grad_() for w in weights))).sum().backward()
    assert asked == [(True, True, True, True, True), (False, True, True, True, True)]
    asked.clear()
    sum(minibatch_head_pair(real, fake, *weights)).sum().backward()
    assert asked == [(True, False, False, False, False), (False, False, False, False, False)]


@pytest.mark.parametrize("used", ["real", "fake"])
def test_a_logit_of_the_pair_not_used_gives_what_one_head_gives(used):
    # Only one logit in the loss: the other batch gets no gradient and adds none to the
    # weights, as a node the backward never reaches, even if its numbers are not numbers.
    real, fake = randn(6, 5, seed=70), randn(6, 5, seed=71)
    fake[0, 0] = float("nan")
    weights = (randn(1, 5, seed=72), randn(1, seed=73), randn(5, 4, 3, seed=74, scale=0.3), randn(1, 4, seed=75))
    results = []
    for pair in (True, False):
        f_real, f_fake = real.clone().requires_grad_(), fake.clone().requires_grad_()
        shared = [w.clone().requires_grad_() for w in weights]
        if pair:
            logits = dict(zip(("real", "fake"), minibatch_head_pair(f_real, f_fake, *shared)))
        else:
            logits = {used: minibatch_head(f_real if used == "real" else f_fake, *shared)}
        logits[used].sum().backward()
        results.append([f_real.grad, f_fake.grad, *(w.grad for w in shared)])
    for got, want in zip(*results):
        assert (got is None and want is None) or torch.equal(got, want) or (
            torch.isnan(got).equal(torch.isnan(want)) and torch.equal(got.nan_to_num(), want.nan_to_num()))
    if used == "real":
        assert results[0][1] is None and not any(torch.isnan(g).any() for g in results[0][2:])


def test_a_sample_that_is_not_a_number_spoils_its_whole_batch_as_in_the_formula():
    # A diverging D gives NaN features; minibatch features must not hide them as zeros
    # (the run's divergence check reads the losses).
    features = randn(6, 5, seed=25, dtype=torch.float32)
    features[2, 1] = float("nan")
    others = minibatch_features(features, randn(5, 3, 2, seed=26, dtype=torch.float32), "mean")
    assert torch.isnan(others).all()


def test_far_apart_samples_give_exactly_zero_in_float32():
    # exp(-d) below float32's normal range is 0 in the loops (denormals in the formula).
    features = torch.tensor([[0.0], [90.0], [1000.0], [1e30]])
    others = minibatch_features(features, torch.ones(1, 1, 1), "sum")
    assert float(others.max()) < 1e-37
    assert torch.equal(minibatch_features(features[2:], torch.ones(1, 1, 1), "sum"), torch.zeros(2, 1))


def test_the_compiled_float32_exp_is_within_one_ulp_of_float64s(way):
    if way != "compiled loops":
        pytest.skip("the loops' own exp")
    # Pairs of samples at chosen distances d, one kernel dimension: c(0, 1) = exp(-d) as the
    # loops compute it, for d from 0 to float32's smallest normal result. (Not o: o = c(0, 0)
    # + c(0, 1) - 1 in float32 keeps only the digits of c(0, 1) above 1's last one, in the
    # tensor formula too.)
    distances = np.concatenate([np.linspace(0.0, 87.0, 20001), np.geomspace(1e-8, 1.0, 2001),
                                np.random.default_rng(0).uniform(0.0, 87.0, 20001)]).astype(np.float32)
    m = np.zeros((distances.size, 1, 2), np.float32)
    m[:, 0, 1] = distances
    closeness, _ = minibatch_kernel.forward(m)  # (pairs, 1, 2): c(0, 1) and c(1, 0), for d = 1
    got = closeness[:, 0, 0].astype(np.float64)
    want = np.exp(-distances.astype(np.float64))
    ulp = np.spacing(want.astype(np.float32)).astype(np.float64)
    assert (np.abs(got - want) <= ulp).all(), float((np.abs(got - want) / ulp).max())
    assert np.array_equal(closeness[:, 0, 1], closeness[:, 0, 0])  # c(1, 0) = c(0, 1)
    assert float(closeness[0, 0, 0]) == 1.0  # exp(0) is exactly 1
    far = np.zeros((5, 1, 2), np.float32)
    far[:, 0, 1] = [87.5, 88.0, 100.0, 1e4, np.inf]
    assert (minibatch_kernel.forward(far)[0][:, 0, 0] == 0).all()  # below exp(-87): 0, not exp(-87)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_on_the_cpu_both_directions_take_the_compiled_loops(way, dtype, monkeypatch):
    # The tensor formula gives the same numbers to rounding, so only this tells that the
    # loops (the fast way) are really taken, forward and backward.
    from ganapp.techniques import minibatch_discrimination as mbd

    taken = []
    for name in ("_closeness_and_others", "_grad_m"):
        formula = getattr(mbd, name)
        monkeypatch.setattr(mbd, name, lambda *args, formula=formula, name=name: taken.append(name) or formula(*args))
    features = randn(8, 6, seed=27, dtype=dtype).requires_grad_()
    minibatch_features(features, randn(6, 4, 3, seed=28, dtype=dtype)).sum().backward()
    minibatch_head(features, randn(1, 6, seed=35, dtype=dtype), randn(1, seed=36, dtype=dtype),
                   randn(6, 4, 3, seed=28, dtype=dtype), randn(1, 4, seed=29, dtype=dtype)).sum().backward()
    sum(minibatch_head_pair(features, features * 2, randn(1, 6, seed=35, dtype=dtype), randn(1, seed=36, dtype=dtype),
                            randn(6, 4, 3, seed=28, dtype=dtype), randn(1, 4, seed=29, dtype=dtype))).sum().backward()
    assert taken == ([] if way == "compiled loops" else ["_closeness_and_others", "_grad_m"] * 2
                     + ["_closeness_and_others"] * 2 + ["_grad_m"] * 2)


def test_warm_up_compiles_the_float32_loops(way):
    minibatch_kernel.warm_up()
    assert minibatch_kernel.ENABLED == (way == "compiled loops")
    if way == "compiled loops":  # every loop a job uses, so that none compiles during a run
        for name in ("_forward", "_backward", "_logit_backward", "_cross"):
            signatures = getattr(minibatch_kernel, name).signatures
            assert any(str(signature[0].dtype) == "float32" for signature in signatures), name
