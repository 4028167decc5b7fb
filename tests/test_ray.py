"""The job server on a real Ray cluster (ganapp.server.ray_backend), on loopback.

One Ray instance for the module (2 CPUs, no dashboard, its own temporary folder, on
127.0.0.1), one JobManager whose backend is RayJobs; the same behaviours as
tests/test_jobs.py checks with local processes: a run trains and its files arrive in
the run's folder on the server; stop; a killed job fails only its own run; owners
and queue positions; continue and view from a checkpoint (its bytes travel to the
job). Ray is shut down at the end. Skipped when Ray is not installed (pip install ray).
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import REPO, wait_until
from ganapp.config import GANConfig
from ganapp.jobs import JobError, RunNotFound

TINY = dict(data="ring8", batch_size=32, hidden_dim=32, log_every=5, sample_every=20, metrics_every=0)
FIRST_START_S = 90  # each Ray job is a new process that imports torch (slow on a busy 2-core box)


def tiny(**changes) -> GANConfig:
    return GANConfig(**{**TINY, **changes})


def ended(manager, owner, run, timeout_s=60):
    run = manager.wait(owner, run.id, timeout_s=timeout_s)
    assert run.state in ("finished", "stopped", "failed", "interrupted"), f"run still {run.state} after {timeout_s} s"
    return run


@pytest.fixture(scope="module")
def ray_manager(tmp_path_factory):
    """A JobManager on a fresh Ray instance with 2 CPUs; Ray shut down afterwards."""
    from ganapp.server.ray_backend import LOOPBACK_ONLY

    for name, value in LOOPBACK_ONLY.items():  # before Ray is imported: its servers listen on 127.0.0.1 only
        os.environ.setdefault(name, value)
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install ray); the cluster backend is optional")
    from ganapp.jobs import JobManager, Limits
    from ganapp.server.ray_backend import RayJobs

    if ray.is_initialized():
        ray.shutdown()
    # A short folder of its own: Ray's sockets live there (a path of at most 107 bytes), and a
    # Ray started by someone else on this machine is neither joined nor touched.
    temp_dir = tempfile.mkdtemp(prefix="ganapp-ray-", dir="/tmp")
    backend = RayJobs("local", init_options={
        # One GPU as Ray counts it (none is here: torch finds no CUDA and "auto" trains on the CPU),
        # so that the tests see a job ask for the cluster's GPU.
        "num_cpus": 2, "num_gpus": 1, "_temp_dir": temp_dir, "log_to_driver": False,
        # The checkout is not installed as a package; a cluster's machines install ganapp.
        "runtime_env": {"env_vars": {"PYTHONPATH": str(REPO)}}})
    limits = Limits(max_running=2, max_running_per_owner=2, max_waiting=8, max_waiting_per_owner=3,
                    max_steps=20_000, max_runs_per_owner=8)
    assert set(ray.cluster_resources()) >= {"node:127.0.0.1"}  # on loopback
    manager = JobManager(limits=limits, runs_dir=tmp_path_factory.mktemp("ray-runs"), backend=backend)
    yield manager
    manager.shutdown()  # closes the backend: kills what is left, shuts Ray down
    assert not ray.is_initialized()


pytestmark = pytest.mark.slow


def test_a_run_trains_on_ray_and_its_files_come_back_to_the_run_folder(ray_manager):
    manager = ray_manager
    owner = manager.issue_token()
    run = ended(manager, owner, manager.submit(owner, tiny(steps=60, seed=3)), FIRST_START_S)
    assert run.state == "finished", run.reason
    assert run.step == 60 and run.history[-1]["step"] == 60 and len(run.history) == 12
    assert run.picture.startswith(b"\x89PNG") and run.picture_step == 60
    assert run.curves.startswith(b"\x89PNG")
    assert set(run.files) == {"config", "metrics", "samples", "checkpoint"}
    for path in run.files.values():  # written by the server, from the bytes the job sent
        assert Path(path).parent == run.folder and Path(path).stat().st_size > 0
    assert GANConfig.from_json(Path(run.files["config"]).read_text()).seed == 3
    wait_until(lambda: run.handle is None, 10, "the job's handle to be closed")

    # continue: the checkpoint's bytes travel to the job, the new files come back
    more = ended(manager, owner, manager.continue_run(owner, run.id, 80), FIRST_START_S)
    assert more.state == "finished", more.reason
    assert more.step == 80 and more.history[0]["step"] == 5 and more.config.seed == 3
    assert Path(more.files["checkpoint"]).parent == more.folder
    # view: an uploaded checkpoint, read by a job on the cluster
    viewed = ended(manager, owner, manager.load_checkpoint(owner, run.files["checkpoint"], "mine.safetensors"),
                   FIRST_START_S)
    assert viewed.state == "finished", viewed.reason
    assert viewed.name == "ring8 vanilla seed 3, step 60 (mine.safetensors)" and viewed.step == 60


def test_stop_and_a_killed_job_fails_only_its_own_run(ray_manager):
    manager = ray_manager
    owner = manager.issue_token()
    victim = manager.submit(owner, tiny(steps=20_000))
    bystander = manager.submit(owner, tiny(steps=20_000, seed=1))
    wait_until(lambda: victim.step > 0 and bystander.step > 0, FIRST_START_S, "both jobs to train")
    _, runner_pid = victim.handle.where()
    pid = victim.handle.job_pid()
    assert pid != runner_pid  # each job runs in a child process of its runner
    os.kill(pid, signal.SIGKILL)  # the job's process on the cluster dies (OOM killer, a crash)
    victim = ended(manager, owner, victim, 30)
    assert victim.state == "failed"
    assert "ended unexpectedly" in victim.reason and "died (signal 9)" in victim.reason, victim.reason
    assert "Traceback" not in victim.reason
    assert bystander.state == "running"
    step = bystander.step
    wait_until(lambda: bystander.step > step, 20, "the other run to go on training")

    manager.stop(owner, bystander.id)  # stop: the job writes its files, and they come back
    bystander = ended(manager, owner, bystander, 30)
    assert bystander.state == "stopped", bystander.reason
    assert 0 < bystander.step < 20_000 and Path(bystander.files["checkpoint"]).is_file()


def test_owners_and_queue_positions_as_with_local_processes(ray_manager):
    manager = ray_manager
    alice, bob, carol, mallory = (manager.issue_token() for _ in range(4))
    first = [manager.submit(alice, tiny(steps=20_000, seed=s)) for s in (0, 1)]
    wait_until(lambda: all(r.state == "running" for r in first), FIRST_START_S, "alice's two jobs to start")
    # The cluster has one GPU: one job took it, the other a CPU only (it does not wait for the GPU).
    assert sorted(r.handle._slot.gpu for r in first) == [False, True]
    later = manager.submit(alice, tiny(steps=20_000, seed=2))
    bobs = manager.submit(bob, tiny(steps=20_000))
    carols = manager.submit(carol, tiny(steps=20_000))
    # Fair turns: alice started last, so bob and carol go first; positions follow the turns.
    assert [manager.queue_position(r) for r in (bobs, carols, later)] == [1, 2, 3]
    with pytest.raises(RunNotFound):
        manager.get(mallory, first[0].id)
    with pytest.raises(RunNotFound):
        manager.stop(mallory, first[0].id)
    with pytest.raises(JobError):
        manager.continue_run(mallory, first[0].id, 30_000)
    assert manager.runs(mallory) == []
    manager.stop(alice, first[0].id)
    wait_until(lambda: bobs.state in ("starting", "running"), 30, "bob's run to start in the freed slot")
    assert manager.queue_position(carols) == 1 and manager.queue_position(later) == 2
    for owner in (alice, bob, carol):
        for run in manager.runs(owner):
            if run.active:
                manager.stop(owner, run.id)
    for owner in (alice, bob, carol):
        for run in manager.runs(owner):
            assert ended(manager, owner, run, 30).state == "stopped"


def test_the_backend_is_chosen_by_configuration(monkeypatch):
    from ganapp.server.backend import LocalProcesses, backend_from_env
    from ganapp.server.limits import SettingsError

    assert isinstance(backend_from_env({}), LocalProcesses)
    assert isinstance(backend_from_env({"GANAPP_RAY_ADDRESS": "  "}), LocalProcesses)
    from conftest import free_port
    from ganapp.server.ray_backend import _check_reachable

    with pytest.raises(SettingsError, match="nothing answers there"):  # at once, not after Ray's minutes of retries
        _check_reachable(f"127.0.0.1:{free_port()}")
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not installed
    with pytest.raises(SettingsError, match="GANAPP_RAY_ADDRESS is set, but Ray is not installed"):
        backend_from_env({"GANAPP_RAY_ADDRESS": "auto"})


def test_run_files_travel_within_the_runs_byte_budget(tmp_path):
    """What a runner sends back and what the server writes: only the job's own folder, small files
    first, never past the run's byte budget, plain file names only (no Ray needed)."""
    from types import SimpleNamespace

    from ganapp.server.messages import Done, Metrics
    from ganapp.server.ray_backend import RayJobHandle, _collect_files

    out = tmp_path / "job" / "out"
    out.mkdir(parents=True)
    for name, size in (("config.json", 10), ("metrics.csv", 20), ("samples.png", 30), ("checkpoint.safetensors", 100)):
        (out / name).write_bytes(b"x" * size)
    (tmp_path / "secret").write_bytes(b"s")
    done = Done(state="finished", reason=None, seconds=1.0, files={
        "checkpoint": str(out / "checkpoint.safetensors"), "config": str(out / "config.json"),
        "metrics": str(out / "metrics.csv"), "samples": str(out / "samples.png"), "other": str(tmp_path / "secret")})
    files = _collect_files(done, out, {"limits": {"run_bytes": 100}})
    assert set(files) == {"config", "metrics", "samples"}  # the checkpoint would pass 100 bytes; "other" is outside
    assert files["config"] == ("config.json", b"x" * 10)

    run_folder = tmp_path / "server" / "run"
    handle = SimpleNamespace(_out_dir=run_folder, _run_bytes=35)
    received = RayJobHandle._receive(handle, done, {**files, "evil": ("../escape", b"e"), "hidden": (".x", b"h")})
    warning, arrived = received
    assert isinstance(warning, Metrics) and "samples.png would pass the run's byte budget" in warning.warning
    assert arrived.files == {"config": str(run_folder / "config.json"), "metrics": str(run_folder / "metrics.csv")}
    assert sorted(p.name for p in run_folder.iterdir()) == ["config.json", "metrics.csv"]
    assert not (tmp_path / "server" / "escape").exists()


