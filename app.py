"""ganapp's web page: toggle the five techniques, train in the background, watch it live.

    python app.py            # serves on http://127.0.0.1:7860 (GRADIO_SERVER_NAME/PORT apply)

The page holds no training math: a ConfigForm turns the widgets into one GANConfig,
ganapp.jobs runs each run in its own process, and a gr.Timer polls the run records and
sends only what changed (small PNG pictures that the job draws: samples and loss curves;
thinned LinePlots for metrics and comparisons). Each browser keeps a
random owner token in gr.BrowserState; every handler looks runs up among that owner's
runs only. Each action is also a named API endpoint for gradio_client (see README).

Each job process re-runs this file's top level (see the import guard below), so keep
it free of side effects: everything that starts things happens in build_demo() and main().
"""

from __future__ import annotations

import base64
import contextlib
import csv
import dataclasses
import importlib.util
import math
import os
import signal
import sys
import threading
import time
from typing import Any

# Job processes re-run this file as __mp_main__ (multiprocessing does so with the main
# script, and CPython 3.11's forkserver cannot preload it: its ensure_running passes
# 'main_path' while get_preparation_data names it 'init_main_from_path'). They need none
# of the page, so they skip gradio's and pandas' imports (2-7 s per job, measured).
if __name__ != "__mp_main__":
    import gradio as gr
    import pandas as pd

    from ganapp.web import safety
    from ganapp.web.safety import InputError, html_text

from ganapp.config import DATASETS, GENERATOR_LOSSES, MINIBATCH_REDUCTIONS, ConfigError, GANConfig, field_help
from ganapp.jobs import ENDED_STATES, LOSS_COLUMNS, JobError, JobManager, Run, SettingsError, check_owner
from ganapp import curves, presets
from ganapp.presets import PRESETS, READY_MADE_NOTES, preset_config, ready_made_runs
from ganapp.sweep import METRIC_TITLES

SESSIONS_KEPT = 1000  # Gradio sessions whose state the server keeps (launch's state_session_capacity)
CURVE_POINTS = 120  # per LinePlot curve: an update costs ~10 ms at 500 points, ~100 ms at 5,000
FAST_TICK_S, SLOW_TICK_S = 0.5, 1.0  # refresh twice a second, once when the class is big
QUEUED_TICK_S = 2.0  # a page whose runs all wait in the queue has little news
FAST_TICK_VISITORS = 10  # open pages polling, above which pages refresh once a second
REDRAW_EVERY_S = {"metrics": 5.0, "compare": 2.0}  # while a run trains, these redraw at most this often
START_WAIT_S = 1.0  # Start waits this long for the first picture, to show it without a tick
UPLOAD_WAIT_S = 15.0
MAX_HISTORY_ROWS = 2000  # history rows one /poll_run reply carries at most
RUN_FILES = ("checkpoint", "samples", "metrics", "config")  # what a run's files are, in this order
METRIC_PLOTS = 4  # one small plot per metric (each its own scale), up to this many
AXES = dict(x_axis_format="d", y_axis_format=".3~r", x_title="step", y_title=" ")  # whole steps, short numbers
OVERLAYS = {"G loss": "g_loss", "D loss": "d_loss", "mean D(x)": "d_real", "mean D(G(z))": "d_fake"}

TECHNIQUE_NOTES = {
    "feature_matching": "G stops trying to fool D and matches the mean of D's inner features "
                        "on real data instead (§3.1).",
    "minibatch_discrimination": "D also sees how close each sample is to the rest of its batch, "
                                "so a collapsed G is easy to catch (§3.2).",
    "historical_averaging": "Each player is pulled back toward the average of its own past weights, "
                            "which damps orbits (§3.3).",
    "label_smoothing": "D's target for real data is α instead of 1 (fakes stay 0), so D is less "
                       "over-confident (§3.4).",
    "virtual_batch_norm": "G normalises each example with a fixed reference batch instead of its "
                          "own batch (§3.5).",
}

CSS = """
.gradio-container { font-size: 17px; }
#status .ganapp-status { padding: 10px 16px; border-radius: 10px; background: #f4f6fa; }
#status .state { font-size: 2.1rem; font-weight: 700; }
#status .counter { font-size: 2.5rem; font-weight: 700; font-variant-numeric: tabular-nums; }
#status .counter small { font-size: 1.3rem; color: #555; font-weight: 500; }
#status .speed { font-size: 1.35rem; font-variant-numeric: tabular-nums; }
#status .what { font-size: 1.1rem; color: #333; }
#status .reason { font-size: 1.15rem; color: #b00020; margin-top: 6px; }
.state-running .state, .state-starting .state { color: #1565c0; }
.state-finished .state { color: #2e7d32; }
.state-stopped .state, .state-stopping .state, .state-interrupted .state { color: #8d6e00; }
#status .warning { font-size: 1.1rem; color: #8d6e00; margin-top: 6px; }
.state-failed .state { color: #b00020; }
.state-queued .state { color: #6a1b9a; }
.ganapp-picture { width: 100%; max-width: 520px; image-rendering: pixelated; border: 1px solid #ddd; }
#curves .ganapp-picture { image-rendering: auto; }
.ganapp-placeholder { color: #777; font-size: 1.1rem; padding: 40px 0; text-align: center; }
.technique-note { font-size: 0.95rem; color: #444; margin: -6px 0 4px 0; }
#start-button, #stop-button { font-size: 1.3rem; min-height: 3rem; }
"""


