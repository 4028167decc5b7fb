"""The job runner: real child processes, their messages, limits, owners, failures, files.

Runs are tiny (small models, tens of steps) and every wait has a deadline.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import REPO, start_and_signal_server, wait_until
from ganapp import picture_text
from ganapp.config import ConfigError, GANConfig
from ganapp.jobs import JobError, LimitError, RunNotFound, new_owner_token
from ganapp.presets import ready_made_runs
from ganapp.server.messages import Done

TINY = dict(data="ring8", batch_size=32, hidden_dim=32, log_every=5, sample_every=20, metrics_every=0)
FIRST_START_S = 90  # the first job waits for the forkserver to import torch (slow on a busy CI box)


def tiny(**changes) -> GANConfig:
    return GANConfig(**{**TINY, **changes})


def ended(manager, owner, run, timeout_s=60):
    run = manager.wait(owner, run.id, timeout_s=timeout_s)
    assert run.state in ("finished", "stopped", "failed", "interrupted"), f"run still {run.state} after {timeout_s} s"
    return run


@pytest.fixture
def limited(tmp_path):
    """A job manager of the test's own, with the limits it sets (the shared one keeps its own)."""
    from ganapp.jobs import JobManager, Limits

    made = []

    def make(**changes):
        base = dict(max_running=2, max_running_per_owner=2, max_waiting=8, max_waiting_per_owner=3,
                    max_steps=20_000, max_runs_per_owner=8, max_upload_bytes=5 * 1024 * 1024)
        made.append(JobManager(limits=Limits(**{**base, **changes}), runs_dir=tmp_path / f"runs{len(made)}"))
        return made[-1]

    yield make
    for manager in made:
        manager.shutdown()


def stop_all(manager, owner):
    for run in manager.runs(owner):
        if run.active:
            manager.stop(owner, run.id)
    for run in manager.runs(owner):
        ended(manager, owner, run, 30)


def test_a_run_trains_in_its_own_process_and_leaves_its_files(manager):
    owner = manager.issue_token()
    run = manager.submit(owner, tiny(steps=60, metrics_every=30))
    assert run.state == "queued" and manager.runs(owner) == [run]
    run = ended(manager, owner, run, FIRST_START_S)
    assert run.state == "finished", run.reason
    assert run.step == 60 and run.history[-1]["step"] == 60 and len(run.history) == 12
    wait_until(lambda: run.handle is None, 10, "the job's handle to be closed once its process has exited")
    assert run.picture.startswith(b"\x89PNG") and run.picture_count >= 2  # step 0 and the last, at least
    assert run.picture_step == 60
    assert run.curves.startswith(b"\x89PNG") and run.curves_count >= 1  # the whole run's loss curves
    assert set(run.files) == {"config", "metrics", "samples", "checkpoint"}
    assert all(Path(path).is_file() and Path(path).parent == run.folder for path in run.files.values())
    assert 0 < run.seconds < 60 and run.steps_per_second() > 0
    summary = run.describe()
    assert summary["state"] == "finished" and summary["techniques"] == [] and summary["steps"] == 60


def test_loss_curves_are_a_small_picture_however_long_the_run():
    import io

    import numpy as np
    from PIL import Image

    from ganapp import curves

    history = [{"step": 10 * i, "d_loss": 1.0 + np.sin(i / 50), "g_loss": 0.7, "d_real": 0.6, "d_fake": 0.4,
                "seconds": i / 100} for i in range(20_000)]
    history[100]["g_loss"] = float("nan")  # a gap, not a crash
    started = time.perf_counter()
    png = curves.training_curves_png(history)
    assert time.perf_counter() - started < 1.0  # about 9 ms on our 2-core box
    picture = Image.open(io.BytesIO(png))
    assert picture.size == (420, 380) and len(png) < 40_000
    assert len(curves.thin(history)) <= curves.MAX_POINTS + 1
    assert [float(t) for t in curves.nice_ticks(0.0, 1.0, 4)] == [0.0, 0.5, 1.0]
    assert [float(t) for t in curves.nice_ticks(0.0, 20_000.0, 5)] == [0.0, 5_000.0, 10_000.0, 15_000.0, 20_000.0]
    Image.open(io.BytesIO(curves.training_curves_png(history[:1]))).verify()  # one row is enough


