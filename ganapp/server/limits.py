"""What the server allows, whatever a page or a script asks for, and where each limit comes from.

Every limit has a default and a GANAPP_* environment variable (README, "Limits and
safety"); a bad value stops the server at start with a sentence naming the variable,
never a traceback and never a limit that silently refuses everything. `check_config`
is the one place a run's config is held against the limits, before any work starts
(STYLE habit 18): steps, batch, width, and the model's size, checkpoint bytes and
memory as estimated from the config alone (ganapp.budget).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import MAX_BATCH_SIZE, GANConfig

if TYPE_CHECKING:
    from ..budget import Estimate


class JobError(ValueError):
    """A request the job server refuses; the message says why and what to do.

    `key` and `values` name the message for a page that speaks another language
    (ganapp.web.text: "refusal_" + key, formatted with values); the English message
    stays the exception's text, for the API, the command line and the logs."""

    def __init__(self, message: str, *, key: str | None = None, **values: str):
        super().__init__(message)
        self.key, self.values = key, values


class Notice(str):
    """A one-off message for a visitor (e.g. that an old run made room): plain text, with
    `key` and `values` for pages in other languages, as JobError has."""

    def __new__(cls, text: str, *, key: str | None = None, **values: str):
        notice = super().__new__(cls, text)
        notice.key, notice.values = key, values
        return notice


class LimitError(JobError):
    """A server limit (jobs, steps, waiting runs, bytes, memory, time) was reached."""


class SettingsError(JobError):
    """A GANAPP_* environment variable has a value the server cannot use."""


MB = 1024 * 1024


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


# field -> (environment variable, unit of the variable in the field's unit, smallest, largest, what it is)
ENVIRONMENT = {
    "max_running": ("GANAPP_MAX_JOBS", 1, 1, 256, "jobs training at once, all visitors together"),
    "max_running_per_owner": ("GANAPP_MAX_JOBS_PER_VISITOR", 1, 1, 256, "jobs training at once per visitor"),
    "max_waiting": ("GANAPP_MAX_WAITING", 1, 0, 10_000, "runs waiting in the queue, all visitors together"),
    "max_waiting_per_owner": ("GANAPP_MAX_WAITING_PER_VISITOR", 1, 0, 1_000, "runs waiting per visitor"),
    "max_steps": ("GANAPP_MAX_STEPS", 1, 1, 1_000_000, "training steps per run"),
    "max_batch_size": ("GANAPP_MAX_BATCH_SIZE", 1, 2, MAX_BATCH_SIZE, "batch size"),
    "max_hidden_dim": ("GANAPP_MAX_HIDDEN_DIM", 1, 4, 4096, "model width (hidden_dim)"),
    "max_runs_per_owner": ("GANAPP_MAX_RUNS_PER_VISITOR", 1, 1, 10_000, "runs kept per visitor"),
    "max_runs_total": ("GANAPP_MAX_RUNS", 1, 1, 1_000_000, "runs kept, all visitors together"),
    "max_upload_bytes": ("GANAPP_MAX_UPLOAD_MB", MB, 1, 2048, "size of one uploaded checkpoint, in MB"),
    "max_uploads_per_minute": ("GANAPP_MAX_UPLOADS_PER_MINUTE", 1, 1, 10_000, "uploads per visitor per minute"),
    "run_ttl_s": ("GANAPP_RUN_TTL_HOURS", 3600, 1, 24 * 365, "hours an ended run is kept"),
    "max_job_seconds": ("GANAPP_MAX_JOB_MINUTES", 60, 1, 24 * 60, "minutes one job may train"),
    "max_pause_seconds": ("GANAPP_MAX_PAUSE_MINUTES", 60, 1, 24 * 60,
                          "minutes a paused job may wait without a step (then it stops; continue it)"),
    "max_job_memory_bytes": ("GANAPP_MAX_JOB_MEMORY_MB", MB, 64, 1_000_000, "memory of one job, in MB"),
    "max_run_bytes": ("GANAPP_MAX_RUN_MB", MB, 1, 100_000, "disk bytes of one run's files, in MB"),
    "max_owner_bytes": ("GANAPP_MAX_VISITOR_MB", MB, 1, 1_000_000, "disk bytes of one visitor's runs, in MB"),
    "max_total_bytes": ("GANAPP_MAX_DISK_MB", MB, 1, 10_000_000, "disk bytes of all runs, in MB"),
    "max_tokens_per_minute": ("GANAPP_MAX_TOKENS_PER_MINUTE", 1, 1, 100_000,
                              "new visitor tokens per client address per minute"),
    # classes (ganapp.server.classes)
    "max_class_students": ("GANAPP_CLASS_STUDENTS", 1, 1, 1_000, "students per class"),
    "max_class_runs_per_student": ("GANAPP_CLASS_RUNS_PER_STUDENT", 1, 1, 1_000, "class runs per student"),
    "max_classes_per_teacher": ("GANAPP_CLASSES_PER_TEACHER", 1, 1, 100, "open classes per teacher"),
    "max_classes": ("GANAPP_MAX_CLASSES", 1, 1, 10_000, "open classes, all teachers together"),
    "class_seconds": ("GANAPP_CLASS_HOURS", 3600, 1, 24 * 7, "hours a class stays open"),
    "max_class_joins_per_minute": ("GANAPP_CLASS_JOINS_PER_MINUTE", 1, 1, 10_000,
                                   "class joins (and wrong codes) per client address per minute"),
}