# ====================================================================================
# The one conversion between widgets and GANConfig (STYLE habit 9)
# ====================================================================================
class ConfigForm:
    """The widgets that edit a GANConfig, and the one conversion each way.

    Most fields have a widget of their own. Two techniques are a switch plus a knob:
    historical averaging (switch + mode) and label smoothing (switch + alpha). `device`
    is not offered: the server decides where jobs run.
    """

    NOT_OFFERED = ("device",)

    def __init__(self, defaults: GANConfig, max_steps: int):
        d = defaults
        self.fields: dict[str, gr.components.Component] = {}
        f = self.fields

        def number(name: str, label: str, integer: bool, **kw) -> gr.Number:
            f[name] = gr.Number(value=getattr(d, name), label=label, precision=0 if integer else None,
                                info=kw.pop("info", None), elem_id=f"field-{name}", **kw)
            return f[name]

        f["data"] = gr.Dropdown(list(DATASETS), value=d.data, label="Data set", elem_id="field-data",
                                info="ring8, grid25, spiral: 2-D points · digits: 8×8 images · "
                                     "mnist, fashion-mnist: 28×28 (downloaded on first use)")
        gr.Markdown("### Techniques (Salimans et al. 2016)")
        with gr.Group():
            f["feature_matching"] = gr.Checkbox(d.feature_matching, label="Feature matching",
                                                elem_id="field-feature_matching")
            gr.Markdown(TECHNIQUE_NOTES["feature_matching"], elem_classes="technique-note")
        with gr.Group():
            with gr.Row(equal_height=True):
                f["minibatch_discrimination"] = gr.Checkbox(d.minibatch_discrimination, scale=2,
                                                            label="Minibatch discrimination",
                                                            elem_id="field-minibatch_discrimination")
                number("minibatch_kernels", "kernels B", True, scale=1, min_width=80)
                number("minibatch_kernel_dim", "kernel dim C", True, scale=1, min_width=80)
            f["minibatch_reduction"] = gr.Radio(
                list(MINIBATCH_REDUCTIONS), value=d.minibatch_reduction, elem_id="field-minibatch_reduction",
                label="closeness to the other samples: mean (the official ImageNet code) or sum (the paper's "
                      "formula; on 2-D data it lets D win outright)")
            gr.Markdown(TECHNIQUE_NOTES["minibatch_discrimination"], elem_classes="technique-note")
        with gr.Group():
            with gr.Row(equal_height=True):
                self.ha_on = gr.Checkbox(d.historical_averaging != "off", label="Historical averaging",
                                         scale=2, elem_id="field-historical_averaging-on")
                self.ha_mode = gr.Radio(["uniform", "exponential"], label="mode", scale=2, min_width=150,
                                        value=d.historical_averaging if d.historical_averaging != "off"
                                        else "uniform", elem_id="field-historical_averaging")
                number("historical_averaging_weight", "weight", False, scale=1, min_width=80)
            gr.Markdown(TECHNIQUE_NOTES["historical_averaging"], elem_classes="technique-note")
        with gr.Group():
            with gr.Row(equal_height=True):
                self.ls_on = gr.Checkbox(d.label_smoothing is not None, label="One-sided label smoothing",
                                         scale=2, elem_id="field-label_smoothing-on")
                self.ls_alpha = gr.Slider(0.55, 1.0, step=0.05, scale=2, min_width=150, label="real target α",
                                          value=d.label_smoothing if d.label_smoothing is not None else 0.9,
                                          elem_id="field-label_smoothing")
            gr.Markdown(TECHNIQUE_NOTES["label_smoothing"], elem_classes="technique-note")
        with gr.Group():
            f["virtual_batch_norm"] = gr.Checkbox(d.virtual_batch_norm, label="Virtual batch normalization",
                                                  elem_id="field-virtual_batch_norm")
            gr.Markdown(TECHNIQUE_NOTES["virtual_batch_norm"], elem_classes="technique-note")
        gr.Markdown("### Training")
        with gr.Row():
            number("steps", f"steps (at most {max_steps:,})", True, min_width=120)
            number("batch_size", "batch size", True, min_width=120)
            number("seed", "seed", True, min_width=100)
        with gr.Row():
            number("lr_generator", "learning rate G", False, min_width=120)
            number("lr_discriminator", "learning rate D", False, min_width=120)
        with gr.Accordion("Advanced settings", open=False):
            with gr.Row():
                number("noise_dim", "noise size (z)", True, min_width=110)
                number("hidden_dim", "model width", True, min_width=110)
                number("vbn_reference_size", "VBN reference batch", True, min_width=110)
            with gr.Row():
                number("beta1", "Adam β1", False, min_width=110)
                number("beta2", "Adam β2", False, min_width=110)
                number("historical_averaging_decay", "HA decay (exponential)", False, min_width=110)
            f["generator_loss"] = gr.Radio(list(GENERATOR_LOSSES), value=d.generator_loss, label="generator loss",
                                           info=field_help("generator_loss"), elem_id="field-generator_loss")
            f["generator_batch_norm"] = gr.Checkbox(d.generator_batch_norm, label="batch norm in G",
                                                    info="off: no normalisation in G, where vanilla GANs collapse "
                                                         "(see the 'G without batch norm' presets)",
                                                    elem_id="field-generator_batch_norm")
            with gr.Row():
                number("log_every", "log every (steps)", True, min_width=110)
                number("sample_every", "picture every (steps)", True, min_width=110)
                number("metrics_every", "metrics every (0: off)", True, min_width=110)

    @property
    def components(self) -> list[gr.components.Component]:
        return [*self.fields.values(), self.ha_on, self.ha_mode, self.ls_on, self.ls_alpha]

    def offered_fields(self) -> set[str]:
        return set(self.fields) | {"historical_averaging", "label_smoothing"}

    def to_config(self, values: dict[gr.components.Component, Any]) -> GANConfig:
        """Widget values -> a validated GANConfig; ConfigError names the widget's setting."""
        settings: dict[str, Any] = {}
        for name, component in self.fields.items():
            value = values[component]
            if value is None or value == "":
                raise ConfigError(f"{name} is empty: {field_help(name)}")
            if isinstance(component, gr.Number):
                value = _number(name, value, integer=component.precision == 0)
            settings[name] = value
        settings["historical_averaging"] = values[self.ha_mode] if values[self.ha_on] else "off"
        settings["label_smoothing"] = float(values[self.ls_alpha]) if values[self.ls_on] else None
        return GANConfig.from_dict(settings)

    def from_config(self, config: GANConfig) -> dict[gr.components.Component, Any]:
        """A GANConfig -> the value of every widget (for presets and 'copy its settings')."""
        values: dict[gr.components.Component, Any] = {c: getattr(config, n) for n, c in self.fields.items()}
        values[self.ha_on] = config.historical_averaging != "off"
        if config.historical_averaging != "off":
            values[self.ha_mode] = config.historical_averaging
        values[self.ls_on] = config.label_smoothing is not None
        if config.label_smoothing is not None:
            values[self.ls_alpha] = config.label_smoothing
        return values


def _number(name: str, value: Any, *, integer: bool) -> int | float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number; got {value!r}") from None
    if integer:
        if not math.isfinite(number) or number != int(number):
            raise ConfigError(f"{name} must be a whole number; got {value!r}")
        return int(number)
    return number


# ====================================================================================
# What the page shows: small pure helpers
# ====================================================================================
def thin(rows: list[dict], limit: int = CURVE_POINTS) -> list[dict]:
    """At most about `limit` rows, evenly spaced, always keeping the newest (ganapp.curves.thin)."""
    return rows if len(rows) <= limit else [rows[i] for i in curves.thin(rows, limit)]


def curve_frame(rows: list[dict], curves: dict[str, str]) -> pd.DataFrame:
    """Long-format frame (step, value, curve) of the given columns; non-finite values dropped.

    Every label in `curves` appears, with one empty (NaN) point if it has no data yet:
    Gradio 6.31's LinePlot fixes its colour legend when it first draws, so a curve that
    joins later would get no legend entry and no colour of its own.
    """
    steps, values, names = [], [], []
    for column, label in curves.items():
        before = len(steps)
        for row in rows:
            value = row.get(column)
            if isinstance(value, (int, float)) and math.isfinite(value):
                steps.append(int(row["step"]))
                values.append(float(value))
                names.append(label)
        if len(steps) == before:
            steps.append(0)
            values.append(math.nan)
            names.append(label)
    return pd.DataFrame({"step": pd.Series(steps, dtype="int64"), "value": pd.Series(values, dtype="float64"),
                         "curve": pd.Series(names, dtype="string")})


def metric_frame(rows: list[dict], column: str) -> pd.DataFrame:
    """One metric over the steps where it was measured (a single line, so no legend)."""
    measured = thin([r for r in rows if isinstance(r.get(column), (int, float)) and math.isfinite(r[column])])
    return pd.DataFrame({"step": pd.Series([int(r["step"]) for r in measured], dtype="int64"),
                         "value": pd.Series([float(r[column]) for r in measured], dtype="float64")})


def metric_columns(rows: list[dict]) -> list[str]:
    """Numeric history columns beyond the losses: what ganapp.metrics measured."""
    seen: dict[str, None] = {}
    for row in rows[-50:] + rows[:1]:
        for key, value in row.items():
            if key not in LOSS_COLUMNS and isinstance(value, (int, float)) and not isinstance(value, bool):
                seen[key] = None
    return list(seen)


def picture_html(png: bytes | None, alt: str, placeholder: str = "no picture yet") -> str:
    """An <img> of PNG bytes; its alt text (it names the run) is escaped, like all run data."""
    if not png:
        return f'<div class="ganapp-placeholder">{html_text(placeholder)}</div>'
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="ganapp-picture" alt="{html_text(alt)}" src="data:image/png;base64,{data}">'


def run_label(run: Run) -> str:
    return f"{run.name} [{run.id}]"