def test_a_ray_job_pauses_takes_steps_by_hand_and_resumes_to_the_numbers_of_training_straight(ray_manager):
    """Play commands reach a job on a Ray runner (an actor method, numbered so that a threaded
    actor hands them over in order); a D half then a G half, and a whole step, by hand, leave
    the checkpoint bit for bit the one of the same run trained straight."""
    import torch

    from test_pause import LOSSES, checkpoint_tensors, pause_now, slowly, step_by_hand

    manager = ray_manager
    owner, other = manager.issue_token(), manager.issue_token()
    config = tiny(steps=200, seed=12, minibatch_discrimination=True, historical_averaging="uniform")
    straight = manager.submit(owner, config, name="straight")
    played = slowly(manager, owner, config, timeout_s=FIRST_START_S)
    with pytest.raises(RunNotFound):
        manager.pause(other, played.id)
    at = pause_now(manager, owner, played)
    assert step_by_hand(manager, owner, played, "step_d") == at
    assert step_by_hand(manager, owner, played, "step_g") == at + 1
    assert step_by_hand(manager, owner, played, "step") == at + 2
    manager.set_speed(owner, played.id, 0)
    manager.resume(owner, played.id)
    for run in (ended(manager, owner, straight, FIRST_START_S), ended(manager, owner, played, FIRST_START_S)):
        assert run.state == "finished", run.reason
    a, b = checkpoint_tensors(straight), checkpoint_tensors(played)
    assert a.keys() == b.keys() and not [k for k in a if not torch.equal(a[k], b[k])]
    by_step = {row["step"]: row for row in played.history}
    assert all(by_step[row["step"]][k] == row[k] for row in straight.history for k in LOSSES)


