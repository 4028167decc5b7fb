"""The job server: every visitor's runs, the queue, the limits, and the pump that hears jobs.

`JobManager.submit` checks a run against the server's limits (ganapp.server.limits)
before anything starts and queues it. A pump thread starts queued runs on the job
backend (ganapp.server.backend) while the limits allow, in fair turns between
visitors, applies each job's messages (ganapp.server.messages) to the run's record,
and notices when a job ends, however it ends. Pages poll the records; nothing a page
does waits for training.

Every run belongs to an owner: a token the server issued (ganapp.server.tokens); every
lookup goes through the owner's own runs, so a run id taken from another visitor finds
nothing. A run's state changes in one locked method (`_set_state`) along the allowed
transitions only. Disk is bounded in runs and in bytes, per run, per visitor and in
total; with GANAPP_RUNS_DIR set every run keeps a record on disk (ganapp.server.records)
and a restarted server lists them all again.

This module imports neither torch nor gradio: the server stays light, and jobs get
torch from the forkserver's preloaded ganapp.worker.
"""

from __future__ import annotations

import atexit
import collections
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..config import ConfigError, GANConfig
from ..presets import ready_made_checkpoint
from . import records
from .backend import JobBackend, JobHandle, backend_from_env
from .control import STEP_ACTIONS, Command, PlayRefused, PlayState, check_speed
from .limits import JobError, LimitError, Limits, Notice, SettingsError
from .messages import Curves, Done, Inside, Log, Message, Metrics, Note, Samples, Started
from .records import DISPLAY_ROWS_CAP, LOSS_COLUMNS, RECORD_FORMAT  # noqa: F401  (re-exported)
from .tokens import TokenIssuer

ACTIVE_STATES = ("queued", "starting", "running", "stopping")
ENDED_STATES = ("finished", "stopped", "failed", "interrupted")
TRANSITIONS = {  # a run's state moves only along these
    "queued": {"starting", "stopped", "failed", "interrupted"},
    "starting": {"running", "stopping", "finished", "stopped", "failed", "interrupted"},
    "running": {"stopping", "finished", "stopped", "failed", "interrupted"},
    "stopping": {"stopped", "finished", "failed", "interrupted"},
    "finished": set(), "stopped": set(), "failed": set(), "interrupted": set(),
}
STOP_GRACE_S = 5.0  # after a stop request, a job still alive this long is terminated (training ends
# within a step; the rest is writing its files, which a loaded machine can stretch past 2 s)
VIEW_JOBS_AT_ONCE = 2  # checkpoint-reading jobs, on top of the training limit
MESSAGE_CHARS = 300  # reasons and warnings from jobs are cut to this length
CLEANUP_EVERY_S = 60.0


class RunNotFound(JobError):
    """No run with that id among the caller's own runs."""


def _short(text: Any, limit: int = MESSAGE_CHARS) -> str | None:
    if text is None:
        return None
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


LANGUAGES = ("en", "zh-TW")  # the pictures' languages, as ganapp.picture_text has them (it imports Pillow)
METRICS_PICTURE, METRICS_PICTURE_OTHER = "metrics.png", "metrics.other-language.png"  # an ended run's bar chart
INSIDE_KEPT = 24  # views a pair's run keeps (about 40 KB each), to show them at the other side's step