def state_text(run: Run, position: int | None, own_limit: bool) -> str:
    if run.state == "queued":
        if own_limit:
            return f"queued (#{position}, after your other runs)" if position else "queued"
        return f"queued (#{position} in line)" if position else "queued"
    return run.state


def metric_title(name: str) -> str:
    """'high_quality' -> 'high-quality %'; 'real_frechet_distance' -> 'real data: Fréchet distance'."""
    if name.startswith("real_"):
        return "real data: " + metric_title(name[len("real_"):])
    return METRIC_TITLES.get(name, name.replace("_", " "))


def format_metric(name: str, value: float) -> str:
    return f"{metric_title(name)}: {value:.3g}"


def metrics_line(metrics: dict[str, float]) -> str:
    """The latest numbers, each beside real held-out data's value through the same classifier."""
    parts = []
    for name in sorted(k for k in metrics if not k.startswith("real_")):
        text = format_metric(name, metrics[name])
        if f"real_{name}" in metrics:
            text += f" (real data: {metrics[f'real_{name}']:.3g})"
        parts.append(text)
    return " · ".join(parts)


class GanApp:
    """The page's handlers, over one JobManager. build_demo() lays them out and wires them."""

    def __init__(self, manager: JobManager):
        self.jobs = manager
        self._frames: dict[tuple[str, str], tuple[tuple, dict[str, Any]]] = {}
        self._pictures: dict[tuple[str, str, int], str] = {}
        self._throttled: dict[tuple[str, str, str], tuple[float, Any]] = {}
        self._pages: dict[str, float] = {}  # open pages (Gradio sessions) -> when they last polled
        self.uploads: set[str] = set()  # Gradio's record of uploaded files (build_demo sets it)
        self._pages_lock = threading.Lock()

    def note_page(self, page: str) -> None:
        """A poll from one open page (a browser tab: its Gradio session)."""
        now = time.monotonic()
        with self._pages_lock:
            self._pages[page] = now
            if len(self._pages) > 1000:
                self._pages = {k: t for k, t in self._pages.items() if now - t < 60}

    def open_pages(self) -> int:
        """Pages that polled in the last 5 seconds: the class that is watching now."""
        now = time.monotonic()
        with self._pages_lock:
            return sum(1 for t in self._pages.values() if now - t < 5.0)

    def throttled(self, run: Run, what: str, value: Any) -> Any:
        """`value` for a run that has ended; while it trains, the value it had at most
        REDRAW_EVERY_S[what] ago. Shared by all of the run's pages, so they redraw together."""
        key = (run.owner, run.id, what)
        now = time.monotonic()
        cached = self._throttled.get(key)
        if not run.active or cached is None or now - cached[0] >= REDRAW_EVERY_S[what]:
            if len(self._throttled) > 1024:
                self._throttled.clear()
            self._throttled[key] = cached = (now, value)
        return cached[1]

    # ------------------------------------------------------------------ cached renderings
    def frames(self, run: Run) -> dict[str, Any]:
        """Thinned metric curves of a run, computed once per new history row, shared by its tabs."""
        rows = run.history
        key = (len(rows), rows[-1]["step"] if rows else -1, id(rows))
        cached = self._frames.get((run.owner, run.id))
        if cached and cached[0] == key:
            return cached[1]
        frames = {"metrics": {name: metric_frame(rows, name) for name in metric_columns(rows)[:METRIC_PLOTS]}}
        if len(self._frames) > 256:
            self._frames.clear()
        self._frames[(run.owner, run.id)] = (key, frames)
        return frames

    def picture(self, run: Run, which: str = "samples") -> str:
        """A run's latest picture as an <img> (samples, curves or metrics), encoded once per picture."""
        count = {"samples": run.picture_count, "curves": run.curves_count, "metrics": run.metrics_count}[which]
        key = (run.owner, run.id + which, count)
        cached = self._pictures.get(key)
        if cached is None:
            if which == "samples":
                alt = f"samples of {run_label(run)} at step {run.picture_step}"
                cached = picture_html(run.picture, alt, "waiting for the first picture…")
            elif which == "curves":
                cached = picture_html(run.curves, f"loss curves of {run_label(run)} up to step {run.step}",
                                      "loss curves appear after the first logged steps")
            else:
                cached = picture_html(run.metrics_picture, f"metrics of {run.name}", "")
            if len(self._pictures) > 256:
                self._pictures.clear()
            self._pictures[key] = cached
        return cached

    def status_html(self, run: Run | None) -> str:
        if run is None:
            return ('<div class="ganapp-status state-none"><div class="state" id="state-text">no run yet</div>'
                    '<div class="what">Choose settings (or a preset) and press Start.</div></div>')
        position = self.jobs.queue_position(run) if run.state == "queued" else None
        state = state_text(run, position, self.jobs.waits_for_own_runs(run))
        speed = run.steps_per_second()
        total = f" <small>/ {run.total_steps:,}</small>" if run.total_steps else ""
        what = ", ".join(run.techniques) or "no techniques (vanilla)"
        data = run.config.data if run.config else "checkpoint"
        seed = f" · seed {run.config.seed}" if run.config else ""
        # Everything a visitor or a checkpoint could have written is escaped and shortened.
        notes = [f'<div class="reason" id="run-note">{html_text(run.note)}</div>' if run.note else "",
                 f'<div class="reason">{html_text(run.reason)}</div>' if run.reason else "",
                 f'<div class="warning" id="run-warning">{html_text(run.warning)}</div>' if run.warning else "",
                 f'<div class="reason">{html_text(run.metrics_warning)}</div>' if run.metrics_warning else ""]
        return (f'<div class="ganapp-status state-{html_text(run.state, 20)}">'
                f'<div class="state" id="state-text">{html_text(state)}</div>'
                f'<div class="counter">step <span id="step-count">{run.step:,}</span>{total}</div>'
                f'<div class="speed">{f"{speed:,.0f} steps/s" if speed else "– steps/s"}'
                f' · {run.seconds:.1f} s of training</div>'
                f'<div class="what">{html_text(run.name, safety.NAME_CHARS)} · {html_text(data)} · '
                f'{html_text(what)}{seed}</div>'
                f'{"".join(notes)}</div>')

    # ------------------------------------------------------------------ what the job server says
    def summary(self, run: Run) -> dict[str, Any]:
        """A run's summary for the API (with `warning`: the job server's word on it, or None)."""
        return run.describe(self.jobs.queue_position(run))

    def notices(self, owner: str) -> list[str]:
        """One-off messages for the visitor (e.g. that their oldest run made room), each once."""
        return [safety.shorten(text) for text in self.jobs.take_notices(owner)]

    def show_notices(self, owner: str) -> None:
        """The visitor's notices as warning toasts (after an action that added a run)."""
        for text in self.notices(owner):
            safety.warning(text)

    # ------------------------------------------------------------------ uploaded checkpoints
    def open_upload(self, owner: str, path: str) -> Run:
        """Read an uploaded checkpoint as a 'view' run and wait for it (await_view). The job
        server checks the file and copies it into the run's folder at once, so Gradio's copy
        is deleted then, whatever the outcome: the upload folder keeps nothing. A refusal,
        which may quote the file's contents, is plain text."""
        try:
            run = self.jobs.load_checkpoint(owner, path, os.path.basename(path))
        except FileNotFoundError:
            # Gradio stores uploads by content: the same file, uploaded twice at once, may
            # already have been read and deleted for the other upload.
            raise safety.refusal("the uploaded file is no longer on the server; please upload it again",
                                 title="Not loaded") from None
        except (OSError, JobError) as error:
            raise safety.refusal(error, title="Not loaded") from None
        finally:
            safety.discard_upload(path, self.uploads)
        self.show_notices(owner)
        return self.await_view(owner, run)

    def await_view(self, owner: str, run: Run) -> Run:
        """Wait for a 'view' job (a checkpoint being read); a failed one is removed, and its
        reason (which may quote the file's contents) is refused as plain text."""
        self.jobs.wait(owner, run.id, timeout_s=UPLOAD_WAIT_S)
        if run.state == "failed":
            self.jobs.remove(owner, run.id)  # a file that is no checkpoint leaves no run behind
            raise safety.refusal(run.reason or "that file is not a ganapp checkpoint", title="Not loaded")
        return run

    # ------------------------------------------------------------------ lookups (owner first)
    def owner(self, token: Any) -> str:
        """The visitor's token, if well formed and issued by this server; else a refusal."""
        try:
            self.jobs.owner_key(check_owner(token))
        except JobError as error:
            raise safety.refusal(error, title="No visitor token") from None
        return token

    def valid_owner(self, token: Any) -> bool:
        try:
            self.jobs.owner_key(check_owner(token))
        except JobError:
            return False
        return True

    def owned_run(self, owner: str, run_id: Any) -> Run | None:
        """The owner's run with this id, or None: never another visitor's run."""
        if not run_id:
            return None
        try:
            return self.jobs.get(owner, run_id)
        except JobError:
            return None

    def shown_run(self, owner: str, runs: list[Run], run_id: Any) -> Run | None:
        return self.owned_run(owner, run_id) or (runs[-1] if runs else None)


