"""The job server's rules, through its backend seam: a scripted backend stands in for job
processes, so these run in milliseconds and can script what real jobs rarely do (odd
messages, slow starts, jobs that never stop). tests/test_jobs.py runs real processes."""

from __future__ import annotations

import json
import struct
import threading
import time
from pathlib import Path

import pytest

from conftest import wait_until
from ganapp.config import GANConfig
from ganapp.server import JobError, JobManager, LimitError, Limits, SettingsError
from ganapp.server.limits import MB
from ganapp.server.manager import TRANSITIONS
from ganapp.server.messages import Done, Log, Samples, Started
from ganapp.server.tokens import TokenIssuer

TINY = dict(data="ring8", batch_size=32, hidden_dim=32, log_every=5, sample_every=20, metrics_every=0)


def tiny(**changes) -> GANConfig:
    return GANConfig(**{**TINY, **changes})


class ScriptedHandle:
    """A job that says what the test tells it to, and ends when told (or when stopped, if polite)."""

    def __init__(self, spec, *, polite=True):
        self.spec, self.polite = spec, polite
        self.outbox: list = []
        self.running = True
        self.stop_asked = self.terminated = self.closed = False
        self.pid = None

    def say(self, *messages):
        self.outbox.extend(messages)

    def finish(self, state="finished", reason=None, step=None):
        config = GANConfig.from_dict(self.spec["config"]) if "config" in self.spec else None
        if step is not None:
            self.say(Log(row={"step": step, "d_loss": 1.0, "g_loss": 1.0, "d_real": 0.5, "d_fake": 0.5,
                              "seconds": 0.1}))
        self.say(Done(state=state, reason=reason, files={}, seconds=0.1))
        self.running = False
        return config

    def drain(self, final=False):
        out, self.outbox = self.outbox, []
        return out

    def alive(self):
        return self.running

    def exit_description(self):
        return "exit code 0"

    def request_stop(self):
        self.stop_asked = True
        if self.polite:
            self.finish("stopped")

    def terminate(self):
        self.terminated = True
        self.running = False

    def close(self):
        assert not self.closed, "a handle is closed once"
        self.closed = True


class ScriptedBackend:
    def __init__(self, *, start_delay_s=0.0, polite=True):
        self.handles: dict[str, ScriptedHandle] = {}
        self.start_delay_s, self.polite = start_delay_s, polite
        self.starting = threading.Event()

    def start(self, job_id, spec):
        self.starting.set()
        time.sleep(self.start_delay_s)
        handle = ScriptedHandle(spec, polite=self.polite)
        self.handles[job_id] = handle
        return handle

    def warm_up(self):
        pass

    def close(self):
        pass


@pytest.fixture
def scripted(tmp_path):
    """A manager over a scripted backend, with a runs folder that outlives it (records on)."""
    made = []

    def make(backend=None, **limits):
        backend = backend or ScriptedBackend()
        manager = JobManager(limits=Limits(**{"max_running": 1, "max_running_per_owner": 1, **limits}),
                             runs_dir=tmp_path / "runs", backend=backend, pump_interval_s=0.005)
        made.append(manager)
        return manager, backend

    yield make
    for manager in made:
        manager.shutdown(grace_s=0.5)


def started(manager, backend, run):
    wait_until(lambda: run.id in backend.handles and run.handle is not None, 5, f"run {run.name} to start")
    return backend.handles[run.id]


def test_visitors_take_turns_in_the_queue(scripted):
    manager, backend = scripted()
    alice, bob, carol = (manager.issue_token(f"10.0.0.{i}") for i in range(3))
    a1 = manager.submit(alice, tiny(seed=1))
    started(manager, backend, a1)
    a2, a3 = manager.submit(alice, tiny(seed=2)), manager.submit(alice, tiny(seed=3))
    b1 = manager.submit(bob, tiny(seed=4))
    c1 = manager.submit(carol, tiny(seed=5))
    # Alice had a turn: Bob and Carol go before her second and third run, though they came later.
    assert [manager.queue_position(r) for r in (b1, c1, a2, a3)] == [1, 2, 3, 4]
    backend.handles[a1.id].finish(step=10)
    started(manager, backend, b1)
    assert a2.state == "queued" and manager.queue_position(c1) == 1
    backend.handles[b1.id].finish(step=10)
    started(manager, backend, c1)
    backend.handles[c1.id].finish(step=10)
    started(manager, backend, a2)


