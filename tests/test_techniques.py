"""Property tests for the five techniques (../shared/techniques.md, sections 1 to 5).

Every item of each section's "Tests:" list is a test here, named after it (`test_fm_a_...`
is feature matching, item (a)). A property is written once as `check_...(implementation)
-> bool`; each test asserts that it holds for ganapp's implementation *and* that it fails
for the wrong implementations the spec describes (torchgan's per-sample feature matching,
the pre-2017 official VBN, two-sided label smoothing, ...), written out below in a few
lines each. A property that a known mistake also passes would prove nothing.

Float64 wherever a result is compared exactly; the Inception Score (section 6) is tested
with the metrics.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganapp.config import GANConfig
from ganapp.models import build_models
from ganapp.techniques import (HistoricalAverage, MinibatchDiscrimination, VirtualBatchNorm, discriminator_loss,
                               feature_matching_loss, generator_loss, minibatch_features, reference_statistics,
                               virtual_batch_norm)
from ganapp.training import Trainer

DOUBLE = torch.float64


def randn(*shape: int, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DOUBLE) * scale


def holds(check, implementation, *args) -> bool:
    """check(implementation) as a bool; an implementation that raises fails the property."""
    try:
        return bool(check(implementation, *args))
    except (RuntimeError, ValueError, IndexError):
        return False


def assert_catches(check, wrong_implementations, *args) -> None:
    for wrong in wrong_implementations:
        assert not holds(check, wrong, *args), f"{wrong.__name__} should fail {check.__name__}"


def ring8_config(**changes) -> GANConfig:
    return GANConfig(data="ring8", batch_size=16, device="cpu", **changes)


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


def same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# =========================================================================================
# 1. Feature matching
# =========================================================================================

def fm_per_sample_mse(real_features, fake_features):
    """torchgan: MSE between f(G(z))_i and f(x)_i, row by row."""
    with warnings.catch_warnings():  # torch warns before it fails on unequal batch sizes
        warnings.simplefilter("ignore")
        return F.mse_loss(fake_features, real_features.detach())


def fm_l1_of_means(real_features, fake_features):
    """Official CIFAR/SVHN: mean over features of |mu_real - mu_fake|."""
    return (real_features.detach().mean(0) - fake_features.mean(0)).abs().mean()


def fm_mean_of_squares(real_features, fake_features):
    """Official MNIST: the mean (not the sum) of the squared mean difference."""
    return (real_features.detach().mean(0) - fake_features.mean(0)).pow(2).mean()


def fm_not_detached(real_features, fake_features):
    """The right formula, but the real side keeps its graph: D would get a gradient."""
    return (real_features.mean(0) - fake_features.mean(0)).pow(2).sum()


def check_fm_zero_for_permutation_and_reflection(loss) -> bool:
    real = randn(8, 5, seed=1)
    permuted = real[torch.randperm(8, generator=torch.Generator().manual_seed(2))]
    reflected = 2 * real.mean(0) - real  # each row mirrored through the batch mean
    return float(loss(real, permuted)) < 1e-24 and float(loss(real, reflected)) < 1e-24


def test_fm_a_permutation_or_reflection_gives_zero():
    assert check_fm_zero_for_permutation_and_reflection(feature_matching_loss)
    assert_catches(check_fm_zero_for_permutation_and_reflection, [fm_per_sample_mse])


def check_fm_order_free_and_any_batch_sizes(loss) -> bool:
    real, fake = randn(8, 5, seed=1), randn(8, 5, seed=2) + 0.3
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(3))
    base = float(loss(real, fake))
    order_free = math.isclose(float(loss(real[perm], fake)), base, rel_tol=1e-12) and math.isclose(
        float(loss(real, fake[perm])), base, rel_tol=1e-12)
    fewer_fakes = fake[:3]
    expected = float((real.mean(0) - fewer_fakes.mean(0)).pow(2).sum())
    return order_free and math.isclose(float(loss(real, fewer_fakes)), expected, rel_tol=1e-12)


def test_fm_b_unchanged_by_row_order_and_unequal_batch_sizes_work():
    assert check_fm_order_free_and_any_batch_sizes(feature_matching_loss)
    assert_catches(check_fm_order_free_and_any_batch_sizes, [fm_per_sample_mse])


def check_fm_sum_of_squared_mean_differences(loss) -> bool:
    real, fake = randn(7, 6, seed=4), randn(4, 6, seed=5) * 2
    expected = sum(float(real[:, k].mean() - fake[:, k].mean()) ** 2 for k in range(6))
    return math.isclose(float(loss(real, fake)), expected, rel_tol=1e-12)


def test_fm_c_equals_sum_of_squared_mean_differences():
    assert check_fm_sum_of_squared_mean_differences(feature_matching_loss)
    assert_catches(check_fm_sum_of_squared_mean_differences,
                   [fm_per_sample_mse, fm_l1_of_means, fm_mean_of_squares])


def check_fm_same_gradient_for_every_fake_row(loss) -> bool:
    real, fake = randn(7, 6, seed=4), randn(4, 6, seed=5).requires_grad_()
    (gradient,) = torch.autograd.grad(loss(real, fake), fake)
    expected = (2 * (fake.mean(0) - real.mean(0)) / 4).detach().expand(4, 6)  # 2(mu_f - mu_r)/n_f per row
    return torch.allclose(gradient, expected, rtol=1e-12, atol=1e-15)


def test_fm_c_every_fake_row_gets_the_same_gradient():
    assert check_fm_same_gradient_for_every_fake_row(feature_matching_loss)
    assert_catches(check_fm_same_gradient_for_every_fake_row,
                   [fm_per_sample_mse, fm_l1_of_means, fm_mean_of_squares])


def check_fm_gradient_reaches_fake_side_only(loss) -> bool:
    real, fake = randn(5, 3, seed=6).requires_grad_(), randn(5, 3, seed=7).requires_grad_()
    loss(real, fake).backward()
    return real.grad is None and fake.grad is not None and bool(fake.grad.abs().sum() > 0)


def test_fm_gradient_goes_to_the_generator_side_only():
    assert check_fm_gradient_reaches_fake_side_only(feature_matching_loss)
    assert_catches(check_fm_gradient_reaches_fake_side_only, [fm_not_detached])


def check_generator_step_leaves_discriminator_bit_identical(trainer: Trainer, steps: int = 3) -> bool:
    """Run real train_steps; D after the whole step must equal D right after D's own update."""
    after_d_update = []
    d_step = trainer.discriminator_optimizer.step

    def step_and_snapshot(*args, **kwargs):
        result = d_step(*args, **kwargs)
        after_d_update.append(snapshot(trainer.discriminator))
        return result

    trainer.discriminator_optimizer.step = step_and_snapshot
    unchanged = True
    for _ in range(steps):
        d_before, g_before = snapshot(trainer.discriminator), snapshot(trainer.generator)
        trainer.train_step()
        # Not vacuous: D's own update and G's update both moved their weights.
        assert not same_tensors(after_d_update[-1], d_before)
        assert not same_tensors(snapshot(trainer.generator), g_before)
        unchanged &= same_tensors(snapshot(trainer.discriminator), after_d_update[-1])
    return unchanged


