"""Background training jobs for the web app: one process per job, a queue, limits, owners.

The server process never trains (STYLE habit 8). `JobManager.submit` puts a run in a
FIFO queue; a pump thread starts queued runs as child processes (ganapp.worker) while
the limits allow, drains each child's message queue into the run's record every few
hundredths of a second, and notices when a child ends, however it ends. Pages poll
the records; nothing a page does waits for training.

Every run belongs to an owner: a random token (>= 144 bits) that the browser keeps,
or that an API script made. Every lookup goes through the owner's own runs, so a run
id taken from another visitor finds nothing. The server enforces its own limits (jobs
running in total and per owner, waiting jobs, steps, batch size, runs kept) whatever
the page shows, and keeps disk use bounded by deleting old runs' folders.

This module imports neither torch nor gradio: the server stays light, and children
get torch from the forkserver's preloaded ganapp.worker.
"""

from __future__ import annotations

import atexit
import collections
import csv
import hashlib
import json
import multiprocessing as mp
import os
import queue as queue_module
import re
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import ConfigError, GANConfig
from .presets import ready_made_checkpoint

ACTIVE_STATES = ("queued", "starting", "running", "stopping")
ENDED_STATES = ("finished", "stopped", "failed")
OWNER_PATTERN = re.compile(r"[A-Za-z0-9_-]{24,128}")  # token_urlsafe(18) or longer: >= 144 bits
LOSS_COLUMNS = ("step", "d_loss", "g_loss", "d_real", "d_fake", "seconds")  # training.HISTORY_COLUMNS
RECORD_FORMAT = "ganapp-run-record-1"
DISPLAY_ROWS_CAP = 4000  # history rows kept per run for the page (the CSV file keeps them all)
STOP_GRACE_S = 5.0  # after a stop request, a job still alive this long is terminated (training ends
# within a step; the rest is writing its files, which a loaded machine can stretch past 2 s)
VIEW_JOBS_AT_ONCE = 2  # checkpoint-reading jobs, on top of the training limit


class JobError(ValueError):
    """A request the job runner refuses; the message says why and what to do."""


class LimitError(JobError):
    """A server limit (jobs, steps, waiting runs, uploads) was reached."""


class RunNotFound(JobError):
    """No run with that id among the caller's own runs."""


def new_owner_token() -> str:
    """A fresh visitor token: 192 random bits, URL-safe (32 characters)."""
    return secrets.token_urlsafe(24)


def check_owner(owner: Any) -> str:
    if not isinstance(owner, str) or not OWNER_PATTERN.fullmatch(owner):
        raise JobError("missing or malformed visitor token: reload the page, or call /new_token for a script")
    return owner


def owner_key(owner: str) -> str:
    """What the server stores and names folders by; never the token itself."""
    return hashlib.sha256(check_owner(owner).encode()).hexdigest()[:32]


def available_cores() -> int:
    """CPU cores this process may use: Spaces' CPU_CORES, the cgroup quota, else the affinity mask."""
    try:
        spaces = int(os.environ.get("CPU_CORES", "0"))
    except ValueError:
        spaces = 0
    if spaces > 0:
        return spaces
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise JobError(f"environment variable {name} must be a whole number; got {text!r}") from None


