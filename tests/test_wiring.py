"""The training step's wiring of the five techniques (ganapp/training.py).

test_techniques.py checks each technique as a pure function; this file checks that the
trainer calls them where techniques.md says, with the right inputs, and keeps their state.
Two kinds of test:
 - `SpecRun` is a GAN step written here from techniques.md (its own historical average,
   its own losses, its own Adam), run beside a `Trainer` of the same config: after every
   step both must report the same losses, hand their optimizers the same gradients and
   leave D with the same weights and both random generators in the same state.
 - targeted tests, one per mistake that today's suite once let through (each names it):
   G's historical-averaging penalty dropped, the feature-matching flag ignored, the
   exponential average's decay swapped, a second real batch drawn for feature matching,
   VBN's reference noise not restored from saved state, the VBN reference path detached.
Everything runs on tiny models in a few steps: this file is part of the fast tier.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

torch.set_num_threads(1)  # small models: one thread is fastest, and tests share 2 cores

from ganapp.config import GANConfig
from ganapp.data import load_dataset
from ganapp.models import build_models
from ganapp.techniques import feature_matching_loss
from ganapp.training import Trainer

# Distinct learning rates and betas, so that a mix-up between them shows.
BASE = dict(batch_size=16, hidden_dim=16, steps=20, lr_generator=2e-3, lr_discriminator=5e-4, beta1=0.3,
            beta2=0.99, device="cpu")
ALL_FIVE = dict(feature_matching=True, minibatch_discrimination=True, historical_averaging="uniform",
                historical_averaging_weight=5.0, label_smoothing=0.8, virtual_batch_norm=True, vbn_reference_size=8)


def small(data: str = "ring8", **changes) -> GANConfig:
    return GANConfig(data=data, **{**BASE, **changes})


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


def parameters_of(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def record_gradients(optimizer: torch.optim.Optimizer, into: list) -> None:
    """Wrap optimizer.step so that each call first records the gradients it is handed."""
    step = optimizer.step

    def recording_step(*args, **kwargs):
        into.append([p.grad.detach().clone() for group in optimizer.param_groups for p in group["params"]])
        return step(*args, **kwargs)

    optimizer.step = recording_step


# =========================================================================================
# The step written from techniques.md
# =========================================================================================

class SpecHistoricalAverage:
    """techniques.md section 3 written out: uniform (1/t) sum of theta_1..theta_t, current
    included; exponential avg <- decay avg + (1 - decay) theta, starting from the first theta."""

    def __init__(self, parameters, mode: str, weight: float, decay: float):
        self.parameters, self.mode, self.weight, self.decay = list(parameters), mode, weight, decay
        self.history: list[list[torch.Tensor]] = []
        self.moving: list[torch.Tensor] | None = None

    def fold_and_penalty(self) -> torch.Tensor:
        current = [p.detach().clone() for p in self.parameters]
        self.history.append(current)
        if self.mode == "uniform":
            average = [torch.stack(column).mean(0) for column in zip(*self.history)]
        elif self.moving is None:
            average = self.moving = current
        else:
            average = self.moving = [self.decay * a + (1 - self.decay) * c for a, c in zip(self.moving, current)]
        return self.weight * sum((p - a).pow(2).sum() for p, a in zip(self.parameters, average))


class SpecRun:
    """The models of build_models, everything else from the spec: one D step, then one G step."""

    def __init__(self, config: GANConfig):
        self.config = config
        self.dataset = load_dataset(config.data, seed=config.seed)
        self.generator, self.discriminator = build_models(config, self.dataset.sample_shape)
        betas = (config.beta1, config.beta2)
        self.generator_optimizer = torch.optim.Adam(self.generator.parameters(), lr=config.lr_generator, betas=betas)
        self.discriminator_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr_discriminator,
                                                        betas=betas)
        self.averages = {}
        if config.historical_averaging != "off":
            for name, network in (("generator", self.generator), ("discriminator", self.discriminator)):
                self.averages[name] = SpecHistoricalAverage(network.parameters(), config.historical_averaging,
                                                            config.historical_averaging_weight,
                                                            config.historical_averaging_decay)
        self.data_rng = torch.Generator().manual_seed(config.seed + 1)
        self.noise_rng = torch.Generator().manual_seed(config.seed + 2)

    def step(self) -> dict:
        config = self.config
        alpha = 1.0 if config.label_smoothing is None else config.label_smoothing
        x_real = self.dataset.sample(config.batch_size, self.data_rng)
        z = torch.randn(config.batch_size, config.noise_dim, generator=self.noise_rng)
        x_fake = self.generator(z)

        # (1) D: BCE toward alpha on the real batch, toward exactly 0 on the fake batch,
        # two separate calls (minibatch features within each batch), plus D's HA penalty.
        real_logits, _ = self.discriminator(x_real)
        fake_logits, _ = self.discriminator(x_fake.detach())
        d_loss = (F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, alpha))
                  + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
        if "discriminator" in self.averages:
            d_loss = d_loss + self.averages["discriminator"].fold_and_penalty()
        d_gradients = torch.autograd.grad(d_loss, list(self.discriminator.parameters()))
        for p, g in zip(self.discriminator.parameters(), d_gradients):
            p.grad = g
        self.discriminator_optimizer.step()

        # (2) G, against the updated D: feature matching on the same real batch, or the
        # adversarial loss; plus G's HA penalty.
        fake_logits_for_g, fake_features = self.discriminator(x_fake)
        if config.feature_matching:
            with torch.no_grad():
                real_features = self.discriminator(x_real)[1]
            g_loss = (real_features.mean(0) - fake_features.mean(0)).pow(2).sum()
        elif config.generator_loss == "saturating":
            g_loss = torch.log1p(-torch.sigmoid(fake_logits_for_g)).mean()  # log(1 - D(G(z)))
        else:
            g_loss = -F.logsigmoid(fake_logits_for_g).mean()  # -log D(G(z))
        if "generator" in self.averages:
            g_loss = g_loss + self.averages["generator"].fold_and_penalty()
        g_gradients = torch.autograd.grad(g_loss, list(self.generator.parameters()))
        for p, g in zip(self.generator.parameters(), g_gradients):
            p.grad = g
        self.generator_optimizer.step()
        return dict(d_loss=d_loss.detach(), g_loss=g_loss.detach(), real_logits=real_logits.detach(),
                    fake_logits=fake_logits.detach(), d_gradients=d_gradients, g_gradients=g_gradients)


def close(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-6) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, rtol=1e-4, atol=atol)


# HA's gradient 2 weight (theta - average) for a batch-norm gain near 1: float32 keeps theta
# to about 1e-7, so with weight 5 the two ways of computing it differ by a few 1e-6.
GRADIENT_ATOL = 1e-5


SPEC_CASES = {
    "vanilla": {},
    "saturating": dict(generator_loss="saturating"),
    "feature_matching": dict(feature_matching=True),
    "minibatch_discrimination": dict(minibatch_discrimination=True),
    "minibatch_sum": dict(minibatch_discrimination=True, minibatch_reduction="sum"),
    "historical_averaging": dict(historical_averaging="uniform", historical_averaging_weight=5.0),
    "historical_averaging_exponential": dict(historical_averaging="exponential", historical_averaging_weight=5.0,
                                             historical_averaging_decay=0.8),
    "label_smoothing": dict(label_smoothing=0.8),
    "virtual_batch_norm": dict(virtual_batch_norm=True, vbn_reference_size=8),
    "no_generator_batch_norm": dict(generator_batch_norm=False),
    "all_five": ALL_FIVE,
    "all_five_digits": dict(ALL_FIVE, data="digits"),
}


@pytest.mark.parametrize("case", list(SPEC_CASES))
def test_training_step_matches_the_step_written_from_the_spec(case):
    config = small(**SPEC_CASES[case])
    trainer, spec = Trainer(config), SpecRun(config)
    d_gradients, g_gradients = [], []
    record_gradients(trainer.discriminator_optimizer, d_gradients)
    record_gradients(trainer.generator_optimizer, g_gradients)
    for step in range(4):
        # Each step starts from the trainer's weights and Adam moments. Run apart, the two
        # drift: the bias of a layer before batch norm has a true gradient of 0, so Adam turns
        # its rounding noise into full steps of either sign (no output in training mode sees
        # that bias, but historical averaging's penalty does).
        for network in ("generator", "discriminator"):
            getattr(spec, network).load_state_dict(getattr(trainer, network).state_dict())
            moments = copy.deepcopy(getattr(trainer, f"{network}_optimizer").state_dict())  # not shared
            getattr(spec, f"{network}_optimizer").load_state_dict(moments)
        result, expected = trainer.train_step(), spec.step()
        where = f"{case}, step {step + 1}"
        for name in ("d_loss", "g_loss", "real_logits", "fake_logits"):
            assert close(getattr(result, name), expected[name]), f"{name} differs from the spec ({where})"
        assert len(d_gradients) == len(g_gradients) == step + 1, f"one D and one G update per step ({where})"
        for got, want in zip(d_gradients[-1], expected["d_gradients"], strict=True):
            assert close(got, want, GRADIENT_ATOL), f"D's gradient differs from the spec ({where})"
        for got, want in zip(g_gradients[-1], expected["g_gradients"], strict=True):
            assert close(got, want, GRADIENT_ATOL), f"G's gradient differs from the spec ({where})"
        # D's weights after the step (G's differ in that bias, see above; G's optimizer
        # settings are checked on their own below).
        ours, theirs = snapshot(trainer.discriminator), snapshot(spec.discriminator)
        assert ours.keys() == theirs.keys()
        for key in ours:
            assert close(ours[key], theirs[key]), f"discriminator.{key} differs ({where})"
        # One real batch and one noise batch per step, whatever the techniques.
        assert torch.equal(trainer.data_rng.get_state(), spec.data_rng.get_state()), where
        assert torch.equal(trainer.noise_rng.get_state(), spec.noise_rng.get_state()), where
    assert trainer.step == 0  # train_step is one step of work; train() counts


def test_each_optimizer_holds_its_own_network_with_its_own_settings():
    config = small()
    trainer = Trainer(config)
    for network, lr in (("generator", config.lr_generator), ("discriminator", config.lr_discriminator)):
        optimizer = getattr(trainer, f"{network}_optimizer")
        assert isinstance(optimizer, torch.optim.Adam)
        (group,) = optimizer.param_groups
        assert group["params"] == list(getattr(trainer, network).parameters())
        assert group["lr"] == lr and group["betas"] == (config.beta1, config.beta2)


def two_spec_steps(changes: dict) -> dict:
    spec = SpecRun(small(**changes))
    spec.step()
    return spec.step()  # the second: HA's penalty is 0 at step 1


def test_the_spec_step_is_not_vacuous():
    """Each case's spec run differs from vanilla's, so the comparison above tells them apart."""
    vanilla = two_spec_steps({})
    for case, changes in SPEC_CASES.items():
        if case in ("vanilla", "all_five_digits"):
            continue
        other = two_spec_steps(changes)
        assert not (close(other["g_loss"], vanilla["g_loss"]) and close(other["d_loss"], vanilla["d_loss"])), case


# =========================================================================================
# Historical averaging: each player's penalty, both modes
# =========================================================================================

def freeze(optimizer: torch.optim.Optimizer) -> None:
    optimizer.step = lambda *args, **kwargs: None


@pytest.mark.parametrize("mode", ["uniform", "exponential"])
@pytest.mark.parametrize("player", ["generator", "discriminator"])
def test_each_player_gets_its_historical_averaging_penalty_at_the_right_average(player, mode):
    """Mistakes caught: G's (or D's) penalty dropped; the exponential decay swapped (d vs 1 - d).

    The other player is frozen, so runs with and without HA see the same opponent. At step 1
    the penalty is 0 in both modes (the average is theta_1), so both runs reach the same
    theta_2; at step 2 the average is (theta_1 + theta_2)/2 (uniform) or d theta_1 +
    (1 - d) theta_2 (exponential), and loss and gradient must differ by exactly the penalty.
    """
    weight, decay = 5.0, 0.8
    other = "discriminator" if player == "generator" else "generator"
    runs, gradients, losses = [], [], []
    for ha in ("off", mode):
        trainer = Trainer(small(historical_averaging=ha, historical_averaging_weight=weight,
                                historical_averaging_decay=decay))
        freeze(getattr(trainer, f"{other}_optimizer"))
        recorded = []
        record_gradients(getattr(trainer, f"{player}_optimizer"), recorded)
        theta_1 = parameters_of(getattr(trainer, player))
        first = trainer.train_step()
        theta_2 = parameters_of(getattr(trainer, player))
        second = trainer.train_step()
        runs.append((theta_1, theta_2))
        gradients.append(recorded)
        losses.append((first, second))
    (theta_1, theta_2), (ha_theta_1, ha_theta_2) = runs
    assert all(torch.equal(a, b) for a, b in zip(theta_1 + theta_2, ha_theta_1 + ha_theta_2)), \
        "the penalty must be exactly 0 at step 1"
    if mode == "uniform":
        averages = [(a + b) / 2 for a, b in zip(theta_1, theta_2)]
    else:
        averages = [decay * a + (1 - decay) * b for a, b in zip(theta_1, theta_2)]
    penalty = weight * sum(float((t - a).pow(2).sum()) for t, a in zip(theta_2, averages))
    assert penalty > 1e-6  # not vacuous: the player moved in step 1
    loss_name = "g_loss" if player == "generator" else "d_loss"
    (plain_first, plain_second), (ha_first, ha_second) = losses
    assert torch.equal(getattr(plain_first, loss_name), getattr(ha_first, loss_name))
    difference = float(getattr(ha_second, loss_name) - getattr(plain_second, loss_name))
    assert difference == pytest.approx(penalty, rel=1e-3), f"{player}'s loss must carry its HA penalty"
    for plain, with_ha, t, a in zip(gradients[0][1], gradients[1][1], theta_2, averages, strict=True):
        assert torch.allclose(with_ha - plain, 2 * weight * (t - a), rtol=1e-3, atol=1e-6), \
            f"{player}'s gradient must carry 2 weight (theta - average)"


def test_historical_averages_count_one_fold_per_step_for_each_player():
    trainer = Trainer(small(historical_averaging="uniform"))
    for _ in range(3):
        trainer.train_step()
    assert int(trainer.generator_average.count) == int(trainer.discriminator_average.count) == 3
    assert trainer.generator_average.parameters_tracked == list(trainer.generator.parameters())
    assert trainer.discriminator_average.parameters_tracked == list(trainer.discriminator.parameters())
    for average in (trainer.generator_average, trainer.discriminator_average):
        assert (average.mode, average.weight, average.decay) == ("uniform", 0.001, 0.99)
    assert Trainer(small()).generator_average is None and Trainer(small()).discriminator_average is None
    exponential = Trainer(small(historical_averaging="exponential", historical_averaging_weight=0.5,
                                historical_averaging_decay=0.7))
    for average in (exponential.generator_average, exponential.discriminator_average):
        assert (average.mode, average.weight, average.decay) == ("exponential", 0.5, 0.7)


# =========================================================================================
# Feature matching: the flag, and the real batch it matches
# =========================================================================================

def replay_inputs(trainer: Trainer):
    """Run one train_step and return (result, x_real, x_fake) as the step saw them."""
    data_state, noise_state = trainer.data_rng.get_state(), trainer.noise_rng.get_state()
    generator_before = copy.deepcopy(trainer.generator)
    result = trainer.train_step()
    data_rng, noise_rng = torch.Generator(), torch.Generator()
    data_rng.set_state(data_state)
    noise_rng.set_state(noise_state)
    x_real = trainer.dataset.sample(trainer.config.batch_size, data_rng)
    z = torch.randn(trainer.config.batch_size, trainer.config.noise_dim, generator=noise_rng)
    with torch.no_grad():
        x_fake = generator_before(z)
    return result, x_real, x_fake


@pytest.mark.parametrize("data", ["ring8", "digits"])
def test_feature_matching_flag_makes_g_match_the_features_of_the_same_real_batch(data):
    """Mistakes caught: the trainer ignoring the flag; FM drawing a second real batch.

    G's loss is ||mean f(x_real) - mean f(G(z))||^2 with f from the D just updated (G's
    step leaves D alone, so D after the step is that D) and x_real the batch D saw.
    """
    trainer = Trainer(small(data, feature_matching=True, minibatch_discrimination=True))
    for _ in range(2):
        result, x_real, x_fake = replay_inputs(trainer)
        with torch.no_grad():
            expected = feature_matching_loss(trainer.discriminator(x_real)[1], trainer.discriminator(x_fake)[1])
            adversarial = F.softplus(-trainer.discriminator(x_fake)[0]).mean()
        assert float(result.g_loss) == pytest.approx(float(expected), rel=1e-4, abs=1e-7)
        assert float(result.g_loss) != pytest.approx(float(adversarial), rel=1e-2)


def test_feature_matching_keeps_the_data_and_noise_streams_of_a_run_without_it():
    plain, matching = Trainer(small()), Trainer(small(feature_matching=True))
    for _ in range(3):
        plain.train_step()
        matching.train_step()
    assert torch.equal(plain.data_rng.get_state(), matching.data_rng.get_state())
    assert torch.equal(plain.noise_rng.get_state(), matching.noise_rng.get_state())
    fresh = torch.Generator().manual_seed(plain.config.seed + 1)
    for _ in range(3):
        plain.dataset.sample(plain.config.batch_size, fresh)
    assert torch.equal(fresh.get_state(), plain.data_rng.get_state())  # exactly one real batch per step


# =========================================================================================
# Virtual batch norm: the reference noise is state; the reference path carries gradient
# =========================================================================================

def test_vbn_reference_noise_is_restored_by_load_state_tensors():
    """Mistake caught: z_ref left out of the restore. The seed would redraw the same z_ref,
    so the saved noise is made different from the seed's first."""
    config = small(virtual_batch_norm=True, vbn_reference_size=8)
    saved = Trainer(config)
    with torch.no_grad():
        saved.generator.reference_noise.copy_(torch.randn(8, config.noise_dim,
                                                          generator=torch.Generator().manual_seed(123)))
    tensors = saved.state_tensors()
    assert torch.equal(tensors["generator.reference_noise"], saved.generator.reference_noise)
    restored = Trainer(config)
    assert not torch.equal(restored.generator.reference_noise, saved.generator.reference_noise)
    restored.load_state_tensors(tensors)
    assert torch.equal(restored.generator.reference_noise, saved.generator.reference_noise)
    z = torch.randn(5, config.noise_dim, generator=torch.Generator().manual_seed(4))
    assert (saved.generate(z) == restored.generate(z)).all()