def test_fm_d_generator_step_leaves_discriminator_bit_identical():
    trainer = Trainer(ring8_config(feature_matching=True))
    assert check_generator_step_leaves_discriminator_bit_identical(trainer)

    # The mistake it catches: one optimizer for the generator's step that also holds D's
    # weights, which the feature matching loss reaches through the fake features. (The
    # trainer holds D fixed during G's pass, so D gets no gradient there and even this
    # optimizer would leave it alone; with D left open, as a trainer without that would be:)
    wrong = Trainer(ring8_config(feature_matching=True))
    wrong._discriminator_parameters = []
    wrong.generator_optimizer = torch.optim.Adam(
        [*wrong.generator.parameters(), *wrong.discriminator.parameters()], lr=1e-3, betas=(0.5, 0.999))
    assert not check_generator_step_leaves_discriminator_bit_identical(wrong)


# =========================================================================================
# 2. Minibatch discrimination
# =========================================================================================

def mbd_from_formula(features, tensor, *, include_self=False, mean=False, distance="l1", earlier_only=False):
    """The paper's o(x) written out pairwise, (n, n, B, C), with switches for known mistakes."""
    n = features.shape[0]
    m = torch.einsum("na,abc->nbc", features, tensor)  # M_i: (n, B, C)
    difference = m[:, None] - m[None, :]  # (n, n, B, C)
    if distance == "l1":
        d = difference.abs().sum(-1)
    else:
        d = difference.pow(2).sum(-1).sqrt()
    closeness = torch.exp(-d)  # c_b(i, j): (n, n, B)
    mask = torch.ones(n, n, dtype=features.dtype)
    if not include_self:
        mask -= torch.eye(n, dtype=features.dtype)
    if earlier_only:
        mask = torch.tril(mask, diagonal=-1)
    o = (closeness * mask[..., None]).sum(1)  # (n, B)
    return o / max(n - 1, 1) if mean else o


def mbd_self_included(features, tensor):
    """The paper's formula read literally: j runs over all n, so j = i adds exactly 1."""
    return mbd_from_formula(features, tensor, include_self=True)


def mbd_imagenet_mean(features, tensor):
    """Official ImageNet: a masked mean over the other samples, not a sum."""
    return mbd_from_formula(features, tensor, mean=True)


def mbd_l2_distance(features, tensor):
    """Euclidean instead of L1 distance over C."""
    return mbd_from_formula(features, tensor, distance="l2")


def mbd_earlier_only(features, tensor):
    """A triangular mask: each sample compared with the samples before it only."""
    return mbd_from_formula(features, tensor, earlier_only=True)


def mbd_per_example(features, tensor):
    """A per-example feature with no batch interaction (what VBN wants, not MBD)."""
    return torch.exp(-torch.einsum("na,abc->nbc", features, tensor).abs().sum(-1))


A, B, C = 6, 4, 3
T = randn(A, B, C, seed=10, scale=0.3)  # small, so distances are around 1 and exp(-d) is not 0


def test_mbd_matches_the_pairwise_formula_on_random_batches():
    for seed in range(3):
        x = randn(9, A, seed=20 + seed)
        assert torch.allclose(minibatch_features(x, T), mbd_from_formula(x, T), rtol=1e-12, atol=1e-14)


def test_mbd_a_shape_grows_by_B_and_first_A_columns_are_the_input():
    layer = MinibatchDiscrimination(A, B, C).double()
    x = randn(5, A, seed=11)
    out = layer(x)
    assert out.shape == (5, A + B)
    assert torch.equal(out[:, :A], x)
    assert torch.allclose(out[:, A:], minibatch_features(x, layer.tensor), rtol=0, atol=0)


def check_mbd_identical_rows_give_n_minus_one(o) -> bool:
    n = 5
    x = randn(1, A, seed=12).expand(n, A).contiguous()
    return torch.allclose(o(x, T), torch.full((n, B), n - 1.0, dtype=DOUBLE), rtol=0, atol=1e-12)


def test_mbd_b_identical_rows_give_n_minus_one():
    assert check_mbd_identical_rows_give_n_minus_one(minibatch_features)
    assert_catches(check_mbd_identical_rows_give_n_minus_one, [mbd_self_included, mbd_imagenet_mean])


def check_mbd_far_apart_or_alone_gives_zero(o) -> bool:
    far = randn(6, A, seed=13, scale=1e4)  # every pairwise L1 distance is >> 1
    alone = randn(1, A, seed=14)
    return bool(o(far, T).abs().max() < 1e-12) and torch.equal(o(alone, T), torch.zeros(1, B, dtype=DOUBLE))


def test_mbd_c_far_apart_rows_give_zero_and_a_single_row_gives_zero():
    assert check_mbd_far_apart_or_alone_gives_zero(minibatch_features)
    assert_catches(check_mbd_far_apart_or_alone_gives_zero, [mbd_self_included])


def check_mbd_permutation_equivariant(o) -> bool:
    x = randn(7, A, seed=15)
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(16))
    return torch.allclose(o(x[perm], T), o(x, T)[perm], rtol=1e-12, atol=1e-14)


def test_mbd_d_permuting_rows_permutes_outputs():
    assert check_mbd_permutation_equivariant(minibatch_features)
    assert_catches(check_mbd_permutation_equivariant, [mbd_earlier_only])


def check_mbd_depends_on_batch_mates(o) -> bool:
    x = randn(5, A, seed=17)
    changed = x.clone()
    changed[3] += 0.5
    others = [0, 1, 2, 4]
    return bool((o(x, T)[others] - o(changed, T)[others]).abs().min() > 1e-6)


def test_mbd_e_changing_one_row_changes_every_other_rows_output():
    assert check_mbd_depends_on_batch_mates(minibatch_features)
    assert_catches(check_mbd_depends_on_batch_mates, [mbd_per_example])


def check_mbd_two_samples(o) -> bool:
    x = randn(2, A, seed=18)
    m = torch.einsum("na,abc->nbc", x, T)  # (2, B, C)
    expected = torch.exp(-(m[0] - m[1]).abs().sum(-1))  # (B,): exp(-sum_c |M_1bc - M_2bc|)
    out = o(x, T)
    return torch.allclose(out, expected.expand(2, B), rtol=1e-12, atol=1e-14)


def test_mbd_f_two_samples_give_exp_of_minus_l1_distance():
    assert check_mbd_two_samples(minibatch_features)
    assert_catches(check_mbd_two_samples, [mbd_self_included, mbd_l2_distance])


def mbd_mean(features, tensor):
    """ganapp's mean form (config minibatch_reduction="mean")."""
    return minibatch_features(features, tensor, "mean")


def check_mbd_identical_rows_give_one(o) -> bool:
    n = 5
    x = randn(1, A, seed=12).expand(n, A).contiguous()
    return torch.allclose(o(x, T), torch.ones(n, B, dtype=DOUBLE), rtol=0, atol=1e-12)