def _user_error(error: Exception) -> gr.Error:
    """A refusal toast (or API error) for a request the form, the config or the job server
    refused: its text, which may quote the visitor's values, shows as plain text."""
    return safety.refusal(error, title="Not started" if isinstance(error, (ConfigError, InputError)) else "Refused")


@contextlib.contextmanager
def _refusals():
    """Turn the refusals of a request (a wrong parameter, config or limit) into error toasts."""
    try:
        yield
    except (InputError, ConfigError, JobError) as error:
        raise _user_error(error) from None


# ====================================================================================
# The page
# ====================================================================================
def build_demo(manager: JobManager | None = None) -> gr.Blocks:
    """The whole page over `manager` (a new JobManager from the environment if None), queued."""
    # Gradio rebuilds an analytics summary after every event (1-6 ms); polls are many.
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "200")
    os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1000")
    # Gradio tries `import matplotlib` twice per event; without matplotlib each failed
    # attempt searches sys.path again (1-2 ms per poll under load, measured with py-spy).
    # Marking it absent makes the attempt fail at once; ganapp draws with Pillow only.
    if importlib.util.find_spec("matplotlib") is None:
        sys.modules.setdefault("matplotlib", None)
    jobs = manager or JobManager()
    app = GanApp(jobs)
    limits = jobs.limits

    with gr.Blocks(title="ganapp: GAN techniques, live", analytics_enabled=False,
                   delete_cache=(300, 1800)) as demo:
        # Gradio's cache (uploads, copies of run files for download) is swept every 5
        # minutes of what is older than 30; an upload is deleted as soon as the job server
        # has copied it (GanApp.open_upload), and UploadGuard bounds what waits meanwhile.
        demo.ganapp = app  # for tests and scripts
        app.uploads = demo.upload_file_set
        owner = gr.BrowserState(None, storage_key="ganapp-owner-token")
        # What this tab already shows, per group of views, so that polls send only changes,
        # and the stamps whose changes trigger the rarer views' redraws (see the handlers).
        live_seen, metrics_seen, compare_seen, rare_seen = (gr.State(None) for _ in range(4))
        # The stamps are hidden text boxes rather than States: a direct (unqueued) event's
        # changed States trigger no change events in the browser, a changed value does.
        metrics_stamp, compare_stamp, rare_stamp = (gr.Textbox("", visible="hidden", elem_id=f"{name}-stamp")
                                                    for name in ("metrics", "compare", "rare"))
        timer = gr.Timer(FAST_TICK_S, active=False)

        gr.Markdown("# Improved techniques for training GANs, live\n"
                    "Switch techniques on, press **Start**, and watch the generator learn. "
                    "Same seed with and without a technique? Start both and compare them below.")
        with gr.Row():
            with gr.Column(scale=3, min_width=360):
                preset = gr.Dropdown(["(choose a preset)", *PRESETS], value="(choose a preset)", label="Preset",
                                     elem_id="preset")
                preset_note = gr.Markdown("", elem_id="preset-note", elem_classes="technique-note")
                pair_button = gr.Button("Start this preset beside its vanilla partner", size="sm",
                                        elem_id="pair-button")
                ready_choices = ready_made_runs()
                ready_made = gr.Dropdown(["(open a finished run)", *ready_choices], value="(open a finished run)",
                                         label="Ready-made run: opens in about a second, nothing to train",
                                         elem_id="ready-made", visible=bool(ready_choices))
                form = ConfigForm(GANConfig(), limits.max_steps)
                run_name = gr.Textbox(label="run name (optional)", max_length=80, elem_id="run-name")
                with gr.Row():
                    start_button = gr.Button("Start", variant="primary", elem_id="start-button")
                    stop_button = gr.Button("Stop", variant="stop", elem_id="stop-button")
            with gr.Column(scale=8):
                status = gr.HTML(app.status_html(None), elem_id="status")
                with gr.Row():
                    samples = gr.HTML(picture_html(None, "", "samples appear here"), elem_id="samples",
                                      label="samples from fixed noise")
                    # The loss curves are a picture the job draws (ganapp.curves): a poll that
                    # sent two plots of 240 points cost the server 15 ms, a picture 0.1 ms.
                    curves_view = gr.HTML(picture_html(None, "", "loss curves appear here"), elem_id="curves",
                                          label="loss curves")
                with gr.Row(visible=False) as metrics_row:
                    with gr.Column(scale=3):
                        with gr.Row():
                            metric_plots = [gr.LinePlot(None, x="step", y="value", show_label=True, height=170, **AXES,
                                                        visible=False, min_width=200, elem_id=f"metric-plot-{i}")
                                            for i in range(METRIC_PLOTS)]
                    with gr.Column(scale=2):
                        metrics_picture = gr.HTML("", elem_id="metrics-picture")
                        metrics_text = gr.Markdown("", elem_id="metrics-text")

        gr.Markdown("## Your runs")
        runs_table = gr.Dataframe(headers=list(RUNS_COLUMNS),
                                  value=None, interactive=False, wrap=True, elem_id="runs-table",
                                  label="click a row to show that run")
        with gr.Row():
            shown = gr.Dropdown([], value=None, label="run shown above", allow_custom_value=True,
                                elem_id="shown-run", scale=3)
            copy_button = gr.Button("Copy its settings into the form", scale=1)
            continue_steps = gr.Number(None, precision=0, label="continue to (steps in all)", scale=1, min_width=120,
                                       elem_id="continue-steps")
            continue_button = gr.Button("Continue training", scale=1)
        files = gr.File(label="files of the run shown (when it has ended)", file_count="multiple",
                        interactive=False, elem_id="run-files")

        with gr.Accordion("Compare two runs", open=True):
            with gr.Row():
                compare_a = gr.Dropdown([], value=None, label="left", allow_custom_value=True, elem_id="compare-a")
                compare_b = gr.Dropdown([], value=None, label="right", allow_custom_value=True, elem_id="compare-b")
                overlay = gr.Dropdown(list(OVERLAYS), value="G loss", label="curve to overlay",
                                      allow_custom_value=True, elem_id="compare-curve")
                compare_button = gr.Button("Show side by side", elem_id="compare-button", scale=0, min_width=160)
            with gr.Row():
                compare_picture_a = gr.HTML("", elem_id="compare-picture-a")
                compare_picture_b = gr.HTML("", elem_id="compare-picture-b")
            compare_plot = gr.LinePlot(None, x="step", y="value", color="curve", **AXES,
                                       color_map={"left": "#1f77b4", "right": "#ff7f0e"},
                                       label="both runs", show_label=True, elem_id="compare-plot")

        with gr.Accordion("Scoreboard", open=True):
            scoreboard = gr.Dataframe(headers=["run", "name", "data", "techniques", "state", "steps", "seconds"],
                                      value=None, interactive=False, wrap=True, elem_id="scoreboard",
                                      label="every run of yours that ended")
            scoreboard_download = gr.DownloadButton("Download the scoreboard (CSV)", value=None,
                                                    elem_id="scoreboard-download")

        with gr.Accordion("Load a checkpoint", open=False):
            gr.Markdown(f"A `checkpoint.safetensors` written by ganapp (at most "
                        f"{limits.max_upload_bytes // 2**20} MB). It is read as safetensors and JSON only; "
                        "nothing is unpickled. It appears as a run you can look at and continue.")
            upload = gr.File(label="checkpoint", file_types=[".safetensors"], type="filepath",
                             elem_id="checkpoint-upload")

        with gr.Accordion("Scripting: the API", open=False):
            gr.Markdown("Every action is an API endpoint (`/new_token`, `/start_run`, `/poll_run`, "
                        "`/stop_run`, `/list_runs`, `/run_files`); see *Use via API* at the foot of the page "
                        "and the README. This browser's token lets a script see the runs listed here: "
                        "keep it to yourself.")
            token_box = gr.Textbox(label="your token", interactive=False, elem_id="owner-token",
                                   buttons=["copy"])

        # ---------------------------------------------------------------- handlers
        # A poll (the timer's tick) updates the live view of the run shown, plus three
        # stamps; the rarer views (metrics, the comparison, the runs list) redraw in events
        # of their own, only when their stamp changes. Gradio 6.31 rebuilds the component of
        # every output an event skips (1-2 ms each, measured), so the frequent event has few
        # outputs, and it sends small text values again rather than skipping them: only the
        # picture and the plots, which are costly to send, are skipped when unchanged.
        live_outputs = [status, samples, curves_view, timer, live_seen]
        metrics_outputs = [metrics_row, *metric_plots, metrics_picture, metrics_text, metrics_seen]
        compare_outputs = [compare_picture_a, compare_picture_b, compare_plot, overlay, compare_seen]
        rare_outputs = [runs_table, shown, compare_a, compare_b, files, scoreboard, scoreboard_download, rare_seen]
        stamps = [metrics_stamp, compare_stamp, rare_stamp]
        view_outputs = [*live_outputs, *metrics_outputs, *compare_outputs, *rare_outputs, *stamps]

        def live_view(run: Run | None, runs: list[Run], last: dict, out: dict) -> None:
            """Status, sample picture and loss curves of the run shown: what changes every step.
            The pictures are sent only when new. And the timer: polling goes on while any of the
            visitor's runs is active. Its decision is taken before the status is read, so the
            poll that switches it off always shows the final state (the pump may end a run
            meanwhile, making the status newer, never older, than the decision)."""
            now = dict(last)
            timer_key = (refresh_interval(app, runs), any(r.active for r in runs))
            if timer_key != last.get("timer"):
                now["timer"] = timer_key
                out[timer] = gr.Timer(value=timer_key[0], active=timer_key[1])
            else:
                out[timer] = timer_key[0]  # the same interval as a plain value: cheaper than a skip
            run_id = run.id if run else None
            switched = last.get("run", "-") != run_id
            now["run"] = run_id
            out[status] = app.status_html(run)  # a short text: resending it is cheaper than a skip
            if run is None:
                if switched:
                    out[samples] = picture_html(None, "", "samples appear here")
                    out[curves_view] = picture_html(None, "", "loss curves appear here")
            else:
                # A short placeholder is resent rather than skipped: Gradio's skip costs more.
                if switched or run.picture_count != last.get("pic") or run.picture is None:
                    out[samples] = app.picture(run)
                    now["pic"] = run.picture_count
                if switched or run.curves_count != last.get("curves") or run.curves is None:
                    out[curves_view] = app.picture(run, "curves")
                    now["curves"] = run.curves_count
            out[live_seen] = now

        def metrics_view(run: Run | None, last: dict, out: dict) -> None:
            """One small plot per metric, ganapp.metrics' bar chart and the latest numbers."""
            now = dict(last)
            run_id = run.id if run else None
            switched = last.get("run", "-") != run_id
            now["run"] = run_id
            frames = app.frames(run)["metrics"] if run else {}
            names = list(frames)
            if switched or names != last.get("names") or (run and run.metric_rows != last.get("rows")):
                relabel = switched or names != last.get("names")  # a plain value is cheaper than new props
                for index, plot in enumerate(metric_plots):
                    if index < len(names):
                        label = metric_title(names[index])
                        # The x axis spans the whole run, so one early point is not a lone dot
                        # on an axis of its own, and the plot shows how far the run has come.
                        out[plot] = (gr.LinePlot(frames[names[index]], visible=True, label=label,
                                                 x_lim=[0, max(run.total_steps, 1)])
                                     if relabel else frames[names[index]])
                    elif relabel and (index < len(last.get("names", ())) or switched):
                        out[plot] = gr.LinePlot(None, visible=False)
                now["names"], now["rows"] = names, run.metric_rows if run else 0
            if run is not None and (switched or run.metrics_count != last.get("count")):
                now["count"] = run.metrics_count
                out[metrics_picture] = app.picture(run, "metrics")
                out[metrics_text] = safety.markdown_text(metrics_line(run.metrics), limit=1000)
            visible = bool(names) or (run is not None and run.metrics_picture is not None)
            if visible != last.get("visible", False) or switched:
                out[metrics_row] = gr.Row(visible=visible)
                now["visible"] = visible
            if now != last:
                out[metrics_seen] = now

        def compare_view(owner_token: str, a_id: Any, b_id: Any, overlay_name: str, last: dict,
                         out: dict) -> None:
            """Two runs' pictures side by side and one of their curves overlaid."""
            now = dict(last)
            if not isinstance(overlay_name, str) or len(overlay_name) > 60:  # a typed-in curve name
                overlay_name = "G loss"
            run_a, run_b = app.owned_run(owner_token, a_id), app.owned_run(owner_token, b_id)
            key = compare_key(app, run_a, run_b, overlay_name)
            if key != last.get("key"):
                now["key"] = key
                out[compare_picture_a] = app.picture(run_a) if run_a else ""
                out[compare_picture_b] = app.picture(run_b) if run_b else ""
                column = OVERLAYS.get(overlay_name, overlay_name)
                sides = {"left": run_a, "right": run_b}
                title = " · ".join(f"{side}: {run_label(r)}" for side, r in sides.items() if r)
                label = f"{overlay_name} — {title}" if title else "both runs"
                frame = compare_frame(sides, column) if run_a or run_b else None
                out[compare_plot] = frame if label == last.get("label") else gr.LinePlot(frame, label=label)
                now["label"] = label
                choices = [*OVERLAYS, *sorted({m for r in (run_a, run_b) if r for m in metric_columns(r.history)})]
                if choices != last.get("overlays", list(OVERLAYS)):
                    now["overlays"] = choices
                    out[overlay] = gr.Dropdown(choices=choices)
            if now != last:
                out[compare_seen] = now

        def rare_view(owner_token: str, runs: list[Run], run: Run | None, last: dict, out: dict) -> None:
            """The runs list and pickers, the shown run's files and the scoreboard."""
            now = dict(last)
            run_id = run.id if run else None
            list_key = runs_key(runs)
            if list_key != last.get("list") or run_id != last.get("run"):
                now["list"], now["run"] = list_key, run_id
                out[runs_table] = runs_frame(app, runs)
                choices = [(run_label(r), r.id) for r in reversed(runs)]
                out[shown] = gr.Dropdown(choices=choices, value=run_id)
                out[compare_a] = gr.Dropdown(choices=choices)
                out[compare_b] = gr.Dropdown(choices=choices)
            files_key = (run_id, tuple(sorted(run.files.items())) if run and not run.active else ())
            if files_key != last.get("files"):
                now["files"] = files_key
                out[files] = [run.files[k] for k in ("checkpoint", "samples", "metrics", "config")
                              if run and k in run.files and os.path.isfile(run.files[k])] or None
            score_key = tuple((r.id, r.state) for r in runs if r.state in ENDED_STATES)
            if score_key != last.get("score"):
                now["score"] = score_key
                out[scoreboard], out[scoreboard_download] = scoreboard_view(app, owner_token, runs)
            if now != last:
                out[rare_seen] = now

        def current_stamps(owner_token, runs, run, a_id, b_id, overlay_name) -> dict:
            keys = {
                metrics_stamp: app.throttled(run, "metrics", (run.id, run.metrics_count, run.metric_rows))
                if run else None,
                compare_stamp: compare_key(app, app.owned_run(owner_token, a_id), app.owned_run(owner_token, b_id),
                                           overlay_name),
                rare_stamp: (runs_key(runs), run.id if run else None,
                             tuple(sorted(run.files)) if run and not run.active else ()),
            }
            return {stamp: f"{hash(key) & 0xFFFFFFFFFFFF:x}" for stamp, key in keys.items()}

        def render(owner_token: str, shown_id: Any, a_id: Any, b_id: Any, overlay_name: str) -> dict:
            """Every view of the page, drawn afresh (page load, Start, choosing a run...)."""
            runs = app.jobs.runs(owner_token)
            run = app.shown_run(owner_token, runs, shown_id)
            out: dict = {}
            # The stamps and the runs list (with the timer) first, the live view last: the
            # pump may end a run meanwhile, and a live view newer than the timer's decision
            # is fine, while an older one could be left on the page with the timer off.
            out.update(current_stamps(owner_token, runs, run, a_id, b_id, overlay_name))
            rare_view(owner_token, runs, run, {}, out)
            metrics_view(run, {}, out)
            compare_view(owner_token, a_id, b_id, overlay_name, {}, out)
            live_view(run, runs, {}, out)
            return out

        def show_run(owner_token: str, run_id: Any, a_id: Any, b_id: Any, overlay_name: str) -> dict:
            """After an action that picks the run to show (Start, a click in the list...): its
            live view and the run picker at once, and new stamps, whose change events then
            redraw the rarer views. A small reply reaches the page sooner than `render`'s."""
            runs = app.jobs.runs(owner_token)
            run = app.shown_run(owner_token, runs, run_id)
            out = current_stamps(owner_token, runs, run, a_id, b_id, overlay_name)
            out[shown] = gr.Dropdown(choices=[(run_label(r), r.id) for r in reversed(runs)],
                                     value=run.id if run else None)
            live_view(run, runs, {}, out)
            return out

        def tick(owner_token, shown_id, a_id, b_id, overlay_name, last, request: gr.Request = None):
            """The poll: the live view's changes, and the stamps of the rarer views."""
            if not app.valid_owner(owner_token):
                return {timer: gr.Timer(active=False), live_seen: {}}
            app.note_page(request.session_hash if request is not None else owner_token)
            runs = app.jobs.runs(owner_token)
            run = app.shown_run(owner_token, runs, shown_id)
            # Stamps first, the live view last (see render): unchanged stamps trigger nothing.
            out = current_stamps(owner_token, runs, run, a_id, b_id, overlay_name)
            live_view(run, runs, last if isinstance(last, dict) else {}, out)
            return out

        # The redraws triggered by a stamp stay silent about a missing token: on a first
        # visit the stamps change before the browser has stored the new token (page load
        # already drew everything), and an error toast there would only confuse.
        def on_metrics_stamp(owner_token, shown_id, last):
            if not app.valid_owner(owner_token):
                return gr.skip()
            out: dict = {}
            metrics_view(app.shown_run(owner_token, app.jobs.runs(owner_token), shown_id),
                         last if isinstance(last, dict) else {}, out)
            return out or gr.skip()

        def on_compare_stamp(owner_token, a_id, b_id, overlay_name, last):
            if not app.valid_owner(owner_token):
                return gr.skip()
            out: dict = {}
            compare_view(owner_token, a_id, b_id, overlay_name, last if isinstance(last, dict) else {}, out)
            return out or gr.skip()

        def on_rare_stamp(owner_token, shown_id, last):
            if not app.valid_owner(owner_token):
                return gr.skip()
            runs = app.jobs.runs(owner_token)
            out: dict = {}
            rare_view(owner_token, runs, app.shown_run(owner_token, runs, shown_id),
                      last if isinstance(last, dict) else {}, out)
            return out or gr.skip()

        def on_load(owner_token, shown_id, a_id, b_id, overlay_name, request: gr.Request = None):
            if not app.valid_owner(owner_token):  # a first visit, or a token of another server
                try:
                    owner_token = app.jobs.issue_token(safety.client_host(request))
                except JobError as error:  # too many new visitors from one address
                    safety.warning(error)
                    return {token_box: ""}
            app.note_page(request.session_hash if request is not None else owner_token)
            out = render(owner_token, shown_id, a_id, b_id, overlay_name)
            out[owner] = owner_token
            out[token_box] = owner_token
            return out

        def start(values: dict) -> dict:
            owner_token = app.owner(values[owner])
            with _refusals():
                name = safety.text_param("run name", values[run_name], max_chars=safety.NAME_CHARS)
                run = app.jobs.submit(owner_token, form.to_config(values), name=name)
            app.show_notices(owner_token)
            wait_for_first_picture(run)
            return show_run(owner_token, run.id, values[compare_a], values[compare_b], values[overlay])

        def wait_for_first_picture(run: Run) -> None:
            """Show the first picture straight away when the job starts at once (it takes
            ~0.1-0.3 s), rather than on the next tick."""
            deadline = time.monotonic() + START_WAIT_S
            while run.state in ("starting", "running") and run.picture_count == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            if run.state == "queued" and not app.jobs.waits_for_own_runs(run):
                time.sleep(0.1)  # the pump starts a job within 0.05 s when a slot is free
                while run.state in ("starting", "running") and run.picture_count == 0 \
                        and time.monotonic() < deadline:
                    time.sleep(0.01)

        def start_pair(values: dict) -> dict:
            """One click for a class: the chosen technique preset and its vanilla partner (same
            data, seed and steps), started together and shown side by side."""
            name = values[preset]
            if name not in PRESETS or name.endswith(": vanilla"):
                raise safety.refusal("Choose a technique's preset first; it starts beside its vanilla partner.",
                                     title="No preset chosen")
            owner_token = app.owner(values[owner])
            partner = name.split(":")[0] + ": vanilla"
            try:
                base = app.jobs.submit(owner_token, preset_config(partner), name=partner)
            except (ConfigError, JobError) as error:
                raise _user_error(error) from None
            try:
                other = app.jobs.submit(owner_token, preset_config(name), name=name)
            except (ConfigError, JobError) as error:
                app.jobs.stop(owner_token, base.id)  # both or neither
                app.jobs.wait(owner_token, base.id, timeout_s=10)
                if not base.active:
                    app.jobs.remove(owner_token, base.id)
                raise _user_error(error) from None
            app.show_notices(owner_token)
            wait_for_first_picture(other)
            out = show_run(owner_token, other.id, base.id, other.id, values[overlay])
            choices = [(run_label(r), r.id) for r in reversed(app.jobs.runs(owner_token))]
            out[compare_a] = gr.Dropdown(choices=choices, value=base.id)
            out[compare_b] = gr.Dropdown(choices=choices, value=other.id)
            return out

        def stop(owner_token, shown_id):
            """Stop the run shown. The page learns of it from its next poll (within half a
            second): a reply drawn now could arrive after that poll's, and show a stale state."""
            owner_token = app.owner(owner_token)
            run = app.owned_run(owner_token, shown_id) or next(
                (r for r in reversed(app.jobs.runs(owner_token)) if r.active), None)
            if run is None or not run.active:
                safety.info("Nothing to stop: the run shown has already ended.")
            else:
                app.jobs.stop(owner_token, run.id)

        def show(owner_token, shown_id, a_id, b_id, overlay_name):
            owner_token = app.owner(owner_token)
            return show_run(owner_token, shown_id, a_id, b_id, overlay_name)

        def pick_row(owner_token, a_id, b_id, overlay_name, event: gr.SelectData):
            owner_token = app.owner(owner_token)
            row = event.row_value or []
            return show_run(owner_token, row[0] if row else None, a_id, b_id, overlay_name)

        def compare(owner_token, shown_id, a_id, b_id, overlay_name):
            owner_token = app.owner(owner_token)
            if not (app.owned_run(owner_token, a_id) or app.owned_run(owner_token, b_id)):
                safety.info("Choose two of your runs (left and right) first.")
            runs = app.jobs.runs(owner_token)
            out = {compare_stamp: current_stamps(owner_token, runs, app.shown_run(owner_token, runs, shown_id),
                                                 a_id, b_id, overlay_name)[compare_stamp]}
            compare_view(owner_token, a_id, b_id, overlay_name, {}, out)
            return out

        def suggest_continue(owner_token, shown_id):
            """Twice the shown run's planned steps (within the server's limit), as a suggestion."""
            run = app.owned_run(owner_token, shown_id) if app.valid_owner(owner_token) else None
            if run is None or run.config is None:
                return gr.skip()
            return min(2 * run.config.steps, limits.max_steps)

        def continue_training(owner_token, shown_id, steps, a_id, b_id, overlay_name):
            owner_token = app.owner(owner_token)
            run = app.owned_run(owner_token, shown_id)
            if run is None:
                raise safety.refusal("Choose one of your runs to continue first.")
            with _refusals():
                new = app.jobs.continue_run(owner_token, run.id, _number("steps", steps, integer=True))
            app.show_notices(owner_token)
            return show_run(owner_token, new.id, a_id, b_id, overlay_name)

        def opened(owner_token: str, run: Run, a_id, b_id, overlay_name) -> dict:
            """Wait for a 'view' job (a checkpoint being read) and show it; a failed one is removed."""
            app.show_notices(owner_token)
            app.await_view(owner_token, run)
            return show_run(owner_token, run.id, a_id, b_id, overlay_name)

        def load_checkpoint(owner_token, path, a_id, b_id, overlay_name):
            owner_token = app.owner(owner_token)
            if not path:
                return gr.skip()
            if not isinstance(path, str):
                raise safety.refusal("choose one checkpoint file")
            run = app.open_upload(owner_token, path)
            out = show_run(owner_token, run.id, a_id, b_id, overlay_name)
            out[upload] = None
            return out

        def open_ready_made(owner_token, name, a_id, b_id, overlay_name):
            owner_token = app.owner(owner_token)
            if name not in READY_MADE_NOTES:
                return gr.skip()
            try:
                run = app.jobs.open_ready_made(owner_token, name)
            except JobError as error:
                raise _user_error(error) from None
            out = opened(owner_token, run, a_id, b_id, overlay_name)
            out[ready_made] = "(open a finished run)"
            out[preset_note] = READY_MADE_NOTES[name]
            return out

        def copy_settings(owner_token, shown_id):
            owner_token = app.owner(owner_token)
            run = app.owned_run(owner_token, shown_id)
            if run is None or run.config is None:
                raise safety.refusal("Choose one of your runs first (a checkpoint's settings appear once it is read).")
            return form.from_config(run.config)

        def apply_preset(name):
            """Fill the form from a preset, and say what the preset showed when measured."""
            if name not in PRESETS:
                return gr.skip()
            out = form.from_config(preset_config(name))
            out[preset_note] = getattr(presets, "PRESET_NOTES", {}).get(name, "")
            return out

        # ---------------------------------------------------------------- wiring
        views_in = [compare_a, compare_b, overlay]
        quick = dict(show_progress="hidden", api_visibility="private", concurrency_limit=None)
        demo.load(on_load, [owner, shown, *views_in], [owner, token_box, *view_outputs], **quick)
        # Polls and redraws skip Gradio's queue: they take milliseconds and never wait for
        # training, and a direct call costs the server less than a queued one.
        poll = dict(quick, queue=False)
        timer.tick(tick, [owner, shown, *views_in, live_seen], [*live_outputs, *stamps], **poll)
        metrics_stamp.change(on_metrics_stamp, [owner, shown, metrics_seen], metrics_outputs, **poll)
        compare_stamp.change(on_compare_stamp, [owner, *views_in, compare_seen], compare_outputs, **poll)
        rare_stamp.change(on_rare_stamp, [owner, shown, rare_seen], rare_outputs, **poll)
        shown_outputs = [*live_outputs, shown, *stamps]  # what show_run draws
        start_button.click(start, {owner, run_name, *form.components, *views_in}, shown_outputs,
                           api_visibility="private", concurrency_limit=None)
        pair_button.click(start_pair, {owner, preset, overlay}, [*shown_outputs, compare_a, compare_b],
                          api_visibility="private", concurrency_limit=None)
        stop_button.click(stop, [owner, shown], None, **quick)
        shown.input(show, [owner, shown, *views_in], shown_outputs, **quick)
        runs_table.select(pick_row, [owner, *views_in], shown_outputs, **quick)
        # One event with both choices: two dropdown events could answer out of order.
        for trigger in (compare_button.click, overlay.input):
            trigger(compare, [owner, shown, *views_in], [*compare_outputs, compare_stamp], **quick)
        shown.change(suggest_continue, [owner, shown], continue_steps, **quick)
        continue_button.click(continue_training, [owner, shown, continue_steps, *views_in], shown_outputs,
                              api_visibility="private")
        upload.upload(load_checkpoint, [owner, upload, *views_in], [*shown_outputs, upload],
                      api_visibility="private")
        ready_made.select(open_ready_made, [owner, ready_made, *views_in], [*shown_outputs, ready_made, preset_note],
                         api_visibility="private")
        copy_button.click(copy_settings, [owner, shown], form.components, api_visibility="private")
        preset.input(apply_preset, preset, [*form.components, preset_note], api_visibility="private")
        wire_api(app, demo)
    demo.queue(default_concurrency_limit=8)
    # Gradio's queue looks for work every millisecond when it has none (on Linux): 7% of a
    # core on an idle server, taken from training (measured). Every 10 ms costs 2% and adds
    # at most 10 ms to a queued event (polls do not use the queue).
    if hasattr(demo._queue, "sleep_when_free"):
        demo._queue.sleep_when_free = max(demo._queue.sleep_when_free, 0.01)
    # The handlers, for tests and benchmarks.
    app.render, app.show_run, app.tick, app.stamps = render, show_run, tick, stamps
    app.seen = {"live": live_seen, "metrics": metrics_seen, "compare": compare_seen, "rare": rare_seen}
    app.on_metrics_stamp, app.on_compare_stamp, app.on_rare_stamp = on_metrics_stamp, on_compare_stamp, on_rare_stamp
    return demo