@dataclass
class Limits:
    """What the server allows, whatever a page or a script asks for."""

    max_running: int = 2  # jobs training at once, all visitors together
    max_running_per_owner: int = 2
    max_waiting: int = 16  # queued jobs, all visitors together (anyone can mint tokens)
    max_waiting_per_owner: int = 4
    max_steps: int = 20_000
    max_batch_size: int = 1024
    max_hidden_dim: int = 512
    max_runs_per_owner: int = 20  # runs kept per visitor; the oldest ended run makes room
    max_runs_total: int = 2_000
    max_upload_bytes: int = 50 * 1024 * 1024
    run_ttl_s: float = 24 * 3600  # ended runs older than this are deleted with their files

    @classmethod
    def from_env(cls) -> "Limits":
        """Limits from GANAPP_* environment variables; unset ones keep their defaults."""
        cores = available_cores()
        limits = cls(
            max_running=_env_int("GANAPP_MAX_JOBS", cores),
            max_running_per_owner=_env_int("GANAPP_MAX_JOBS_PER_VISITOR", min(2, cores)),
            max_waiting=_env_int("GANAPP_MAX_WAITING", 16),
            max_waiting_per_owner=_env_int("GANAPP_MAX_WAITING_PER_VISITOR", 4),
            max_steps=_env_int("GANAPP_MAX_STEPS", 20_000),
            max_batch_size=_env_int("GANAPP_MAX_BATCH_SIZE", 1024),
            max_hidden_dim=_env_int("GANAPP_MAX_HIDDEN_DIM", 512),
            max_runs_per_owner=_env_int("GANAPP_MAX_RUNS_PER_VISITOR", 20),
            max_upload_bytes=_env_int("GANAPP_MAX_UPLOAD_MB", 50) * 1024 * 1024,
            run_ttl_s=_env_int("GANAPP_RUN_TTL_HOURS", 24) * 3600.0,
        )
        for name in ("max_running", "max_running_per_owner", "max_steps", "max_runs_per_owner"):
            if getattr(limits, name) < 1:
                raise JobError(f"the limit {name} must be at least 1; got {getattr(limits, name)}")
        return limits


@dataclass(eq=False)
class Run:
    """One training run as the server sees it. Written by the pump thread, read by polls."""

    id: str
    owner: str  # owner_key(token), not the token
    name: str
    kind: str  # "train" | "continue" | "view"
    config: GANConfig | None  # None until a 'view' job has read its checkpoint
    folder: Path
    created: float = field(default_factory=time.time)
    spec: dict[str, Any] = field(default_factory=dict)
    state: str = "queued"
    reason: str | None = None
    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    picture: bytes | None = None  # the latest sample picture, PNG bytes drawn by the child
    picture_step: int = -1
    picture_count: int = 0  # pictures received so far: a page shows a new one when this moves
    curves: bytes | None = None  # the loss curves so far, PNG bytes drawn by the child
    curves_count: int = 0
    metrics: dict[str, float] = field(default_factory=dict)  # the latest measured numbers
    metrics_warning: str | None = None
    metrics_picture: bytes | None = None  # PNG bar chart from ganapp.metrics, when it draws one
    metrics_count: int = 0
    metric_rows: int = 0  # history rows that carry metrics (they come every metrics_every steps)
    files: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0  # training time, from the child
    started: float | None = None
    ended: float | None = None
    version: int = 0  # bumped on every change, so a poll can tell "nothing new" cheaply
    stop_requested: float | None = None
    process: Any = None
    messages: Any = None
    stop_event: Any = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def total_steps(self) -> int:
        return self.config.steps if self.config is not None else 0

    @property
    def techniques(self) -> list[str]:
        return self.config.techniques if self.config is not None else []

    def steps_per_second(self) -> float | None:
        """Training speed over about the last second of history (training time, not wall time)."""
        rows = self.history
        if len(rows) < 2:
            return None
        last = rows[-1]
        for row in reversed(rows[:-1]):
            if last["seconds"] - row["seconds"] >= 1.0:
                break
        span = last["seconds"] - row["seconds"]
        return (last["step"] - row["step"]) / span if span > 0 else None

    def describe(self, queue_position: int | None = None) -> dict[str, Any]:
        """Plain JSON-able summary, for the API and the runs table."""
        speed = self.steps_per_second()
        return {
            "run_id": self.id,
            "name": self.name,
            "state": self.state,
            "reason": self.reason,
            "queue_position": queue_position,
            "data": self.config.data if self.config else None,
            "techniques": self.techniques,
            "step": self.step,
            "steps": self.total_steps,
            "steps_per_second": round(speed, 1) if speed is not None else None,
            "seconds": round(self.seconds, 2),
            "samples_step": self.picture_step,
            "samples_count": self.picture_count,
            "metrics": dict(self.metrics),
            "metrics_warning": self.metrics_warning,
            "files": sorted(self.files),
            "config": self.config.to_dict() if self.config else None,
        }


def _job_entry(spec, messages, stop_event, server_pid):
    """Child-process entry; imports the worker (preloaded in the forkserver, so free)."""
    from . import worker

    worker.main(spec, messages, stop_event, server_pid)


