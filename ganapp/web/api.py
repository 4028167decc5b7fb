"""The named API endpoints for gradio_client (/new_token, /start_run, /poll_run, /stop_run,
/list_runs, /run_files, and play: /pause_run, /resume_run, /step_run, /set_speed; the tiny
games of historical averaging: /game_trajectories): each action of the page, for scripts.
See README, "Scripting it".
"""

from __future__ import annotations

import base64
import dataclasses
import os
from typing import Any

import gradio as gr

from ganapp.config import GANConfig
from ganapp.jobs import Run

from . import games_view, safety, views
from .core import GanApp, refusals

MAX_HISTORY_ROWS = 2000  # history rows one /poll_run reply carries at most
RUN_FILES = ("checkpoint", "samples", "metrics", "config")  # what a run's files are, in this order


def wire_api(app: GanApp, demo: gr.Blocks) -> None:
    """Each action as an endpoint. The caller's token plays the browser's part: runs are
    looked up among that token's runs only. Parameters arrive as whatever JSON a script
    sends: each is checked for its kind first, and a wrong one is named in a short error."""
    settings = {f.name for f in dataclasses.fields(GANConfig)}

    def new_token(request: gr.Request = None) -> str:
        """A fresh visitor token. Keep it: it is how the server knows your runs. The server
        hands out a limited number per address and minute."""
        with refusals():
            return app.jobs.issue_token(safety.client_host(request))

    def start_run(token: str, config: dict, name: str = "") -> dict:
        """Start a run from a config dict (any GANConfig fields; the rest default). Returns the
        run's summary, with `notices`: one-off messages from the server (e.g. that your oldest
        run was deleted to make room)."""
        token = app.owner(token)
        with refusals():
            name = safety.text_param("name", name, max_chars=safety.NAME_CHARS)
            run = app.jobs.submit(token, GANConfig.from_dict(safety.settings_param(config, settings)), name=name)
        reply = app.summary(run)
        reply["notices"] = app.notices(token)
        return reply

    def owned(token: str, run_id: Any) -> Run:
        with refusals():
            run_id = safety.text_param("run_id", run_id, max_chars=64)
        run = app.owned_run(token, run_id)
        if run is None:
            raise safety.refusal(f"you have no run {run_id!r}")
        return run

    def act(token: str, run_id: Any, action, *args) -> dict:
        """One of the job server's actions on one of the caller's runs, refused in the
        caller's words; the run's summary after it."""
        token = app.owner(token)
        run = owned(token, run_id)
        with refusals():
            run = action(token, run.id, *args)
        return app.summary(run)

    def poll_run(token: str, run_id: str, with_samples: bool = False, max_rows: int = 200) -> dict:
        """A run's state, step, speed, metrics, warning and thinned history (at most max_rows
        rows, 1 to 2,000); with_samples adds the latest sample picture as base64 PNG."""
        token = app.owner(token)
        with refusals():
            with_samples = safety.flag_param("with_samples", with_samples)
            max_rows = safety.whole_number("max_rows", max_rows, 1, MAX_HISTORY_ROWS, default=200)
        run = owned(token, run_id)
        history = run.history[:]  # before the summary, so that its rows reach no further than its step
        summary = app.summary(run)
        summary["history"] = views.thin(history, max_rows)
        if with_samples and run.picture:
            summary["samples_png_base64"] = base64.b64encode(run.picture).decode("ascii")
        return summary

    def stop_run(token: str, run_id: str) -> dict:
        """Stop one of your runs (a waiting run at once, a running one within a training step)."""
        return act(token, run_id, app.jobs.stop)

    # Play, pause, one step (ganapp.server.control); the page's buttons are ganapp.web.play.
    def pause_run(token: str, run_id: str) -> dict:
        """Pause one of your running runs after its current step. While paused it keeps its
        place (and its time limit runs on); a run paused longer than the server's limit
        without a step is stopped, its checkpoint kept."""
        return act(token, run_id, app.jobs.pause)

    def resume_run(token: str, run_id: str) -> dict:
        """Train a paused run on (at its slow-motion speed, when one is set)."""
        return act(token, run_id, app.jobs.resume)

    def step_run(token: str, run_id: str, kind: str = "step") -> dict:
        """One step of a paused run: kind "step" (D then G: exactly a step of training straight),
        "step_d" (the discriminator's half: the step number stays) or "step_g" (the generator's
        half). The run's log row, picture and curves follow within a moment (poll_run)."""
        return act(token, run_id, lambda owner, run_id_: app.jobs.step(
            owner, run_id_, safety.text_param("kind", kind, max_chars=10)))

    def set_speed(token: str, run_id: str, steps_per_second: float = 0) -> dict:
        """Slow motion for explaining: at most this many steps per second, each step's picture
        and log row sent as it is taken (0: full speed again)."""
        return act(token, run_id, app.jobs.set_speed, steps_per_second)

    def list_runs(token: str) -> list:
        """Your runs, oldest first, as summaries without their config."""
        token = app.owner(token)
        runs = app.jobs.runs(token)
        return [{k: v for k, v in app.summary(r).items() if k != "config"} for r in runs]

    def run_files(token: str, run_id: str) -> list[str] | None:
        """The files a run has written (checkpoint, samples, metrics, config), once it has ended."""
        token = app.owner(token)
        run = owned(token, run_id)
        if run.active:
            raise safety.refusal(f"run {run.name!r} is {run.state}; its files are written when it ends")
        present = [run.files[k] for k in RUN_FILES if k in run.files and os.path.isfile(run.files[k])]
        if present:
            return present  # a failed or interrupted run may have written some of them
        why = f": {run.reason}" if run.reason else ""
        if run.state == "failed":
            raise safety.refusal(f"this run failed before writing files{why}")
        raise safety.refusal(f"run {run.name!r} ended ({run.state}) without files{why}")

    for fn in (new_token, start_run, poll_run, stop_run, list_runs, pause_run, resume_run, step_run, set_speed):
        gr.api(fn, api_name=fn.__name__, concurrency_limit=None)
    # Files need a File component to travel, so this one is an event of hidden components.
    with gr.Row(visible=False):
        token_in, run_in = gr.Textbox(label="token"), gr.Textbox(label="run_id")
        files_out = gr.File(label="files", file_count="multiple")
        files_button = gr.Button("files")
    files_button.click(run_files, [token_in, run_in], files_out, api_name="run_files", concurrency_limit=None)
    # Historical averaging's tiny games: no token, nothing kept; numpy, milliseconds.
    gr.api(games_view.game_trajectories, api_name="game_trajectories", concurrency_limit=None)


