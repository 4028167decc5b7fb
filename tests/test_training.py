"""The training loop end to end on the CPU: every technique trains, runs repeat exactly,
a run can be stopped and resumed, and divergence stops with a clear error."""

import math

import numpy as np
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


@pytest.mark.slow
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


@pytest.mark.parametrize("data", ["ring8", "digits"])
def test_all_five_techniques_train_a_few_steps_in_the_fast_tier(data):
    """The 500-step runs above are slow; this is the same smoke run, short and small."""
    config = GANConfig(data=data, steps=30, log_every=10, batch_size=16, hidden_dim=16, vbn_reference_size=8,
                       **ALL_FIVE)
    trainer = Trainer(config)
    assert trainer.train() == "finished"
    assert [row["step"] for row in trainer.history] == [10, 20, 30]
    for row in trainer.history:
        assert all(math.isfinite(row[k]) for k in ("d_loss", "g_loss", "d_real", "d_fake"))
        assert 0 < row["d_real"] < 1 and 0 < row["d_fake"] < 1
    assert trainer.fixed_samples().shape == (64 if data == "digits" else 1000, *trainer.dataset.sample_shape)


@pytest.mark.parametrize("technique", ["vanilla", "minibatch_discrimination", "feature_matching", "all_five"])
def test_g_step_holds_d_fixed_and_gives_g_the_gradients_of_a_full_backward(technique):
    config = GANConfig(data="ring8", seed=5, **TECHNIQUES[technique])
    held, full = Trainer(config), Trainer(config)
    full._discriminator_parameters = []  # the G step as it was: one backward into every weight
    for trainer in (held, full):
        for _ in range(3):
            trainer.train_step()
        trainer.d_step()
        trainer.discriminator_optimizer.zero_grad(set_to_none=True)
        trainer.g_step()
    for (name, mine), theirs in zip(held.generator.named_parameters(), full.generator.parameters()):
        assert torch.equal(mine.grad, theirs.grad), name
        assert torch.equal(mine, theirs), name
    assert all(p.grad is None for p in held.discriminator.parameters())  # D got nothing from G's step
    assert any(p.grad is not None for p in full.discriminator.parameters())  # (which a full backward gives)
    assert all(p.requires_grad for p in held.discriminator.parameters())
    held.train_step()  # and D trains again in the next step
    assert all(p.grad is not None for p in held.discriminator.parameters())


def test_d_trains_again_after_a_g_step_that_failed_inside_d():
    trainer = Trainer(GANConfig(data="ring8", minibatch_discrimination=True))
    trainer.d_step()
    forward = trainer.discriminator.forward
    trainer.discriminator.forward = lambda x: (_ for _ in ()).throw(RuntimeError("inside D"))
    with pytest.raises(RuntimeError, match="inside D"):
        trainer.g_step()
    trainer.discriminator.forward = forward
    assert all(p.requires_grad for p in trainer.discriminator.parameters())


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


# ---------------------------------------------------------------------------------------
# The loop's bookkeeping: schedules, training time, log rows, messages, state
# ---------------------------------------------------------------------------------------

class FakeClock:
    """Stands in for the time module inside ganapp.training: time moves only when told."""

    def __init__(self):
        self.now = 1000.0

    def perf_counter(self) -> float:
        return self.now


def tiny(**changes) -> GANConfig:
    return GANConfig(**{**dict(data="ring8", batch_size=16, hidden_dim=16, device="cpu"), **changes})


def ticking(trainer: Trainer, clock: FakeClock, seconds_per_step: float) -> None:
    step = trainer.train_step

    def timed_step():
        clock.now += seconds_per_step
        return step()

    trainer.train_step = timed_step


def test_training_seconds_leave_out_evaluation_and_add_up_over_resumed_sessions(monkeypatch):
    import ganapp.training as training

    clock = FakeClock()
    monkeypatch.setattr(training, "time", clock)
    trainer = Trainer(tiny(steps=6, log_every=2, metrics_every=4))
    ticking(trainer, clock, 0.1234567)

    def slow_evaluation(_):
        clock.now += 1000.0  # evaluation is not training time
        return {"score": 1.0}

    assert trainer.train(should_stop=lambda: trainer.step == 3, evaluate=slow_evaluation) == "stopped"
    assert trainer.seconds == pytest.approx(3 * 0.1234567)
    assert trainer.train(evaluate=slow_evaluation) == "finished"
    assert trainer.seconds == pytest.approx(6 * 0.1234567)
    assert [row["seconds"] for row in trainer.history] == [0.247, 0.494, 0.741]  # rounded to ms
    assert [row["step"] for row in trainer.history] == [2, 4, 6]