class JobManager:
    """Owns every run of every visitor, the job processes and the limits."""

    def __init__(self, *, limits: Limits | None = None, runs_dir: str | os.PathLike | None = None,
                 pump_interval_s: float = 0.05):
        self.limits = limits or Limits.from_env()
        self._own_runs_dir = runs_dir is None and not os.environ.get("GANAPP_RUNS_DIR")
        if self._own_runs_dir:
            self.runs_dir = Path(tempfile.mkdtemp(prefix="ganapp-runs-"))
        else:
            self.runs_dir = Path(runs_dir or os.environ["GANAPP_RUNS_DIR"]).expanduser()
            self.runs_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._owners: dict[str, dict[str, Run]] = {}  # owner_key -> run id -> Run, in creation order
        self._waiting: collections.deque[Run] = collections.deque()
        self._running: list[Run] = []
        self._closed = False
        self._last_cleanup = 0.0
        # forkserver: children fork from a small single-threaded server process that has
        # imported torch and the engine once (about 0.02 s per job instead of 1-7 s), not
        # from this threaded web server, where fork is unsafe.
        self._context = mp.get_context("forkserver")
        self._context.set_forkserver_preload(["ganapp.worker"])
        self._pump_interval_s = pump_interval_s
        self._delete_old_folders()
        if not self._own_runs_dir:  # a folder that outlives the server: find its ended runs again
            self._restore_runs()
        threading.Thread(target=self._warm_up, name="forkserver-warm-up", daemon=True).start()
        self._pump = threading.Thread(target=self._pump_loop, name="job-pump", daemon=True)
        self._pump.start()
        atexit.register(self.shutdown)

    # ------------------------------------------------------------------ visitor actions
    def submit(self, owner: str, config: GANConfig, *, name: str = "") -> Run:
        """Queue a new training run; raises ConfigError or LimitError with a readable message."""
        config.validate()
        self._check_config_limits(config)
        return self._add(owner, "train", config, name or self._default_name(config),
                         {"kind": "train", "config": config.to_dict()})

    def continue_run(self, owner: str, run_id: str, steps: int) -> Run:
        """Queue a new run that resumes `run_id`'s checkpoint and trains on to `steps` in total."""
        base = self.get(owner, run_id)
        checkpoint = base.files.get("checkpoint")
        if base.active or base.config is None or not checkpoint or not Path(checkpoint).is_file():
            raise JobError(f"run {base.name!r} has no checkpoint to continue from yet; wait until it has ended")
        if not isinstance(steps, int) or steps <= base.step:
            raise ConfigError(f"to continue, steps must be a whole number above the run's {base.step}; got {steps}")
        config = base.config.replace(steps=steps)
        self._check_config_limits(config)
        return self._add(owner, "continue", config, f"{base.name} → {steps}",
                         {"kind": "continue", "checkpoint": checkpoint, "steps": steps})

    def load_checkpoint(self, owner: str, upload_path: str | os.PathLike, display_name: str = "") -> Run:
        """Queue a 'view' job for an uploaded checkpoint: the child checks it (safely, as the
        engine loads: safetensors and JSON only), draws its samples and writes its files."""
        source = Path(upload_path)
        size = source.stat().st_size
        if size > self.limits.max_upload_bytes:
            raise LimitError(f"the file is {size / 1e6:.1f} MB; this server accepts checkpoints up to "
                             f"{self.limits.max_upload_bytes / 1e6:.0f} MB")
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", display_name or source.name)[-60:] or "upload.safetensors"
        return self._add(owner, "view", None, f"upload: {name}", {"kind": "view"},
                         before_queue=lambda run: self._copy_upload(source, run, name))

    def open_ready_made(self, owner: str, name: str) -> Run:
        """Open a shipped run (ganapp.presets.READY_MADE_NOTES) as a 'view' job of the owner's:
        the same safe loading as an upload, on a file of ours, chosen by name only."""
        try:
            path = ready_made_checkpoint(name)
        except KeyError as error:
            raise JobError(error.args[0]) from None
        return self._add(owner, "view", None, f"ready-made: {name}", {"kind": "view", "ready_made": name},
                         before_queue=lambda run: self._copy_upload(path, run, path.name))

    def stop(self, owner: str, run_id: str) -> Run:
        """Stop one of the owner's runs: a waiting run ends at once, a running one within a step."""
        with self._lock:
            run = self.get(owner, run_id)
            if run.state == "queued":
                self._waiting.remove(run)
                self._end(run, "stopped", None)
            elif run.state in ("starting", "running"):
                run.state = "stopping"
                run.stop_requested = time.monotonic()
                run.stop_event.set()
                run.version += 1
            return run

    def get(self, owner: str, run_id: Any) -> Run:
        """One of the owner's own runs; RunNotFound for any other id, whoever owns it."""
        runs = self._owners.get(owner_key(owner), {})
        run = runs.get(run_id) if isinstance(run_id, str) else None
        if run is None:
            raise RunNotFound(f"you have no run {run_id!r}")
        return run

    def runs(self, owner: str) -> list[Run]:
        """The owner's runs, oldest first."""
        with self._lock:
            return list(self._owners.get(owner_key(owner), {}).values())

    def remove(self, owner: str, run_id: str) -> None:
        """Forget an ended run and delete its files."""
        with self._lock:
            run = self.get(owner, run_id)
            if run.active:
                raise JobError(f"run {run.name!r} is {run.state}; stop it before removing it")
            self._forget(run)

    def owner_folder(self, owner: str) -> Path:
        """A folder of the owner's own (for files made for them, such as the scoreboard CSV)."""
        folder = self.runs_dir / owner_key(owner)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def queue_position(self, run: Run) -> int | None:
        """1 for the next run to start, among all visitors' waiting runs; None if not waiting."""
        with self._lock:
            waiting = [r for r in self._waiting if r.kind == run.kind or "view" not in (r.kind, run.kind)]
            return waiting.index(run) + 1 if run in waiting else None

    def waits_for_own_runs(self, run: Run) -> bool:
        """True when a waiting run is held back by the per-visitor limit, not by the server."""
        with self._lock:
            mine = sum(1 for r in self._running if r.owner == run.owner and r.kind != "view")
            return run.state == "queued" and mine >= self.limits.max_running_per_owner

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {"running": len(self._running), "waiting": len(self._waiting)}

    def wait(self, owner: str, run_id: str, states=ENDED_STATES, timeout_s: float = 30.0) -> Run:
        """Wait until the run's state is one of `states` (or the deadline passes); for tests and scripts."""
        deadline = time.monotonic() + timeout_s
        run = self.get(owner, run_id)
        while run.state not in states and time.monotonic() < deadline:
            time.sleep(0.02)
        return run

    def shutdown(self) -> None:
        """Stop every job (terminate what does not stop at once) and the pump."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            running = list(self._running)
        running = [run for run in running if run.process is not None]
        for run in running:
            run.stop_event.set()
        deadline = time.monotonic() + 1.0
        for run in running:
            run.process.join(max(0.0, deadline - time.monotonic()))
            if run.process.is_alive():
                run.process.terminate()
                run.process.join(1.0)
            if run.process.is_alive():
                run.process.kill()
        self._pump.join(1.0)
        if self._own_runs_dir:
            shutil.rmtree(self.runs_dir, ignore_errors=True)

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _default_name(config: GANConfig) -> str:
        name = f"{config.data} {'+'.join(config.techniques) or 'vanilla'} seed {config.seed}"
        if not config.generator_batch_norm and not config.virtual_batch_norm:
            name += ", G without BN"  # the collapse setting: say so where runs are listed
        return name

    def _check_config_limits(self, config: GANConfig) -> None:
        limits = self.limits
        if config.steps > limits.max_steps:
            raise LimitError(f"this server trains at most {limits.max_steps:,} steps per run; got {config.steps:,}")
        if config.batch_size > limits.max_batch_size:
            raise LimitError(f"this server allows batch sizes up to {limits.max_batch_size}; got {config.batch_size}")
        if config.hidden_dim > limits.max_hidden_dim:
            raise LimitError(f"this server allows hidden_dim up to {limits.max_hidden_dim}; got {config.hidden_dim}")

    def _add(self, owner: str, kind: str, config: GANConfig | None, name: str, spec: dict[str, Any],
             before_queue=None) -> Run:
        key = owner_key(owner)
        with self._lock:
            if self._closed:
                raise JobError("the server is shutting down")
            runs = self._owners.setdefault(key, {})
            waiting_mine = sum(1 for r in self._waiting if r.owner == key)
            if waiting_mine >= self.limits.max_waiting_per_owner:
                raise LimitError(f"you already have {waiting_mine} runs waiting; stop one or wait for them to start")
            if len(self._waiting) >= self.limits.max_waiting:
                raise LimitError(f"the server's queue is full ({len(self._waiting)} runs waiting); "
                                 "try again in a minute")
            if len(runs) >= self.limits.max_runs_per_owner:
                ended = [r for r in runs.values() if not r.active]
                if not ended:
                    raise LimitError(f"you have {len(runs)} runs going; stop one first")
                self._forget(ended[0])  # the oldest ended run makes room
            run_id = secrets.token_hex(4)
            while run_id in runs:
                run_id = secrets.token_hex(4)
            folder = self.runs_dir / key / run_id
            run = Run(id=run_id, owner=key, name=name.strip()[:80] or run_id, kind=kind, config=config,
                      folder=folder, spec=dict(spec, out_dir=str(folder)))
            folder.mkdir(parents=True, exist_ok=True)
            if before_queue is not None:
                before_queue(run)
            runs[run_id] = run
            self._waiting.append(run)
            self._evict_beyond_total()
        return run

    def _copy_upload(self, source: Path, run: Run, name: str) -> None:
        # Under the upload's own (sanitised) name, so the engine's messages name the user's file.
        target = run.folder / "upload" / name
        target.parent.mkdir()
        shutil.copyfile(source, target)
        run.spec["checkpoint"] = str(target)

    def _forget(self, run: Run) -> None:
        self._owners.get(run.owner, {}).pop(run.id, None)
        if not self._owners.get(run.owner):
            self._owners.pop(run.owner, None)
        shutil.rmtree(run.folder, ignore_errors=True)

    def _evict_beyond_total(self) -> None:
        total = sum(len(runs) for runs in self._owners.values())
        if total <= self.limits.max_runs_total:
            return
        ended = sorted((r for runs in self._owners.values() for r in runs.values() if not r.active),
                       key=lambda r: r.ended or r.created)
        for run in ended[: total - self.limits.max_runs_total]:
            self._forget(run)

    def _delete_old_folders(self) -> None:
        """Delete run folders left by earlier servers once they are older than the TTL."""
        cutoff = time.time() - self.limits.run_ttl_s
        for folder in self.runs_dir.glob("*/*"):
            try:
                if folder.is_dir() and folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError:
                pass

    def _cleanup(self) -> None:
        cutoff = time.time() - self.limits.run_ttl_s
        with self._lock:
            for runs in list(self._owners.values()):
                for run in list(runs.values()):
                    if not run.active and (run.ended or run.created) < cutoff:
                        self._forget(run)

    def _warm_up(self) -> None:
        """Start the forkserver now, so the first visitor's job does not wait for its imports."""
        try:
            from multiprocessing import forkserver

            forkserver.ensure_running()
        except Exception:  # the first job will start it, or report why it cannot
            pass

    # ------------------------------------------------------------------ the pump
    def _pump_loop(self) -> None:
        while not self._closed:
            try:
                self._pump_once()
            except Exception:  # a pump that dies would freeze every page; log and go on
                import traceback

                traceback.print_exc()
            time.sleep(self._pump_interval_s)

    def _pump_once(self) -> None:
        with self._lock:
            running = list(self._running)
        for run in running:
            self._drain(run)
            if not run.process.is_alive():
                self._drain(run, final=True)
                if run.state not in ENDED_STATES:
                    code = run.process.exitcode
                    if run.stop_requested is not None:
                        self._end(run, "stopped", None)
                    else:
                        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                        self._end(run, "failed", f"the job process ended unexpectedly ({how}); "
                                  "the server and other runs are fine. Try again, perhaps with a smaller model.")
                with self._lock:
                    self._running.remove(run)
                run.process.join(0.1)
                run.messages.close()
            elif run.stop_requested is not None and time.monotonic() - run.stop_requested > STOP_GRACE_S:
                run.process.terminate()  # still loading or stuck: stop means stop
        self._start_waiting()
        if time.monotonic() - self._last_cleanup > 60:
            self._last_cleanup = time.monotonic()
            self._cleanup()

    def _start_waiting(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                run = self._next_startable()
                if run is None:
                    return
                self._waiting.remove(run)
                run.state = "starting"
                run.started = time.time()
                run.version += 1
                run.messages = self._context.Queue()
                run.stop_event = self._context.Event()
                self._running.append(run)
            # Outside the lock: the first start may wait for the forkserver's imports.
            run.process = self._context.Process(target=_job_entry, name=f"ganapp-job-{run.id}", daemon=True,
                                                args=(run.spec, run.messages, run.stop_event, os.getpid()))
            try:
                run.process.start()
            except Exception as error:
                with self._lock:
                    self._running.remove(run)
                self._end(run, "failed", f"could not start the job process: {error}")

    def _next_startable(self) -> Run | None:
        """The first waiting run the limits let start. A 'view' job trains nothing and
        takes well under a second, so it does not wait for a training slot (a few at once)."""
        training = [r for r in self._running if r.kind != "view"]
        viewing = len(self._running) - len(training)
        per_owner = collections.Counter(r.owner for r in training)
        for run in self._waiting:
            if run.kind == "view":
                if viewing < VIEW_JOBS_AT_ONCE:
                    return run
            elif len(training) < self.limits.max_running and per_owner[run.owner] < self.limits.max_running_per_owner:
                return run
        return None

    def _drain(self, run: Run, final: bool = False) -> None:
        while True:
            try:
                message = run.messages.get(timeout=0.05) if final else run.messages.get_nowait()
            except (queue_module.Empty, EOFError, OSError):
                return
            self._apply(run, message)

    def _apply(self, run: Run, message: tuple) -> None:
        kind = message[0]
        if kind == "log":
            row = message[1]
            run.history.append(row)
            run.step = int(row["step"])
            if len(row) > len(LOSS_COLUMNS):
                run.metric_rows += 1
            run.seconds = float(row.get("seconds", run.seconds))
            if len(run.history) > DISPLAY_ROWS_CAP:
                run.history = run.history[:-1:2] + run.history[-1:]  # halve, keep the newest row
        elif kind == "samples":
            _, step, png = message
            run.picture, run.picture_step = png, int(step)
            run.picture_count += 1
        elif kind == "curves":
            run.curves = message[2]
            run.curves_count += 1
        elif kind == "metrics":
            _, step, numbers, warning, png = message
            run.metrics.update(numbers)
            run.metrics_warning = warning
            if png:
                run.metrics_picture = png
            run.metrics_count += 1
        elif kind == "started":
            info = message[1]
            run.config = GANConfig.from_dict(info["config"])
            run.step = int(info["step"])
            if info["history"]:
                run.history = list(info["history"])[-DISPLAY_ROWS_CAP:]
                run.metric_rows = sum(1 for row in run.history if len(row) > len(LOSS_COLUMNS))
                run.seconds = float(run.history[-1].get("seconds", 0.0))
            if run.kind == "view":  # now that the checkpoint has been read, say what it holds
                if run.spec.get("ready_made"):  # its name says what it is; keep it whole
                    run.name = f"{run.spec['ready_made']} (ready-made, step {run.step})"[:80]
                else:
                    upload_name = Path(run.spec.get("checkpoint", "")).name
                    run.name = f"{self._default_name(run.config)}, step {run.step} ({upload_name})"[:80]
            if run.state == "starting":
                run.state = "running"
        elif kind == "done":
            _, state, reason, files, seconds = message
            run.files = dict(files)
            run.seconds = float(seconds)
            if run.stop_requested is not None and state == "finished":
                state = "stopped" if run.step < run.total_steps else "finished"
            self._end(run, state, reason)
        run.version += 1

    def _end(self, run: Run, state: str, reason: str | None) -> None:
        with self._lock:
            run.state, run.reason = state, reason
            run.ended = time.time()
            run.version += 1
        if not self._own_runs_dir:
            self._save_record(run)

    # ------------------------------------------------------------------ records on disk
    # With GANAPP_RUNS_DIR set, each ended run leaves run.json (what the run list shows)
    # beside its files, so a restarted server lists every visitor's ended runs again. The
    # record is JSON and the pictures are bytes: nothing on disk is ever executed.
    def _save_record(self, run: Run) -> None:
        if not run.folder.is_dir():
            return
        record = {"format": RECORD_FORMAT, "id": run.id, "name": run.name, "kind": run.kind, "state": run.state,
                  "reason": run.reason, "step": run.step, "seconds": run.seconds, "created": run.created,
                  "ended": run.ended, "files": {k: Path(v).name for k, v in run.files.items()},
                  "metrics": run.metrics, "metrics_warning": run.metrics_warning}
        try:
            if run.metrics_picture:
                (run.folder / "metrics.png").write_bytes(run.metrics_picture)
            temporary = run.folder / "run.json.tmp"
            temporary.write_text(json.dumps(record))
            os.replace(temporary, run.folder / "run.json")
        except (OSError, TypeError, ValueError):  # a full disk costs the record, not the server
            pass

    def _restore_runs(self) -> None:
        restored = []
        for path in self.runs_dir.glob("*/*/run.json"):  # <owner_key>/<run id>/run.json, as _add names them
            owner, run_id = path.parent.parent.name, path.parent.name
            if not (re.fullmatch(r"[0-9a-f]{32}", owner) and re.fullmatch(r"[0-9a-f]{8}", run_id)):
                continue
            try:
                restored.append(_run_from_record(path, owner))
            except (OSError, ValueError, TypeError, KeyError, ConfigError):
                continue  # a damaged record: that run is not listed (its folder ages out)
        for run in sorted(restored, key=lambda r: r.created):  # creation order, as the page lists them
            self._owners.setdefault(run.owner, {})[run.id] = run
        if restored:  # the loss curves are drawn again (about 9 ms each) without holding up the start
            from . import curves  # numpy and Pillow only; imported here, not in the thread, so
            # that no other thread can see a half-imported numpy

            threading.Thread(target=_draw_restored_curves, args=(restored, curves.training_curves_png),
                             name="restore-curves", daemon=True).start()



def _run_from_record(path: Path, owner: str) -> Run:
    """An ended Run from its folder's run.json, config.json, metrics.csv and pictures."""
    folder = path.parent
    record = json.loads(path.read_text())
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT or record.get("id") != folder.name:
        raise ValueError(f"{path} is not a run record")
    if record["state"] not in ENDED_STATES:
        raise ValueError(f"{path}: a run that had not ended")
    config_file = folder / "config.json"
    config = GANConfig.from_json(config_file.read_text()) if config_file.is_file() else None
    history = _read_history(folder / "metrics.csv")
    files = {key: str(folder / name) for key, name in record["files"].items()
             if isinstance(name, str) and "/" not in name and (folder / name).is_file()}
    picture = (folder / "samples.png").read_bytes() if (folder / "samples.png").is_file() else None
    metrics_picture = (folder / "metrics.png").read_bytes() if (folder / "metrics.png").is_file() else None
    run = Run(id=folder.name, owner=owner, name=str(record["name"])[:80], kind=str(record["kind"]), config=config,
              folder=folder, created=float(record["created"]), state=record["state"], reason=record["reason"],
              step=int(record["step"]), history=history, picture=picture, picture_step=int(record["step"]),
              picture_count=1 if picture else 0, metrics={k: float(v) for k, v in record["metrics"].items()},
              metrics_warning=record.get("metrics_warning"), metrics_picture=metrics_picture,
              metrics_count=1 if record["metrics"] or metrics_picture else 0,
              metric_rows=sum(1 for row in history if len(row) > len(LOSS_COLUMNS)), files=files,
              seconds=float(record["seconds"]), ended=float(record["ended"]))
    return run


def _read_history(path: Path) -> list[dict[str, float]]:
    """metrics.csv (ganapp.runfiles.metrics_csv) back into history rows; empty cells: not
    measured at that step. Here rather than beside the writer: runfiles imports torch, which
    the web server never loads."""
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        rows = [{key: float(value) for key, value in row.items() if key and value not in ("", None)}
                for row in csv.DictReader(handle)]
    for row in rows:
        row["step"] = int(row["step"])
    return rows[-DISPLAY_ROWS_CAP:]


def _draw_restored_curves(runs: list[Run], draw) -> None:
    for run in runs:
        if run.history and run.curves is None:
            try:
                run.curves = draw(run.history)
                run.curves_count += 1
                run.version += 1
            except Exception:  # a picture that cannot be drawn leaves the placeholder
                pass
