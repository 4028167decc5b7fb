"""A class runs the paper's ablation together: the class registry beside the JobManager.

A teacher opens a class (their visitor token) for an experiment: "each technique against
vanilla" on a data set, the whole sweep ablation (ganapp.sweep.VARIANTS), or a preset and
its vanilla partner (ganapp.presets). The class has two codes: a long secret one for the
link (`?class=...`, 128 random bits in hex) and a short one to write on the board (6 characters
from an alphabet without 0/O, 1/I/L). Joining is rate-limited per client address (a wrong
code counts WRONG_CODE_COST joins), the class closes after GANAPP_CLASS_HOURS, and it has
its own limits (students, runs per student; classes per teacher and in total). Those limits
are fields of ganapp.server.limits.Limits, read with every other GANAPP_* variable by
Limits.from_env (its ENVIRONMENT table) when the job server starts; this module reads no
environment variable itself.

A joining student is handed a variant and a seed: the variant with the fewest seeds taken
so far, and the smallest seed not yet taken for it, so that the class fills seeds 0, 1,
2... of every variant in turn (the same seeds across variants, as the sweep pairs them).
A student whose assigned run finished gets the next free slot on their next Start; one
whose run failed or was stopped tries the same slot again. A student's runs are theirs
(their own token, submitted through the JobManager as any run); the class keeps only a
reference to each class run, and shows others only its variant, seed and final metrics.
A run of the student's own choosing is pooled under its own variant: the technique set
named as the sweep names it, plus the settings that differ from the class's.

The pooled table is the sweep's (ganapp.sweep): the same variant names, metric columns
and formula (mean, std with ddof=1, over finished runs), so that a class whose students
ran seeds 0-2 of each variant gives the table `python -m ganapp sweep --seeds 3` gives.
Runs that failed or were stopped are counted apart and never averaged in; a variant with
fewer than MIN_RUNS finished runs is flagged.

No torch, no gradio: the page (ganapp.web.classes_view) and the API call this module.
"""

from __future__ import annotations

import collections
import csv
import hmac
import io
import math
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..config import ConfigError, GANConfig
from ..presets import PRESETS
from ..sweep import METRIC_ORDER, METRIC_TITLES, SWEEP_FIELDS, VARIANTS, _number
from .limits import JobError, LimitError, Limits
from .manager import ENDED_STATES, JobManager, Run

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read off a board without doubt
SHORT_LENGTH = 6  # 31^6 = 887 million codes
WRONG_CODE_COST = 5  # a wrong code counts as this many joins against the client's minute
MIN_RUNS = 3  # a variant with fewer finished runs is flagged: one run proves nothing
CLOSED_KEPT_S = 3600.0  # a closed class's table stays readable (and exportable) this long
TECHNIQUE_VARIANTS = ("vanilla", "FM", "MBD", "HA", "LS", "VBN")  # each technique against vanilla
KINDS = ("techniques", "ablation", "pair")
MAX_SETTINGS = 40
MAX_NAME_CHARS = 40


class ClassNotFound(JobError):
    """No open class with that code."""


# ----------------------------------------------------------------------------- experiments


@dataclass(frozen=True)
class Experiment:
    """What the class runs: a data set, steps, shared settings, and the variants (name ->
    the config fields it sets), in table order."""

    kind: str
    data: str
    steps: int
    settings: dict[str, Any]
    variants: dict[str, dict[str, Any]]
    preset: str | None = None
    number: int = 0  # the class's experiment counter: a new assignment starts a new table

    def config(self, variant: str, seed: int) -> GANConfig:
        """The run of `variant` with `seed`, built as ganapp.sweep.sweep_configs builds it."""
        base = {"metrics_every": self.steps, **self.settings, "data": self.data, "steps": self.steps}
        return GANConfig.from_dict({**base, **self.variants[variant], "seed": seed})

    def config_with(self, fields: dict[str, Any], seed: int) -> GANConfig:
        """The class's shared settings with other technique fields (a student's own run)."""
        base = {"metrics_every": self.steps, **self.settings, "data": self.data, "steps": self.steps}
        return GANConfig.from_dict({**base, **fields, "seed": seed})

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "data": self.data, "steps": self.steps, "preset": self.preset,
                "settings": dict(self.settings), "variants": list(self.variants)}


