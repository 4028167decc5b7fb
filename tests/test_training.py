"""The training loop end to end on the CPU: every technique trains, runs repeat exactly,
a run can be stopped and resumed, and divergence stops with a clear error."""

import math

import pytest
import torch

torch.set_num_threads(1)  # small models: one thread is fastest, and tests share 2 cores

from ganapp.config import GANConfig
from ganapp.data import load_dataset
from ganapp.training import Trainer, TrainingDiverged, choose_device

ALL_FIVE = dict(feature_matching=True, minibatch_discrimination=True, historical_averaging="uniform",
                label_smoothing=0.9, virtual_batch_norm=True)
TECHNIQUES = {
    "vanilla": {},
    "feature_matching": dict(feature_matching=True),
    "minibatch_discrimination": dict(minibatch_discrimination=True),
    "historical_averaging": dict(historical_averaging="uniform"),
    "historical_averaging_exponential": dict(historical_averaging="exponential"),
    "label_smoothing": dict(label_smoothing=0.9),
    "virtual_batch_norm": dict(virtual_batch_norm=True),
    "all_five": ALL_FIVE,
    "generator_without_batch_norm": dict(generator_batch_norm=False),
}


@pytest.mark.parametrize("data", ["ring8", "digits"])
@pytest.mark.parametrize("technique", list(TECHNIQUES))
def test_each_technique_trains_500_steps_without_nan(data, technique):
    config = GANConfig(data=data, steps=500, log_every=50, **TECHNIQUES[technique])
    trainer = Trainer(config)
    assert trainer.train() == "finished"
    assert trainer.step == 500 and len(trainer.history) == 10
    for row in trainer.history:
        assert all(math.isfinite(row[k]) for k in ("d_loss", "g_loss", "d_real", "d_fake"))
    samples = trainer.fixed_samples()
    assert samples.shape[1:] == trainer.dataset.sample_shape and torch.isfinite(torch.from_numpy(samples)).all()


def test_same_config_and_seed_give_the_same_numbers():
    config = GANConfig(data="ring8", steps=120, seed=3, **ALL_FIVE)
    first, second = Trainer(config), Trainer(config)
    first.train()
    second.train()
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(first.history) == strip(second.history)
    other = Trainer(config.replace(seed=4))
    other.train()
    assert strip(other.history) != strip(first.history)


def test_runs_differing_only_in_techniques_share_initial_weights_data_and_noise():
    base = Trainer(GANConfig(data="ring8", seed=5))
    with_mbd = Trainer(GANConfig(data="ring8", seed=5, minibatch_discrimination=True, virtual_batch_norm=True))
    for name, value in base.discriminator.state_dict().items():
        assert torch.equal(value, with_mbd.discriminator.state_dict()[name]), name
    g_base = {k: v for k, v in base.generator.state_dict().items() if "norms" not in k}
    g_vbn = with_mbd.generator.state_dict()
    for name, value in g_base.items():
        assert torch.equal(value, g_vbn[name]), name
    assert torch.equal(base.fixed_noise, with_mbd.fixed_noise)
    assert torch.equal(base.dataset.sample(8, base.data_rng), with_mbd.dataset.sample(8, with_mbd.data_rng))


@pytest.mark.parametrize("data", ["ring8", "digits"])
def test_a_generator_without_batch_norm_has_no_batch_statistics_and_the_same_other_weights(data):
    with_bn = Trainer(GANConfig(data=data, seed=5))
    without = Trainer(GANConfig(data=data, seed=5, generator_batch_norm=False))
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in without.generator.modules())
    assert any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in with_bn.generator.modules())
    g_bn = with_bn.generator.state_dict()
    for name, value in without.generator.state_dict().items():
        assert torch.equal(value, g_bn[name]), name
    # Without batch statistics each sample depends on its own noise only, in training mode too.
    without.generator.train()
    z = torch.randn(6, without.config.noise_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        alone, together = without.generator(z[:2]), without.generator(z)[:2]
        assert torch.allclose(alone, together, atol=1e-6)
        assert not torch.allclose(with_bn.generator(z[:2]), with_bn.generator(z)[:2], atol=1e-6)


def test_should_stop_stops_at_once_and_training_can_continue():
    calls = {"n": 0}

    def stop_after_25():
        calls["n"] += 1
        return calls["n"] > 25

    trainer = Trainer(GANConfig(data="ring8", steps=100))
    assert trainer.train(should_stop=stop_after_25) == "stopped"
    assert trainer.step == 25
    assert trainer.train() == "finished" and trainer.step == 100


def test_callbacks_get_rows_and_samples():
    rows, pictures = [], []
    trainer = Trainer(GANConfig(data="ring8", steps=40, log_every=10, sample_every=20))
    trainer.train(on_log=rows.append, on_samples=lambda step, s: pictures.append((step, s.shape)))
    assert [r["step"] for r in rows] == [10, 20, 30, 40]
    assert set(rows[0]) == {"step", "d_loss", "g_loss", "d_real", "d_fake", "seconds"}
    assert 0 < rows[-1]["d_real"] < 1 and 0 < rows[-1]["d_fake"] < 1
    assert [p[0] for p in pictures] == [0, 20, 40] and pictures[0][1] == (1000, 2)


def test_nan_in_the_data_stops_with_a_clear_error():
    dataset = load_dataset("ring8")
    dataset.data[:] = float("nan")
    trainer = Trainer(GANConfig(data="ring8", steps=50, log_every=5), dataset=dataset)
    with pytest.raises(TrainingDiverged, match="diverged at step 5: d_loss became nan"):
        trainer.train()


def test_a_weight_turning_infinite_stops_with_a_clear_error():
    trainer = Trainer(GANConfig(data="ring8", steps=50, log_every=5))

    def poison():
        with torch.no_grad():
            trainer.discriminator.output.bias.fill_(float("inf"))
        return False

    with pytest.raises(TrainingDiverged, match="diverged|no longer finite"):
        trainer.train(should_stop=poison)


def test_device_is_chosen_once_cpu_here():
    assert choose_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert Trainer(GANConfig(steps=1)).device == choose_device("auto")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            choose_device("cuda")