RUNS_COLUMNS = ("run", "name", "data", "techniques", "state", "steps")


def runs_key(runs: list[Run]) -> tuple:
    """What the runs list shows: it changes with states, not with every step."""
    return tuple((r.id, r.name, r.state, r.total_steps, r.step if not r.active else None) for r in runs)


def runs_frame(app: GanApp, runs: list[Run]) -> pd.DataFrame:
    rows = []
    for r in reversed(runs):
        position = app.jobs.queue_position(r) if r.state == "queued" else None
        steps = f"{r.total_steps:,}" if r.active else f"{r.step:,} of {r.total_steps:,}"
        rows.append([r.id, r.name, r.config.data if r.config else "?", ", ".join(r.techniques) or "vanilla",
                     f"queued #{position}" if position else r.state, steps])
    return pd.DataFrame(rows, columns=list(RUNS_COLUMNS))


def compare_key(app: GanApp, run_a: Run | None, run_b: Run | None, overlay_name: str) -> tuple:
    return (overlay_name, *((r.id, app.throttled(r, "compare", r.version)) if r else None for r in (run_a, run_b)))


def refresh_interval(app: GanApp, runs: list[Run]) -> float:
    """Twice a second while the class is small, once a second above FAST_TICK_VISITORS open
    pages; every two seconds while the visitor's runs are all waiting in the queue."""
    if not any(r.state in ("starting", "running", "stopping") for r in runs):
        return QUEUED_TICK_S
    return FAST_TICK_S if app.open_pages() <= FAST_TICK_VISITORS else SLOW_TICK_S