def _variant_name(fields: dict[str, Any]) -> str | None:
    for name, own in VARIANTS.items():
        if own == fields:
            return name
    return None


def make_experiment(spec: Any, limits: Limits, number: int = 0) -> Experiment:
    """An experiment from a plain dict, as the page and the API send it:
    {"kind": "techniques" | "ablation", "data": "ring8", "steps": 2000, "settings": {...}}, or
    {"kind": "pair", "preset": "<a technique preset>", "steps": (optional)}. Every variant's
    config is validated and held against the server's limits here; ConfigError/LimitError."""
    if not isinstance(spec, dict):
        raise ConfigError("an experiment is a dictionary such as {\"kind\": \"techniques\", \"data\": \"ring8\"}")
    kind = spec.get("kind", "techniques")
    if kind not in KINDS:
        raise ConfigError(f"an experiment's kind is one of {', '.join(KINDS)}; got {str(kind)[:40]!r}")
    settings = spec.get("settings") or {}
    if not isinstance(settings, dict) or len(settings) > MAX_SETTINGS:
        raise ConfigError(f"settings must be a dictionary of at most {MAX_SETTINGS} config fields")
    known = set(GANConfig.__dataclass_fields__)
    for name in settings:
        if name not in known or name in SWEEP_FIELDS:
            raise ConfigError(f"settings: {str(name)[:40]!r} is not a setting a class can share "
                              f"(data, steps and seed are the experiment's own)")
    if kind == "pair":
        preset = spec.get("preset")
        if not isinstance(preset, str) or preset not in PRESETS or preset.endswith(": vanilla"):
            raise ConfigError("a pair experiment needs a technique preset (one of the page's presets, not a "
                              "vanilla one)")
        partner = preset.split(":")[0] + ": vanilla"
        base = {k: v for k, v in PRESETS[partner].items() if k not in SWEEP_FIELDS}
        treated = {k: v for k, v in PRESETS[preset].items() if k not in SWEEP_FIELDS and base.get(k) != v}
        name = _variant_name(treated) or preset.split(": ", 1)[-1]
        variants = {"vanilla": {}, name: treated}
        data = PRESETS[preset]["data"]
        steps = spec.get("steps") or PRESETS[preset]["steps"]
        settings = {**base, **settings}
    else:
        preset = None
        data = spec.get("data", "ring8")
        steps = spec.get("steps", 2000)
        names = TECHNIQUE_VARIANTS if kind == "techniques" else tuple(VARIANTS)
        variants = {name: dict(VARIANTS[name]) for name in names}
    if not isinstance(data, str) or len(data) > 40:
        raise ConfigError("data must be the name of a data set, such as ring8")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps must be a whole number of at least 1; got {str(steps)[:40]!r}")
    experiment = Experiment(kind=kind, data=data, steps=steps, settings=dict(settings), variants=variants,
                            preset=preset, number=number)
    for variant in variants:  # each variant's config valid and within the server's limits
        limits.check_config(experiment.config(variant, 0), what=f"the class's {variant} run")
    return experiment


def own_variant(config: GANConfig, experiment: Experiment) -> str:
    """The variant a run of the student's own choosing is pooled under: the class's variant
    whose config it is (whatever its seed), else its technique set as the sweep names it
    ("vanilla", "FM", "all five"...; "FM+LS" for a set the sweep has no name for), with
    the settings that differ from the class's ("LS (steps=300)")."""
    for name in experiment.variants:
        if experiment.config(name, config.seed) == config:
            return name
    singles = {name: own for name, own in VARIANTS.items() if len(GANConfig(**own).techniques) == 1}
    merged: dict[str, Any] = {}
    for name, own in singles.items():  # the sweep's fields for each technique the run has
        if name in config.techniques:
            merged.update(own)
    label = _variant_name(merged) or "+".join(config.techniques) or "vanilla"
    try:
        reference = experiment.config_with(merged, config.seed).to_dict()
    except ConfigError:
        reference = experiment.config_with({}, config.seed).to_dict()
    fields = config.to_dict()
    differs = [f"{k}={_plain(v)}" for k, v in fields.items() if k not in ("seed", "device") and reference.get(k) != v]
    if not differs:
        return label
    return f"{label} ({', '.join(differs[:3])}{', …' if len(differs) > 3 else ''})"


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# ----------------------------------------------------------------------------- classes