# ---------------------------------------------------------------------------- a class
def _json_safe(value: Any) -> Any:
    """NaN (a metric no run has yet) as None, so that the reply is plain JSON."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def wire_class_api(app: GanApp, demo: gr.Blocks) -> None:
    """A class's actions as endpoints (ganapp.server.classes): /open_class, /join_class,
    /assign_class, /start_assignment, /class_table, /export_class, /close_class. A student
    sees their own assignment and the pooled table only: no other student's runs or names."""
    import time

    from ganapp.server.classes import describe_experiment

    from .classes_view import registry

    classes = registry(app)

    def about(room) -> dict:
        return {"code": room.code, "short_code": room.short, "open": room.open,
                "closes_in_minutes": round(max(0.0, room.closes - time.time()) / 60, 1),
                "students": len(room.students), "experiment": room.experiment.describe(),
                "what": describe_experiment(room.experiment)}

    def open_class(token: str, experiment: dict, show_names: bool = False) -> dict:
        """Open a class for an experiment: {"kind": "techniques" | "ablation", "data": "ring8",
        "steps": 2000, "settings": {...}} or {"kind": "pair", "preset": "<a technique preset>"}.
        Returns its codes: `code` for the link (?class=CODE), `short_code` for the board."""
        token = app.owner(token)
        with refusals():
            show_names = safety.flag_param("show_names", show_names)
            room = classes.open_class(token, experiment, show_names=show_names)
        return about(room)

    def join_class(token: str, code: str, name: str = "", request: gr.Request = None) -> dict:
        """Join a class by its code (long or short); returns your assignment (variant, seed, config)."""
        token = app.owner(token)
        with refusals():
            code = safety.text_param("code", code, max_chars=64)
            name = safety.text_param("name", name, max_chars=40)
            room, _ = classes.join(token, code, client=safety.client_host(request), name=name)
            room, student, variant, seed = classes.assignment(token, room.code)
        return {**about(room), "student": student.number, "variant": variant, "seed": seed,
                "config": room.experiment.config(variant, seed).to_dict()}

    def assign_class(token: str, code: str, experiment: dict) -> dict:
        """The teacher gives the class a new experiment (a new table; new assignments)."""
        token = app.owner(token)
        with refusals():
            room = classes.assign(token, safety.text_param("code", code, max_chars=64), experiment)
        return about(room)

    def start_assignment(token: str, code: str) -> dict:
        """Start your assigned run (your own run: poll it with /poll_run)."""
        token = app.owner(token)
        with refusals():
            run, variant, seed = classes.start_assignment(token, safety.text_param("code", code, max_chars=64))
        return {**app.summary(run), "variant": variant, "seed": seed}

    def class_table(token: str, code: str) -> dict:
        """The pooled table: per variant runs, finished, apart (failed or stopped, not averaged),
        active, n, each metric's mean and std, `few` when n < 3; and one dot per finished run."""
        token = app.owner(token)
        with refusals():
            return _json_safe(classes.table(token, safety.text_param("code", code, max_chars=64)))

    def export_class(token: str, code: str, format: str = "markdown") -> str:
        """The pooled table as text: format "markdown" or "csv"."""
        token = app.owner(token)
        with refusals():
            return classes.export(token, safety.text_param("code", code, max_chars=64),
                                  safety.text_param("format", format, max_chars=10))

    def close_class(token: str, code: str) -> dict:
        """Close your class: no more joins or class runs (its table stays readable for an hour)."""
        token = app.owner(token)
        with refusals():
            return about(classes.close(token, safety.text_param("code", code, max_chars=64)))

    for fn in (open_class, join_class, assign_class, start_assignment, class_table, export_class, close_class):
        gr.api(fn, api_name=fn.__name__, concurrency_limit=None)