def test_made_up_tokens_are_refused_and_new_ones_are_rate_limited(scripted):
    manager, _ = scripted(max_tokens_per_minute=3)
    mine = [manager.issue_token("192.0.2.1") for _ in range(3)]
    with pytest.raises(LimitError, match="too many new visitors"):
        manager.issue_token("192.0.2.1")
    manager.issue_token("192.0.2.2")  # another address is not held up
    forged = mine[0][:25] + "A" * 22
    for bad in (forged, "A" * 24 + "." + "B" * 22, "x" * 47, None, 7):
        with pytest.raises(JobError, match="token"):
            manager.submit(bad, tiny())
    assert len(set(mine)) == 3 and all(manager.owner_key(t) != manager.owner_key(mine[0]) for t in mine[1:])


def test_a_token_outlives_a_restart_but_not_a_new_secret(tmp_path):
    first = TokenIssuer(secret_file=tmp_path / "secret")
    token = first.issue()
    assert TokenIssuer(secret_file=tmp_path / "secret").owner_key(token) == first.owner_key(token)
    assert (tmp_path / "secret").stat().st_mode & 0o077 == 0
    with pytest.raises(JobError, match="not issued by this server"):
        TokenIssuer().owner_key(token)


def test_an_odd_message_fails_only_its_own_run(scripted):
    manager, backend = scripted(max_running=2, max_running_per_owner=2)
    owner, other = manager.issue_token(), manager.issue_token()
    victim = manager.submit(owner, tiny())
    bystander = manager.submit(other, tiny(seed=1))
    handle = started(manager, backend, victim)
    started(manager, backend, bystander)
    handle.say(Started(config=tiny().to_dict(), step=0, history=[1, 2, 3]),  # rows that are not rows: ignored
               Log(row="not a row"))  # a message the server cannot use: this run fails, nothing else
    wait_until(lambda: victim.state == "failed", 5, "the victim to fail")
    assert "could not use" in victim.reason and handle.terminated
    assert [r.describe()["state"] for r in manager.runs(owner)] == ["failed"]  # the page still lists it
    backend.handles[bystander.id].finish(step=10)
    wait_until(lambda: bystander.state == "finished", 5, "the bystander to finish")
    again = manager.submit(owner, tiny(seed=2))  # the visitor's page and runs still work
    started(manager, backend, again)


def test_every_state_change_follows_the_transitions(scripted):
    manager, backend = scripted()
    owner = manager.issue_token()
    run = manager.submit(owner, tiny())
    handle = started(manager, backend, run)
    handle.say(Started(config=tiny().to_dict(), step=0))
    wait_until(lambda: run.state == "running", 5, "running")
    manager.stop(owner, run.id)
    wait_until(lambda: run.state == "stopped", 5, "stopped")
    assert not manager._set_state(run, "running")  # an ended run never comes back to life
    assert run.state == "stopped" and handle.closed and run.handle is None
    for state, after in TRANSITIONS.items():
        assert state not in after


def test_shutdown_waits_for_a_start_in_progress(scripted):
    backend = ScriptedBackend(start_delay_s=0.5)
    manager, _ = scripted(backend)
    owner = manager.issue_token()
    run = manager.submit(owner, tiny())
    assert backend.starting.wait(5)
    manager.shutdown(grace_s=1.0)  # while the backend is still starting the job
    handle = backend.handles[run.id]
    assert handle.stop_asked and handle.closed
    assert run.state == "interrupted" and "start it again" in run.reason