@dataclass(eq=False)
class Student:
    key: str  # the owner key (a hash of the token), never the token
    number: int  # 1, 2, 3... in joining order: "student 3" on the teacher's screen
    name: str = ""
    assignment: tuple[int, str, int] | None = None  # (experiment number, variant, seed)
    runs: int = 0


@dataclass(eq=False)
class ClassRun:
    run: Run
    student: int
    variant: str
    seed: int
    experiment: int
    own: bool = False


@dataclass(eq=False)
class Classroom:
    code: str
    short: str
    teacher: str  # owner key
    experiment: Experiment
    created: float = field(default_factory=time.time)
    closes: float = 0.0
    show_names: bool = False
    closed_early: bool = False
    ended_marker: float = 0.0  # when it closed early
    students: dict[str, Student] = field(default_factory=dict)
    runs: list[ClassRun] = field(default_factory=list)
    version: int = 0

    @property
    def open(self) -> bool:
        return not self.closed_early and time.time() < self.closes


def _status(run: Run) -> str:
    """A class run's state for the table: active, finished, or apart (failed, stopped...)."""
    if run.state in ENDED_STATES:
        return run.state
    return "active"


class ClassRegistry:
    """Every class on the server, its codes, its students and its runs' references."""

    def __init__(self, manager: JobManager, limits: Limits | None = None):
        self.jobs = manager
        self.limits = limits or manager.limits
        self._lock = threading.RLock()
        self._classes: dict[str, Classroom] = {}  # long code -> class
        self._short: dict[str, str] = {}  # short code -> long code
        self._joins: dict[str, collections.deque[float]] = {}  # client -> join costs' times

    # ------------------------------------------------------------------ codes
    @staticmethod
    def _new_short() -> str:
        return "".join(secrets.choice(ALPHABET) for _ in range(SHORT_LENGTH))

    @staticmethod
    def normalise_code(code: Any) -> str:
        """A code as typed: spaces and dashes dropped, letters upper-cased for a short code."""
        if not isinstance(code, str) or len(code) > 64:
            return ""
        text = "".join(code.split())
        short = text.replace("-", "")
        return short.upper() if len(short) == SHORT_LENGTH else text

    def _find(self, code: Any) -> Classroom | None:
        code = self.normalise_code(code)
        if not code:
            return None
        if len(code) == SHORT_LENGTH:
            code = self._short.get(code, "")
        found = None
        for long_code, room in self._classes.items():  # compare_digest: no timing hints about codes
            if hmac.compare_digest(long_code.encode(), code.encode()):
                found = room
        return found

    def _expire(self) -> None:
        now = time.time()
        for code, room in list(self._classes.items()):
            ended = min(room.closes, room.ended_marker) if room.closed_early else room.closes
            if now - ended > CLOSED_KEPT_S:
                del self._classes[code]
                self._short.pop(room.short, None)

    def _charge(self, client: str, cost: int) -> None:
        """Join attempts per client address and minute; wrong codes cost more."""
        now = time.monotonic()
        recent = self._joins.setdefault(str(client)[:100], collections.deque())
        while recent and now - recent[0] > 60:
            recent.popleft()
        if len(recent) + cost > self.limits.max_class_joins_per_minute:
            raise LimitError("too many attempts to join a class from your address; wait a minute and check the "
                             "code on the board")
        recent.extend([now] * cost)
        if len(self._joins) > 10_000:
            for key in [k for k, v in self._joins.items() if not v or now - v[-1] > 60]:
                del self._joins[key]

    # ------------------------------------------------------------------ the teacher
    def open_class(self, token: str, spec: Any, *, show_names: bool = False, hours: float | None = None) -> Classroom:
        """Open a class for `spec` (make_experiment) with the teacher's token; LimitError when
        the teacher or the server has as many open classes as allowed."""
        teacher = self.jobs.owner_key(token)
        experiment = make_experiment(spec, self.jobs.limits, number=1)
        seconds = self.limits.class_seconds
        if hours is not None:
            if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not 0 < hours:
                raise ConfigError("hours must be a number above 0")
            seconds = min(seconds, float(hours) * 3600.0)
        with self._lock:
            self._expire()
            open_rooms = [r for r in self._classes.values() if r.open]
            mine = [r for r in open_rooms if r.teacher == teacher]
            if len(mine) >= self.limits.max_classes_per_teacher:
                raise LimitError(f"you have {len(mine)} classes open; close one first (a teacher may have "
                                 f"{self.limits.max_classes_per_teacher})")
            if len(open_rooms) >= self.limits.max_classes:
                raise LimitError(f"this server has {len(open_rooms)} classes open, as many as it allows; "
                                 "try again later")
            code = secrets.token_hex(16)
            short = self._new_short()
            while short in self._short:
                short = self._new_short()
            room = Classroom(code=code, short=short, teacher=teacher, experiment=experiment,
                             closes=time.time() + seconds, show_names=bool(show_names))
            self._classes[code] = room
            self._short[short] = code
            return room

    def teaching(self, token: str) -> Classroom | None:
        """The teacher's latest class (open, or closed within CLOSED_KEPT_S), or None."""
        teacher = self.jobs.owner_key(token)
        with self._lock:
            self._expire()
            rooms = [r for r in self._classes.values() if r.teacher == teacher]
            return max(rooms, key=lambda r: r.created) if rooms else None

    def _teachers(self, token: str, code: Any) -> Classroom:
        room = self._find(code)
        if room is None or room.teacher != self.jobs.owner_key(token):
            raise ClassNotFound("you teach no class with that code")
        return room

    def assign(self, token: str, code: Any, spec: Any) -> Classroom:
        """The teacher sets a new experiment: a new table, and every student a new assignment."""
        with self._lock:
            room = self._teachers(token, code)
            if not room.open:
                raise JobError("this class has closed; open a new one")
            room.experiment = make_experiment(spec, self.jobs.limits, number=room.experiment.number + 1)
            for student in room.students.values():
                student.assignment = None
            for student in room.students.values():
                self._assignment(room, student)
            room.version += 1
            return room

    def close(self, token: str, code: Any) -> Classroom:
        with self._lock:
            room = self._teachers(token, code)
            if room.open:
                room.closed_early = True
                room.ended_marker = time.time()
                room.version += 1
            return room

    # ------------------------------------------------------------------ students
    def join(self, token: str, code: Any, *, client: str = "", name: Any = "") -> tuple[Classroom, Student]:
        """Join by the long or the short code; the student gets an assignment at once. A
        member joining again gets their own place back."""
        key = self.jobs.owner_key(token)
        if not isinstance(name, str):
            raise ConfigError("a name must be text")
        name = " ".join(name.split())[:MAX_NAME_CHARS]
        with self._lock:
            self._expire()
            room = self._find(code)
            if room is None:
                self._charge(client, WRONG_CODE_COST)
                raise ClassNotFound("no open class has that code: check the code on the board (6 letters and digits)")
            if key in room.students:
                student = room.students[key]
                if name:
                    student.name = name
                return room, student
            self._charge(client, 1)
            if not room.open:
                raise JobError("this class has closed; ask your teacher for the new code")
            if len(room.students) >= self.limits.max_class_students:
                raise LimitError(f"this class is full ({self.limits.max_class_students} students)")
            student = Student(key=key, number=len(room.students) + 1, name=name)
            room.students[key] = student
            self._assignment(room, student)
            room.version += 1
            return room, student

    def membership(self, token: str, code: Any) -> tuple[Classroom, Student | None]:
        """The class and the caller's place in it (None for its teacher); ClassNotFound for anyone else."""
        key = self.jobs.owner_key(token)
        with self._lock:
            room = self._find(code)
            if room is None or (key not in room.students and key != room.teacher):
                raise ClassNotFound("you are in no class with that code; join it first")
            return room, room.students.get(key)

    def _taken(self, room: Classroom) -> set[tuple[str, int]]:
        number = room.experiment.number
        taken = {(s.assignment[1], s.assignment[2]) for s in room.students.values()
                 if s.assignment and s.assignment[0] == number}
        taken |= {(r.variant, r.seed) for r in room.runs if r.experiment == number and not r.own
                  and r.run.state in ("finished", *("queued", "starting", "running", "stopping"))}
        return taken

    @staticmethod
    def assignment_done(room: Classroom, student: Student) -> bool:
        """Whether the student's current assignment has run to its end (finished)."""
        current = student.assignment
        return current is not None and any(
            r.run.state == "finished" for r in room.runs if not r.own and r.experiment == current[0]
            and r.variant == current[1] and r.seed == current[2] and r.student == student.number)

    def _assignment(self, room: Classroom, student: Student, advance: bool = False) -> tuple[str, int]:
        """The student's variant and seed: kept while it has not run to the end, and after
        that until the student starts again (`advance`, at Start): then the next free slot,
        the variant with the fewest seeds taken and its smallest free seed."""
        experiment = room.experiment
        current = student.assignment
        if current is not None and current[0] == experiment.number:
            if not advance or not self.assignment_done(room, student):
                return current[1], current[2]
        taken = self._taken(room)
        counts = collections.Counter(variant for variant, _ in taken)
        order = list(experiment.variants)
        variant = min(order, key=lambda v: (counts[v], order.index(v)))
        seed = 0
        while (variant, seed) in taken:
            seed += 1
        student.assignment = (experiment.number, variant, seed)
        return variant, seed

    def assignment(self, token: str, code: Any) -> tuple[Classroom, Student, str, int]:
        """The student's current assignment (a finished one stays shown until they start again)."""
        with self._lock:
            room, student = self.membership(token, code)
            if student is None:
                raise JobError("you teach this class; a student's page has the assignment")
            variant, seed = self._assignment(room, student)
            return room, student, variant, seed

    def _check_start(self, room: Classroom, student: Student) -> None:
        if not room.open:
            raise JobError("this class has closed; ask your teacher for the new code")
        if student.runs >= self.limits.max_class_runs_per_student:
            raise LimitError(f"you have run {student.runs} runs in this class, as many as a student may")

    def start_assignment(self, token: str, code: Any) -> tuple[Run, str, int]:
        """Start the student's assigned run (their own run, their own token): the run, variant, seed."""
        with self._lock:
            room, student = self.membership(token, code)
            if student is None:
                raise JobError("you teach this class; join it from a student's page to run an assignment")
            self._check_start(room, student)
            variant, seed = self._assignment(room, student, advance=True)
            mine = [r for r in room.runs if r.student == student.number and r.experiment == room.experiment.number
                    and r.variant == variant and r.seed == seed and r.run.active]
            if mine:
                raise JobError(f"your run of {variant}, seed {seed} is still {mine[0].run.state}")
            experiment = room.experiment
            config = experiment.config(variant, seed)
            run = self.jobs.submit(token, config, name=f"class {room.short}: {variant}, seed {seed}")
            student.runs += 1
            room.runs.append(ClassRun(run=run, student=student.number, variant=variant, seed=seed,
                                      experiment=experiment.number))
            room.version += 1
            return run, variant, seed

    def start_own(self, token: str, code: Any, config: GANConfig) -> tuple[Run, str]:
        """A run of the student's own choosing, pooled under its own variant."""
        if not isinstance(config, GANConfig):
            raise ConfigError("a run needs a config")
        with self._lock:
            room, student = self.membership(token, code)
            if student is None:
                raise JobError("you teach this class; join it from a student's page to run in it")
            self._check_start(room, student)
            variant = own_variant(config, room.experiment)
            run = self.jobs.submit(token, config, name=f"class {room.short}: {variant}, seed {config.seed}"[:80])
            student.runs += 1
            room.runs.append(ClassRun(run=run, student=student.number, variant=variant, seed=config.seed,
                                      experiment=room.experiment.number, own=True))
            room.version += 1
            return run, variant

    # ------------------------------------------------------------------ what the class sees
    def results(self, room: Classroom) -> list[dict[str, Any]]:
        """The current experiment's class runs in the sweep's result form (ganapp.sweep.run_one):
        variant, seed, status, step, final metrics (finished runs only), reference, seconds."""
        out = []
        for entry in list(room.runs):
            if entry.experiment != room.experiment.number:
                continue
            run = entry.run
            status = _status(run)
            numbers = {k: v for k, v in dict(run.metrics).items() if isinstance(v, (int, float))}
            finished = status == "finished"
            out.append({"variant": entry.variant, "seed": entry.seed, "status": status, "step": run.step,
                        "metrics": {k: v for k, v in numbers.items() if not k.startswith("real_")} if finished else {},
                        "reference": {k[5:]: v for k, v in numbers.items() if k.startswith("real_")},
                        "train_seconds": round(run.seconds, 3), "seconds": round(run.seconds, 3),
                        "own": entry.own})
        return out

    def table(self, token: str, code: Any) -> dict[str, Any]:
        """The pooled table, for the class's teacher and its students only: rows per variant
        (runs, finished, apart, active, n, mean and std per metric, few), and one dot per
        finished run (variant, seed, metrics). No names, run ids or owners."""
        with self._lock:
            room, _ = self.membership(token, code)
            return pooled(self.results(room), list(room.experiment.variants), room.experiment)

    def pictures(self, token: str, code: Any) -> list[dict[str, Any]]:
        """The teacher's grid: each student's latest class run that has a picture (newest
        students last), captioned by variant and seed, and by name only if the class shows names."""
        with self._lock:
            room = self._teachers(token, code)
            latest: dict[int, ClassRun] = {}
            for entry in room.runs:
                if entry.experiment == room.experiment.number and entry.run.sample_now() is not None:
                    latest[entry.student] = entry
            names = {s.number: s.name for s in room.students.values()}
            show = room.show_names
        out = []
        for number in sorted(latest):
            entry = latest[number]
            step, png = entry.run.sample_now()
            out.append({"student": number, "name": names.get(number, "") if show else "", "variant": entry.variant,
                        "seed": entry.seed, "state": entry.run.state, "step": step, "steps": entry.run.total_steps,
                        "png": png, "key": (entry.run.id, entry.run.picture_count, entry.run.state)})
        return out

    def stamp(self, room: Classroom, pictures: bool = True) -> tuple:
        """Changes when anything the class's screens show changes (cheap to compute); a
        student's screen shows no pictures, so new pictures need not change its stamp."""
        return (room.version, room.experiment.number, room.open, len(room.students),
                tuple((e.run.state, e.run.picture_count if pictures else 0, e.run.metrics_count) for e in room.runs))

    def export(self, token: str, code: Any, kind: str) -> str:
        """The pooled table as CSV (runs and summary) or Markdown."""
        with self._lock:
            room, _ = self.membership(token, code)
            results = self.results(room)
            experiment = room.experiment
            short = room.short
        table = pooled(results, list(experiment.variants), experiment)
        if kind == "csv":
            return csv_text(table)
        if kind == "markdown":
            return markdown(table, title=f"Class {short}: {describe_experiment(experiment)}; mean ± std over seeds")
        raise ConfigError("export as 'csv' or 'markdown'")


