"""The named API endpoints for gradio_client (/new_token, /start_run, /poll_run, /stop_run,
/list_runs, /run_files): each action of the page, for scripts. See README, "Scripting it".
"""

from __future__ import annotations

import base64
import dataclasses
import os
from typing import Any

import gradio as gr

from ganapp.config import GANConfig
from ganapp.jobs import Run

from . import safety, views
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
        token = app.owner(token)
        run = owned(token, run_id)
        with refusals():
            run = app.jobs.stop(token, run.id)
        return app.summary(run)

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

    for fn in (new_token, start_run, poll_run, stop_run, list_runs):
        gr.api(fn, api_name=fn.__name__, concurrency_limit=None)
    # Files need a File component to travel, so this one is an event of hidden components.
    with gr.Row(visible=False):
        token_in, run_in = gr.Textbox(label="token"), gr.Textbox(label="run_id")
        files_out = gr.File(label="files", file_count="multiple")
        files_button = gr.Button("files")
    files_button.click(run_files, [token_in, run_in], files_out, api_name="run_files", concurrency_limit=None)
