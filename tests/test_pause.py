"""Play, pause and single steps (issue 10, part 2): the trainer's halves, the job's gate,
and real job processes paused, stepped by hand and resumed.

The promise checked here: pausing and stepping never changes the numbers. A run paused,
stepped by hand with whole steps and resumed ends with the same weights, optimizer state
and random streams, bit for bit, as the same run trained straight.
"""

from __future__ import annotations

import time

import pytest
import torch

from conftest import wait_until
from ganapp.config import GANConfig
from ganapp.jobs import JobManager, Limits, RunNotFound
from ganapp.server.control import Command, PlayRefused, Player, PlayState
from ganapp.training import Trainer

TINY = dict(data="ring8", batch_size=32, hidden_dim=32, log_every=5, sample_every=20, metrics_every=0)
FIRST_START_S = 90  # the first job waits for the forkserver to import torch (slow on a busy CI box)
LOSSES = ("d_loss", "g_loss", "d_real", "d_fake")
CONFIGS = {
    "vanilla": dict(),
    "all but VBN": dict(feature_matching=True, minibatch_discrimination=True, historical_averaging="uniform",
                        label_smoothing=0.9),
    "VBN": dict(virtual_batch_norm=True, generator_batch_norm=False),
    "MBD + HA exponential, saturating": dict(minibatch_discrimination=True, historical_averaging="exponential",
                                     generator_loss="saturating"),
}


def tiny(**changes) -> GANConfig:
    return GANConfig(**{**TINY, **changes})


def same_state(a: Trainer, b: Trainer) -> None:
    ta, tb = a.state_tensors(), b.state_tensors()
    assert ta.keys() == tb.keys()
    different = [k for k in ta if not torch.equal(ta[k], tb[k])]
    assert not different, f"tensors differ: {different[:5]}"


# ---------------------------------------------------------------------------- the trainer
@pytest.mark.parametrize("changes", list(CONFIGS.values()), ids=list(CONFIGS))
def test_a_d_half_then_a_g_half_is_exactly_a_whole_step(changes):
    straight, halves = Trainer(tiny(steps=12, **changes)), Trainer(tiny(steps=12, **changes))
    for _ in range(12):
        whole = straight.train_step()
        d = halves.d_step()
        assert halves.half_step
        g = halves.g_step()
        assert not halves.half_step
        for name in ("d_loss", "g_loss", "real_logits", "fake_logits"):
            assert torch.equal(getattr(whole, name), getattr(g, name)), name
        assert torch.equal(d.d_loss, whole.d_loss)
    same_state(straight, halves)


def test_digits_halves_equal_whole_steps():
    config = GANConfig(data="digits", batch_size=16, hidden_dim=16, steps=4, metrics_every=0)
    straight, halves = Trainer(config), Trainer(config)
    for _ in range(4):
        straight.train_step()
        halves.d_step()
        halves.g_step()
    same_state(straight, halves)


def test_single_halves_change_only_their_own_network():
    trainer = Trainer(tiny(steps=10))

    def weights(network):  # parameters (G's batch norm statistics move with every forward pass)
        return [p.detach().clone() for p in network.parameters()]

    def same(a, b):
        return all(torch.equal(x, y) for x, y in zip(a, b))

    g_before, d_before = weights(trainer.generator), weights(trainer.discriminator)
    trainer.d_step()
    assert same(g_before, weights(trainer.generator)) and not same(d_before, weights(trainer.discriminator))
    trainer.g_step()  # completes the step: G moves, D stays where its half left it
    d_after, g_after = weights(trainer.discriminator), weights(trainer.generator)
    assert not same(g_before, g_after)
    trainer.g_step()  # G alone, on a new batch: D sits this step out
    assert same(d_after, weights(trainer.discriminator)) and not same(g_after, weights(trainer.generator))


def test_a_gate_that_steps_by_hand_leaves_the_numbers_of_training_straight():
    config = tiny(steps=40, **CONFIGS["all but VBN"])
    straight = Trainer(config)
    straight.train()
    plan = {7: "step", 8: "step", 9: None, 20: "step", 33: "step"}  # whole steps by hand between normal ones
    stepped, reported = Trainer(config), []
    stepped.train(gate=lambda t: plan.get(t.step), on_step=lambda kind, row: reported.append((kind, row["step"])))
    same_state(straight, stepped)
    assert reported == [("step", 8), ("step", 9), ("step", 21), ("step", 34)]
    by_step = {row["step"]: row for row in stepped.history}
    for row in straight.history:  # every row of the straight run, with the same numbers
        assert all(by_step[row["step"]][k] == row[k] for k in LOSSES), row["step"]
    assert {8, 9, 21, 34} <= set(by_step)  # and a row for each step taken by hand
    assert stepped.step == 40