def _limits_of(pid: int) -> dict[str, str]:
    """The soft limits of a process on this machine, from /proc (the runner's machine is this one)."""
    rows = Path(f"/proc/{pid}/limits").read_text().splitlines()[1:]
    return {row[:26].strip(): row[26:47].strip() for row in rows}


def test_a_ray_job_is_bounded_like_a_local_job_and_a_job_past_its_memory_fails_alone(ray_manager, monkeypatch):
    """A job on a runner is a child process of the runner, bounded by the OS as a local job is
    (address space, bytes per file); the runner itself is not, as it outlives its jobs. A job
    that passes its memory backstop (here: the server's estimate let through more than the job
    may map, as when an estimate misses) fails with a reason a visitor reads, and its runner,
    sound, takes the next job."""
    manager = ray_manager
    backend = manager.backend
    owner = manager.issue_token()
    handles = []
    start = backend.start
    monkeypatch.setattr(backend, "start", lambda job_id, spec: handles.append(start(job_id, spec)) or handles[-1])

    run = manager.submit(owner, tiny(steps=20_000, seed=4))
    wait_until(lambda: run.step > 0, FIRST_START_S, "the job to train")
    _, runner_pid = run.handle.where()
    job_limits, runner_limits = _limits_of(run.handle.job_pid()), _limits_of(runner_pid)
    assert job_limits["Max file size"] == str(manager.limits.max_run_bytes)
    assert job_limits["Max address space"] != "unlimited"
    assert int(job_limits["Max address space"]) >= 2 * manager.limits.max_job_memory_bytes
    assert runner_limits["Max file size"] == runner_limits["Max address space"] == "unlimited"
    manager.stop(owner, run.id)
    assert ended(manager, owner, run, 30).state == "stopped"

    job_limits = manager._job_limits
    monkeypatch.setattr(manager, "_job_limits", lambda: dict(job_limits(), memory_bytes=8 * 2**20))
    big = tiny(steps=200, batch_size=1024, hidden_dim=512)
    manager.limits.check_config(big)  # the server's own checks let it through
    greedy = ended(manager, owner, manager.submit(owner, big), FIRST_START_S)
    assert greedy.state == "failed"
    assert greedy.reason.startswith("the job ran out of the memory this server allows (8.4 MB per job here)"), \
        greedy.reason
    assert "Traceback" not in greedy.reason and "alloc" not in greedy.reason
    slot = handles[-1]._slot
    wait_until(lambda: slot in backend._idle, 10, "the runner to be given back to the pool")
    failed_runner = backend._ray.get(slot.actor.where.remote(), timeout=30)  # it answers: alive

    monkeypatch.setattr(manager, "_job_limits", job_limits)
    after = [manager.submit(owner, tiny(steps=100, seed=s)) for s in (5, 6)]  # both runners of the pool
    for later in after:
        assert ended(manager, owner, later, FIRST_START_S).state == "finished", later.reason
    assert slot in [h._slot for h in handles[-2:]]  # the runner whose job failed took one of them
    assert backend._ray.get(slot.actor.where.remote(), timeout=30) == failed_runner  # the same process
    assert manager.runs(owner)  # the server kept serving throughout