def test_mbd_mean_form_is_the_imagenet_masked_mean_and_keeps_properties_b_to_f():
    """The mean over the others (techniques.md test (b): "1 in the ImageNet mean form")."""
    for seed in range(3):
        x = randn(9, A, seed=20 + seed)
        assert torch.allclose(mbd_mean(x, T), mbd_imagenet_mean(x, T), rtol=1e-12, atol=1e-14)
    assert check_mbd_identical_rows_give_one(mbd_mean)
    assert_catches(check_mbd_identical_rows_give_one, [minibatch_features, mbd_self_included,
                                                       lambda x, t: mbd_from_formula(x, t, include_self=True, mean=True)])
    for check in (check_mbd_far_apart_or_alone_gives_zero, check_mbd_permutation_equivariant,
                  check_mbd_depends_on_batch_mates, check_mbd_two_samples):
        assert check(mbd_mean), check.__name__
    with pytest.raises(ValueError, match="reduction"):
        minibatch_features(randn(3, A, seed=1), T, "max")


def test_mbd_layer_draws_a_small_tensor_and_uses_its_own_reduction():
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(64, 16, 5)
    assert layer.tensor.shape == (64, 16, 5) and layer.reduction == "sum"  # the default: the paper's sum
    assert float(layer.tensor.detach().std()) == pytest.approx(0.05, rel=0.05)  # theta ~ N(0, 0.05)
    assert float(MinibatchDiscrimination(64, 16, 5, init_std=0.2).tensor.detach().std()) == pytest.approx(0.2, rel=0.05)
    features = randn(5, 64, seed=18).float()
    for reduction in ("sum", "mean"):
        layer = MinibatchDiscrimination(64, 16, 5, reduction=reduction)
        with torch.no_grad():
            expected = minibatch_features(features, layer.tensor, reduction)
            assert torch.equal(layer(features)[:, 64:], expected), reduction
    assert repr(layer) == "MinibatchDiscrimination(A=64, B=16, C=5, reduction=mean)"


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_mbd_gradient_reaches_whichever_input_asks_for_it(reduction):
    """minibatch_features has a hand-written backward: with T frozen the features still get
    their gradient, and with constant features T gets its own, each as when both ask."""
    features, tensor = randn(5, A, seed=21), randn(A, B, C, seed=22, scale=0.3)
    weights = randn(5, B, seed=23)

    def gradients(features_grad: bool, tensor_grad: bool):
        f, t = features.clone().requires_grad_(features_grad), tensor.clone().requires_grad_(tensor_grad)
        (minibatch_features(f, t, reduction) * weights).sum().backward()
        return f.grad, t.grad

    both = gradients(True, True)
    only_features, none_for_tensor = gradients(True, False)
    none_for_features, only_tensor = gradients(False, True)
    assert none_for_tensor is None and none_for_features is None
    assert torch.allclose(only_features, both[0], rtol=1e-12, atol=1e-15) and bool(only_features.abs().sum() > 0)
    assert torch.allclose(only_tensor, both[1], rtol=1e-12, atol=1e-15) and bool(only_tensor.abs().sum() > 0)


def test_mbd_unknown_reduction_is_refused_with_the_choices():
    message = "reduction must be one of sum, mean; got 'max'"
    with pytest.raises(ValueError) as error:
        minibatch_features(randn(3, A, seed=1), T, "max")
    assert str(error.value) == message
    with pytest.raises(ValueError) as error:
        MinibatchDiscrimination(A, B, C, reduction="max")
    assert str(error.value) == message


