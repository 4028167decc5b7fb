"""Trainer.train's gate, in process (the pause/step control's side of the training loop,
ganapp.server.control): what each answer does, what on_step receives, and that waiting
in the gate is not training time. tests/test_pause.py checks the same through real job
processes; these run in the mutation suite (pyproject.toml, [tool.mutmut])."""

import math
import time

import pytest
import torch

torch.set_num_threads(1)

from ganapp import drawn
from ganapp.config import GANConfig
from ganapp.data import load_dataset
from ganapp.techniques import discriminator_loss
from ganapp.training import Trainer

SMALL = dict(data="ring8", batch_size=16, hidden_dim=16, log_every=100, sample_every=100, metrics_every=0, seed=4)


def params(trainer: Trainer) -> list[torch.Tensor]:
    return [p.detach().clone() for p in (*trainer.generator.parameters(), *trainer.discriminator.parameters())]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


class Gate:
    """Answers from a script, one per question, then None; can wait before answering."""

    def __init__(self, answers, wait_s: float = 0.0):
        self.answers, self.wait_s, self.asked = list(answers), wait_s, 0

    def __call__(self, trainer):
        self.asked += 1
        assert isinstance(trainer, Trainer)  # the gate reads the run it holds (half_step, step)
        if self.wait_s:
            time.sleep(self.wait_s)
        return self.answers.pop(0) if self.answers else None


def test_whole_steps_by_hand_equal_training_straight_and_each_reports_a_row():
    straight = Trainer(GANConfig(steps=7, **SMALL))
    assert straight.train() == "finished"
    calls = []
    by_hand = Trainer(GANConfig(steps=7, **SMALL))
    assert by_hand.train(gate=Gate(["step"] * 7), on_step=lambda kind, row: calls.append((kind, row))) == "finished"
    assert same(params(by_hand), params(straight))
    assert [kind for kind, _ in calls] == ["step"] * 7
    # A reported step logs its row whatever log_every says (100 here), and hands that row over.
    assert [row["step"] for _, row in calls] == list(range(1, 8))
    assert [row["step"] for row in by_hand.history] == list(range(1, 8))
    assert all(row is kept for (_, row), kept in zip(calls, by_hand.history))
    assert [row["step"] for row in straight.history] == [7]  # without the gate: log_every and the last step
    assert by_hand.history[-1]["d_loss"] == straight.history[-1]["d_loss"]


def test_a_d_half_then_a_g_half_is_one_step_and_the_d_half_reports_d_numbers():
    straight = Trainer(GANConfig(steps=3, **SMALL))
    straight.train()
    calls = []
    halves = Trainer(GANConfig(steps=3, **SMALL))
    result = halves.train(gate=Gate(["d", "g", "d", "g", "d", "g"]), on_step=lambda kind, row: calls.append((kind, row)))
    assert result == "finished" and halves.step == 3
    assert same(params(halves), params(straight))
    assert [kind for kind, _ in calls] == ["d", "g"] * 3
    for index, (kind, row) in enumerate(calls):
        if kind == "d":  # D's half: the step number has not moved, D's loss and outputs, no history row
            assert set(row) == {"step", "d_loss", "d_real", "d_fake"} and row["step"] == index // 2
            assert math.isfinite(row["d_loss"]) and 0 < row["d_real"] < 1 and 0 < row["d_fake"] < 1
        else:
            assert row["step"] == index // 2 + 1 and "g_loss" in row
    assert [row["step"] for row in halves.history] == [1, 2, 3]


def test_a_g_step_alone_leaves_d_as_it_was():
    trainer = Trainer(GANConfig(steps=5, **SMALL))
    d_before = [p.detach().clone() for p in trainer.discriminator.parameters()]
    g_before = [p.detach().clone() for p in trainer.generator.parameters()]
    calls = []
    assert trainer.train(gate=Gate(["g", "stop"]), on_step=lambda kind, row: calls.append(kind)) == "stopped"
    assert trainer.step == 1 and calls == ["g"]
    assert same([p.detach() for p in trainer.discriminator.parameters()], d_before)
    assert not same([p.detach() for p in trainer.generator.parameters()], g_before)
    # It draws its own batch from the run's streams: the same seed, the same G step; the next
    # step then draws the batch a straight run draws second.
    again = Trainer(GANConfig(steps=5, **SMALL))
    torch.manual_seed(12345)  # the global generator must play no part
    again.train(gate=Gate(["g", "stop"]))
    assert same(params(again), params(trainer))
    reference = Trainer(GANConfig(steps=5, **SMALL))
    reference.dataset.sample(reference.config.batch_size, reference.data_rng)
    torch.randn(reference.config.batch_size, reference.config.noise_dim, generator=reference.noise_rng)
    assert torch.equal(reference.data_rng.get_state(), trainer.data_rng.get_state())
    assert torch.equal(reference.noise_rng.get_state(), trainer.noise_rng.get_state())
    assert trainer.history[-1]["step"] == 1 and math.isfinite(trainer.history[-1]["g_loss"])