def test_a_gate_that_says_stop_stops_and_one_that_takes_halves_keeps_counting_whole_steps():
    trainer, answers = Trainer(tiny(steps=50)), iter(["d", "d", "g", "g", "stop"])
    kinds = []
    state = trainer.train(gate=lambda t: next(answers), on_step=lambda kind, row: kinds.append((kind, row["step"])))
    assert state == "stopped"
    assert kinds == [("d", 0), ("d", 0), ("g", 1), ("g", 2)]  # a D half leaves the step number where it was
    assert trainer.step == 2 and [row["step"] for row in trainer.history] == [1, 2]


# ---------------------------------------------------------------------------- the job's gate
class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def player_with(commands, stop=lambda: False, clock=None):
    inbox, states, waits = list(commands), [], []

    def receive(timeout):
        waits.append(timeout)
        if clock is not None:
            clock.now += timeout
        taken = list(inbox)
        inbox.clear()
        return taken

    player = Player(receive, states.append, stop, **({"clock": clock} if clock else {}))
    player.trainer = type("T", (), {"step": 5, "half_step": False})()
    return player, inbox, states, waits


def test_the_gate_pauses_takes_steps_in_order_and_resumes():
    player, inbox, states, _ = player_with([Command("pause"), Command("step_d"), Command("step_g"), Command("step")])
    trainer = player.trainer
    assert [player.gate(trainer) for _ in range(3)] == ["d", "g", "step"]
    assert states == [PlayState(paused=True, step=5)]
    inbox.append(Command("resume"))
    assert player.gate(trainer) is None
    assert states[-1].paused is False


def test_steps_asked_while_training_are_ignored_and_a_paused_gate_honours_the_stop_flag():
    stop = [False]
    player, inbox, states, waits = player_with([Command("step"), Command("pause")], stop=lambda: stop[0])
    receive = player._receive

    def receive_then_stop(timeout):
        if len(waits) >= 3:
            stop[0] = True  # the stop flag: a stop, the time limit, the orphan watchdog, the shutdown
        return receive(timeout)

    player._receive = receive_then_stop
    assert player.gate(player.trainer) == "stop"  # the step before the pause was not taken
    assert player.paused and len(waits) >= 3 and states == [PlayState(paused=True, step=5)]


def test_slow_motion_paces_steps():
    clock = FakeClock()
    player, inbox, states, waits = player_with([Command("speed", 5.0)], clock=clock)
    times = []
    for _ in range(4):
        assert player.gate(player.trainer) == "step"
        assert player.slow
        times.append(clock.now)
    assert times[1] - times[0] == pytest.approx(0.2) and times[3] - times[2] == pytest.approx(0.2)
    inbox.append(Command("speed", None))
    assert player.gate(player.trainer) is None


# ---------------------------------------------------------------------------- real jobs
def ended(manager, owner, run, timeout_s=120):
    run = manager.wait(owner, run.id, timeout_s=timeout_s)
    assert run.state in ("finished", "stopped", "failed", "interrupted"), f"run still {run.state} (step {run.step}, paused {run.paused}) after {timeout_s} s"
    return run


def checkpoint_tensors(run):
    from safetensors.torch import load_file

    return load_file(run.files["checkpoint"])


def slowly(manager, owner, config, at_least=3, timeout_s=FIRST_START_S):
    """A run in slow motion from its first step (the speed is asked for while it waits), so that
    a tiny run does not finish before a pause lands; returned once it has trained a few steps."""
    run = manager.submit(owner, config)
    manager.set_speed(owner, run.id, 20)
    wait_until(lambda: run.step >= at_least or run.state in ("finished", "failed"), timeout_s, "the job to train")
    assert run.state == "running", (run.state, run.reason)
    return run


def pause_now(manager, owner, run):
    manager.pause(owner, run.id)
    wait_until(lambda: run.paused, 20, "the job to say it is paused")
    settled = run.step
    time.sleep(0.4)
    assert run.step == settled, "a paused job trained on"
    return settled