@dataclass
class Limits:
    """What the server allows. Defaults suit a free 2-core Space with a class of 30."""

    max_running: int = 2
    max_running_per_owner: int = 2
    max_waiting: int = 128  # large enough that a handful of made-up visitors cannot fill it
    max_waiting_per_owner: int = 4
    max_steps: int = 20_000
    max_batch_size: int = 1024
    max_hidden_dim: int = 512
    max_runs_per_owner: int = 20  # the oldest ended run makes room, and the visitor is told
    max_runs_total: int = 2_000
    max_upload_bytes: int = 50 * MB
    max_uploads_per_minute: int = 10
    run_ttl_s: float = 24 * 3600.0
    max_job_seconds: float = 15 * 60.0  # then the job is stopped (its checkpoint kept: continue it)
    # A paused job holds its slot: paused time counts toward max_job_seconds, and a job paused
    # this long without a step by hand is stopped (checkpoint kept) to free the slot.
    max_pause_seconds: float = 5 * 60.0
    max_job_memory_bytes: int = 2048 * MB
    max_run_bytes: int = 100 * MB
    max_owner_bytes: int = 500 * MB
    max_total_bytes: int = 5000 * MB
    max_tokens_per_minute: int = 120  # a class behind one school address shares this
    max_class_students: int = 60
    max_class_runs_per_student: int = 10
    max_classes_per_teacher: int = 3
    max_classes: int = 50
    class_seconds: float = 4 * 3600.0  # then the class closes: no more joins or class runs
    max_class_joins_per_minute: int = 60  # joins from one address; wrong codes count 5 each

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Limits":
        """Limits from GANAPP_* variables; unset ones keep their defaults (jobs: the cores)."""
        environ = os.environ if environ is None else environ
        cores = available_cores()
        values = {"max_running": cores, "max_running_per_owner": min(2, cores)}
        for name, (variable, unit, low, high, what) in ENVIRONMENT.items():
            text = environ.get(variable, "").strip()
            if not text:
                continue
            try:
                number = int(text)
            except ValueError:
                raise SettingsError(f"{variable} ({what}) must be a whole number between {low:,} and {high:,}; "
                                    f"got {text[:40]!r}") from None
            if not low <= number <= high:
                raise SettingsError(f"{variable} ({what}) must be between {low:,} and {high:,}; got {number:,}")
            values[name] = number * unit
        limits = cls(**values)
        limits.check()
        return limits

    def check(self) -> None:
        """Limits that contradict each other are refused, not obeyed into refusing everything."""
        if self.max_running_per_owner > self.max_running:
            self.max_running_per_owner = self.max_running  # a per-visitor cap above the total means the total
        for f in fields(self):
            if getattr(self, f.name) <= 0 and f.name not in ("max_waiting", "max_waiting_per_owner"):
                raise SettingsError(f"the limit {f.name} must be above 0; got {getattr(self, f.name)}")
        if self.max_run_bytes > self.max_owner_bytes or self.max_owner_bytes > self.max_total_bytes:
            raise SettingsError("disk limits must grow from one run to one visitor to the whole server: "
                                f"GANAPP_MAX_RUN_MB {self.max_run_bytes // MB:,} <= GANAPP_MAX_VISITOR_MB "
                                f"{self.max_owner_bytes // MB:,} <= GANAPP_MAX_DISK_MB {self.max_total_bytes // MB:,}")

    def check_config(self, config: GANConfig, *, what: str = "this run") -> "Estimate":
        """Refuse a config above the server's limits before anything is built; return its estimate."""
        from ..budget import describe_bytes, estimate

        if config.steps > self.max_steps:
            raise LimitError(f"this server trains at most {self.max_steps:,} steps per run; got {config.steps:,}",
                             key="max_steps", most=f"{self.max_steps:,}", got=f"{config.steps:,}")
        if config.batch_size > self.max_batch_size:
            raise LimitError(f"this server allows batch sizes up to {self.max_batch_size:,}; got {config.batch_size:,}",
                             key="max_batch", most=f"{self.max_batch_size:,}", got=f"{config.batch_size:,}")
        if config.hidden_dim > self.max_hidden_dim:
            raise LimitError(f"this server allows model widths (hidden_dim) up to {self.max_hidden_dim:,}; "
                             f"got {config.hidden_dim:,}", key="max_width", most=f"{self.max_hidden_dim:,}",
                             got=f"{config.hidden_dim:,}")
        needs = estimate(config)
        if needs.memory_bytes > self.max_job_memory_bytes:
            raise LimitError(f"{what} would need about {describe_bytes(needs.memory_bytes)} of memory; this server "
                             f"allows {describe_bytes(self.max_job_memory_bytes)} per job. Make the batch, the model "
                             "width or the minibatch kernels smaller", key="memory" + _of(what),
                             need=describe_bytes(needs.memory_bytes), most=describe_bytes(self.max_job_memory_bytes))
        if needs.checkpoint_bytes > self.max_run_bytes:
            raise LimitError(f"{what} would write a checkpoint of about {describe_bytes(needs.checkpoint_bytes)}; "
                             f"this server keeps at most {describe_bytes(self.max_run_bytes)} per run. Make the "
                             "model width or the minibatch kernels smaller", key="checkpoint_bytes" + _of(what),
                             need=describe_bytes(needs.checkpoint_bytes), most=describe_bytes(self.max_run_bytes))
        return needs


def _of(what: str) -> str:
    """The refusal key's suffix for what is checked: a run to train, or an uploaded checkpoint."""
    return "_checkpoint" if "checkpoint" in what else ""