def test_mbd_reduction_setting_reaches_the_discriminator():
    """Sum and mean differ by exactly n - 1 in o(x): D's logit moves by W (o_sum - o_mean)."""
    n = 16
    real = randn(n, 2, seed=19).float()
    logits = {}
    for reduction in ("sum", "mean"):
        _, discriminator = build_models(ring8_config(minibatch_discrimination=True, minibatch_reduction=reduction),
                                        (2,))
        assert discriminator.minibatch.reduction == reduction
        with torch.no_grad():
            logits[reduction], features = discriminator(real)
            o_sum = minibatch_features(features, discriminator.minibatch.tensor, "sum")
            weight = discriminator.minibatch_output.weight[0]
    expected = (o_sum - o_sum / (n - 1)) @ weight  # same initial weights in both runs
    assert torch.allclose(logits["sum"] - logits["mean"], expected, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(logits["sum"], logits["mean"])


def check_separate_calls_differ_from_one_joint_call(discriminator) -> bool:
    real = randn(16, 2, seed=19).float()
    fake = (randn(16, 2, seed=20) * 0.1 + 1.0).float()
    with torch.no_grad():
        separate = torch.cat([discriminator(real)[0], discriminator(fake)[0]])
        joint = discriminator(torch.cat([real, fake]))[0]
    return not torch.allclose(separate, joint, rtol=0, atol=1e-4)


def test_mbd_g_discriminator_on_real_and_fake_separately_differs_from_one_joint_call():
    _, discriminator = build_models(ring8_config(minibatch_discrimination=True), (2,))
    assert check_separate_calls_differ_from_one_joint_call(discriminator)
    # Without minibatch features each example is scored alone, so the two ways agree:
    # the check tells whether D looks across the batch at all.
    _, plain = build_models(ring8_config(), (2,))
    assert not check_separate_calls_differ_from_one_joint_call(plain)


def test_mbd_g_training_step_calls_discriminator_on_real_and_fake_separately(monkeypatch):
    # Where the minibatch features are computed (each head of D's step's pair node, and G's
    # step's head): one batch at a time, never the real and the generated batch together.
    from ganapp.techniques import minibatch_discrimination as mbd

    trainer = Trainer(ring8_config(minibatch_discrimination=True))
    batch_sizes = []
    head_forward = mbd._head_forward

    def recording(features, *args):
        batch_sizes.append(features.shape[0])
        return head_forward(features, *args)

    monkeypatch.setattr(mbd, "_head_forward", recording)
    trainer.train_step()
    assert batch_sizes == [trainer.config.batch_size] * 3  # D's step: real, generated; G's step: generated


# =========================================================================================
# 3. Historical averaging
# =========================================================================================
# An implementation here is a factory: make(parameters, weight) -> fold(), where fold()
# folds the current parameters into the history and returns the penalty (once per step,
# as the training step does with update() then penalty()).

def ganapp_uniform(parameters, weight):
    average = HistoricalAverage(parameters, mode="uniform", weight=weight)

    def fold():
        average.update()
        return average.penalty()
    return fold


def ganapp_exponential(parameters, weight):
    """Our own `exponential` mode: an EMA where the paper's uniform average was asked."""
    average = HistoricalAverage(parameters, mode="exponential", weight=weight, decay=0.9)

    def fold():
        average.update()
        return average.penalty()
    return fold


def torchgan_previous_snapshots(parameters, weight):
    """torchgan: 0 on the first call, then the distance to the mean of the *previous* snapshots."""
    parameters, history = list(parameters), []

    def fold():
        if history:
            averages = [torch.stack(h).mean(0) for h in zip(*history)]
            penalty = weight * sum((p - a).pow(2).sum() for p, a in zip(parameters, averages))
        else:
            penalty = torch.zeros((), dtype=DOUBLE)
        history.append([p.detach().clone() for p in parameters])
        return penalty
    return fold


def official_ema_from_zero(parameters, weight):
    """The official disc_param_avg used as a penalty: a <- a + r (p - a), starting from 0."""
    parameters = list(parameters)
    averages = [torch.zeros_like(p) for p in parameters]

    def fold():
        for a, p in zip(averages, parameters):
            a += 0.1 * (p.detach() - a)
        return weight * sum((p - a).pow(2).sum() for p, a in zip(parameters, averages))
    return fold


def average_not_held_constant(parameters, weight):
    """Uniform and including the current parameters, but the gradient also flows into the average."""
    parameters = list(parameters)
    sums, count = [torch.zeros_like(p) for p in parameters], [0]

    def fold():
        count[0] += 1
        averages = [(s + p) / count[0] for s, p in zip(sums, parameters)]  # p still attached
        penalty = weight * sum((p - a).pow(2).sum() for p, a in zip(parameters, averages))
        for s, p in zip(sums, parameters):
            s += p.detach()
        return penalty
    return fold


def check_ha_zero_at_step_one(make) -> bool:
    parameters = [nn.Parameter(randn(3, 2, seed=30)), nn.Parameter(randn(4, seed=31))]
    return float(make(parameters, 0.7)().detach()) == 0.0


def test_ha_a_penalty_is_zero_at_step_one():
    assert check_ha_zero_at_step_one(ganapp_uniform)
    assert_catches(check_ha_zero_at_step_one, [official_ema_from_zero])


def check_ha_linear_drift(make) -> bool:
    weight, theta0, d = 0.3, randn(5, seed=32), randn(5, seed=33)
    parameter = nn.Parameter(theta0.clone())
    fold = make([parameter], weight)
    penalties = []
    for t in range(1, 9):
        with torch.no_grad():
            parameter.copy_(theta0 + t * d)
        penalty = float(fold().detach())
        expected = weight * float(d.pow(2).sum()) * ((t - 1) / 2) ** 2
        if not math.isclose(penalty, expected, rel_tol=1e-12, abs_tol=1e-15):
            return False
        penalties.append(penalty)
    return all(b > a for a, b in zip(penalties, penalties[1:]))


def test_ha_b_linear_drift_gives_a_growing_penalty_weight_d2_times_t_minus_1_over_2_squared():
    assert check_ha_linear_drift(ganapp_uniform)
    assert_catches(check_ha_linear_drift, [torchgan_previous_snapshots, official_ema_from_zero, ganapp_exponential])


def check_ha_uniform_average_of_0_0_0_10(make) -> bool:
    direction = torch.tensor([1.0, -2.0, 0.5], dtype=DOUBLE)
    parameter = nn.Parameter(torch.zeros(3, dtype=DOUBLE))
    fold = make([parameter], 1.0)
    for value in (0.0, 0.0, 0.0, 10.0):
        with torch.no_grad():
            parameter.copy_(value * direction)
        penalty = float(fold().detach())
    # average 2.5 * direction, so the penalty is ||(10 - 2.5) direction||^2
    return math.isclose(penalty, 7.5**2 * float(direction.pow(2).sum()), rel_tol=1e-12)


def test_ha_c_average_of_0_0_0_10_is_2_5():
    parameter = nn.Parameter(torch.zeros(3, dtype=DOUBLE))
    average = HistoricalAverage([parameter], mode="uniform", weight=1.0)
    for value in (0.0, 0.0, 0.0, 10.0):
        with torch.no_grad():
            parameter.fill_(value)
        average.update()
    assert torch.allclose(average.averages()[0], torch.full((3,), 2.5, dtype=DOUBLE), rtol=0, atol=1e-15)
    assert check_ha_uniform_average_of_0_0_0_10(ganapp_uniform)
    assert_catches(check_ha_uniform_average_of_0_0_0_10,
                   [ganapp_exponential, torchgan_previous_snapshots, official_ema_from_zero])


def check_ha_gradient_is_2_weight_times_theta_minus_average(make) -> bool:
    weight = 0.4
    parameters = [nn.Parameter(randn(3, 2, seed=34)), nn.Parameter(randn(4, seed=35))]
    history = []
    fold = make(parameters, weight)
    for step in range(5):
        with torch.no_grad():
            for p in parameters:
                p.add_(randn(*p.shape, seed=36 + step))
        history.append([p.detach().clone() for p in parameters])
        penalty = fold()
    if any(p.grad is not None for p in parameters):  # the penalty is pure: no backward of its own
        return False
    penalty.backward()
    averages = [torch.stack(h).mean(0) for h in zip(*history)]  # uniform, current included
    return all(torch.allclose(p.grad, 2 * weight * (p.detach() - a), rtol=1e-12, atol=1e-15)
               for p, a in zip(parameters, averages))


def test_ha_d_gradient_is_2_weight_theta_minus_average_and_none_reaches_the_average():
    assert check_ha_gradient_is_2_weight_times_theta_minus_average(ganapp_uniform)
    assert_catches(check_ha_gradient_is_2_weight_times_theta_minus_average, [average_not_held_constant])
    parameter = nn.Parameter(randn(3, seed=37))
    average = HistoricalAverage([parameter], weight=1.0)
    average.update()
    average.penalty().backward()
    assert all(not buffer.requires_grad and buffer.grad is None for buffer in average.buffers())
    assert all(not a.requires_grad for a in average.averages())


def test_ha_exponential_mode_is_a_moving_average_that_keeps_decay_of_the_past():
    """avg_1 = theta_1, then avg <- decay avg + (1 - decay) theta. Catches decay and 1 - decay
    swapped, and a start from 0 (the official disc_param_avg) instead of the first theta."""
    decay, weight = 0.9, 0.5
    parameter = nn.Parameter(torch.zeros(3, dtype=DOUBLE))
    average = HistoricalAverage([parameter], mode="exponential", weight=weight, decay=decay)
    expected = None
    for value in (4.0, 10.0, 10.0, -2.0):
        with torch.no_grad():
            parameter.fill_(value)
        average.update()
        expected = value if expected is None else decay * expected + (1 - decay) * value
        (got,) = average.averages()
        assert torch.allclose(got, torch.full((3,), expected, dtype=DOUBLE), rtol=1e-12, atol=0), (value, got)
        penalty = average.penalty().detach()
        assert math.isclose(float(penalty), weight * 3 * (value - expected) ** 2, rel_tol=1e-12, abs_tol=1e-15)
    assert int(average.count) == 4
    assert expected == pytest.approx(4.426)  # 4, 4.6, 5.14, 4.426
    # The averages are copies: changing one leaves the stored average alone.
    average.averages()[0].fill_(100.0)
    assert float(average.averages()[0][0]) == pytest.approx(expected)


def test_ha_state_is_named_buffers_that_round_trip_and_bad_modes_are_refused():
    parameters = [nn.Parameter(randn(3, 2, seed=38)), nn.Parameter(randn(4, seed=39))]
    defaults = HistoricalAverage(parameters)
    assert (defaults.mode, defaults.weight, defaults.decay) == ("uniform", 1.0, 0.99)
    average = HistoricalAverage(parameters, weight=2.0)
    for _ in range(3):
        average.update()
    state = average.state_dict()
    assert sorted(state) == ["average_0", "average_1", "count"]
    assert state["average_0"].shape == (3, 2) and state["average_0"].is_contiguous()
    assert state["count"].dtype == torch.int64 and int(state["count"]) == 3
    assert torch.allclose(state["average_1"], 3 * parameters[1].detach(), rtol=1e-12, atol=0)  # the running sum
    other = HistoricalAverage(parameters, weight=2.0)
    other.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(other.averages(), average.averages()))
    assert float(other.penalty().detach()) == float(average.penalty().detach()) == pytest.approx(0.0, abs=1e-24)
    with pytest.raises(ValueError, match="historical averaging mode must be 'uniform' or 'exponential'; got 'ema'"):
        HistoricalAverage(parameters, mode="ema")
    # A tracked parameter that is not contiguous still gets a contiguous buffer.
    transposed = nn.Parameter(randn(2, 3, seed=40).t())
    assert HistoricalAverage([transposed]).state_dict()["average_0"].is_contiguous()


