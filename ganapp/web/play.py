"""Play, pause, one step, on the page (issue 10, part 2): the row under Start and Stop.

    [Pause / ▶ Resume] [D step] [G step] [+1 step]
    paused at step 41 · D moved; G's turn            [speed ▾]  (two lines at most)

The buttons act on the run shown and, for a pair, on its partner too (as Stop does), so
a class can step both sides of a comparison together. While a run is paused, "D step"
takes the discriminator's half of the next step (the step number stays), "G step" the
generator's half (completing the step), "+1 step" a whole step, exactly as training
straight; the job then sends that step's picture, log row and curves (the page shows them
on its next poll). The speed is the slow-motion cap (steps per second), for explaining.

The job server's side is ganapp.server.control and JobManager.pause / resume / step /
set_speed; the same actions are the API endpoints /pause_run, /resume_run, /step_run and
/set_speed (ganapp.web.api). Refusals (a step while training, a run that has ended) are
toasts in the visitor's language (the "refusal_play_*" texts).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import gradio as gr

from ganapp.jobs import JobError, Run
from ganapp.server.control import SPEEDS, PlayRefused

from . import safety
from .text import language, tr
from .views import html_text

STEP_BUTTONS = (("step_d", "play_step_d"), ("step_g", "play_step_g"), ("step", "play_step"))


def speed_choices(lang: str) -> list[tuple[str, float]]:
    return [(tr(lang, "play_speed_off"), 0.0)] + [(tr(lang, "play_speed", n=f"{s:g}"), s) for s in SPEEDS]


def build(ui: SimpleNamespace, lang: str) -> None:
    """The row of buttons and its status line, into `ui` (called inside the controls column)."""
    with gr.Column(elem_id="play", min_width=0):
        with gr.Row(elem_id="play-row"):
            ui.play_pause = gr.Button(tr(lang, "play_pause"), elem_id="play-pause", min_width=0, size="md")
            ui.play_steps = {}
            for kind, key in STEP_BUTTONS:
                button = gr.Button(tr(lang, key), elem_id=f"play-{kind.replace('_', '-')}", min_width=0, size="md")
                ui.texts.append((button, "value", key, {}))
                ui.play_steps[kind] = button
        with gr.Row(elem_id="play-line"):
            ui.play_status = gr.HTML(status_html([], lang), elem_id="play-status", padding=False, min_width=0)
            ui.play_speed = gr.Dropdown(speed_choices(lang), value=0.0, show_label=False, container=False,
                                        label=tr(lang, "play_speed_label"), elem_id="play-speed", min_width=0)


def outputs(ui: SimpleNamespace) -> list:
    """What the live view may change (ganapp.web.handlers.Handlers.live_outputs)."""
    return [ui.play_pause, ui.play_status, ui.play_speed]


def paused(run: Run) -> bool:
    """Paused as the visitor asked (the job confirms within a step)."""
    return run.pause_wanted and run.state in ("queued", "starting", "running")


def status_html(runs: list[Run], lang: str) -> str:
    """One line: paused or slow, at which step, whose turn; blank while nothing is paused or slow."""
    parts = []
    for run in runs:
        if not run.active:
            continue
        if paused(run):
            text = tr(lang, "play_paused_at", step=f"{run.step:,}")
            if run.half_step:
                text += " · " + tr(lang, "play_g_turn")
            parts.append(text)
        elif run.speed:
            parts.append(tr(lang, "play_slow", n=f"{run.speed:g}"))
    text = " | ".join(dict.fromkeys(parts))  # a pair paused at the same step says it once
    return f'<div class="play-status">{html_text(text, 200) if text else "&nbsp;"}</div>'


def live(ui: SimpleNamespace, run: Run | None, partner: Run | None, switched: bool, last: dict, now: dict,
         out: dict, lang: str) -> None:
    """The pause button's label, the status line and the speed shown, sent only when they change."""
    runs = [r for r in (run, partner) if r is not None]
    any_paused = any(paused(r) for r in runs)
    status = status_html(runs, lang)
    key = (any_paused, status, lang)
    if switched or key != last.get("play"):
        now["play"] = key
        out[ui.play_pause] = gr.update(value=tr(lang, "play_resume" if any_paused else "play_pause"))
        out[ui.play_status] = status
    if switched:
        out[ui.play_speed] = gr.update(choices=speed_choices(lang), value=(run.speed or 0.0) if run else 0.0)