# ----------------------------------------------------------------------------- the pooled table


def metric_columns(results: list[dict[str, Any]]) -> list[str]:
    found = {name for r in results for name in r["metrics"]}
    return [m for m in METRIC_ORDER if m in found] + sorted(found - set(METRIC_ORDER))


def _mean_std(values: list[float]) -> tuple[float, float]:
    """As ganapp.sweep.summarise: the mean, and the standard deviation with ddof=1 (0 for one value)."""
    import numpy as np

    array = np.array(values, dtype=np.float64)
    array = array[np.isfinite(array)]
    if not len(array):
        return math.nan, math.nan
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def pooled(results: list[dict[str, Any]], order: list[str], experiment: Experiment | None = None) -> dict[str, Any]:
    """The pooled table of `results` (sweep result dicts): the experiment's variants in
    order, then other variants as they first appear. Failed, stopped and interrupted runs
    are counted in `apart`, active runs in `active`; means and stds are over finished runs."""
    names = metric_columns(results)
    variants = list(order) + [v for v in dict.fromkeys(r["variant"] for r in results) if v not in order]
    rows = []
    for variant in variants:
        own = [r for r in results if r["variant"] == variant]
        finished = [r for r in own if r["status"] == "finished"]
        active = [r for r in own if r["status"] == "active"]
        row: dict[str, Any] = {"variant": variant, "runs": len(own) - len(active), "finished": len(finished),
                               "apart": len(own) - len(active) - len(finished), "active": len(active),
                               "n": len(finished), "few": len(finished) < MIN_RUNS,
                               "techniques": _techniques(variant, experiment)}
        for name in names + ["seconds"]:
            mean, std = _mean_std([r["seconds"] if name == "seconds" else r["metrics"].get(name, math.nan)
                                   for r in finished])
            row[f"{name}_mean"], row[f"{name}_std"] = mean, std
        rows.append(row)
    dots = [{"variant": r["variant"], "seed": r["seed"], **{k: r["metrics"][k] for k in names if k in r["metrics"]}}
            for r in results if r["status"] == "finished"]
    reference = next(({k: v for k, v in r["reference"].items()} for r in results if r["reference"]), {})
    return {"metrics": names, "rows": rows, "dots": dots, "reference": reference,
            "complete": bool(results) and all(r["status"] != "active" for r in results),
            "experiment": experiment.describe() if experiment else None}