def xy_game_radius(make=None, *, weight: float = 0.1, lr: float = 0.1, steps: int = 1000) -> float:
    """Player x minimises xy, player y minimises -xy; simultaneous SGD from (1, 1).

    Each player's loss is its game loss plus its own historical-averaging penalty.
    """
    x = nn.Parameter(torch.tensor(1.0, dtype=DOUBLE))
    y = nn.Parameter(torch.tensor(1.0, dtype=DOUBLE))
    optimizer_x, optimizer_y = torch.optim.SGD([x], lr=lr), torch.optim.SGD([y], lr=lr)
    penalty_x = make([x], weight) if make else None
    penalty_y = make([y], weight) if make else None
    for _ in range(steps):
        loss_x, loss_y = x * y, -(x * y)
        if make:
            loss_x, loss_y = loss_x + penalty_x(), loss_y + penalty_y()
        # Simultaneous: both gradients at the same point, then both steps.
        (x.grad,) = torch.autograd.grad(loss_x, x)
        (y.grad,) = torch.autograd.grad(loss_y, y)
        optimizer_x.step()
        optimizer_y.step()
    return math.hypot(float(x.detach()), float(y.detach()))


def test_ha_e_xy_game_spirals_out_without_ha_and_converges_with_uniform_ha():
    start = math.sqrt(2)
    without = xy_game_radius(None)
    # Each simultaneous step multiplies the radius by sqrt(1 + lr^2): 1.01^500 * sqrt(2) ~ 205.
    assert math.isclose(without, start * (1 + 0.1**2) ** 500, rel_tol=1e-9)
    assert without > 100 * start
    with_ha = xy_game_radius(ganapp_uniform, weight=0.1)
    assert with_ha < 0.01, with_ha  # techniques.md's numpy check: 0.0045


# =========================================================================================
# 4. One-sided label smoothing
# =========================================================================================

def two_sided(real_logits, fake_logits, real_target=1.0):
    """Smoothing both sides: fake target 1 - alpha."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_target))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.full_like(fake_logits, 1.0 - real_target)))


def ganhacks_random_targets(real_logits, fake_logits, real_target=1.0):
    """ganhacks section 6: real targets in [0.7, 1.2], fake in [0, 0.3], drawn at random."""
    g = torch.Generator().manual_seed(0)
    real = 0.7 + 0.5 * torch.rand(real_logits.shape, generator=g, dtype=real_logits.dtype)
    fake = 0.3 * torch.rand(fake_logits.shape, generator=g, dtype=fake_logits.dtype)
    return (F.binary_cross_entropy_with_logits(real_logits, real)
            + F.binary_cross_entropy_with_logits(fake_logits, fake))


def implied_targets(logits: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """The BCE target of each element, whatever the positive scale c of the reduction.

    For BCE with logits, d loss / d l_i = c (sigmoid(l_i) - t_i); one target per side,
    so two elements give c and t, and every other element must agree with them.
    """
    p = torch.sigmoid(logits)
    c = (gradient[1] - gradient[0]) / (p[1] - p[0])
    return p - gradient / c


def check_ls_targets(loss) -> bool:
    for alpha in (0.7, 0.9, 1.0):
        real, fake = randn(5, seed=40).requires_grad_(), randn(3, seed=41).requires_grad_()  # unequal sizes
        real_gradient, fake_gradient = torch.autograd.grad(loss(real, fake, alpha), (real, fake))
        real_targets = implied_targets(real.detach(), real_gradient)
        fake_targets = implied_targets(fake.detach(), fake_gradient)
        if not (torch.allclose(real_targets, torch.full_like(real_targets, alpha), rtol=0, atol=1e-12)
                and bool(fake_targets.abs().max() < 1e-12)):
            return False
    return True


def test_ls_a_fake_target_is_exactly_0_and_real_target_is_alpha():
    assert check_ls_targets(discriminator_loss)
    assert_catches(check_ls_targets, [two_sided, ganhacks_random_targets])


def check_ls_alpha_one_is_plain_bce(loss) -> bool:
    real, fake = randn(6, seed=42), randn(4, seed=43)
    plain = -torch.log(torch.sigmoid(real)).mean() - torch.log(1 - torch.sigmoid(fake)).mean()
    return math.isclose(float(loss(real, fake, 1.0)), float(plain), rel_tol=1e-12)


def test_ls_b_alpha_one_is_plain_bce():
    assert check_ls_alpha_one_is_plain_bce(discriminator_loss)
    real, fake = randn(6, seed=42), randn(4, seed=43)
    assert torch.equal(discriminator_loss(real, fake), discriminator_loss(real, fake, 1.0))  # the default
    assert_catches(check_ls_alpha_one_is_plain_bce, [ganhacks_random_targets])


def check_ls_gradients(loss, alpha: float = 0.9) -> bool:
    at_target = torch.full((4,), math.log(alpha / (1 - alpha)), dtype=DOUBLE, requires_grad=True)
    fake = torch.zeros(3, dtype=DOUBLE)
    (real_gradient,) = torch.autograd.grad(loss(at_target, fake, alpha), at_target)
    # The fake loss keeps falling as its logit goes to -infinity: a positive slope all the way.
    falling = torch.linspace(5.0, -100.0, 211, dtype=DOUBLE).requires_grad_()
    real = torch.zeros(3, dtype=DOUBLE)
    (fake_gradient,) = torch.autograd.grad(loss(real, falling, alpha), falling)
    return bool(real_gradient.abs().max() < 1e-15) and bool((fake_gradient > 0).all())


def test_ls_c_real_gradient_is_zero_at_alpha_and_fake_loss_keeps_falling():
    assert check_ls_gradients(discriminator_loss)
    assert_catches(check_ls_gradients, [two_sided, ganhacks_random_targets])


def test_ls_generator_loss_is_non_saturating_unless_asked():
    logits = randn(8, seed=45)
    assert torch.equal(generator_loss(logits), generator_loss(logits, saturating=False))
    assert torch.allclose(generator_loss(logits), -torch.log(torch.sigmoid(logits)).mean(), rtol=1e-12)
    assert torch.allclose(generator_loss(logits, saturating=True), torch.log(1 - torch.sigmoid(logits)).mean(),
                          rtol=1e-12)


def official_imagenet_generator_loss(fake_logits, real_target):
    """Official ImageNet: the generator's target is alpha / 2 (.375 for alpha = .75)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.full_like(fake_logits, real_target / 2))