class PlayHandlers:
    """The row's events: each acts on the run shown and its partner (a pair)."""

    def __init__(self, app, ui: SimpleNamespace):
        self.app, self.ui = app, ui

    def _targets(self, owner: str, shown_id: Any, partner_id: Any) -> list[Run]:
        app = self.app
        targets = [app.owned_run(owner, shown_id), app.owned_run(owner, partner_id)]
        if targets[0] is None:
            targets[0] = next((r for r in reversed(app.jobs.runs(owner)) if r.active), None)
        runs = []
        for run in targets:
            if run is not None and run.active and run not in runs:
                runs.append(run)
        return runs

    def _act(self, owner, shown_id, partner_id, lang, action) -> dict:
        ui, app = self.ui, self.app
        lang = language(lang)
        if not app.valid_owner(owner):
            return gr.skip()
        runs = self._targets(owner, shown_id, partner_id)
        if not runs:  # none ever, or the one shown has ended
            safety.info(tr(lang, "play_nothing" if app.jobs.runs(owner) else "play_nothing_yet"))
            return gr.skip()
        for run in runs:
            try:
                action(owner, run)
            except JobError as error:
                safety.warning(refusal_text(error, lang))
                break
        return {ui.play_pause: gr.update(value=tr(lang, "play_resume" if any(paused(r) for r in runs)
                                                  else "play_pause")),
                ui.play_status: status_html(runs, lang)}

    def toggle(self, owner, shown_id, partner_id, lang="en"):
        """Pause the runs, or resume them when they are paused."""
        runs = self._targets(owner, shown_id, partner_id) if self.app.valid_owner(owner) else []
        resume = any(paused(r) for r in runs)
        jobs = self.app.jobs
        return self._act(owner, shown_id, partner_id, lang,
                         (lambda o, r: jobs.resume(o, r.id) if paused(r) else None) if resume
                         else (lambda o, r: jobs.pause(o, r.id)))

    def stepper(self, kind: str):
        def step(owner, shown_id, partner_id, lang="en"):
            return self._act(owner, shown_id, partner_id, lang, lambda o, r: self.app.jobs.step(o, r.id, kind))

        step.__name__ = f"play_{kind}"
        return step

    def speed(self, owner, shown_id, partner_id, value, lang="en"):
        return self._act(owner, shown_id, partner_id, lang,
                         lambda o, r: self.app.jobs.set_speed(o, r.id, value if isinstance(value, (int, float))
                                                              else None))


def refusal_text(error: JobError, lang: str) -> str:
    """A refusal in the visitor's language: ours by key, any other as the server said it."""
    if isinstance(error, PlayRefused):
        values = dict(error.values)
        if "state" in values:
            values["state"] = tr(lang, f"state_{values['state']}")
        return tr(lang, f"refusal_{error.key}", **values)
    return tr(lang, "server_says", text=str(error))


def wire(ui: SimpleNamespace, app, handlers_owner_inputs: list) -> PlayHandlers:
    """The row's events; `handlers_owner_inputs` are [owner, shown, partner, lang]."""
    h = PlayHandlers(app, ui)
    owner, shown, partner, lang = handlers_owner_inputs
    quick = dict(show_progress="hidden", api_visibility="private", concurrency_limit=None)
    out = [ui.play_pause, ui.play_status]
    ui.play_pause.click(h.toggle, [owner, shown, partner, lang], out, **quick)
    for kind, button in ui.play_steps.items():
        button.click(h.stepper(kind), [owner, shown, partner, lang], out, **quick)
    ui.play_speed.input(h.speed, [owner, shown, partner, ui.play_speed, lang], out, **quick)
    return h