def scoreboard_view(app: GanApp, owner_token: str, runs: list[Run]) -> tuple[Any, Any]:
    """The scoreboard table (one row per ended run) and its CSV file for the download button."""
    ended = [r for r in runs if r.state in ENDED_STATES and r.config is not None]
    if not ended:
        return None, gr.DownloadButton(value=None)
    metric_names = sorted({k for r in ended for k in r.metrics})
    header = ["run", "name", "data", "techniques", "state", "steps", "final D loss", "final G loss",
              *metric_names, "seconds"]
    rows = []
    for r in ended:
        last = r.history[-1] if r.history else {}
        rows.append([r.id, r.name, r.config.data, "+".join(r.techniques) or "vanilla", r.state, r.step,
                     _round(last.get("d_loss")), _round(last.get("g_loss")),
                     *(_round(r.metrics.get(m)) for m in metric_names), round(r.seconds, 1)])
    path = app.jobs.owner_folder(owner_token) / "scoreboard.csv"
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows([[_csv_cell(cell) for cell in row] for row in rows])
    return pd.DataFrame(rows, columns=header), gr.DownloadButton(value=str(path))


def _csv_cell(value: Any) -> Any:
    """A run name as a spreadsheet's text, never a formula: '=HYPERLINK(...)' would run when opened."""
    return "'" + value if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _round(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) and math.isfinite(value) else value