def test_owners_are_isolated(manager):
    alice, mallory = manager.issue_token(), manager.issue_token()
    run = manager.submit(alice, tiny(steps=20_000))
    with pytest.raises(RunNotFound):
        manager.get(mallory, run.id)
    with pytest.raises(RunNotFound):
        manager.stop(mallory, run.id)
    with pytest.raises(RunNotFound):
        manager.continue_run(mallory, run.id, 30_000)
    assert manager.runs(mallory) == []
    for bad in (None, "", "short", "x" * 23, "not a token with spaces in it!!", 12345, new_owner_token(),
                alice[:-1] + ("A" if alice[-1] != "A" else "B")):
        with pytest.raises(JobError, match="token"):
            manager.owner_key(bad)
        with pytest.raises(JobError):
            manager.submit(bad, tiny(steps=10))
    manager.stop(alice, run.id)
    assert ended(manager, alice, run).state == "stopped"


def test_server_limits(limited):
    manager = limited(max_running=1)
    owner = manager.issue_token()
    with pytest.raises(LimitError, match="at most 20,000 steps"):
        manager.submit(owner, tiny(steps=20_001))
    with pytest.raises(LimitError, match="batch sizes up to"):
        manager.submit(owner, tiny(batch_size=4096))
    with pytest.raises(ConfigError, match="learning rate"):
        manager.submit(owner, _invalid_config())
    assert manager.runs(owner) == []

    # One job at a time: the next waits with its place in line; waiting runs are capped.
    first = manager.submit(owner, tiny(steps=20_000))
    wait_until(lambda: first.step > 0, FIRST_START_S, "the first run to train")
    other = manager.issue_token()
    waiting = [manager.submit(other, tiny(steps=10)) for _ in range(manager.limits.max_waiting_per_owner)]
    assert [manager.queue_position(r) for r in waiting] == [1, 2, 3]
    assert all(r.state == "queued" for r in waiting)
    with pytest.raises(LimitError, match="waiting"):
        manager.submit(other, tiny(steps=10))
    # Stopping a waiting run ends it at once and moves the others up.
    assert manager.stop(other, waiting[0].id).state == "stopped"
    assert [manager.queue_position(r) for r in waiting[1:]] == [1, 2]

    # A stop takes effect within a second (a few on a loaded machine).
    asked = time.monotonic()
    manager.stop(owner, first.id)
    assert first.state == "stopping"
    wait_until(lambda: first.state == "stopped", 5, "the stop")
    print(f"stop took {time.monotonic() - asked:.2f} s")
    assert 0 < first.step < 20_000 and Path(first.files["checkpoint"]).is_file()
    for run in waiting[1:]:
        assert ended(manager, other, run).state == "finished"


def _invalid_config():
    config = GANConfig()
    config.lr_generator = -1.0  # as a client could send it; submit validates again
    return config


def test_per_visitor_limit_keeps_a_run_waiting(limited):
    manager = limited(max_running_per_owner=1)
    owner = manager.issue_token()
    first = manager.submit(owner, tiny(steps=20_000))
    second = manager.submit(owner, tiny(steps=10))
    wait_until(lambda: first.state == "running", FIRST_START_S, "the first run to start")
    time.sleep(0.2)  # give the pump a few rounds in which it could wrongly start the second
    assert second.state == "queued" and manager.waits_for_own_runs(second)
    manager.stop(owner, first.id)
    assert ended(manager, owner, second).state == "finished"