def check_generator_loss_ignores_alpha(loss) -> bool:
    logits = randn(8, seed=44)
    return all(torch.equal(loss(logits, alpha), loss(logits, 1.0)) for alpha in (0.6, 0.75, 0.9))


def test_ls_d_generator_loss_does_not_depend_on_alpha():
    assert check_generator_loss_ignores_alpha(lambda logits, alpha: generator_loss(logits))
    assert_catches(check_generator_loss_ignores_alpha, [official_imagenet_generator_loss])

    # In the training step: with D frozen at the same weights, alpha changes D's loss and
    # nothing of G's step.
    results, generators = [], []
    for alpha in (None, 0.9):
        trainer = Trainer(ring8_config(label_smoothing=alpha))
        trainer.discriminator_optimizer.step = lambda *args, **kwargs: None
        results.append(trainer.train_step())
        generators.append(snapshot(trainer.generator))
    assert not torch.equal(results[0].d_loss, results[1].d_loss)
    assert torch.equal(results[0].g_loss, results[1].g_loss)
    assert same_tensors(generators[0], generators[1])


def pointwise_objective(loss, alpha: float, p_data: float, p_model: float):
    """V(l) = p_data R(l) + p_model F(l) for a logit l, per element, from a loss R(r) + F(f)."""
    constant = torch.zeros(1, dtype=DOUBLE)

    def value(logit):
        return (p_data * loss(logit[None], constant, alpha) + p_model * loss(constant, logit[None], alpha))
    return torch.func.vmap(value)


def grid_minimum(objective, low: float, high: float, points: int = 2001) -> float:
    """The D in [low, high] (of a grid of `points`) where objective(logit(D)) is smallest."""
    d_grid = torch.linspace(low, high, points, dtype=DOUBLE)
    return float(d_grid[objective(torch.log(d_grid) - torch.log1p(-d_grid)).argmin()])


def check_ls_optimal_discriminator(loss) -> bool:
    for alpha in (0.75, 0.9, 1.0):
        for p_data, p_model in ((0.3, 0.7), (1.0, 1.0), (2.0, 0.5), (0.05, 1.2)):
            expected = alpha * p_data / (p_data + p_model)
            objective = pointwise_objective(loss, alpha, p_data, p_model)
            # Grid search over D in (0, 1): a coarse grid (step 5e-4), then a fine one (step 1e-6).
            coarse = grid_minimum(objective, 1e-6, 1 - 1e-6)
            best = grid_minimum(objective, max(coarse - 1e-3, 1e-7), min(coarse + 1e-3, 1 - 1e-7))
            if abs(best - expected) > 2e-6:
                return False
            # At the closed form the slope is 0 (V is convex in the logit, so it is the minimum).
            logit = torch.tensor(math.log(expected / (1 - expected)), dtype=DOUBLE, requires_grad=True)
            (slope,) = torch.autograd.grad(objective(logit[None]).sum(), logit)
            if abs(float(slope)) > 1e-12:
                return False
    return True


def test_ls_e_pointwise_minimum_is_alpha_p_data_over_p_data_plus_p_model():
    assert check_ls_optimal_discriminator(discriminator_loss)
    assert_catches(check_ls_optimal_discriminator, [two_sided])


# =========================================================================================
# 5. Virtual batch normalization
# =========================================================================================
# Wrong implementations share virtual_batch_norm's signature:
# (x, reference, weight, bias, eps) -> (live output, reference output).

def spatial_dims(x: torch.Tensor) -> tuple[int, ...]:
    return tuple(range(2, x.dim()))


