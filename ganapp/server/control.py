"""Play, pause and single steps: what the server tells a running job (issue 10, part 2).

The job's messages go job -> server (ganapp.server.messages); these go the other way,
on a second one-way channel that each backend provides (ganapp.server.backend: a pipe
to a local job process; ganapp.server.ray_backend: an actor method). A `Command` is
one of

    pause         stop training after the current step and wait
    resume        train on (at the slow-motion speed, when one is set)
    step_d        while paused: D's half of the next step (the step number stays)
    step_g        while paused: G's half (completes a step whose D half was taken;
                  alone, G trains on a new batch while D sits the step out)
    step          while paused: one whole step (D then G), exactly as training straight
    speed         at most `speed` steps per second (None: as fast as it goes)

and the job answers with a `PlayState` message (paused or not, its step, whether D has
taken its half of the next step, the speed), after each command and each step taken by
hand, with the step's log row, picture and curves sent just before it.

`Player` is the job's side: the trainer asks its `gate` before every step
(ganapp.training.Trainer.train). It never touches the numbers: it only waits, or says
which kind of step to take next; so a run paused, stepped by hand with whole steps and
resumed equals the same run trained straight (tests/test_pause.py, on real jobs). While
it waits it still honours the stop flag (a stop, the server's time limit, the orphan
watchdog and the server's shutdown all set it).

This module imports neither torch nor gradio.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .limits import JobError

ACTIONS = ("pause", "resume", "step_d", "step_g", "step", "speed")
STEP_ACTIONS = {"step_d": "d", "step_g": "g", "step": "step"}
SPEEDS = (1.0, 5.0, 20.0)  # the page's slow-motion choices, in steps per second (and "off")
MAX_SPEED = 1000.0  # a speed above this is refused: it would not be slow motion
MAX_QUEUED_STEPS = 50  # steps asked for by hand and not yet taken; more are refused
WAIT_S = 0.1  # how often a paused job looks at its stop flag


class PlayRefused(JobError):
    """A play command that cannot be given now. The English text is the exception's (the API's);
    `key` and `values` name it for the page, which says it in the visitor's language
    (ganapp.web.text: "refusal_" + key)."""

    def __init__(self, message: str, key: str, **values: str):
        ValueError.__init__(self, message)
        self.key, self.values = key, values


@dataclass(frozen=True)
class Command:
    action: str
    speed: float | None = None


@dataclass(frozen=True)
class PlayState:
    """A job's play state (job -> server): sent after each command and each step by hand."""

    paused: bool
    step: int
    half: bool = False  # D has taken its half of the next step; G's half is due
    speed: float | None = None
    d_loss: float | None = None  # after a D half step: D's loss on that batch


def check_speed(value: Any) -> float | None:
    """A speed in steps per second, or None for "as fast as it goes"; ValueError otherwise."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_SPEED:
        raise ValueError(f"a speed is a number of steps per second above 0 and at most {MAX_SPEED:g} "
                         "(0 or none: full speed)")
    return float(value)


class Player:
    """The job's side: takes the commands, and tells the trainer, before each step, what to do.

    receive(timeout) returns the commands that arrived (waiting at most `timeout` seconds
    for the first); report(PlayState) sends the job's state to the server; should_stop is
    the job's stop flag.
    """

    def __init__(self, receive: Callable[[float], list[Command]], report: Callable[[PlayState], Any],
                 should_stop: Callable[[], bool], clock: Callable[[], float] = time.monotonic):
        self._receive, self._report, self._should_stop, self._clock = receive, report, should_stop, clock
        self.paused = False
        self.speed: float | None = None
        self._steps: collections.deque[str] = collections.deque()
        self._next_due = 0.0
        self.trainer: Any = None
        self.slow = False  # the step just granted was paced by the slow-motion speed (report it)
        self.on_pause: Callable[[], Any] | None = None  # e.g. draw the step it paused at

    def _state(self, d_loss: float | None = None) -> PlayState:
        trainer = self.trainer
        return PlayState(paused=self.paused, step=int(getattr(trainer, "step", 0)),
                         half=bool(getattr(trainer, "half_step", False)), speed=self.speed, d_loss=d_loss)

    def report(self, d_loss: float | None = None) -> None:
        self._report(self._state(d_loss))

    def _take(self, commands: list[Command]) -> None:
        changed = False
        for command in commands:
            if not isinstance(command, Command):
                continue
            if command.action == "pause":
                changed |= not self.paused
                self.paused = True
            elif command.action == "resume":
                changed |= self.paused
                self.paused = False
                self._steps.clear()
                self._next_due = 0.0
            elif command.action in STEP_ACTIONS and self.paused and len(self._steps) < MAX_QUEUED_STEPS:
                self._steps.append(STEP_ACTIONS[command.action])
            elif command.action == "speed":
                try:
                    self.speed = check_speed(command.speed)
                except ValueError:
                    continue
                self._next_due = 0.0
                changed = True
        if changed:
            if self.paused and self.on_pause is not None:
                self.on_pause()
            self.report()

    def gate(self, trainer) -> str | None:
        """Before each step: None (train on), "stop", or the kind of step to take by hand."""
        self.trainer = trainer
        self.slow = False
        self._take(self._receive(0.0))
        while True:
            if self._should_stop():
                return "stop"
            if self._steps:
                return self._steps.popleft()
            if not self.paused:
                if self.speed is None:
                    return None
                now = self._clock()
                if now >= self._next_due:
                    self._next_due = max(now, self._next_due) + 1.0 / self.speed
                    self.slow = True
                    return "step"
                self._take(self._receive(min(WAIT_S, self._next_due - now)))
                continue
            self._take(self._receive(WAIT_S))