@pytest.mark.slow  # three job processes, one of them killed
def test_a_crashed_job_shows_why_and_the_others_carry_on(manager):
    owner = manager.issue_token()
    victim = manager.submit(owner, tiny(steps=20_000))
    bystander = manager.submit(owner, tiny(steps=300))
    wait_until(lambda: victim.state == "running" and victim.step > 0, FIRST_START_S, "the victim to train")
    os.kill(victim.pid, signal.SIGKILL)
    victim = ended(manager, owner, victim)
    assert victim.state == "failed"
    assert "ended unexpectedly" in victim.reason and "signal 9" in victim.reason
    assert ended(manager, owner, bystander).state == "finished"
    # The server is fine: new runs still start.
    again = manager.submit(owner, tiny(steps=10))
    assert ended(manager, owner, again).state == "finished"


def test_worker_reports_divergence_and_data_errors_as_reasons(monkeypatch, tmp_path):
    import torch

    from ganapp import training, worker

    real_step = training.Trainer.train_step

    def diverging_step(self):
        result = real_step(self)
        if self.step >= 7:
            result.d_loss = torch.tensor(float("nan"))
        return result

    monkeypatch.setattr(training.Trainer, "train_step", diverging_step)
    messages: list[tuple] = []
    spec = {"kind": "train", "config": tiny(steps=50).to_dict(), "out_dir": str(tmp_path / "nan")}
    assert worker.run(spec, messages.append, lambda: False) == "failed"
    done = messages[-1]
    state, reason, files = done.state, done.reason, done.files
    assert isinstance(done, Done) and state == "failed"
    assert "diverged at step 10" in reason and "smaller learning rate" in reason
    assert Path(files["metrics"]).is_file()  # what was logged is kept

    # MNIST without its files and offline: a clear failed state, no download, no traceback.
    monkeypatch.setenv("GANAPP_OFFLINE", "1")
    monkeypatch.setenv("GANAPP_DATA_DIR", str(tmp_path / "no-data"))
    messages.clear()
    spec = {"kind": "train", "config": tiny(data="mnist", steps=5).to_dict(), "out_dir": str(tmp_path / "m")}
    assert worker.run(spec, messages.append, lambda: False) == "failed"
    reason = messages[-1].reason
    assert "mnist" in reason and "GANAPP_OFFLINE" in reason and "Traceback" not in reason


def test_continue_a_run_and_load_checkpoints_safely(manager, limited, tmp_path):
    owner = manager.issue_token()
    base = ended(manager, owner, manager.submit(owner, tiny(steps=40, seed=3)), FIRST_START_S)
    assert base.state == "finished", base.reason
    with pytest.raises(ConfigError, match="above the run's 40"):
        manager.continue_run(owner, base.id, 40)
    more = ended(manager, owner, manager.continue_run(owner, base.id, 80))
    assert more.state == "finished", more.reason
    assert more.step == 80 and more.history[0]["step"] == 5 and more.history[-1]["step"] == 80
    assert more.config.seed == 3

    viewed = ended(manager, owner, manager.load_checkpoint(owner, base.files["checkpoint"], "mine.safetensors"))
    assert viewed.state == "finished", viewed.reason
    assert viewed.name == "ring8 vanilla seed 3, step 40 (mine.safetensors)"
    assert viewed.step == 40 and viewed.config.seed == 3
    assert viewed.picture.startswith(b"\x89PNG") and len(viewed.history) == 8

    # Hostile or wrong files fail with the engine's message; nothing is unpickled.
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps(_Exploit(str(marker))))
    not_a_checkpoint = tmp_path / "picture.safetensors"
    not_a_checkpoint.write_bytes(base.picture)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(Path(base.files["checkpoint"]).read_bytes()[:-100])
    for path, expected in ((evil, "pickle"), (not_a_checkpoint, "not a safetensors file"), (truncated, "truncated")):
        with pytest.raises(JobError, match=expected):  # refused by the server, from the header, before any job
            manager.load_checkpoint(owner, path)
    assert not marker.exists()

    small = limited(max_upload_bytes=1000)
    with pytest.raises(LimitError, match="accepts checkpoints up to"):
        small.load_checkpoint(small.issue_token(), base.files["checkpoint"])