def compare_frame(sides: dict[str, Run | None], column: str) -> pd.DataFrame:
    """One history column of both runs, as curves named 'left' and 'right' (a fixed legend)."""
    frames = []
    for side, run in sides.items():
        rows = [r for r in run.history if column in r] if run else []
        frame = curve_frame(thin(rows, CURVE_POINTS // 2), {column: side})
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


# ====================================================================================
# Named API endpoints for gradio_client
# ====================================================================================
def wire_api(app: GanApp, demo: gr.Blocks) -> None:
    """Each action as an endpoint. The caller's token plays the browser's part: runs are
    looked up among that token's runs only. Parameters arrive as whatever JSON a script
    sends: each is checked for its kind first, and a wrong one is named in a short error."""
    settings = {f.name for f in dataclasses.fields(GANConfig)}

    def new_token(request: gr.Request = None) -> str:
        """A fresh visitor token. Keep it: it is how the server knows your runs. The server
        hands out a limited number per address and minute."""
        with _refusals():
            return app.jobs.issue_token(safety.client_host(request))

    def start_run(token: str, config: dict, name: str = "") -> dict:
        """Start a run from a config dict (any GANConfig fields; the rest default). Returns the
        run's summary, with `notices`: one-off messages from the server (e.g. that your oldest
        run was deleted to make room)."""
        token = app.owner(token)
        with _refusals():
            name = safety.text_param("name", name, max_chars=safety.NAME_CHARS)
            run = app.jobs.submit(token, GANConfig.from_dict(safety.settings_param(config, settings)), name=name)
        reply = app.summary(run)
        reply["notices"] = app.notices(token)
        return reply

    def owned(token: str, run_id: Any) -> Run:
        with _refusals():
            run_id = safety.text_param("run_id", run_id, max_chars=64)
        run = app.owned_run(token, run_id)
        if run is None:
            raise safety.refusal(f"you have no run {run_id!r}")
        return run

    def poll_run(token: str, run_id: str, with_samples: bool = False, max_rows: int = 200) -> dict:
        """A run's state, step, speed, metrics, warning and thinned history (at most max_rows
        rows, 1 to 2,000); with_samples adds the latest sample picture as base64 PNG."""
        token = app.owner(token)
        with _refusals():
            with_samples = safety.flag_param("with_samples", with_samples)
            max_rows = safety.whole_number("max_rows", max_rows, 1, MAX_HISTORY_ROWS, default=200)
        run = owned(token, run_id)
        history = run.history[:]  # before the summary, so that its rows reach no further than its step
        summary = app.summary(run)
        summary["history"] = thin(history, max_rows)
        if with_samples and run.picture:
            summary["samples_png_base64"] = base64.b64encode(run.picture).decode("ascii")
        return summary

    def stop_run(token: str, run_id: str) -> dict:
        """Stop one of your runs (a waiting run at once, a running one within a training step)."""
        token = app.owner(token)
        run = owned(token, run_id)
        with _refusals():
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


# ====================================================================================
def launch_options(manager: JobManager, *, uploads: safety.UploadPolicy | None = None) -> dict[str, Any]:
    """demo.launch() settings the page needs, for main() and for the tests' server.

    Gradio's upload route takes files from anyone, without a visitor token: each file is
    capped at the server's checkpoint size (max_file_size, which the page also checks
    before sending; gr.File takes no size of its own), and an UploadGuard in front of the
    route bounds each request, each client address's uploads per minute and the bytes
    uploads hold (`uploads`, by default from the job server's Limits)."""
    limits = manager.limits
    policy = uploads or safety.UploadPolicy.for_limits(limits.max_upload_bytes, limits.max_uploads_per_minute)
    # Gradio keeps each session's state (every API call is a session of its own) until
    # state_session_capacity sessions exist: 10,000 by default, about 0.7 GB here (measured by
    # scripts/soak.py). A class is 30 pages; 1,000 bounds the server's memory to about 0.1 GB.
    return dict(css=CSS, allowed_paths=[str(manager.runs_dir)], max_file_size=limits.max_upload_bytes,
                footer_links=["api", "settings"], run_history=False, app_kwargs=safety.upload_middleware(policy),
                state_session_capacity=SESSIONS_KEPT)


def main() -> None:
    try:
        manager = JobManager()  # reads the GANAPP_* limits: a bad value stops here, in a sentence
    except SettingsError as error:
        print(f"ganapp: {error}", file=sys.stderr)
        sys.exit(2)
    demo = build_demo(manager)

    def on_sigterm(*_):  # atexit (and so manager.shutdown) runs on sys.exit, not on a bare SIGTERM
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_sigterm)
    demo.launch(**launch_options(manager))  # GRADIO_SERVER_NAME, GRADIO_SERVER_PORT etc. apply


if __name__ == "__main__":
    main()