def channel_view(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(1, -1, *([1] * (like.dim() - 2)))


def mean_over(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    return x.mean(dim=dims, keepdim=True) if dims else x  # torch's mean over () would reduce everything


def batch_norm(x, weight, bias, eps=1e-5):
    """torch's own batch norm in training mode: per channel, biased variance."""
    return F.batch_norm(x, None, None, weight, bias, training=True, eps=eps)


def vbn_variant(*, self_weight=lambda n: 1 / (n + 1), per_pixel=False, unbiased=False, batch_meansq=False,
                mixed_reference=False, name="vbn_variant"):
    """VBN written independently of ganapp's, with a switch for each known mistake."""

    def vbn(x, reference, weight, bias, eps=1e-5):
        n_ref = reference.shape[0]
        ref_dims = (0,) if per_pixel else (0, *spatial_dims(reference))
        own_dims = () if per_pixel else spatial_dims(x)
        ref_mean, ref_meansq = mean_over(reference, ref_dims), mean_over(reference.pow(2), ref_dims)
        own_mean, own_meansq = mean_over(x, own_dims), mean_over(x.pow(2), own_dims)
        if batch_meansq:  # the official code before e0e5ffc: mean-square over the whole live batch
            own_meansq = mean_over(x.pow(2), (0, *spatial_dims(x)))
        w = self_weight(n_ref)
        mean, meansq = w * own_mean + (1 - w) * ref_mean, w * own_meansq + (1 - w) * ref_meansq
        variance = meansq - mean.pow(2)
        if unbiased:  # Bessel's correction over the values the statistics stand for
            values = n_ref + (1 if w > 0 else 0)
            if not per_pixel:
                values *= math.prod(x.shape[2:])
            variance = variance * values / (values - 1)
        live = (x - mean) / torch.sqrt(variance + eps) * channel_view(weight, x) + channel_view(bias, x)
        if mixed_reference:  # the reference path normalised like a live batch
            reference_out = vbn_variant(name="")(reference, reference, weight, bias, eps)[0]
        else:
            reference_out = batch_norm(reference, weight, bias, eps)
        return live, reference_out

    vbn.__name__ = name
    return vbn


vbn_pre_fix_official = vbn_variant(batch_meansq=True, name="vbn_pre_fix_official")
vbn_torchgan = vbn_variant(self_weight=lambda n: 0.0, per_pixel=True, unbiased=True, name="vbn_torchgan")
vbn_unbiased = vbn_variant(unbiased=True, name="vbn_unbiased")
vbn_self_weight_1_over_n = vbn_variant(self_weight=lambda n: 1 / n, name="vbn_self_weight_1_over_n")
vbn_no_self = vbn_variant(self_weight=lambda n: 0.0, name="vbn_no_self")
vbn_per_pixel = vbn_variant(per_pixel=True, name="vbn_per_pixel")
vbn_mixed_reference = vbn_variant(mixed_reference=True, name="vbn_mixed_reference")


def vbn_whole_batch(x, reference, weight, bias, eps=1e-5):
    """Batch-norm style: the live batch normalised with the statistics of reference + whole batch."""
    live = batch_norm(torch.cat([reference, x]), weight, bias, eps)[reference.shape[0]:]
    return live, batch_norm(reference, weight, bias, eps)


def vbn_live_is_batch_norm(x, reference, weight, bias, eps=1e-5):
    """Plain batch norm of the live batch; the reference is ignored."""
    return batch_norm(x, weight, bias, eps), batch_norm(reference, weight, bias, eps)


class TorchganStatefulVBN:
    """torchgan: call 1 stores its input's statistics as the reference, call 2 uses them and
    resets, call 3 becomes a new reference (issue #146); per pixel, unbiased, no self."""

    __name__ = "torchgan_stateful_vbn"

    def __init__(self):
        self.stored = None

    def __call__(self, x, reference, weight, bias, eps=1e-5):
        if self.stored is None:
            self.stored = (x.mean(0, keepdim=True).detach(), x.var(0, keepdim=True).detach())
            mean, variance = self.stored
        else:
            (mean, variance), self.stored = self.stored, None
        live = (x - mean) / torch.sqrt(variance + eps) * channel_view(weight, x) + channel_view(bias, x)
        return live, batch_norm(reference, weight, bias, eps)


SHAPES = [pytest.param((7, 4), id="n_C"), pytest.param((6, 3, 4, 5), id="n_C_H_W")]


def vbn_inputs(shape, n_ref=9, seed=50):
    """A live batch, a reference batch, gamma and beta; channels with their own scale and offset."""
    channels = shape[1]
    rest = shape[2:]
    offset = channel_view(randn(channels, seed=seed), torch.zeros(1, *shape[1:]))
    scale = channel_view(randn(channels, seed=seed + 1).abs() + 0.5, torch.zeros(1, *shape[1:]))
    x = randn(shape[0], channels, *rest, seed=seed + 2) * scale + offset
    reference = randn(n_ref, channels, *rest, seed=seed + 3) * scale + offset
    weight, bias = randn(channels, seed=seed + 4) + 1, randn(channels, seed=seed + 5)
    return x, reference, weight, bias


@pytest.mark.parametrize("shape", SHAPES)
def test_vbn_our_independent_variant_agrees_with_ganapp(shape):
    x, reference, weight, bias = vbn_inputs(shape)
    ours, ours_reference = virtual_batch_norm(x, reference, weight, bias)
    theirs, theirs_reference = vbn_variant()(x, reference, weight, bias)
    assert torch.allclose(ours, theirs, rtol=0, atol=1e-12)
    assert torch.allclose(ours_reference, theirs_reference, rtol=0, atol=1e-12)


def check_vbn_batch_independent(vbn, shape) -> bool:
    x, reference, weight, bias = vbn_inputs(shape)
    others = randn(*x.shape, seed=99) * 3 + 1
    in_batch = vbn(x, reference, weight, bias)[0][0]
    alone = vbn(x[:1], reference, weight, bias)[0][0]
    other_mates = vbn(torch.cat([x[:1], others]), reference, weight, bias)[0][0]
    return (torch.allclose(in_batch, alone, rtol=0, atol=1e-12)
            and torch.allclose(in_batch, other_mates, rtol=0, atol=1e-12))


@pytest.mark.parametrize("shape", SHAPES)
def test_vbn_a_output_unchanged_when_batch_mates_or_batch_size_change(shape):
    assert check_vbn_batch_independent(virtual_batch_norm, shape)
    assert_catches(check_vbn_batch_independent, [vbn_whole_batch, vbn_pre_fix_official, vbn_live_is_batch_norm],
                   shape)


def check_vbn_leave_one_out_is_batch_norm(vbn, shape) -> bool:
    X, _, weight, bias = vbn_inputs(shape)
    expected = batch_norm(X, weight, bias)  # torch's BN over the whole of X, biased variance
    for i in range(X.shape[0]):
        rest = torch.cat([X[:i], X[i + 1:]])
        if not torch.allclose(vbn(X[i:i + 1], rest, weight, bias)[0][0], expected[i], rtol=0, atol=1e-11):
            return False
    return True


@pytest.mark.parametrize("shape", SHAPES)
def test_vbn_b_leave_one_out_reference_equals_torch_batch_norm(shape):
    assert check_vbn_leave_one_out_is_batch_norm(virtual_batch_norm, shape)
    wrong = [vbn_unbiased, vbn_self_weight_1_over_n, vbn_no_self, vbn_torchgan]
    if len(shape) == 4:
        wrong.append(vbn_per_pixel)  # with no spatial dims, per pixel and per channel coincide
    assert_catches(check_vbn_leave_one_out_is_batch_norm, wrong, shape)


def check_vbn_reference_path_is_batch_norm(vbn, shape) -> bool:
    _, reference, weight, bias = vbn_inputs(shape)
    expected = batch_norm(reference, weight, bias)
    live_on_reference, reference_out = vbn(reference, reference, weight, bias)
    return (torch.allclose(reference_out, expected, rtol=0, atol=1e-12)
            and not torch.allclose(live_on_reference, expected, rtol=0, atol=1e-3))


@pytest.mark.parametrize("shape", SHAPES)
def test_vbn_c_reference_path_is_batch_norm_and_live_path_on_the_reference_is_not(shape):
    assert check_vbn_reference_path_is_batch_norm(virtual_batch_norm, shape)
    assert_catches(check_vbn_reference_path_is_batch_norm, [vbn_mixed_reference, vbn_live_is_batch_norm], shape)


def test_vbn_reference_statistics_are_per_channel_mean_and_mean_square():
    _, reference, _, _ = vbn_inputs((6, 3, 4, 5))
    mean, meansq = reference_statistics(reference)
    per_channel = reference.transpose(0, 1).reshape(3, -1)
    assert torch.allclose(mean, per_channel.mean(1), rtol=0, atol=1e-14)
    assert torch.allclose(meansq, per_channel.pow(2).mean(1), rtol=0, atol=1e-14)


def check_vbn_one_pixel_moves_its_whole_channel(vbn) -> bool:
    x, reference, weight, bias = vbn_inputs((6, 3, 4, 5))
    changed = x.clone()
    changed[0, 1, 2, 3] += 1.0
    before, after = vbn(x, reference, weight, bias)[0], vbn(changed, reference, weight, bias)[0]
    difference = (after - before).abs()
    return (bool(difference[0, 1].min() > 1e-6)  # every pixel of that example's channel moved
            and bool(difference[0, [0, 2]].max() == 0)  # other channels did not
            and bool(difference[1:].max() == 0))  # nor other examples


def test_vbn_d_changing_one_pixel_changes_every_output_pixel_of_its_channel():
    assert check_vbn_one_pixel_moves_its_whole_channel(virtual_batch_norm)
    assert_catches(check_vbn_one_pixel_moves_its_whole_channel, [vbn_per_pixel, vbn_torchgan])


def check_vbn_repeatable(vbn) -> bool:
    x, reference, weight, bias = vbn_inputs((6, 3, 4, 5))
    other_x, other_reference, _, _ = vbn_inputs((6, 3, 4, 5), seed=70)
    vbn(other_x, other_reference, weight, bias)  # some other call first, e.g. another batch
    first = vbn(x, reference, weight, bias)
    second = vbn(x, reference, weight, bias)
    return all(torch.equal(a, b) for a, b in zip(first, second))


def test_vbn_e_repeated_calls_give_the_same_result():
    assert check_vbn_repeatable(virtual_batch_norm)
    layer = VirtualBatchNorm(3).double()
    assert check_vbn_repeatable(lambda x, reference, weight, bias: layer(x, reference))
    assert list(layer.buffers()) == []  # no hidden state that the order of calls could change
    assert_catches(check_vbn_repeatable, [TorchganStatefulVBN()])


def test_vbn_layer_starts_as_identity_affine_and_passes_its_eps():
    x, reference, _, _ = vbn_inputs((6, 3, 4, 5))
    layer = VirtualBatchNorm(3).double()
    assert layer.num_features == 3 and layer.eps == 1e-5
    assert torch.equal(layer.weight, torch.ones(3, dtype=DOUBLE)) and torch.equal(layer.bias, torch.zeros(3, dtype=DOUBLE))
    ones, zeros = torch.ones(3, dtype=DOUBLE), torch.zeros(3, dtype=DOUBLE)
    _, reference_out = layer(x, reference)
    assert torch.allclose(reference_out, batch_norm(reference, ones, zeros, eps=1e-5), rtol=0, atol=1e-12)
    wide = VirtualBatchNorm(3, eps=0.5).double()
    for got, want in zip(wide(x, reference), virtual_batch_norm(x, reference, ones, zeros, eps=0.5)):
        assert torch.equal(got, want)
    assert not torch.allclose(wide(x, reference)[0], layer(x, reference)[0])


def check_reference_noise_survives_an_optimizer_step(generator) -> bool:
    before = generator.reference_noise.detach().clone()
    optimizer = torch.optim.Adam(generator.parameters(), lr=0.1)
    z = torch.randn(8, generator.reference_noise.shape[1], generator=torch.Generator().manual_seed(1))
    generator(z).pow(2).sum().backward()
    optimizer.step()
    return torch.equal(generator.reference_noise, before)


def test_vbn_f_reference_noise_is_unchanged_by_an_optimizer_step():
    generator, _ = build_models(ring8_config(virtual_batch_norm=True, vbn_reference_size=8), (2,))
    assert "reference_noise" in generator.state_dict()  # saved in the checkpoint
    weights_before = snapshot(generator)
    assert check_reference_noise_survives_an_optimizer_step(generator)
    assert not same_tensors(snapshot(generator), weights_before)  # the step did move G

    # The mistake: z_ref registered as a parameter, so the optimizer trains it (the gradient
    # reaches it through the reference statistics).
    wrong, _ = build_models(ring8_config(virtual_batch_norm=True, vbn_reference_size=8), (2,))
    noise = wrong.reference_noise
    del wrong._buffers["reference_noise"]
    wrong.reference_noise = nn.Parameter(noise.clone())
    assert not check_reference_noise_survives_an_optimizer_step(wrong)

    # And through real training steps.
    trainer = Trainer(ring8_config(virtual_batch_norm=True, vbn_reference_size=8))
    reference_noise = trainer.generator.reference_noise.clone()
    for _ in range(2):
        trainer.train_step()
    assert torch.equal(trainer.generator.reference_noise, reference_noise)


def test_vbn_gradients_pass_through_the_reference_statistics():
    x, reference, weight, bias = vbn_inputs((6, 3, 4, 5))
    reference.requires_grad_()
    live, _ = virtual_batch_norm(x, reference, weight, bias)
    (gradient,) = torch.autograd.grad(live.pow(3).sum(), reference)
    assert bool(gradient.abs().sum() > 0)


def test_vbn_reference_output_carries_gradient_into_the_next_layer():
    """The reference path feeds the next layer's reference statistics, with its gradient:
    two VBN layers in a row must match finite differences with respect to the first
    layer's reference input. Catches the reference output returned detached."""
    x, reference, weight, bias = vbn_inputs((4, 3, 2, 2), n_ref=5)
    mixing = randn(3, 3, seed=60)

    def two_layers(reference_in):
        live, reference_out = virtual_batch_norm(x, reference_in, weight, bias)
        live, reference_out = torch.einsum("dc,nc...->nd...", mixing, live), torch.einsum(
            "dc,nc...->nd...", mixing, reference_out)
        return virtual_batch_norm(live, reference_out, weight, bias)[0]

    assert torch.autograd.gradcheck(two_layers, (reference.clone().requires_grad_(),), eps=1e-6, atol=1e-6)
    live, reference_out = VirtualBatchNorm(3).double()(x, reference.clone().requires_grad_())
    assert reference_out.requires_grad and live.requires_grad


def check_vbn_batch_of_one(vbn, shape) -> bool:
    x, reference, weight, bias = vbn_inputs(shape)
    alone = vbn(x[:1], reference, weight, bias)[0]
    return alone.shape == x[:1].shape and bool(torch.isfinite(alone).all()) and torch.allclose(
        alone[0], vbn(x, reference, weight, bias)[0][0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_vbn_g_a_batch_of_size_one_works(shape):
    assert check_vbn_batch_of_one(virtual_batch_norm, shape)
    assert_catches(check_vbn_batch_of_one, [vbn_live_is_batch_norm], shape)


IMAGE_SHAPE = (1, 8, 8)  # the digits set
NOISE_DIM = GANConfig().noise_dim


def check_generator_batch_of_one(generator) -> bool:
    out = generator(randn(1, NOISE_DIM, seed=80))
    return out.shape[0] == 1 and bool(torch.isfinite(out).all())


def generators(sample_shape):
    """The VBN and the BN generator of the same config, in float64 and training mode."""
    config = ring8_config(hidden_dim=16, vbn_reference_size=8)
    with_vbn, _ = build_models(config.replace(virtual_batch_norm=True), sample_shape)
    with_bn, _ = build_models(config, sample_shape)
    return with_vbn.double().train(), with_bn.double().train()


@pytest.mark.parametrize("sample_shape", [pytest.param((2,), id="mlp"), pytest.param(IMAGE_SHAPE, id="image")])
def test_vbn_g_generator_takes_a_batch_of_one_in_training_mode(sample_shape):
    with_vbn, with_bn = generators(sample_shape)
    assert check_generator_batch_of_one(with_vbn)
    if len(sample_shape) == 1:  # BatchNorm1d refuses one example per channel in training mode
        assert not holds(check_generator_batch_of_one, with_bn)


def check_generator_examples_independent(generator) -> bool:
    z = randn(6, NOISE_DIM, seed=81)
    other = randn(6, NOISE_DIM, seed=82) * 2
    with torch.no_grad():
        in_batch = generator(z)[0]
        alone = generator(z[:1])[0]
        other_mates = generator(torch.cat([z[:1], other]))[0]
    return (torch.allclose(in_batch, alone, rtol=0, atol=1e-12)
            and torch.allclose(in_batch, other_mates, rtol=0, atol=1e-12))


@pytest.mark.parametrize("sample_shape", [pytest.param((2,), id="mlp"), pytest.param(IMAGE_SHAPE, id="image")])
def test_vbn_a_generator_output_does_not_depend_on_batch_mates_unlike_batch_norm(sample_shape):
    with_vbn, with_bn = generators(sample_shape)
    assert check_generator_examples_independent(with_vbn)
    assert not holds(check_generator_examples_independent, with_bn)