@pytest.mark.slow  # nine view jobs, one per ready-made run
def test_ready_made_runs_open_as_views_by_name_only(manager):
    owner = manager.issue_token()
    for name in ready_made_runs():
        run = ended(manager, owner, manager.open_ready_made(owner, name), FIRST_START_S)
        assert run.state == "finished", run.reason
        assert run.kind == "view" and run.name == f"{name} (ready-made, step {run.step})"
        assert run.step == run.config.steps
        assert run.picture.startswith(b"\x89PNG") and run.history
        # The view measures the checkpoint once; it agrees with the metrics the run logged last.
        logged = next(row for row in reversed(run.history) if len(row) > 6)
        assert run.metrics and all(run.metrics[k] == pytest.approx(logged[k]) for k in run.metrics)
        assert Path(run.files["checkpoint"]).parent == run.folder  # a copy of the visitor's own
    assert len(ready_made_runs()) == 9
    assert len(manager.runs(owner)) == min(9, manager.limits.max_runs_per_owner)  # the oldest make room
    for name in ("../../etc/passwd", "ring8-vanilla/checkpoint.safetensors", "", None):
        with pytest.raises(JobError, match="unknown ready-made run"):
            manager.open_ready_made(owner, name)
    assert manager.runs(manager.issue_token()) == []


class _Exploit:
    """A pickle that would create a file if anything ever unpickled it."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_old_runs_make_room_and_expire(limited):
    manager = limited(max_runs_per_owner=2)
    owner = manager.issue_token()
    first = ended(manager, owner, manager.submit(owner, tiny(steps=5)), FIRST_START_S)
    second = ended(manager, owner, manager.submit(owner, tiny(steps=5)))
    third = manager.submit(owner, tiny(steps=5))
    assert [r.id for r in manager.runs(owner)] == [second.id, third.id]
    assert not first.folder.exists()
    ended(manager, owner, third)
    manager.limits.run_ttl_s = -1.0  # this manager is the test's own
    manager._cleanup()
    assert manager.runs(owner) == [] and not second.folder.exists() and not third.folder.exists()


@pytest.mark.slow  # a server in a subprocess (imports torch) and its job
def test_jobs_end_when_the_server_is_killed(tmp_path):
    """A SIGKILLed server runs no cleanup; its jobs must notice and exit by themselves."""
    script = tmp_path / "server.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        if __name__ == "__main__":
            from ganapp.config import GANConfig
            from ganapp.jobs import JobManager, Limits
            manager = JobManager(limits=Limits(max_running=1), runs_dir={str(tmp_path / "runs")!r})
            owner = manager.issue_token()
            run = manager.submit(owner, GANConfig(data="ring8", steps=20000, hidden_dim=32, metrics_every=0))
            while run.state != "running":
                time.sleep(0.02)
            print(run.pid, flush=True)
            time.sleep(120)
    """))
    server = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()  # blocks until the job runs (or the server dies)
        assert line.strip().isdigit(), f"the server printed {line!r}"
        job_pid = int(line)
        assert _alive(job_pid)
    finally:
        server.kill()
        server.wait(10)
    wait_until(lambda: not _alive(job_pid), 10, f"job {job_pid} to exit after its server was killed", 0.1)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its parent has not reaped it


def test_default_run_names_say_what_sets_a_run_apart(manager):
    owner = manager.issue_token()
    collapse = manager.submit(owner, tiny(generator_batch_norm=False, minibatch_discrimination=True,
                                          minibatch_reduction="sum", steps=10))
    plain = manager.submit(owner, tiny(steps=10))
    assert collapse.name == "ring8 MBD-sum seed 0, G without BN" and plain.name == "ring8 vanilla seed 0"
    for run in (collapse, plain):
        ended(manager, owner, run, FIRST_START_S)