def _techniques(variant: str, experiment: Experiment | None) -> str:
    fields = experiment.variants.get(variant) if experiment else VARIANTS.get(variant)
    if fields is None:
        return ""
    try:
        return "+".join(GANConfig(**{k: v for k, v in fields.items()}).techniques) or "none"
    except (ConfigError, TypeError, ValueError):
        return ""


def cell(row: dict[str, Any], name: str) -> str:
    """'mean ± std' as the sweep writes it, '–' when no run has the number."""
    mean, std = row[f"{name}_mean"], row[f"{name}_std"]
    return f"{_number(mean)} ± {_number(std, like=mean)}" if math.isfinite(mean) else "–"


def variant_cell(row: dict[str, Any]) -> str:
    text = row["variant"]
    notes = []
    if row["apart"]:
        notes.append(f"{row['apart']} failed or stopped, not averaged")
    if row["few"]:
        notes.append(f"n = {row['n']} < {MIN_RUNS}: too few to trust")
    return text + (f" ({'; '.join(notes)})" if notes else "")


def markdown(table: dict[str, Any], *, title: str) -> str:
    """The pooled table in the README tables' form: variant, techniques, n, metrics, seconds."""
    columns = table["metrics"] + ["seconds"]
    header = ["variant", "techniques", "n"] + [METRIC_TITLES.get(n, n) for n in columns]
    lines = [title, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table["rows"]:
        cells = [variant_cell(row), row["techniques"] or "–", str(row["n"])] + [cell(row, n) for n in columns]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    if table["reference"]:
        cells = ["real held-out data", "–", "–"] + [_number(table["reference"][n]) if n in table["reference"] else "–"
                                                     for n in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_text(table: dict[str, Any]) -> str:
    """Summary rows (the sweep's sweep.csv columns, plus apart, active and few), then one
    row per finished run (variant, seed, metrics)."""
    names = table["metrics"]
    columns = ["variant", "runs", "finished", "apart", "active", "few"] + \
        [f"{n}_{s}" for n in names + ["seconds"] for s in ("mean", "std")]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in table["rows"]:
        writer.writerow([repr(row[c]) if isinstance(row[c], float) else row[c] for c in columns])
    writer.writerow([])
    writer.writerow(["variant", "seed"] + names)
    for dot in table["dots"]:
        writer.writerow([dot["variant"], dot["seed"]] + [repr(dot[n]) if n in dot else "" for n in names])
    return buffer.getvalue()


def describe_experiment(experiment: Experiment) -> str:
    if experiment.kind == "pair":
        return f"{experiment.preset} against vanilla, {experiment.steps:,} steps"
    what = "each technique against vanilla" if experiment.kind == "techniques" else "the ablation (8 variants)"
    return f"{what} on {experiment.data}, {experiment.steps:,} steps"