@dataclass(eq=False)
class Run:
    """One run as the server sees it. Written by the pump thread, read by polls."""

    id: str
    owner: str  # owner key (a hash of the token), not the token
    name: str
    kind: str  # "train" | "continue" | "view"
    config: GANConfig | None  # None until a 'view' job has read its checkpoint
    folder: Path
    created: float = field(default_factory=time.time)
    spec: dict[str, Any] = field(default_factory=dict)
    state: str = "queued"
    reason: str | None = None
    warning: str | None = None  # something a visitor should know although the run did not fail
    note: str | None = None  # what a starting job is doing (e.g. a one-off download)
    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    picture: bytes | None = None  # the latest sample picture, PNG bytes drawn by the job
    picture_step: int = -1
    picture_count: int = 0  # pictures received so far: a page shows a new one when this moves
    # (picture_step, picture) set in one assignment, so that a reader in another thread never
    # pairs one picture with another's step (None until the first picture; see `sample_now`).
    sample: tuple[int, bytes] | None = None
    curves: bytes | None = None  # the loss curves so far, PNG bytes drawn by the job
    curves_count: int = 0
    metrics: dict[str, float] = field(default_factory=dict)  # the latest measured numbers
    metrics_warning: str | None = None
    metrics_picture: bytes | None = None  # PNG bar chart from ganapp.metrics, when it draws one
    metrics_picture_other: bytes | None = None  # the same chart in the other language, if drawn
    metrics_count: int = 0
    metric_rows: int = 0  # history rows that carry metrics (they come every metrics_every steps)
    # The latest views inside the game, (step, PNG bytes by view name, numbers), set in one
    # assignment like `sample`; inside_count moves with each, so a page sends only new ones.
    inside: tuple[int, dict[str, bytes], dict[str, float]] | None = None
    inside_count: int = 0
    # A pair's side that is ahead shows an older picture (the other side's step): it keeps its
    # last few views (only a pair's runs, spec every_picture) so that its layers match that picture.
    inside_kept: list[tuple[int, dict[str, bytes], dict[str, float]]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0  # training time, from the job
    started: float | None = None
    ended: float | None = None
    budget_bytes: int = 0  # disk bytes this run may take (its estimate while active, its files after)
    version: int = 0  # bumped on every change, so a poll can tell "nothing new" cheaply
    stop_requested: float | None = None
    stop_why: str | None = None  # None (the visitor), "time" (the server's limit), "shutdown"
    handle: JobHandle | None = None  # the job, while it runs; closed and dropped when it ends
    started_monotonic: float | None = None
    # Play, pause, one step (ganapp.server.control): what the visitor asked for, and what the job says.
    pause_wanted: bool = False  # asked to pause (single steps are accepted from then on)
    paused: bool = False  # the job says it waits
    half_step: bool = False  # the job says D has taken its half of the next step
    speed: float | None = None  # the slow-motion speed asked for, steps per second (None: full speed)
    paused_since: float | None = None  # monotonic: the pause, or the last step by hand (the pause limit)
    forgotten: bool = False  # dropped by _forget: its folder is deleted and nothing is written there again

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def pid(self) -> int | None:
        return getattr(self.handle, "pid", None)

    @property
    def total_steps(self) -> int:
        return self.config.steps if self.config is not None else 0

    @property
    def techniques(self) -> list[str]:
        return self.config.techniques if self.config is not None else []

    @property
    def continuable(self) -> bool:
        """An interrupted run goes on from its checkpoint, or starts again from its config."""
        if self.active or self.config is None:
            return False
        return bool(self.files.get("checkpoint")) or self.state == "interrupted"

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

    def sample_now(self) -> tuple[int, bytes] | None:
        """The latest sample picture with its step, read at once: (step, PNG), or None."""
        sample = self.sample
        if sample is None and self.picture and self.picture_step >= 0:  # a Run built by hand
            sample = (self.picture_step, self.picture)
        return sample

    def describe(self, queue_position: int | None = None) -> dict[str, Any]:
        """Plain JSON-able summary, for the API and the runs table."""
        speed = self.steps_per_second()
        return {
            "run_id": self.id,
            "name": self.name,
            "state": self.state,
            "reason": self.reason,
            "warning": self.warning,
            "note": self.note,
            "queue_position": queue_position,
            "data": self.config.data if self.config else None,
            "techniques": self.techniques,
            "step": self.step,
            "steps": self.total_steps,
            "steps_per_second": round(speed, 1) if speed is not None else None,
            "seconds": round(self.seconds, 2),
            "samples_step": self.picture_step,
            # paused: asked to pause (steps by hand are taken from then on; a run not started yet
            # starts paused); the job confirms within a step (Run.paused).
            "paused": self.pause_wanted and self.state in ("queued", "starting", "running"),
            "half_step": self.half_step,
            "speed": self.speed,
            "samples_count": self.picture_count,
            "metrics": dict(self.metrics),
            "metrics_warning": self.metrics_warning,
            "files": sorted(self.files),
            "continuable": self.continuable,
            "config": self.config.to_dict() if self.config else None,
        }

    def record(self) -> dict[str, Any]:
        """What run.json keeps (ganapp.server.records)."""
        return {"id": self.id, "name": self.name, "kind": self.kind, "state": self.state, "reason": self.reason,
                "warning": self.warning, "step": self.step, "seconds": self.seconds, "created": self.created,
                "started": self.started, "ended": self.ended,
                "files": {k: Path(v).name for k, v in self.files.items()}, "metrics": self.metrics,
                "metrics_warning": self.metrics_warning, "budget_bytes": self.budget_bytes,
                "config": self.config.to_dict() if self.config is not None else None,
                # the language its pictures were drawn in (that of the page that started it), so
                # that a restored run's pictures are still shown, or redrawn, in a page's language
                "lang": self.spec.get("lang") if self.spec.get("lang") in LANGUAGES else None}


class JobManager:
    """Owns every run of every visitor, the job handles and the limits."""

    def __init__(self, *, limits: Limits | None = None, runs_dir: str | os.PathLike | None = None,
                 backend: JobBackend | None = None, pump_interval_s: float = 0.05):
        self.limits = limits or Limits.from_env()
        self.limits.check()
        self.downloads = _downloads_policy()
        self._own_runs_dir = runs_dir is None and not os.environ.get("GANAPP_RUNS_DIR")
        if self._own_runs_dir:
            self.runs_dir = Path(tempfile.mkdtemp(prefix="ganapp-runs-"))
        else:
            self.runs_dir = Path(runs_dir or os.environ["GANAPP_RUNS_DIR"]).expanduser()
            self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.tokens = TokenIssuer(secret_file=None if self._own_runs_dir else self.runs_dir / ".token-secret",
                                  per_minute=self.limits.max_tokens_per_minute)
        self.backend = backend or backend_from_env()
        self._lock = threading.RLock()
        # A run's record is written outside _lock (file I/O); this keeps a record written for
        # a run as it ends from landing in, and so keeping, the folder _forget is deleting.
        self._files_lock = threading.Lock()
        self._owners: dict[str, dict[str, Run]] = {}  # owner key -> run id -> Run, in creation order
        self._waiting: collections.deque[Run] = collections.deque()
        self._running: list[Run] = []
        self._last_turn: dict[str, int] = {}  # owner key -> the turn number of their last start
        self._turn = 0
        self._notices: dict[str, list[str]] = {}
        self._closed = False
        self._last_cleanup = time.monotonic()
        self._pump_interval_s = pump_interval_s
        self._picture_listeners: list[Callable[[Run, int, bytes], None]] = []
        self._inside_listeners: list[Callable[[Run, tuple], None]] = []
        self._delete_old_folders()
        if not self._own_runs_dir:  # a folder that outlives the server: find its runs again
            self._restore_runs()
        threading.Thread(target=self.backend.warm_up, name="backend-warm-up", daemon=True).start()
        self._pump = threading.Thread(target=self._pump_loop, name="job-pump", daemon=True)
        self._pump.start()
        atexit.register(self.shutdown)

    # ------------------------------------------------------------------ visitors
    def issue_token(self, client: str = "") -> str:
        """A new visitor token for `client` (an address); LimitError if it asks too often."""
        return self.tokens.issue(client)

    def owner_key(self, owner: Any) -> str:
        return self.tokens.owner_key(owner)

    def take_notices(self, owner: str) -> list[str]:
        """One-off messages for the visitor (e.g. an old run deleted to make room), then forgotten."""
        with self._lock:
            return self._notices.pop(self.owner_key(owner), [])

    # ------------------------------------------------------------------ visitor actions
    def submit(self, owner: str, config: GANConfig, *, name: str = "", every_picture: bool = False,
               lang: str = "en") -> Run:
        """Queue a new training run; raises ConfigError or LimitError with a readable message.
        `every_picture`: the job draws a picture every sample_every steps however fast it
        trains (a side of a pair: both sides then have pictures of the same steps), rather
        than at most two a second."""
        if not isinstance(config, GANConfig):
            raise ConfigError("a run needs a config (a dictionary of settings)")
        config.validate()
        needs = self.limits.check_config(config)
        self._check_data_available(config)
        return self._add(owner, "train", config, name or self._default_name(config),
                         {"kind": "train", "config": config.to_dict(), "every_picture": bool(every_picture),
                          "lang": _picture_lang(lang)},
                         budget_bytes=needs.checkpoint_bytes)

    def continue_run(self, owner: str, run_id: str, steps: int, *, lang: str | None = None) -> Run:
        """Queue a new run that resumes `run_id`'s checkpoint and trains on to `steps` in total.
        An interrupted run with no checkpoint (it had not trained yet) starts again from its config."""
        base = self.get(owner, run_id)
        checkpoint = base.files.get("checkpoint")
        has_checkpoint = bool(checkpoint) and Path(checkpoint).is_file()
        if base.active or base.config is None or not (has_checkpoint or base.state == "interrupted"):
            raise JobError(f"run {_short(base.name, 80)!r} has no checkpoint to continue from yet; "
                           "wait until it has ended", key="no_checkpoint_yet", name=_short(base.name, 80))
        if isinstance(steps, bool) or not isinstance(steps, int) or steps <= base.step:
            raise ConfigError(f"to continue, steps must be a whole number above the run's {base.step}; "
                              f"got {_short(repr(steps), 40)}")
        config = base.config.replace(steps=steps)
        lang = _picture_lang(lang or base.spec.get("lang"))  # the pictures' words: the base run's language
        needs = self.limits.check_config(config)
        self._check_data_available(config)
        if not has_checkpoint:
            return self._add(owner, "train", config, f"{base.name} (again)",
                             {"kind": "train", "config": config.to_dict(), "lang": lang},
                             budget_bytes=needs.checkpoint_bytes)
        return self._add(owner, "continue", config, f"{base.name} → {steps}",
                         {"kind": "continue", "checkpoint": checkpoint, "steps": steps, "lang": lang},
                         budget_bytes=needs.checkpoint_bytes)

    def load_checkpoint(self, owner: str, upload_path: str | os.PathLike, display_name: str = "", *,
                        lang: str = "en") -> Run:
        """Queue a 'view' job for an uploaded checkpoint. Its header and metadata are read and
        held against the server's limits here, before any job builds a model (JSON only)."""
        from ..checkpoint_format import CheckpointError, read_checkpoint_info

        source = Path(upload_path)
        try:
            size = source.stat().st_size
        except OSError:
            raise JobError("the uploaded file is gone; upload it again", key="upload_gone") from None
        if size > self.limits.max_upload_bytes:
            raise LimitError(f"the file is {size / 1e6:.1f} MB; this server accepts checkpoints up to "
                             f"{self.limits.max_upload_bytes / 1e6:.0f} MB", key="upload_size",
                             size=f"{size / 1e6:.1f}", most=f"{self.limits.max_upload_bytes / 1e6:.0f}")
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", str(display_name or source.name))[-60:] or "upload.safetensors"
        try:
            config, _ = read_checkpoint_info(source)
        except CheckpointError as error:
            detail = _short(str(error).replace(str(source.name), name))
            raise JobError(detail, key="bad_checkpoint", detail=detail) from None
        needs = self.limits.check_config(config.replace(steps=min(config.steps, self.limits.max_steps)),
                                         what="this checkpoint")
        return self._add(owner, "view", None, f"upload: {name}", {"kind": "view", "lang": _picture_lang(lang)},
                         budget_bytes=size + needs.checkpoint_bytes,
                         before_queue=lambda run: self._copy_upload(source, run, name))

    def open_ready_made(self, owner: str, name: str, *, lang: str = "en") -> Run:
        """Open a shipped run (ganapp.presets.READY_MADE_NOTES) as a 'view' job of the owner's:
        the same safe loading as an upload, on a file of ours, chosen by name only."""
        try:
            path = ready_made_checkpoint(name)
        except KeyError as error:
            raise JobError(_short(error.args[0])) from None
        return self._add(owner, "view", None, f"ready-made: {name}",
                         {"kind": "view", "ready_made": name, "lang": _picture_lang(lang)},
                         budget_bytes=2 * path.stat().st_size,
                         before_queue=lambda run: self._copy_upload(path, run, path.name))

    def stop(self, owner: str, run_id: str) -> Run:
        """Stop one of the owner's runs: a waiting run ends at once, a running one within a step."""
        with self._lock:
            run = self.get(owner, run_id)
            if run.state == "queued":
                self._waiting.remove(run)
                self._end(run, "stopped", None)
            elif run.state in ("starting", "running"):
                self._request_stop(run, None)
            return run

    # ------------------------------------------------------------------ play, pause, one step
    def pause(self, owner: str, run_id: str) -> Run:
        """Pause one of the owner's runs after its current step (it keeps its slot: see
        Limits.max_pause_seconds). A run that has not started yet starts paused, at step 0."""
        with self._lock:
            run = self._playable(owner, run_id)
            self._send_command(run, Command("pause"))
            run.pause_wanted = True
            run.paused_since = time.monotonic()
            run.version += 1
            return run

    def resume(self, owner: str, run_id: str) -> Run:
        """Train a paused run on (at its slow-motion speed, when one is set)."""
        with self._lock:
            run = self._playable(owner, run_id)
            if not run.pause_wanted:
                raise PlayRefused(f"run {_short(run.name, 80)!r} is not paused", "play_not_paused_resume",
                                  name=_short(run.name, 80))
            self._send_command(run, Command("resume"))
            run.pause_wanted = False
            run.paused_since = None
            run.version += 1
            return run

    def step(self, owner: str, run_id: str, kind: str = "step") -> Run:
        """One step of a paused run by hand: kind "step" (D then G, as training straight),
        "step_d" (D's half) or "step_g" (G's half). The job then sends the step's log row,
        picture and curves."""
        if kind not in STEP_ACTIONS:
            raise JobError(f"a step is one of {', '.join(STEP_ACTIONS)}; got {_short(repr(kind), 40)}")
        with self._lock:
            run = self._playable(owner, run_id)
            if run.handle is None:
                raise PlayRefused(f"run {_short(run.name, 80)!r} has not started yet; wait for its first picture",
                                  "play_not_started", name=_short(run.name, 80))
            if not run.pause_wanted:
                raise PlayRefused(f"run {_short(run.name, 80)!r} is training; pause it first, then take "
                                  "single steps", "play_not_paused", name=_short(run.name, 80))
            self._send_command(run, Command(kind))
            run.paused_since = time.monotonic()
            return run

    def set_speed(self, owner: str, run_id: str, speed: Any) -> Run:
        """Slow motion: at most `speed` steps per second (0 or None: full speed again)."""
        try:
            value = check_speed(speed)
        except ValueError as error:
            raise PlayRefused(str(error), "play_bad_speed") from None
        with self._lock:
            run = self._playable(owner, run_id)
            self._send_command(run, Command("speed", value))
            run.speed = value
            run.version += 1
            return run

    def _playable(self, owner: str, run_id: str) -> Run:
        run = self.get(owner, run_id)
        name = _short(run.name, 80)
        if run.kind == "view":
            raise PlayRefused(f"run {name!r} opens a checkpoint and trains nothing; there is nothing to pause",
                              "play_view", name=name)
        if run.state not in ("queued", "starting", "running") or run.stop_requested is not None:
            raise PlayRefused(f"run {name!r} is {run.state}; only a running run can be paused or stepped",
                              "play_not_running", name=name, state=run.state)
        return run

    def _send_command(self, run: Run, command: Command) -> None:
        """To the job now; for a run whose job is not started yet, pause and speed are kept and
        sent as it starts (_start_waiting; `step` refuses before)."""
        if run.handle is None:
            return
        if not run.handle.control(command):
            raise PlayRefused(f"run {_short(run.name, 80)!r} is not taking commands right now (it may be "
                              "ending, or busy measuring); try again in a moment", "play_busy",
                              name=_short(run.name, 80))

    def get(self, owner: str, run_id: Any) -> Run:
        """One of the owner's own runs; RunNotFound for any other id, whoever owns it."""
        runs = self._owners.get(self.owner_key(owner), {})
        run = runs.get(run_id) if isinstance(run_id, str) else None
        if run is None:
            raise RunNotFound(f"you have no run {_short(repr(run_id), 40)}", key="no_such_run",
                              run=_short(repr(run_id), 40))
        return run

    def runs(self, owner: str) -> list[Run]:
        """The owner's runs, oldest first."""
        with self._lock:
            return list(self._owners.get(self.owner_key(owner), {}).values())

    def remove(self, owner: str, run_id: str) -> None:
        """Forget an ended run and delete its files."""
        with self._lock:
            run = self.get(owner, run_id)
            if run.active:
                raise JobError(f"run {_short(run.name, 80)!r} is {run.state}; stop it before removing it",
                               key="remove_active", name=_short(run.name, 80))
            self._forget(run)

    def owner_folder(self, owner: str) -> Path:
        """A folder of the owner's own (for files made for them, such as the scoreboard CSV)."""
        folder = self.runs_dir / self.owner_key(owner)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def queue_position(self, run: Run) -> int | None:
        """1 for the next run to start, among all visitors' waiting runs of its kind; None if not waiting."""
        with self._lock:
            if run.state != "queued":
                return None
            if run.kind == "view":
                views = [r for r in self._waiting if r.kind == "view"]
                return views.index(run) + 1 if run in views else None
            order = self._fair_order()
            return order.index(run) + 1 if run in order else None

    def waits_for_own_runs(self, run: Run) -> bool:
        """True when a waiting run is held back by the per-visitor limit, not by the server."""
        with self._lock:
            mine = sum(1 for r in self._running if r.owner == run.owner and r.kind != "view")
            return run.state == "queued" and mine >= self.limits.max_running_per_owner

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {"running": len(self._running), "waiting": len(self._waiting),
                    "owners": len(self._owners), "runs": sum(len(r) for r in self._owners.values())}

    def wait(self, owner: str, run_id: str, states=ENDED_STATES, timeout_s: float = 30.0) -> Run:
        """Wait until the run's state is one of `states` (or the deadline passes); for tests and scripts."""
        deadline = time.monotonic() + timeout_s
        run = self.get(owner, run_id)
        while run.state not in states and time.monotonic() < deadline:
            time.sleep(0.02)
        return run

    def shutdown(self, grace_s: float = STOP_GRACE_S) -> None:
        """Stop every job so that it writes its checkpoint, record each as interrupted, stop the pump."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        # The pump may be inside a backend start (the first one waits for the forkserver's
        # imports): let it finish, so that no job is started behind our back or joined half-started.
        self._pump.join(60.0)
        with self._lock:
            running = list(self._running)
            waiting = list(self._waiting)
            self._waiting.clear()
        for run in running:
            if run.active and run.state != "stopping":
                self._request_stop(run, "shutdown")
            elif run.stop_why is None:
                run.stop_why = "shutdown"
        deadline = time.monotonic() + grace_s
        while running and time.monotonic() < deadline:
            for run in list(running):
                if self._reap_if_ended(run):
                    running.remove(run)
            time.sleep(0.02)
        for run in running:  # still alive past the grace: end it; its record says interrupted
            run.handle.terminate()
            self._reap_if_ended(run, force=True)
        for run in waiting:
            self._end(run, "interrupted", "the server stopped before this run started; start it again")
        self.backend.close()
        if self._own_runs_dir:
            shutil.rmtree(self.runs_dir, ignore_errors=True)

    # ------------------------------------------------------------------ checks before work
    @staticmethod
    def _default_name(config: GANConfig) -> str:
        name = f"{config.data} {'+'.join(config.techniques) or 'vanilla'} seed {config.seed}"
        if not config.generator_batch_norm and not config.virtual_batch_norm:
            name += ", G without BN"  # the collapse setting: say so where runs are listed
        return name

    def _check_data_available(self, config: GANConfig) -> None:
        """The server's download policy, applied before a job starts (README: Limits and safety)."""
        from .. import datasets_cache

        if datasets_cache.cached(config.data) or self.downloads:
            return
        raise JobError(f"the {config.data} data set is not on this server, and this server does not download "
                       "(GANAPP_DOWNLOADS=off or GANAPP_OFFLINE is set). Choose ring8, grid25, spiral or "
                       "digits, or ask the server's administrator to put the files in place",
                       key="no_download", data=str(config.data))

    def _add(self, owner: str, kind: str, config: GANConfig | None, name: Any, spec: dict[str, Any],
             budget_bytes: int, before_queue=None) -> Run:
        key = self.owner_key(owner)
        if not isinstance(name, str):
            raise JobError("a run's name must be text", key="name_not_text")
        with self._lock:
            if self._closed:
                raise JobError("the server is shutting down; try again in a minute", key="shutting_down")
            runs = self._owners.get(key, {})
            waiting_mine = sum(1 for r in self._waiting if r.owner == key)
            if waiting_mine >= self.limits.max_waiting_per_owner:
                raise LimitError(f"you already have {waiting_mine} runs waiting; stop one or wait for them to start",
                                 key="own_queue_full", count=str(waiting_mine))
            if len(self._waiting) >= self.limits.max_waiting:
                raise LimitError(f"the server's queue is full ({len(self._waiting)} runs waiting); "
                                 "try again in a minute", key="queue_full", count=str(len(self._waiting)))
            self._make_room(key, runs, budget_bytes)
            runs = self._owners.setdefault(key, {})
            run_id = secrets.token_hex(4)
            while run_id in runs:
                run_id = secrets.token_hex(4)
            folder = self.runs_dir / key / run_id
            run = Run(id=run_id, owner=key, name=_short(name.strip(), 80) or run_id, kind=kind, config=config,
                      folder=folder, budget_bytes=budget_bytes,
                      spec=dict(spec, out_dir=str(folder), limits=self._job_limits()))
            folder.mkdir(parents=True, exist_ok=True)
            try:
                if before_queue is not None:
                    before_queue(run)
            except OSError as error:
                shutil.rmtree(folder, ignore_errors=True)
                raise JobError(f"could not keep the file: {error.strerror or error}", key="cannot_keep_file",
                               why=str(error.strerror or error)) from None
            runs[run_id] = run
            self._waiting.append(run)
            self._save(run)
        return run

    def _job_limits(self) -> dict[str, int]:
        """What a job enforces on itself as a backstop (memory, bytes per file, steps, width...)."""
        limits = self.limits
        return {"memory_bytes": limits.max_job_memory_bytes, "run_bytes": limits.max_run_bytes,
                "max_steps": limits.max_steps, "max_batch_size": limits.max_batch_size,
                "max_hidden_dim": limits.max_hidden_dim}

    def _make_room(self, key: str, runs: dict[str, Run], budget_bytes: int) -> None:
        """Runs kept and bytes, per visitor and in total: the oldest ended runs make room, and
        their owners are told; when ended runs cannot make room, refuse."""
        limits = self.limits
        mine = list(runs.values())
        ended = [r for r in mine if not r.active]
        if len(mine) >= limits.max_runs_per_owner:
            if not ended:
                raise LimitError(f"you have {len(mine)} runs going; stop one first", key="own_runs_going",
                                 count=str(len(mine)))
            self._forget(ended.pop(0), f"kept at most {limits.max_runs_per_owner} runs per visitor",
                         key="runs_per_visitor", most=str(limits.max_runs_per_owner))
        if budget_bytes > limits.max_owner_bytes:
            raise LimitError(f"this run may take {budget_bytes / 1e6:.0f} MB of disk; a visitor may keep "
                             f"{limits.max_owner_bytes / 1e6:.0f} MB", key="owner_bytes",
                             need=f"{budget_bytes / 1e6:.0f}", most=f"{limits.max_owner_bytes / 1e6:.0f}")
        while sum(r.budget_bytes for r in runs.values()) + budget_bytes > limits.max_owner_bytes:
            if not ended:
                raise LimitError("your runs that are still going may take all the disk space a visitor may "
                                 f"keep ({limits.max_owner_bytes / 1e6:.0f} MB); wait for one to end",
                                 key="owner_bytes_going", most=f"{limits.max_owner_bytes / 1e6:.0f}")
            self._forget(ended.pop(0), f"kept at most {limits.max_owner_bytes / 1e6:.0f} MB per visitor",
                         key="bytes_per_visitor", most=f"{limits.max_owner_bytes / 1e6:.0f}")
        everyone = [r for rs in self._owners.values() for r in rs.values()]
        total_runs = len(everyone)
        total_bytes = sum(r.budget_bytes for r in everyone)
        if total_runs + 1 > limits.max_runs_total or total_bytes + budget_bytes > limits.max_total_bytes:
            oldest = sorted((r for r in everyone if not r.active), key=lambda r: r.ended or r.created)
            for run in oldest:
                if total_runs + 1 <= limits.max_runs_total and total_bytes + budget_bytes <= limits.max_total_bytes:
                    break
                total_runs -= 1
                total_bytes -= run.budget_bytes
                self._forget(run, "the server keeps a bounded number of runs and bytes for all visitors",
                             key="server_total")
            if total_runs + 1 > limits.max_runs_total or total_bytes + budget_bytes > limits.max_total_bytes:
                raise LimitError("the server's disk space for runs is taken by runs still going; "
                                 "try again in a few minutes", key="total_bytes_going")

    def _copy_upload(self, source: Path, run: Run, name: str) -> None:
        # Under the upload's own (sanitised) name, so the engine's messages name the user's file.
        target = run.folder / "upload" / name
        target.parent.mkdir()
        shutil.copyfile(source, target)
        run.spec["checkpoint"] = str(target)

    def _forget(self, run: Run, why: str | None = None, *, key: str = "", **values: str) -> None:
        """Drop a run and its files; with `why`, the owner is told (a Notice, whose key is
        "deleted_" + key for pages in other languages)."""
        with self._lock:
            self._owners.get(run.owner, {}).pop(run.id, None)
            if not self._owners.get(run.owner):
                self._owners.pop(run.owner, None)
            if why is not None:
                notices = self._notices.setdefault(run.owner, [])
                notices.append(Notice(f"Your run {_short(run.name, 80)!r} was deleted to make room: the server "
                                      f"{why}.", key=f"deleted_{key}" if key else None,
                                      name=_short(run.name, 80), **values))
                del notices[:-20]
        with self._files_lock:  # not while _save writes its record into the folder
            run.forgotten = True
            shutil.rmtree(run.folder, ignore_errors=True)

    def _delete_old_folders(self) -> None:
        """Delete run folders left by earlier servers once older than the TTL, and folders
        without a record (a run that never got going); keep owners' other files."""
        cutoff = time.time() - self.limits.run_ttl_s
        for folder in self.runs_dir.glob("*/*"):
            try:
                if not folder.is_dir() or not records.RUN_ID.fullmatch(folder.name):
                    continue
                if folder.stat().st_mtime < cutoff or not (folder / records.RECORD_NAME).is_file():
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
            for key in [k for k in self._last_turn if k not in self._owners]:
                del self._last_turn[key]

    # ------------------------------------------------------------------ state
    def _set_state(self, run: Run, state: str, reason: str | None = None) -> bool:
        """The one place a run's state changes: under the lock, along TRANSITIONS only."""
        with self._lock:
            if state not in TRANSITIONS[run.state]:
                return False
            run.state = state
            if reason is not None:
                run.reason = _short(reason)
            if state in ENDED_STATES:
                run.ended = time.time()
                run.note = None
            run.version += 1
        self._save(run)
        return True

    def _end(self, run: Run, state: str, reason: str | None) -> bool:
        """The run ends in `state`; whether it changed (an ended run stays as it ended)."""
        changed = self._set_state(run, state, reason)
        if changed and run.folder.is_dir():
            run.budget_bytes = records.folder_bytes(run.folder)
            self._save(run)
        return changed

    def _request_stop(self, run: Run, why: str | None) -> None:
        with self._lock:
            if run.state not in ("starting", "running"):
                return
            run.stop_requested = time.monotonic()
            run.stop_why = why
            if run.handle is not None:
                run.handle.request_stop()
            self._set_state(run, "stopping")

    def _save(self, run: Run) -> None:
        if not self._own_runs_dir:
            with self._files_lock:
                if run.forgotten:
                    return
                records.save(run.folder, run.record())
                if run.metrics_picture and not run.active:
                    try:
                        (run.folder / METRICS_PICTURE).write_bytes(run.metrics_picture)
                        if run.metrics_picture_other:  # the chart in the other language
                            (run.folder / METRICS_PICTURE_OTHER).write_bytes(run.metrics_picture_other)
                    except OSError:
                        pass

    # ------------------------------------------------------------------ the pump
    def _pump_loop(self) -> None:
        while not self._closed:
            try:
                self._pump_once()
            except Exception:  # a pump that dies would freeze every page; log and go on
                traceback.print_exc()
            time.sleep(self._pump_interval_s)

    def _pump_once(self) -> None:
        with self._lock:
            running = list(self._running)
        now = time.monotonic()
        for run in running:
            if self._reap_if_ended(run):
                continue
            if run.stop_requested is not None and now - run.stop_requested > STOP_GRACE_S:
                run.handle.terminate()  # still loading or stuck: stop means stop
            elif (run.stop_requested is None and run.kind != "view" and run.started_monotonic is not None
                  and now - run.started_monotonic > self.limits.max_job_seconds):
                self._request_stop(run, "time")  # paused time counts: a paused job holds its slot
            elif (run.stop_requested is None and run.pause_wanted and run.paused_since is not None
                  and now - run.paused_since > self.limits.max_pause_seconds):
                self._request_stop(run, "pause")
        self._start_waiting()
        if now - self._last_cleanup > CLEANUP_EVERY_S:
            self._last_cleanup = now
            self._cleanup()

    def _reap_if_ended(self, run: Run, force: bool = False) -> bool:
        """Apply the job's news; when its job has ended, end the run and close the handle."""
        handle = run.handle
        for message in handle.drain():
            self._apply_safely(run, message)
        if handle.alive() and not force:
            return False
        for message in handle.drain(final=True):
            self._apply_safely(run, message)
        if run.state not in ENDED_STATES:
            if run.stop_why == "shutdown":
                self._end(run, "interrupted", self._interrupted_reason(run))
            elif run.stop_requested is not None:
                self._end(run, "stopped", None)
            else:
                self._end(run, "failed", f"the job ended unexpectedly ({handle.exit_description()}); "
                          "the server and other runs are fine. Try again, perhaps with a smaller model.")
        with self._lock:
            if run in self._running:
                self._running.remove(run)
            run.handle = None
        handle.close()
        return True

    @staticmethod
    def _interrupted_reason(run: Run) -> str:
        if run.files.get("checkpoint"):
            return f"the server stopped while this run trained; continue it to go on from step {run.step:,}"
        return "the server stopped while this run trained; start it again"

    def _start_waiting(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                run = self._next_startable()
                if run is None:
                    return
                self._waiting.remove(run)
                if run.kind != "view":
                    self._turn += 1
                    self._last_turn[run.owner] = self._turn
                run.started = time.time()
                run.started_monotonic = time.monotonic()
                self._running.append(run)
                self._set_state(run, "starting")
            # Outside the lock: the first start may wait for the forkserver's imports.
            try:
                handle = self.backend.start(run.id, run.spec)
            except Exception as error:
                with self._lock:
                    self._running.remove(run)
                self._end(run, "failed", f"could not start the job: {error}")
                continue
            with self._lock:
                run.handle = handle
                if run.stop_requested is not None:  # stopped while it was being started
                    handle.request_stop()
                if run.speed is not None:  # asked for before the job started: it starts so
                    handle.control(Command("speed", run.speed))
                if run.pause_wanted:
                    handle.control(Command("pause"))
                    run.paused_since = time.monotonic()  # the pause limit counts from the start

    def _fair_order(self) -> list[Run]:
        """Waiting training runs in the order they would start: visitors take turns (the one
        whose last start is oldest goes first), each visitor's runs in the order queued."""
        queues: dict[str, collections.deque[Run]] = {}
        for run in self._waiting:
            if run.kind != "view":
                queues.setdefault(run.owner, collections.deque()).append(run)
        last = dict(self._last_turn)
        first_seen = {owner: index for index, owner in enumerate(queues)}
        turn, order = self._turn, []
        while queues:
            owner = min(queues, key=lambda o: (last.get(o, -1), first_seen[o]))
            order.append(queues[owner].popleft())
            turn += 1
            last[owner] = turn
            if not queues[owner]:
                del queues[owner]
        return order

    def _next_startable(self) -> Run | None:
        """The first waiting run the limits let start, in fair turns. A 'view' job trains
        nothing and takes well under a second, so it does not wait for a training slot."""
        training = [r for r in self._running if r.kind != "view"]
        viewing = len(self._running) - len(training)
        if viewing < VIEW_JOBS_AT_ONCE:
            for run in self._waiting:
                if run.kind == "view":
                    return run
        if len(training) >= self.limits.max_running:
            return None
        per_owner = collections.Counter(r.owner for r in training)
        for run in self._fair_order():
            if per_owner[run.owner] < self.limits.max_running_per_owner:
                return run
        return None

    def add_picture_listener(self, listener: Callable[[Run, int, bytes], None]) -> None:
        """Call `listener(run, step, png)` in the pump thread for every sample picture a job
        sends, as it arrives (a page that shows a pair keeps both sides' pictures this way,
        none missed however busy the machine). It must be quick and must not block."""
        self._picture_listeners.append(listener)

    def add_inside_listener(self, listener: Callable[[Run, tuple], None]) -> None:
        """Call `listener(run, run.inside)` in the pump thread for every set of views inside the
        game a job sends (right after its picture of the same step), as it arrives. Quick, never blocking."""
        self._inside_listeners.append(listener)

    # ------------------------------------------------------------------ messages
    def _apply_safely(self, run: Run, message: Message) -> None:
        """One job's odd message costs that run, never the pump or another visitor's page."""
        try:
            self._apply(run, message)
        except Exception as error:
            traceback.print_exc()
            if run.handle is not None:
                run.handle.terminate()
            self._end(run, "failed", f"the job sent something the server could not use ({type(error).__name__})")

    def _apply(self, run: Run, message: Message) -> None:
        if isinstance(message, Log):
            row = message.row
            run.history.append(row)
            run.step = int(row["step"])
            if len(row) > len(LOSS_COLUMNS):
                run.metric_rows += 1
            run.seconds = float(row.get("seconds", run.seconds))
            if len(run.history) > DISPLAY_ROWS_CAP:
                run.history = run.history[:-1:2] + run.history[-1:]  # halve, keep the newest row
        elif isinstance(message, Samples):
            run.sample = (int(message.step), message.png)
            run.picture, run.picture_step = message.png, int(message.step)
            run.picture_count += 1
            for listener in list(self._picture_listeners):
                try:
                    listener(run, int(message.step), message.png)
                except Exception:  # a page's bookkeeping never costs the run
                    traceback.print_exc()
        elif isinstance(message, Inside):
            run.inside = (int(message.step), dict(message.pictures), dict(message.numbers))
            run.inside_count += 1
            if run.spec.get("every_picture"):
                run.inside_kept = (run.inside_kept + [run.inside])[-INSIDE_KEPT:]
            for listener in list(self._inside_listeners):
                try:
                    listener(run, run.inside)
                except Exception:  # a page's bookkeeping never costs the run
                    traceback.print_exc()
        elif isinstance(message, Curves):
            run.curves = message.png
            run.curves_count += 1
        elif isinstance(message, Metrics):
            run.metrics.update(message.numbers)
            run.metrics_warning = _short(message.warning)
            if message.png:
                run.metrics_picture = message.png
                run.metrics_picture_other = message.other_png if isinstance(message.other_png, bytes) else None
            run.metrics_count += 1
        elif isinstance(message, Note):
            run.note = _short(message.text)
        elif isinstance(message, PlayState):
            run.paused, run.half_step = bool(message.paused), bool(message.half)
            run.step = max(run.step, int(message.step))  # a pause may land between two logged steps
        elif isinstance(message, Started):
            self._apply_started(run, message)
        elif isinstance(message, Done):
            # The state's change (_set_state) bumps the version after everything Done sets: a
            # page, or anyone waiting for the end, that sees the run ended sees its last version
            # (a bump after it made a finished run's views draw twice).
            if not self._apply_done(run, message):
                run.version += 1
            return
        else:
            raise TypeError(f"unknown message {type(message).__name__}")
        run.version += 1

    def _apply_started(self, run: Run, message: Started) -> None:
        config = GANConfig.from_dict(message.config)
        history = [row for row in message.history if isinstance(row, dict)][-DISPLAY_ROWS_CAP:]
        run.config = config
        run.step = int(message.step)
        run.note = None
        if history:
            run.history = history
            run.metric_rows = sum(1 for row in history if len(row) > len(LOSS_COLUMNS))
            run.seconds = float(history[-1].get("seconds", 0.0))
        if run.kind == "view":  # now that the checkpoint has been read, say what it holds
            if run.spec.get("ready_made"):  # its name says what it is; keep it whole
                run.name = f"{run.spec['ready_made']} (ready-made, step {run.step})"[:80]
            else:
                upload_name = Path(run.spec.get("checkpoint", "")).name
                run.name = f"{self._default_name(config)}, step {run.step} ({upload_name})"[:80]
        self._set_state(run, "running")

    def _apply_done(self, run: Run, message: Done) -> bool:
        """The job's end: its files, time and state; whether the state changed."""
        run.files = {str(k): str(v) for k, v in message.files.items()}
        run.seconds = float(message.seconds)
        run.warning = _short(message.warning)
        state, reason = message.state, message.reason
        if state not in ("finished", "stopped", "failed"):
            state, reason = "failed", f"the job ended in an unknown state ({_short(state, 40)})"
        if run.stop_requested is not None and state == "finished" and run.step < run.total_steps:
            state = "stopped"
        if state == "stopped" and run.stop_why == "time":
            reason = (f"stopped at the server's limit of {self.limits.max_job_seconds / 60:.0f} minutes per run"
                      + ("; continue it to train on" if run.files.get("checkpoint") else ""))
        elif state == "stopped" and run.stop_why == "pause":
            reason = (f"stopped after {self.limits.max_pause_seconds / 60:.0f} minutes paused without a step, "
                      "to free its place for others" + ("; continue it to train on" if run.files.get("checkpoint")
                                                        else ""))
        elif state in ("stopped", "finished") and run.stop_why == "shutdown" and run.step < run.total_steps:
            state, reason = "interrupted", self._interrupted_reason(run)
        return self._end(run, state, reason)

    # ------------------------------------------------------------------ records on disk
    def _restore_runs(self) -> None:
        restored = []
        for owner, folder in records.run_folders(self.runs_dir):
            try:
                restored.append(self._run_from_record(owner, folder))
            except (OSError, ValueError, TypeError, KeyError, ConfigError):
                continue  # a damaged record: that run is not listed (its folder ages out)
        for run in sorted(restored, key=lambda r: r.created):  # creation order, as the page lists them
            self._owners.setdefault(run.owner, {})[run.id] = run
        if restored:  # the loss curves are drawn again (about 9 ms each) without holding up the start
            from .. import curves  # numpy and Pillow only; imported here, not in the thread, so
            # that no other thread can see a half-imported numpy

            threading.Thread(target=_draw_restored_curves, args=(restored, curves.training_curves_png),
                             name="restore-curves", daemon=True).start()

    def _run_from_record(self, owner: str, folder: Path) -> Run:
        record = records.load(folder)
        config = records.config_of(folder, record)
        history = records.read_history(folder / "metrics.csv")
        files = records.files_in(folder, record["files"] or None)
        picture = (folder / "samples.png").read_bytes() if (folder / "samples.png").is_file() else None
        metrics_picture, metrics_picture_other = (
            (folder / name).read_bytes() if (folder / name).is_file() else None
            for name in (METRICS_PICTURE, METRICS_PICTURE_OTHER))
        state, reason = record["state"], record.get("reason")
        step = history[-1]["step"] if history and state in ACTIVE_STATES else record["step"]
        if state in ACTIVE_STATES:  # the server went away while this run was going
            if record["kind"] == "view":
                state, reason = "failed", "the server stopped while this checkpoint was being read; open it again"
            elif "checkpoint" in files:
                state, reason = "interrupted", ("the server stopped while this run trained; continue it to go on "
                                                f"from step {step:,}")
            else:
                state, reason = "interrupted", "the server stopped before this run had trained; start it again"
        elif state not in ENDED_STATES:
            raise ValueError(f"{folder}: unknown state")
        run = Run(id=folder.name, owner=owner, name=_short(record["name"], 80), kind=record["kind"],
                  config=config, folder=folder, created=float(record["created"]), state=state, reason=_short(reason),
                  warning=_short(record.get("warning")), step=int(step), history=history, picture=picture,
                  picture_step=int(step), picture_count=1 if picture else 0,
                  sample=(int(step), picture) if picture else None, metrics=record["metrics"],
                  metrics_warning=_short(record.get("metrics_warning")), metrics_picture=metrics_picture,
                  metrics_picture_other=metrics_picture_other if metrics_picture else None,
                  spec={"lang": record["lang"]} if record.get("lang") in LANGUAGES else {},
                  metrics_count=1 if record["metrics"] or metrics_picture else 0,
                  metric_rows=sum(1 for row in history if len(row) > len(LOSS_COLUMNS)), files=files,
                  seconds=float(history[-1].get("seconds", 0.0)) if history and state == "interrupted"
                  else float(record["seconds"]),
                  ended=float(record.get("ended") or time.time()), budget_bytes=records.folder_bytes(folder))
        if state != record["state"]:
            self._save(run)
        return run


def _downloads_policy() -> bool:
    """Whether jobs may download a data set (once per machine, under a lock, size-bounded:
    ganapp.data); a value the server cannot read stops it at start."""
    from ..datasets_cache import DataError, downloads_allowed

    try:
        return downloads_allowed()
    except DataError as error:
        raise SettingsError(str(error)) from None


def _draw_restored_curves(runs: list[Run], draw) -> None:
    for run in runs:
        if run.history and run.curves is None:
            try:
                run.curves = draw(run.history)
                run.curves_count += 1
                run.version += 1
            except Exception:  # a picture that cannot be drawn leaves the placeholder
                pass


def _picture_lang(lang: Any) -> str:
    """The language of the words a job draws inside its pictures (ganapp.picture_text)."""
    return lang if lang in LANGUAGES else "en"
