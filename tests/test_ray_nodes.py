"""The job server on a Ray cluster of two nodes on this machine, started as an administrator would.

A head (`ray start --head`) and a second node (`ray start --address=...`), one CPU each, so
that the two runners of the server's pool land on two raylets, with token authentication
(a fresh token in the cluster's own temporary folder, as docs/cluster.md asks of a real
cluster). The server joins through
GANAPP_RAY_ADDRESS, as in production, in a process of its own (a process that was the driver
of another Ray instance, tests/test_ray.py's, cannot reliably drive a second one); Ray puts
a cluster of several nodes at the machine's own address, even when given 127.0.0.1.
Checked here:
- a node lost in the middle of a job: that run fails with a reason a visitor reads, the run
  on the other node trains on (and stops with its files when asked), the server keeps
  serving and a new job runs;
- the server (the Ray driver) killed with -9: its runners and their job processes stop
  rather than train on for nobody.
The cluster's processes are ended by their ids (those whose command line names the cluster's
temporary folder, and their children), never with `ray stop`, which would end every Ray on
the machine. Skipped, with the reason, when Ray is missing or cannot start nodes here.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import REPO, free_port, wait_until
from ganapp.config import GANConfig

pytestmark = pytest.mark.slow

TINY = dict(data="ring8", batch_size=32, hidden_dim=32, log_every=5, sample_every=20, metrics_every=0)
START_S = 60  # runners import torch on a busy 2-core machine


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process on this machine, from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        found[int(entry.name)] = (parent, command)
    return found


def _family(marker: str) -> set[int]:
    """The processes whose command line holds `marker`, and all their descendants."""
    table = _processes()
    family = {pid for pid, (_, command) in table.items() if marker in command}
    grew = True
    while grew:
        more = {pid for pid, (parent, _) in table.items() if parent in family} - family
        family |= more
        grew = bool(more)
    return family


def _kill(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _ray_start(args: list[str], env: dict[str, str]) -> None:
    try:
        result = subprocess.run([sys.executable, "-m", "ray.scripts.scripts", "start", *args], env=env,
                                capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.skip(f"ray start {args[0]} did not finish within 90 s on this machine")
    if result.returncode != 0:
        lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        pytest.skip(f"ray cannot start a node here ({args[0]}): {lines[-1][:300] if lines else result.returncode}")


@pytest.fixture(scope="module")
def cluster():
    """(address, environment of the cluster's processes); every process of it ended afterwards."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install ray); the cluster backend is optional")
    temp = tempfile.mkdtemp(prefix="grn-", dir="/tmp")  # short: Ray's socket paths are at most 107 bytes
    token = Path(temp) / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    env = dict(os.environ, **auth,
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
               # a lost node is noticed within seconds, not half a minute
               RAY_health_check_period_ms="1000", RAY_health_check_timeout_ms="1000",
               RAY_health_check_failure_threshold="3")
    # "0", tests/test_ray.py's switch that keeps a private instance on 127.0.0.1, forbids a second node
    env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
    port = free_port()
    try:
        _ray_start(["--head", f"--port={port}", "--num-cpus=1", "--disable-usage-stats", "--include-dashboard=false",
                    f"--temp-dir={temp}", "--node-ip-address=127.0.0.1"], env)
        _ray_start([f"--address=127.0.0.1:{port}", "--num-cpus=1", "--disable-usage-stats",
                    "--node-ip-address=127.0.0.1"], env)
        yield f"127.0.0.1:{port}", env, temp
    finally:
        _kill(_family(temp))
        shutil.rmtree(temp, ignore_errors=True)


def _manager(address: str, runs_dir: Path):
    from ganapp.jobs import JobManager, Limits
    from ganapp.server.backend import backend_from_env

    backend = backend_from_env({"GANAPP_RAY_ADDRESS": address})
    limits = Limits(max_running=2, max_running_per_owner=2, max_waiting=8, max_waiting_per_owner=4, max_steps=1_000_000)
    return JobManager(limits=limits, runs_dir=runs_dir, backend=backend)


DRIVER = """
import sys, time
sys.path.insert(0, {repo!r})
from pathlib import Path
from ganapp.config import GANConfig
from ganapp.jobs import JobManager, Limits
from ganapp.server.backend import backend_from_env

backend = backend_from_env({{"GANAPP_RAY_ADDRESS": {address!r}}})
manager = JobManager(limits=Limits(max_steps=1_000_000), runs_dir=Path({runs!r}), backend=backend)
owner = manager.issue_token()
run = manager.submit(owner, GANConfig(**{tiny!r}, steps=1_000_000))
while run.step == 0:
    time.sleep(0.1)
print(run.handle.where()[1], run.handle.job_pid(), flush=True)
time.sleep(600)
"""


def test_jobs_stop_when_their_server_the_ray_driver_is_killed(cluster, tmp_path):
    address, env, _ = cluster
    script = DRIVER.format(repo=str(REPO), runs=str(tmp_path), address=address, tiny=TINY)
    driver = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = driver.stdout.readline()  # once the job trains
        assert line.strip(), f"the driver ended before its job trained (exit code {driver.poll()})"
        runner_pid, job_pid = map(int, line.split())
        assert _alive(runner_pid) and _alive(job_pid)
        driver.kill()  # the server dies without cleaning up
        driver.wait(10)
        # Ray ends the runners of a driver that died; the job, orphaned, stops and exits.
        wait_until(lambda: not _alive(runner_pid), 30, "the runner of a dead server to end", 0.2)
        wait_until(lambda: not _alive(job_pid), 40, "the job of a dead server to end", 0.2)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(10)


def test_a_node_lost_mid_job_fails_only_its_run_and_the_server_goes_on(cluster, tmp_path):
    """The server runs in a process of its own (_lose_a_node, below, as __main__)."""
    address, env, _ = cluster
    try:
        result = subprocess.run([sys.executable, __file__, address, str(tmp_path / "runs")], env=env,
                                capture_output=True, text=True, timeout=110)
    except subprocess.TimeoutExpired as error:
        raise AssertionError(f"the server did not finish within 110 s: {(error.stderr or b'')[-3000:]!r}") from None
    assert result.returncode == 0, result.stderr[-4000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["nodes"] == 2 and outcome["victim"][0] == "failed"
    assert "the cluster machine" in outcome["victim"][1] and "was lost" in outcome["victim"][1]
    assert outcome["survivor"] == "stopped" and outcome["after"] == "finished" and outcome["runs"] == 3


def _lose_a_node(address: str, runs_dir: Path) -> dict:
    """Two jobs, one on each node; the second node is killed mid-job; what the server then says."""
    import ray

    manager = _manager(address, runs_dir)
    try:
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        owner = manager.issue_token()
        runs = [manager.submit(owner, GANConfig(**TINY, steps=1_000_000, seed=seed)) for seed in (0, 1)]
        wait_until(lambda: all(r.step > 0 for r in runs), START_S, "both jobs to train")
        nodes = {ray.get(r.handle._slot.actor.node_id.remote(), timeout=30): r for r in runs}
        assert len(nodes) == 2, "the two jobs should run on the two nodes (one CPU each)"
        head = next(n["NodeID"] for n in ray.nodes() if "node:__internal_head__" in n["Resources"])
        (victim,) = [run for node, run in nodes.items() if node != head]
        (survivor,) = [run for node, run in nodes.items() if node == head]
        lost = next(node for node in nodes if node != head)

        _kill(_family(f"--node_id={lost}"))  # the second machine is gone: its raylet and all it started
        victim = manager.wait(owner, victim.id, timeout_s=60)
        assert victim.state in ("failed", "interrupted"), victim.state
        assert "the cluster machine" in victim.reason and "lost" in victim.reason, victim.reason
        assert "Traceback" not in victim.reason and "Error" not in victim.reason, victim.reason
        assert survivor.state == "running"
        step = survivor.step
        wait_until(lambda: survivor.step > step, 20, "the run on the head to go on training")
        manager.stop(owner, survivor.id)
        survivor = manager.wait(owner, survivor.id, timeout_s=30)
        assert survivor.state == "stopped" and Path(survivor.files["checkpoint"]).is_file()

        after = manager.wait(owner, manager.submit(owner, GANConfig(**TINY, steps=100, seed=2)).id,
                             timeout_s=START_S)  # a new job, on the node that is left
        assert after.state == "finished", after.reason
        return {"nodes": len(nodes), "victim": [victim.state, victim.reason], "survivor": survivor.state,
                "after": after.state, "runs": len(manager.runs(owner))}
    finally:
        manager.shutdown()


if __name__ == "__main__":
    print(json.dumps(_lose_a_node(sys.argv[1], Path(sys.argv[2]))), flush=True)