def generator_output_of_first_layer_weight(generator: torch.nn.Module, z: torch.Tensor):
    """G(z) as a function of G's first layer weight alone (the rest of G held fixed)."""
    name = next(n for n, _ in generator.named_parameters())
    others = {n: p.detach() for n, p in generator.named_parameters() if n != name}
    buffers = dict(generator.named_buffers())

    def output(weight):
        return torch.func.functional_call(generator, {**others, **buffers, name: weight}, (z,))
    return output, dict(generator.named_parameters())[name].detach().clone()


@pytest.mark.parametrize("data", ["ring8", "digits"])
def test_vbn_generator_gradient_matches_finite_differences_through_every_layer(data):
    """Mistake caught: the reference path detached after the first layer. The later VBN
    layers' reference statistics then stop carrying gradient back to the first layer, and
    autograd's gradient no longer matches the numerical one (the forward pass is unchanged,
    so no forward test can see it)."""
    config = small(data, hidden_dim=8, virtual_batch_norm=True, vbn_reference_size=4, noise_dim=3)
    generator, _ = build_models(config, load_dataset(data).sample_shape)
    generator = generator.double().train()
    z = torch.randn(2, config.noise_dim, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    output, weight = generator_output_of_first_layer_weight(generator, z)
    assert torch.autograd.gradcheck(output, (weight.requires_grad_(),), eps=1e-6, atol=1e-6, rtol=1e-4)