def test_stop_from_the_gate_stops_before_the_next_step_and_keeps_the_training_time():
    trainer = Trainer(GANConfig(steps=50, **SMALL))
    gate = Gate([None, None, None, "stop"])
    assert trainer.train(gate=gate, on_step=lambda kind, row: pytest.fail("no step was reported")) == "stopped"
    assert trainer.step == 3 and gate.asked == 4 and trainer.history == []
    assert trainer.seconds > 0
    # Resumed without a gate, it ends where a straight run ends.
    assert trainer.train() == "finished"
    straight = Trainer(GANConfig(steps=50, **SMALL))
    straight.train()
    assert same(params(trainer), params(straight))


def test_time_spent_waiting_in_the_gate_is_not_training_time():
    wait_s = 0.25
    trainer = Trainer(GANConfig(steps=4, **SMALL))
    started = time.perf_counter()
    assert trainer.train(gate=Gate(["step", "step", "step", "step"], wait_s=wait_s)) == "finished"
    wall = time.perf_counter() - started
    waited = 4 * wait_s
    assert wall >= waited
    # Four tiny steps take milliseconds; the 1 s in the gate must not count, nor count twice.
    assert 0 < trainer.seconds <= wall - 0.9 * waited, (trainer.seconds, wall)
    # A stop while waiting keeps the same account.
    stopped = Trainer(GANConfig(steps=4, **SMALL))
    started = time.perf_counter()
    assert stopped.train(gate=Gate(["step", "stop"], wait_s=wait_s)) == "stopped"
    wall = time.perf_counter() - started
    assert 0 < stopped.seconds <= wall - 0.9 * 2 * wait_s, (stopped.seconds, wall)


def test_a_g_step_alone_measures_d_as_the_run_defines_its_loss():
    """D sits the step out, but its loss on the G step's batch is reported with the run's
    own label smoothing target and historical-averaging penalty; with feature matching G
    matches D's features on that same real batch."""
    config = GANConfig(steps=9, label_smoothing=0.7, historical_averaging="uniform", historical_averaging_weight=50.0,
                       feature_matching=True, **SMALL)
    trainer = Trainer(config)
    expected = {}

    def clone(rng: torch.Generator) -> torch.Generator:
        copy = torch.Generator()
        copy.set_state(rng.get_state())
        return copy

    def gate(run):
        assert run is trainer
        gate.asked += 1
        if gate.asked <= 3:
            return None  # three whole steps: D's historical average now differs from D
        if gate.asked == 4:  # what the G step alone will draw and measure
            x_real = run.dataset.sample(config.batch_size, clone(run.data_rng))
            z = torch.randn(config.batch_size, config.noise_dim, generator=clone(run.noise_rng))
            with torch.no_grad():
                real_logits, _ = run.discriminator(x_real)
                fake_logits, _ = run.discriminator(run.generator(z))
                expected["smoothed"] = float(discriminator_loss(real_logits, fake_logits, 0.7))
                expected["penalty"] = float(run.discriminator_average.penalty())
                expected["plain"] = float(discriminator_loss(real_logits, fake_logits, 1.0))
            return "g"
        return "stop"

    gate.asked = 0
    rows = []
    assert trainer.train(gate=gate, on_step=lambda kind, row: rows.append(row)) == "stopped"
    assert len(rows) == 1 and trainer.step == 4
    # The checks can fail: the target and the penalty both move the number here.
    assert abs(expected["smoothed"] - expected["plain"]) > 2e-5 and expected["penalty"] > 2e-5
    assert rows[0]["d_loss"] == pytest.approx(expected["smoothed"] + expected["penalty"], abs=2e-6)
    assert math.isfinite(rows[0]["g_loss"])


def test_a_run_on_drawn_data_trains_on_its_drawing():
    code = drawn.shape("two-moons")
    trainer = Trainer(GANConfig(data="drawn", drawn_points=code, steps=2, **{k: v for k, v in SMALL.items()
                                                                            if k != "data"}))
    reference = load_dataset("drawn", seed=SMALL["seed"], drawing=code)
    other = load_dataset("drawn", seed=SMALL["seed"], drawing=drawn.shape("ring"))
    mine = trainer.dataset.sample(256, torch.Generator().manual_seed(0))
    assert torch.equal(mine, reference.sample(256, torch.Generator().manual_seed(0)))
    assert not torch.equal(mine, other.sample(256, torch.Generator().manual_seed(0)))
    assert trainer.train() == "finished"