def test_a_restarted_server_lists_its_visitors_ended_runs_again(tmp_path):
    """With GANAPP_RUNS_DIR (here runs_dir) kept, a new server finds each visitor's ended runs."""
    from ganapp.jobs import JobManager, Limits

    limits = Limits(max_running=2, max_running_per_owner=2, max_steps=1000)
    first = JobManager(limits=limits, runs_dir=tmp_path)
    owner, stranger = first.issue_token(), first.issue_token()
    try:
        done = ended(first, owner, first.submit(owner, tiny(steps=60, metrics_every=30), name="before",
                                                lang="zh-TW"), FIRST_START_S)
        stopped = first.submit(owner, tiny(steps=500, seed=2))
        first.stop(owner, stopped.id)
        ended(first, owner, stopped)
        other = ended(first, stranger, first.submit(stranger, tiny(steps=20)))
    finally:
        first.shutdown()
    assert done.state == "finished" and (done.folder / "run.json").is_file()

    second = JobManager(limits=limits, runs_dir=tmp_path)
    try:
        again = second.runs(owner)
        assert [(r.id, r.name, r.state, r.step) for r in again] == [
            (r.id, r.name, r.state, r.step) for r in (done, stopped)]
        restored = again[0]
        assert restored.config == done.config and restored.seconds == pytest.approx(done.seconds)
        assert [row["step"] for row in restored.history] == [row["step"] for row in done.history]
        assert restored.history[-1]["g_loss"] == pytest.approx(done.history[-1]["g_loss"], rel=1e-12)
        assert restored.metric_rows == done.metric_rows == 2 and restored.metrics == pytest.approx(done.metrics)
        assert restored.picture.startswith(b"\x89PNG") and set(restored.files) == set(done.files)
        # Its pictures were drawn for a Chinese page: the restored run knows it, and keeps its bar
        # chart in both languages, so an English page shows the English one.
        assert restored.spec.get("lang") == "zh-TW"
        assert (restored.metrics_picture, restored.metrics_picture_other) == (done.metrics_picture,
                                                                             done.metrics_picture_other)
        if picture_text.picture_language("zh-TW") == "zh-TW":  # a CJK font is installed: two charts
            assert done.metrics_picture_other.startswith(b"\x89PNG")
            assert restored.metrics_picture != restored.metrics_picture_other
        wait_until(lambda: restored.curves is not None, 10, "the restored run's loss curves")  # redrawn in the background
        assert [r.id for r in second.runs(stranger)] == [other.id]
        with pytest.raises(RunNotFound):
            second.get(stranger, restored.id)
        more = ended(second, owner, second.continue_run(owner, restored.id, 80), FIRST_START_S)
        assert more.state == "finished" and more.step == 80, more.reason
    finally:
        second.shutdown()

    # A damaged record costs only that run's listing.
    (tmp_path / second.owner_key(owner) / restored.id / "run.json").write_text("{not json")
    third = JobManager(limits=limits, runs_dir=tmp_path)
    try:
        assert restored.id not in [r.id for r in third.runs(owner)] and len(third.runs(owner)) == 2
    finally:
        third.shutdown()


def _descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.slow  # thirteen job processes
def test_ended_jobs_leave_no_open_descriptors(manager):
    """Each ended job used to keep 4 descriptors (31 runs: 12 -> 132); now its handle is closed."""
    owner = manager.issue_token()
    warm = ended(manager, owner, manager.submit(owner, tiny(steps=5)), FIRST_START_S)
    wait_until(lambda: manager.counts()["running"] == 0 and warm.handle is None, 30, "every job to be reaped")
    before = _descriptors()
    for seed in range(12):
        run = manager.submit(owner, tiny(steps=5, seed=seed))
        if seed % 3 == 2:
            manager.stop(owner, run.id)
        ended(manager, owner, run)
    wait_until(lambda: manager.counts()["running"] == 0, 30, "every job to be reaped")
    assert _descriptors() <= before + 2, f"{_descriptors() - before} descriptors more after 12 runs"