def step_by_hand(manager, owner, run, kind="step", timeout_s=20):
    """One step by hand; waits for its picture (and, for a whole or G step, its log row)."""
    step, pictures, rows = run.step, run.picture_count, len(run.history)
    manager.step(owner, run.id, kind)
    grows = 0 if kind == "step_d" else 1
    wait_until(lambda: run.picture_count > pictures and run.step == step + grows and len(run.history) == rows + grows
               and run.half_step == (kind == "step_d"), timeout_s, f"the picture of a {kind}")
    assert run.picture_step == step + grows, (kind, step, run.picture_step, run.step)
    if grows:
        assert run.history[-1]["step"] == step + 1
    return run.step


@pytest.mark.slow  # two 300-step jobs, one in slow motion (the trainer-level tests above stay fast)
def test_a_job_paused_stepped_by_hand_and_resumed_equals_the_job_trained_straight(manager):
    owner = manager.issue_token()
    config = tiny(steps=300, seed=4, **CONFIGS["all but VBN"])
    straight = manager.submit(owner, config, name="straight")
    played = slowly(manager, owner, config)
    paused_at = pause_now(manager, owner, played)
    for kind in ("step", "step_d", "step_g", "step"):  # a D half then a G half is a whole step too
        step_by_hand(manager, owner, played, kind)
    assert played.step == paused_at + 3 and played.paused
    manager.set_speed(owner, played.id, 0)
    manager.resume(owner, played.id)
    wait_until(lambda: not played.paused or played.state != "running", 20, "the job to resume")
    for run in (ended(manager, owner, straight), ended(manager, owner, played)):
        assert run.state == "finished", run.reason
    a, b = checkpoint_tensors(straight), checkpoint_tensors(played)
    assert a.keys() == b.keys() and len(a) > 10
    assert not [k for k in a if not torch.equal(a[k], b[k])], "pausing and stepping changed the numbers"
    by_step = {row["step"]: row for row in played.history}
    for row in straight.history:
        assert all(by_step[row["step"]][k] == row[k] for k in LOSSES), row["step"]
    assert played.describe()["paused"] is False


def test_half_steps_by_hand_move_one_network_and_the_step_number_once(manager):
    owner = manager.issue_token()
    run = manager.submit(owner, tiny(steps=3000, seed=5))
    manager.pause(owner, run.id)  # before it starts: it starts paused, at step 0
    wait_until(lambda: run.paused, FIRST_START_S, "the job to start paused")
    time.sleep(0.3)
    assert run.step == 0 and run.history == []
    assert step_by_hand(manager, owner, run, "step_d") == 0  # D's half: the step number stays
    assert run.describe()["half_step"] is True and run.describe()["paused"] is True
    assert step_by_hand(manager, owner, run, "step_g") == 1  # G's half completes the step
    assert step_by_hand(manager, owner, run, "step_g") == 2  # G alone
    assert step_by_hand(manager, owner, run, "step") == 3
    manager.stop(owner, run.id)  # a paused job honours stop, and keeps its checkpoint
    run = ended(manager, owner, run, 30)
    assert run.state == "stopped" and run.step == 3 and "checkpoint" in run.files


def test_play_refusals_say_why_and_owners_are_isolated(manager):
    owner, other = manager.issue_token(), manager.issue_token()
    run = slowly(manager, owner, tiny(steps=4000, seed=6))
    with pytest.raises(PlayRefused) as refused:
        manager.step(owner, run.id, "step_d")
    assert refused.value.key == "play_not_paused" and "pause it first" in str(refused.value)
    with pytest.raises(PlayRefused) as refused:
        manager.resume(owner, run.id)
    assert refused.value.key == "play_not_paused_resume"
    for action in (manager.pause, manager.resume, lambda o, r: manager.step(o, r, "step"),
                   lambda o, r: manager.set_speed(o, r, 5)):
        with pytest.raises(RunNotFound):
            action(other, run.id)  # another visitor's run is not theirs to pause
    assert not run.pause_wanted and run.speed == 20
    for bad in (-1, 10_000, "fast", True):
        with pytest.raises(PlayRefused) as refused:
            manager.set_speed(owner, run.id, bad)
        assert refused.value.key == "play_bad_speed"
    with pytest.raises(Exception, match="a step is one of"):
        manager.step(owner, run.id, "step_x")
    manager.stop(owner, run.id)
    run = ended(manager, owner, run, 30)
    with pytest.raises(PlayRefused) as refused:
        manager.pause(owner, run.id)
    assert refused.value.key == "play_not_running" and refused.value.values["state"] == "stopped"