def test_rows_pictures_and_metrics_follow_their_schedules_and_the_last_step():
    config = tiny(steps=25, log_every=10, sample_every=20, metrics_every=20)
    trainer = Trainer(config)
    rows, pictures, metrics, evaluated = [], [], [], []

    def evaluate(seen):
        assert seen is trainer
        evaluated.append(seen.step)
        return {"score": 1.5, "modes": 3, "picture": torch.zeros(2), "name": "ring"}

    assert trainer.train(on_log=rows.append, on_samples=lambda step, s: pictures.append(step),
                         on_metrics=lambda step, measured: metrics.append((step, sorted(measured))),
                         evaluate=evaluate) == "finished"
    assert [row["step"] for row in rows] == [10, 20, 25] and rows == trainer.history
    assert evaluated == [20, 25] and [step for step, _ in metrics] == [20, 25]
    assert metrics[0][1] == ["modes", "name", "picture", "score"]  # on_metrics gets everything
    assert "score" not in rows[0] and rows[1]["score"] == 1.5 and rows[2]["modes"] == 3
    assert "picture" not in rows[1] and "name" not in rows[1]  # the history keeps numbers only
    assert pictures == [0, 20, 25]

    # metrics_every = 0 turns evaluation off; without on_metrics the numbers still reach the rows.
    quiet = Trainer(tiny(steps=4, log_every=2, metrics_every=0))
    quiet.train(evaluate=evaluate)
    assert evaluated == [20, 25]
    counted = Trainer(tiny(steps=4, log_every=2, metrics_every=2))
    counted.train(evaluate=lambda seen: {"score": float(seen.step)})
    assert [row["score"] for row in counted.history] == [2.0, 4.0]


def test_a_resumed_run_sends_no_second_step_0_picture_and_counts_on():
    trainer = Trainer(tiny(steps=40, log_every=10, sample_every=20))
    assert trainer.train(should_stop=lambda: trainer.step == 5) == "stopped" and trainer.step == 5
    pictures, rows = [], []
    assert trainer.train(on_log=rows.append, on_samples=lambda step, s: pictures.append(step)) == "finished"
    assert pictures == [20, 40] and [row["step"] for row in rows] == [10, 20, 30, 40]
    assert trainer.step == 40 and trainer.train() == "finished" and trainer.step == 40  # nothing left to do


def test_a_stop_asked_before_the_first_step_trains_nothing():
    trainer = Trainer(tiny(steps=10))
    pictures = []
    assert trainer.train(should_stop=lambda: True, on_samples=lambda step, s: pictures.append(step)) == "stopped"
    assert trainer.step == 0 and trainer.history == [] and pictures == [0]


def fixed_result(d_loss=1.5, g_loss=-0.25):
    """A StepResult with round numbers: D(x) = sigmoid(0), sigmoid(ln 3) and D(G(z)) = sigmoid(-ln 3)."""
    from ganapp.training import StepResult

    return StepResult(torch.tensor(d_loss), torch.tensor(g_loss), torch.tensor([0.0, math.log(3.0)]),
                      torch.tensor([-math.log(3.0)]))


def test_a_log_row_reports_the_step_results_numbers(monkeypatch):
    import ganapp.training as training

    clock = FakeClock()
    monkeypatch.setattr(training, "time", clock)
    trainer = Trainer(tiny(steps=1))

    def step():
        clock.now += 2.5
        return fixed_result()

    trainer.train_step = step
    trainer.train()
    (row,) = trainer.history
    assert list(row) == ["step", "d_loss", "g_loss", "d_real", "d_fake", "seconds"]
    assert row == {"step": 1, "d_loss": 1.5, "g_loss": -0.25, "d_real": pytest.approx(0.625),
                   "d_fake": pytest.approx(0.25), "seconds": 2.5}