RESTART_SERVER = """
import json, signal, sys, time
sys.path.insert(0, {repo!r})
if __name__ == "__main__":
    from ganapp.config import GANConfig
    from ganapp.jobs import JobManager, Limits
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # as app.main does: atexit stops the jobs
    manager = JobManager(limits=Limits(max_running=1, max_running_per_owner=1), runs_dir={runs!r})
    owner = manager.issue_token()
    small = dict(data="ring8", hidden_dim=32, batch_size=32, metrics_every=0, log_every=5)
    long = manager.submit(owner, GANConfig(steps=20000, **small), name="long")
    waiting = manager.submit(owner, GANConfig(steps=50, seed=1, **small), name="waiting")
    while long.step < 50:
        time.sleep(0.02)
    print(json.dumps({{"owner": owner, "long": long.id, "waiting": waiting.id, "pid": long.pid}}), flush=True)
    time.sleep(120)
"""


@pytest.mark.slow  # a server in a subprocess, killed, and a second one continuing its runs
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "kill -9"])
def test_runs_cut_off_by_a_server_restart_are_listed_and_continue(tmp_path, how):
    from ganapp.jobs import JobManager, Limits

    script = tmp_path / "server.py"
    script.write_text(RESTART_SERVER.format(repo=str(REPO), runs=str(tmp_path / "runs")))
    started = start_and_signal_server(script, how)
    # Killed with -9, the server cleans nothing up: its job notices, stops and writes its files.
    wait_until(lambda: not _alive(started["pid"]), 30, "the job to write its files and exit", 0.1)

    again = JobManager(limits=Limits(max_running=1, max_running_per_owner=1, max_steps=20_000),
                       runs_dir=tmp_path / "runs")
    try:
        owner = started["owner"]  # the visitor's token still works after the restart
        runs = {r.name: r for r in again.runs(owner)}
        assert set(runs) == {"long", "waiting"}
        long, waiting = runs["long"], runs["waiting"]
        assert (long.id, waiting.id) == (started["long"], started["waiting"])
        assert long.state == waiting.state == "interrupted" and long.continuable and waiting.continuable
        assert long.step >= 50 and f"go on from step {long.step:,}" in long.reason, long.reason
        assert Path(long.files["checkpoint"]).is_file() and "start it again" in waiting.reason
        more = ended(again, owner, again.continue_run(owner, long.id, long.step + 20), FIRST_START_S)
        assert more.state == "finished" and more.step == long.step + 20, more.reason
        fresh = ended(again, owner, again.continue_run(owner, waiting.id, 50), FIRST_START_S)
        assert fresh.state == "finished" and fresh.step == 50 and fresh.kind == "train", fresh.reason
    finally:
        again.shutdown()
    assert not list((tmp_path / "runs").glob("*/*/upload"))  # nothing half-made left behind