def test_a_ray_job_stops_at_the_servers_time_limit_and_its_files_come_back(ray_manager, monkeypatch):
    manager = ray_manager
    owner = manager.issue_token()
    monkeypatch.setattr(manager.limits, "max_job_seconds", 3.0)
    run = manager.submit(owner, tiny(steps=20_000, seed=7))
    run = ended(manager, owner, run, FIRST_START_S)
    assert run.state == "stopped" and "server's limit of" in run.reason, run.reason
    assert 0 < run.step < 20_000 and Path(run.files["checkpoint"]).parent == run.folder


def test_the_sweep_on_ray_gives_the_local_sweeps_numbers(tmp_path):
    """`python -m ganapp sweep ... --ray local` (Ray tasks on a private instance) and the same
    sweep on local worker processes: the same CSVs, apart from the seconds columns."""
    import csv
    import subprocess

    pytest.importorskip("ray", reason="Ray is not installed (pip install ray); the cluster backend is optional")
    common = [sys.executable, "-m", "ganapp", "sweep", "--data", "ring8", "--seeds", "2", "--steps", "30",
              "--workers", "2"]
    for name, extra in (("local", []), ("ray", ["--ray", "local"])):
        result = subprocess.run(common + ["--out", str(tmp_path / name)] + extra, cwd=REPO, capture_output=True,
                                text=True, timeout=240)
        assert result.returncode == 0, result.stderr[-3000:]

    def numbers(name: str, file: str) -> list[dict[str, str]]:
        with open(tmp_path / name / file, newline="") as handle:
            return [{k: v for k, v in row.items() if "seconds" not in k} for row in csv.DictReader(handle)]

    for file in ("runs.csv", "sweep.csv"):
        local, on_ray = numbers("local", file), numbers("ray", file)
        assert local == on_ray and len(local) == 8 * (2 if file == "runs.csv" else 1), file
    assert {row["status"] for row in numbers("ray", "runs.csv")} == {"finished"}
    assert {row["modes_covered_std"] for row in numbers("ray", "sweep.csv")} != {"0.0"}  # two seeds differ