def test_a_job_that_will_not_stop_is_terminated_at_shutdown(scripted):
    manager, backend = scripted(ScriptedBackend(polite=False))
    owner = manager.issue_token()
    run = manager.submit(owner, tiny())
    handle = started(manager, backend, run)
    manager.shutdown(grace_s=0.2)
    assert handle.stop_asked and handle.terminated and handle.closed and run.state == "interrupted"


def test_jobs_are_stopped_at_the_time_limit(scripted):
    manager, backend = scripted()
    manager.limits.max_job_seconds = 0.2
    owner = manager.issue_token()
    run = manager.submit(owner, tiny())
    handle = started(manager, backend, run)
    wait_until(lambda: run.state == "stopped", 5, "the time limit")
    assert handle.stop_asked and "limit of 0 minutes per run" in run.reason


def test_configs_above_the_budgets_are_refused_before_any_job(scripted):
    manager, backend = scripted(max_hidden_dim=4096)
    owner = manager.issue_token()
    with pytest.raises(LimitError, match="memory"):  # the issue's batch 1024 x 1024 kernels: > 8 GiB
        manager.submit(owner, tiny(batch_size=1024, minibatch_discrimination=True, minibatch_kernels=1024))
    manager.limits.max_job_memory_bytes = 10**12  # so that the bytes on disk are what refuses the next one
    with pytest.raises(LimitError, match="checkpoint of about"):  # the issue's 2.16 GB checkpoint in one step
        manager.submit(owner, tiny(batch_size=2, hidden_dim=512, minibatch_discrimination=True,
                                   minibatch_kernels=1024, minibatch_kernel_dim=256,
                                   historical_averaging="uniform", steps=1))
    assert backend.handles == {} and manager.runs(owner) == []