def test_a_data_set_that_would_be_downloaded_is_refused_when_downloads_are_off(tmp_path, monkeypatch):
    from ganapp.jobs import JobManager, Limits, SettingsError

    monkeypatch.setenv("GANAPP_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.setenv("GANAPP_DOWNLOADS", "off")
    offline = JobManager(limits=Limits(), runs_dir=tmp_path / "runs")
    try:
        owner = offline.issue_token()
        with pytest.raises(JobError, match="mnist data set is not on this server"):
            offline.submit(owner, tiny(data="mnist", steps=5))
        assert offline.runs(owner) == []
    finally:
        offline.shutdown()
    monkeypatch.setenv("GANAPP_DOWNLOADS", "maybe")
    with pytest.raises(SettingsError, match="GANAPP_DOWNLOADS"):
        JobManager(limits=Limits(), runs_dir=tmp_path / "runs2")


def test_a_run_whose_losses_explode_ends_with_a_warning():
    from types import SimpleNamespace

    from ganapp import worker

    calm = [{"step": s, "d_loss": 1.3, "g_loss": 0.7} for s in range(0, 400, 10)]
    exploded = calm[:30] + [{"step": 300 + s, "d_loss": 2e5, "g_loss": 3e6} for s in range(10)]
    assert worker._divergence_warning(SimpleNamespace(history=calm)) is None
    spike_then_calm = [{"step": 0, "d_loss": 1e6, "g_loss": 1e6}] + calm
    assert worker._divergence_warning(SimpleNamespace(history=spike_then_calm)) is None
    warning = worker._divergence_warning(SimpleNamespace(history=exploded))
    assert "3e+06" in warning and "smaller learning rate" in warning


@pytest.mark.slow  # a subprocess that imports the worker (torch)
def test_a_job_process_is_bounded_by_the_os_as_a_backstop(tmp_path):
    """Behind the estimates: a job cannot map far past its memory budget or write a file past
    the bytes per run (the server's checks come first; this catches what an estimate missed)."""
    probe = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        import numpy as np
        from ganapp import worker
        worker._bound_resources({{"memory_bytes": 256 * 2**20, "run_bytes": 2**20}})
        try:
            np.ones(2**31, dtype=np.uint8) + 1  # 2 GiB, far past 2 x 256 MiB over what is mapped
            print("memory: allowed")
        except MemoryError:
            print("memory: refused")
        try:
            with open({str(tmp_path / "big")!r}, "wb") as out:
                out.write(b"x" * (2 * 2**20))
            print("file: allowed")
        except OSError as error:
            print("file: refused", error.errno)
        small = np.ones(2**20)  # ordinary work still goes on
        print("small:", int(small.sum()))
    """)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.stdout.split("\n")[:3] == ["memory: refused", "file: refused 27", f"small: {2**20}"], result


@pytest.mark.slow  # two 400-step jobs
def test_a_side_of_a_pair_draws_every_picture_however_fast_it_trains(manager):
    """Without every_picture a fast job draws at most two pictures a second (the rest are
    skipped); a side of a pair draws one every sample_every steps, so both sides of the
    pair have pictures of the same steps."""
    owner = manager.issue_token()
    steps = []
    manager.add_picture_listener(lambda run, step, png: steps.append((run.id, step)) if run.owner == key else None)
    key = manager.owner_key(owner)
    paired = manager.submit(owner, tiny(steps=400, sample_every=20), every_picture=True)
    plain = manager.submit(owner, tiny(steps=400, sample_every=20))
    for run in (paired, plain):
        assert ended(manager, owner, run, FIRST_START_S).state == "finished", run.reason
    # Every multiple of sample_every, in order; on a busy machine (20 steps over a second) the
    # worker may also draw at a log step between them (PICTURE_INTERVAL_S), which is allowed.
    paired_steps = [step for run_id, step in steps if run_id == paired.id]
    assert paired_steps == sorted(set(paired_steps)), paired_steps
    assert set(range(0, 401, 20)) <= set(paired_steps), paired_steps
    assert paired.picture_count == len(paired_steps) >= 21
    # Without it, at most two a second: on a quiet machine 400 tiny steps take well under a second,
    # so some are skipped; on a very busy one all may be drawn, so only the first and last are certain.
    drawn = [step for run_id, step in steps if run_id == plain.id]
    assert drawn[0] == 0 and drawn[-1] == 400, drawn


def test_a_job_trains_at_nice_10_or_at_its_ray_runners_lower_priority(manager):
    # Local jobs start at the server's 0 and train at 10; on a Ray node a job starts at its
    # runner's niceness (Ray's worker niceness, 15 by default) and stays there, not at 19.
    from ganapp.worker import POLITE_NICENESS, polite_increment

    assert POLITE_NICENESS == 10
    assert [niceness + polite_increment(niceness) for niceness in (0, 3, 10, 15, 19)] == [10, 10, 10, 15, 19]
    # A real local job, seen from outside, after its first picture.
    owner = manager.issue_token("test")
    run = manager.submit(owner, tiny(steps=20_000))
    try:
        wait_until(lambda: run.picture is not None and run.pid is not None, FIRST_START_S, "the job's first picture")
        wait_until(lambda: os.getpriority(os.PRIO_PROCESS, run.pid) == os.nice(0) + POLITE_NICENESS, 10,
                   "the job to train at nice 10 above the server")
    finally:
        manager.stop(owner, run.id)
        ended(manager, owner, run)