@pytest.mark.parametrize("name", ["d_loss", "g_loss"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_loss_that_is_not_finite_stops_with_the_whole_message(name, value):
    trainer = Trainer(tiny(steps=3, log_every=1))
    trainer.train_step = lambda: fixed_result(**{name: value})
    with pytest.raises(TrainingDiverged) as error:
        trainer.train()
    assert str(error.value) == (f"training diverged at step 1: {name} became {value}. "
                                "Try a smaller learning rate or different techniques.")


@pytest.mark.parametrize("network", ["generator", "discriminator"])
def test_a_weight_that_is_not_finite_names_its_network_and_parameter(network):
    trainer = Trainer(tiny(steps=3, log_every=1))
    trainer.train_step = fixed_result
    with torch.no_grad():
        getattr(trainer, network).output.weight[0, 0] = float("nan") if network == "generator" else float("-inf")
    (name,) = [n for n, p in getattr(trainer, network).named_parameters() if not torch.isfinite(p).all()]
    with pytest.raises(TrainingDiverged) as error:
        trainer.train()
    assert str(error.value) == (f"training diverged at step 1: a weight of the {network} ({name}) is no longer "
                                "finite. Try a smaller learning rate.")


def test_random_streams_and_the_fixed_noise_come_from_the_seed():
    config = tiny(seed=11)
    trainer = Trainer(config)
    for offset, rng in ((1, trainer.data_rng), (2, trainer.noise_rng)):
        assert torch.equal(rng.get_state(), torch.Generator().manual_seed(11 + offset).get_state())
    expected = torch.randn(1000, config.noise_dim, generator=torch.Generator().manual_seed(14))
    assert torch.equal(trainer.fixed_noise, expected)
    assert torch.equal(trainer.dataset.data, load_dataset("ring8", seed=11).data)
    digits = Trainer(tiny(data="digits", seed=11))
    assert torch.equal(digits.fixed_noise, expected[:64])
    given = load_dataset("ring8", seed=99)
    assert torch.equal(Trainer(config, dataset=given).dataset.data, given.data)
    assert (trainer.step, trainer.seconds, trainer.history) == (0, 0.0, [])
    assert trainer.real_target == 1.0 and Trainer(tiny(label_smoothing=0.8)).real_target == 0.8
    assert not trainer.saturating and Trainer(tiny(generator_loss="saturating")).saturating


def test_samples_are_seeded_and_drawing_them_changes_no_training_state():
    trainer = Trainer(tiny())
    trainer.train_step()
    before = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
    first = trainer.sample(5, seed=1)
    assert first.shape == (5, 2) and (first == trainer.sample(5, seed=1)).all()
    assert not (first == trainer.sample(5, seed=2)).all()
    assert (trainer.sample(5) == trainer.sample(5, seed=0)).all()
    z = torch.randn(5, trainer.config.noise_dim, generator=torch.Generator().manual_seed(1))
    assert (first == trainer.generate(z)).all()
    assert (trainer.fixed_samples() == trainer.generate(trainer.fixed_noise)).all()
    assert trainer.generator.training  # back in training mode
    for key, value in trainer.generator.state_dict().items():  # BN's running statistics included
        assert torch.equal(value, before[key]), key
    trainer.generator.eval()
    trainer.sample(3)
    assert not trainer.generator.training  # a generator in eval mode stays in eval mode
    trainer.generator.double()  # whatever G computes in, samples come back as float32
    assert trainer.generate(z.double()).dtype == np.float32


def test_state_tensors_restore_a_run_that_then_continues_identically():
    config = tiny(steps=10, feature_matching=True, minibatch_discrimination=True, historical_averaging="uniform",
                  label_smoothing=0.9, virtual_batch_norm=True, vbn_reference_size=8)
    original = Trainer(config)
    for _ in range(3):
        original.train_step()
    tensors = original.state_tensors()
    prefixes = {key.split(".")[0] for key in tensors}
    assert prefixes == {"generator", "discriminator", "generator_average", "discriminator_average",
                        "generator_optimizer", "discriminator_optimizer", "rng"}
    assert "generator.reference_noise" in tensors and "generator_average.count" in tensors
    assert {"generator_optimizer.0.exp_avg", "generator_optimizer.0.exp_avg_sq",
            "generator_optimizer.0.step"} <= set(tensors)
    restored = Trainer(config)
    restored.load_state_tensors({k: v.clone() for k, v in tensors.items()})
    for key, value in restored.state_tensors().items():
        assert torch.equal(value, tensors[key]), key
    for _ in range(2):
        ours, theirs = original.train_step(), restored.train_step()
        assert torch.equal(ours.d_loss, theirs.d_loss) and torch.equal(ours.g_loss, theirs.g_loss)
    assert Trainer(tiny()).state_tensors().keys().isdisjoint({"generator_average.count"})


def test_state_that_does_not_fit_is_refused_naming_up_to_four_keys():
    trainer = Trainer(tiny())
    tensors = trainer.state_tensors()
    generator_keys = sorted(k for k in tensors if k.startswith("generator."))
    fewer = {k: v for k, v in tensors.items() if k not in generator_keys[:5]}
    missing = ", ".join(k[len("generator."):] for k in generator_keys[:4])
    with pytest.raises(ValueError) as error:
        Trainer(tiny()).load_state_tensors(fewer)
    assert str(error.value) == f"the checkpoint's generator does not match its config's architecture (missing {missing})"

    extra = {**tensors, **{f"discriminator.extra{i}": torch.zeros(1) for i in range(5, 0, -1)}}
    wrong = {**extra, "discriminator.output.weight": torch.zeros(3, 3)}
    with pytest.raises(ValueError) as error:
        Trainer(tiny()).load_state_tensors(wrong)
    assert str(error.value) == ("the checkpoint's discriminator does not match its config's architecture "
                                "(unexpected extra1, extra2, extra3, extra4; wrong shape for output.weight)")
    shapes = {k: torch.zeros(7) for k in sorted(k for k in tensors if k.startswith("generator."))[:5]}
    with pytest.raises(ValueError) as error:
        Trainer(tiny()).load_state_tensors({**tensors, **shapes})
    four = ", ".join(k[len("generator."):] for k in sorted(shapes)[:4])
    assert str(error.value) == f"the checkpoint's generator does not match its config's architecture (wrong shape for {four})"
    with_ha = Trainer(tiny(historical_averaging="uniform"))
    with pytest.raises(ValueError, match=r"^the checkpoint's generator_average does not match .*\(missing average_0, "):
        with_ha.load_state_tensors(tensors)


def test_choose_device_defaults_to_auto_and_says_how_to_do_without_cuda():
    assert choose_device() == choose_device("auto")
    assert choose_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError) as error:
            choose_device("cuda")
        assert str(error.value) == "device 'cuda' was asked for, but no CUDA GPU is available; use 'auto' or 'cpu'"