def _checkpoint_header_only(path: Path, config: dict) -> Path:
    """A safetensors file that declares a config and holds no tensors (enough for the header check)."""
    meta = {"format": "ganapp-checkpoint", "format_version": 1, "config": config, "step": 1, "seconds": 0.0,
            "history": []}
    header = json.dumps({"__metadata__": {"ganapp": json.dumps(meta)}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    return path


def test_an_upload_declaring_a_huge_model_is_refused_before_any_job(scripted, tmp_path):
    manager, backend = scripted(max_hidden_dim=4096)
    owner = manager.issue_token()
    huge = tiny(hidden_dim=4096, minibatch_discrimination=True, minibatch_kernels=1024,
                minibatch_kernel_dim=32).to_dict()
    with pytest.raises(LimitError, match="this checkpoint"):
        manager.load_checkpoint(owner, _checkpoint_header_only(tmp_path / "huge.safetensors", huge))
    assert backend.handles == {} and manager.runs(owner) == []


def test_old_runs_make_room_and_the_visitor_is_told(scripted):
    manager, backend = scripted(max_runs_per_owner=2)
    owner = manager.issue_token()
    runs = []
    for seed in range(3):
        run = manager.submit(owner, tiny(seed=seed), name=f"run {seed}")
        started(manager, backend, run).finish(step=10)
        wait_until(lambda: run.state == "finished", 5, "the run to finish")
        runs.append(run)
    assert [r.name for r in manager.runs(owner)] == ["run 1", "run 2"] and not runs[0].folder.exists()
    notices = manager.take_notices(owner)
    assert len(notices) == 1 and "'run 0' was deleted to make room" in notices[0] and "2 runs per visitor" in notices[0]
    assert manager.take_notices(owner) == []


def test_disk_bytes_are_bounded_per_visitor(scripted):
    manager, backend = scripted(max_run_bytes=1 * MB, max_owner_bytes=1 * MB, max_total_bytes=1 * MB)
    owner = manager.issue_token()
    first = manager.submit(owner, tiny())
    started(manager, backend, first)
    first.budget_bytes = 900_000  # as if its files had grown so far
    with pytest.raises(LimitError, match="still going"):  # an active run is never evicted
        manager.submit(owner, tiny(seed=1))
    backend.handles[first.id].finish(step=10)
    wait_until(lambda: first.state == "finished", 5, "the first run to end")
    first.budget_bytes = 900_000
    second = manager.submit(owner, tiny(seed=1))  # now the ended run makes room, and the visitor is told
    assert manager.runs(owner) == [second] and "MB per visitor" in manager.take_notices(owner)[0]


@pytest.mark.parametrize("variable, value, words", [
    ("GANAPP_MAX_JOBS", "abc", "GANAPP_MAX_JOBS (jobs training at once, all visitors together) must be a whole number"),
    ("GANAPP_MAX_JOBS", "0", "GANAPP_MAX_JOBS (jobs training at once, all visitors together) must be between 1"),
    ("GANAPP_MAX_BATCH_SIZE", "-1", "GANAPP_MAX_BATCH_SIZE (batch size) must be between 2"),
    ("GANAPP_MAX_UPLOAD_MB", "1e9", "must be a whole number"),
    ("GANAPP_RUN_TTL_HOURS", "0", "must be between 1"),
])
def test_bad_environment_variables_are_named_at_start(variable, value, words):
    with pytest.raises(SettingsError) as caught:
        Limits.from_env({variable: value})
    assert words in str(caught.value) and "Traceback" not in str(caught.value)


def test_environment_variables_set_the_limits():
    limits = Limits.from_env({"GANAPP_MAX_JOBS": "3", "GANAPP_MAX_UPLOAD_MB": "7", "GANAPP_MAX_JOB_MINUTES": "2",
                              "GANAPP_MAX_JOB_MEMORY_MB": "512", "GANAPP_MAX_RUN_MB": "10"})
    assert (limits.max_running, limits.max_upload_bytes, limits.max_job_seconds) == (3, 7 * MB, 120)
    assert (limits.max_job_memory_bytes, limits.max_run_bytes) == (512 * MB, 10 * MB)
    with pytest.raises(SettingsError, match="disk limits must grow"):
        Limits.from_env({"GANAPP_MAX_RUN_MB": "900", "GANAPP_MAX_VISITOR_MB": "100"})


@pytest.mark.slow
def test_the_app_refuses_to_start_on_a_bad_variable_with_one_sentence():
    import os
    import subprocess
    import sys

    from conftest import REPO

    for variable, value in (("GANAPP_MAX_JOBS", "abc"), ("GANAPP_MAX_BATCH_SIZE", "-1"), ("GANAPP_DOWNLOADS", "maybe")):
        result = subprocess.run([sys.executable, "app.py"], cwd=REPO, capture_output=True, text=True, timeout=120,
                                env={**os.environ, variable: value, "GRADIO_SERVER_PORT": "1"})
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert result.stderr.startswith(f"ganapp: {variable}") and value in result.stderr


def test_a_run_that_has_ended_has_its_last_version_already(scripted, monkeypatch):
    # A page redraws a view when the run's version moves; one that saw the run end must not
    # see it move again (a finished run's comparison was drawn twice when the message's own
    # bump came after the state's).
    manager, backend = scripted()
    owner = manager.issue_token("10.0.0.9")
    run = manager.submit(owner, tiny())
    handle = started(manager, backend, run)
    seen = []
    set_state = manager._set_state

    def watched(r, state, reason=None):
        changed = set_state(r, state, reason)
        if r is run and state == "finished":
            seen.append(r.version)
        return changed

    monkeypatch.setattr(manager, "_set_state", watched)
    handle.finish(step=10)
    manager.wait(owner, run.id)
    wait_until(lambda: run.handle is None, 5, "the pump to let the job go")
    assert run.state == "finished" and seen == [run.version]
    # A Done that changes no state (the run had ended already) still moves the version once.
    before = run.version
    manager._apply(run, Done(state="finished", reason=None, files={}, seconds=0.2))
    assert run.state == "finished" and run.version == before + 1