@pytest.mark.slow  # waits out a 2 s pause limit, then a second job (the other real-job pause tests stay fast)
def test_a_job_paused_too_long_stops_and_a_queued_run_starts_paused(tmp_path):
    limits = Limits(max_running=1, max_running_per_owner=1, max_pause_seconds=2.0)
    jobs = JobManager(limits=limits, runs_dir=tmp_path / "runs")
    try:
        owner = jobs.issue_token()
        first = slowly(jobs, owner, tiny(steps=5000, seed=7))
        at = pause_now(jobs, owner, first)
        second = jobs.submit(owner, tiny(steps=5000, seed=8))
        assert second.state == "queued"
        with pytest.raises(PlayRefused) as refused:
            jobs.step(owner, second.id, "step")
        assert refused.value.key == "play_not_started"
        jobs.pause(owner, second.id)  # kept, and sent as it starts
        first = ended(jobs, owner, first, 30)
        assert first.state == "stopped" and "paused without a step" in first.reason, first.reason
        assert first.step == at and "checkpoint" in first.files and first.continuable
        wait_until(lambda: second.paused, FIRST_START_S, "the queued run to start paused")
        assert second.step == 0
        jobs.stop(owner, second.id)
        assert ended(jobs, owner, second, 30).state == "stopped"
    finally:
        jobs.shutdown()


def test_the_server_shutting_down_ends_a_paused_job_as_interrupted(tmp_path):
    jobs = JobManager(limits=Limits(max_running=1, max_running_per_owner=1), runs_dir=tmp_path / "runs")
    owner = jobs.issue_token()
    run = slowly(jobs, owner, tiny(steps=5000, seed=8))
    at = pause_now(jobs, owner, run)
    pid = run.pid
    jobs.shutdown()
    assert run.state == "interrupted" and run.step == at and "checkpoint" in run.files, run.reason
    wait_until(lambda: not _alive(pid), 10, "the paused job's process to exit")


def _alive(pid) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead
        return "zombie" not in open(f"/proc/{pid}/status").read().lower()
    except OSError:
        return False


def test_the_pause_limit_is_a_setting():
    from ganapp.server.limits import ENVIRONMENT, SettingsError

    assert Limits().max_pause_seconds == 300 and "max_pause_seconds" in ENVIRONMENT
    assert Limits.from_env({"GANAPP_MAX_PAUSE_MINUTES": "3"}).max_pause_seconds == 180
    with pytest.raises(SettingsError, match="GANAPP_MAX_PAUSE_MINUTES"):
        Limits.from_env({"GANAPP_MAX_PAUSE_MINUTES": "0"})


PAUSED_SERVER = """
import json, sys, time
sys.path.insert(0, {repo!r})
if __name__ == "__main__":
    from ganapp.config import GANConfig
    from ganapp.jobs import JobManager, Limits
    manager = JobManager(limits=Limits(max_running=1, max_running_per_owner=1), runs_dir={runs!r})
    owner = manager.issue_token()
    run = manager.submit(owner, GANConfig(data="ring8", batch_size=32, hidden_dim=32, metrics_every=0, steps=5000))
    manager.set_speed(owner, run.id, 20)
    while run.step < 3:
        time.sleep(0.02)
    manager.pause(owner, run.id)
    while not run.paused:
        time.sleep(0.02)
    time.sleep(0.3)
    print(json.dumps({{"owner": owner, "run": run.id, "pid": run.pid, "step": run.step}}), flush=True)
    time.sleep(120)
"""


@pytest.mark.slow
def test_a_paused_job_whose_server_is_killed_writes_its_files_and_exits(tmp_path):
    """The orphan watchdog works while a job waits paused: kill -9 the server, and the job stops,
    writes its checkpoint at the step it was paused at, and exits; a restarted server lists it."""
    import signal

    from conftest import REPO, start_and_signal_server

    script = tmp_path / "server.py"
    script.write_text(PAUSED_SERVER.format(repo=str(REPO), runs=str(tmp_path / "runs")))
    started = start_and_signal_server(script, signal.SIGKILL)
    wait_until(lambda: not _alive(started["pid"]), 60, "the paused job to write its files and exit", 0.1)
    again = JobManager(limits=Limits(max_running=1, max_running_per_owner=1), runs_dir=tmp_path / "runs")
    try:
        run = again.get(started["owner"], started["run"])
        assert run.state == "interrupted" and run.continuable, run.reason
        assert run.step == started["step"] and "checkpoint" in run.files
    finally:
        again.shutdown()
