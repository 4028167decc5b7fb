"""The ablation sweep's runs on a Ray cluster: `python -m ganapp sweep ... --ray ADDRESS`.

ADDRESS is as `ray.init` takes it: "local" starts a private Ray instance on this machine
(on 127.0.0.1, in a temporary folder of its own, one CPU per --workers or per core),
"auto" joins the cluster this machine is part of, "HOST:6379" or "ray://HOST:10001" a
remote one. Each run is one Ray task asking for one CPU; it calls the same
`ganapp.sweep.run_one` as a local worker process, with one torch thread, so a run's
numbers depend only on its config and seed (and the hardware): the sweep's CSVs are the
local sweep's, apart from the seconds columns (tests/test_ray.py compares them). Plain
Ray tasks serve better than Ray Tune here: the sweep is a fixed grid with no search, no
early stopping and no trial scheduling, and its tables come from ganapp.sweep as before.
A task is not retried (a lost machine fails the sweep with Ray's reason rather than
training the run twice). The cluster's machines install the same ganapp and Ray.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import ConfigError


def _remote_run(task: tuple[str, int, dict]) -> dict[str, Any]:
    from .sweep import _init_worker, run_one

    _init_worker()  # one torch thread, engine imported before the clock starts
    return run_one(task)


def run_on_ray(tasks: list[tuple[str, int, dict]], address: str, workers: int,
               report: Callable[[int, dict[str, Any]], None]) -> int:
    """Run every task on the cluster, calling report(done, result) as each finishes, in the
    order they finish; returns how many CPUs the cluster offered (the sweep's "workers")."""
    from .server.limits import SettingsError
    from .server.ray_backend import import_ray

    address = address.strip()
    try:
        ray = import_ray(address)
    except SettingsError as error:
        raise ConfigError(str(error).replace("GANAPP_RAY_ADDRESS is set", "--ray is given")) from None
    owns = not ray.is_initialized()
    if owns:
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address == "local":
            cpus = workers or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
            options.update(num_cpus=cpus, _temp_dir=tempfile.mkdtemp(prefix="ganapp-sweep-ray-", dir="/tmp"),
                           # the package is found by this process; a private instance's workers find it too
                           runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}})
        else:
            options["address"] = address
        try:
            ray.init(**options)
        except Exception as error:
            first_line = (str(error).splitlines() or [""])[0][:200]
            raise ConfigError(f"--ray {address}: could not reach the Ray cluster ({type(error).__name__}: "
                              f"{first_line}); start it with `ray start --head`, or leave out --ray") from None
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(_remote_run)
        pending = [remote.remote(task) for task in tasks]
        offered = int(ray.cluster_resources().get("CPU", 0))
        done = 0
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            done += 1
            report(done, ray.get(ready[0]))
        return offered
    finally:
        if owns:
            ray.shutdown()
