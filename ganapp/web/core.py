"""GanApp: the page's view of the job server. Lookups (owner first), cached renderings
shared by all of a run's tabs, the pictures a pair is held at, and refusals as toasts.

The handlers (ganapp.web.handlers) ask it; it asks ganapp.jobs' JobManager, and never
holds training math.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any

import gradio as gr

from ganapp import curves, picture_text, render
from ganapp.config import ConfigError
from ganapp.jobs import JobError, JobManager, Run, check_owner

from . import safety, timelapse, views
from .safety import InputError
from .text import refusal, tr

FAST_TICK_S, SLOW_TICK_S = 0.5, 1.0  # refresh twice a second, once when the class is big
QUEUED_TICK_S = 2.0  # a page whose runs all wait in the queue has little news
FAST_TICK_VISITORS = 10  # open pages polling, above which pages refresh once a second
REDRAW_EVERY_S = {"metrics": 5.0, "compare": 2.0}  # while a run trains, these redraw at most this often
UPLOAD_WAIT_S = 15.0
METRIC_PLOTS = 4  # one small plot per metric (each its own scale), up to this many
PICTURES_KEPT = 200  # sample pictures kept per run, to show a pair at the same step
RUNS_WITH_PICTURES = 32  # runs whose pictures are kept (the most recently drawn)



def _in_other_language(run: Run, lang: str) -> bool:
    """Whether a page in `lang` shows the run's pictures in another language than the job
    drew them in (that of the page that started the run; English where no CJK font)."""
    drawn_in = run.spec.get("lang", "en") if isinstance(run.spec, dict) else "en"
    return picture_text.picture_language(lang) != picture_text.picture_language(drawn_in)

class GanApp:
    """The page's state over one JobManager: what it caches, and how it looks runs up."""

    def __init__(self, manager: JobManager):
        self.jobs = manager
        self._frames: dict[tuple[str, str], tuple[tuple, dict[str, Any], views.MetricScan]] = {}
        self._pictures: dict[tuple, str] = {}
        self._kept: dict[tuple[str, str], list[tuple[int, bytes]]] = {}  # run -> [(step, png)], oldest first
        self._throttled: dict[tuple[str, str, str], tuple[float, Any]] = {}
        self._pages: dict[str, float] = {}  # open pages (Gradio sessions) -> when they last polled
        self.uploads: set[str] = set()  # Gradio's record of uploaded files (build_demo sets it)
        self._lock = threading.Lock()
        self._watched: dict[tuple[str, str], float] = {}  # pairs' runs -> when last shown
        manager.add_picture_listener(self._on_picture)
        # The views inside the game at each kept picture's step (the step slider replays them).
        self.views_kept = timelapse.KeptViews(RUNS_WITH_PICTURES, PICTURES_KEPT)
        if hasattr(manager, "add_inside_listener"):
            manager.add_inside_listener(self._on_inside)

    # ------------------------------------------------------------------ who is watching
    def note_page(self, page: str) -> None:
        """A poll from one open page (a browser tab: its Gradio session)."""
        now = time.monotonic()
        with self._lock:
            self._pages[page] = now
            if len(self._pages) > 1000:
                self._pages = {k: t for k, t in self._pages.items() if now - t < 60}

    def open_pages(self) -> int:
        """Pages that polled in the last 5 seconds: the class that is watching now."""
        now = time.monotonic()
        with self._lock:
            return sum(1 for t in self._pages.values() if now - t < 5.0)

    def refresh_interval(self, runs: list[Run]) -> float:
        """Twice a second while the class is small, once a second above FAST_TICK_VISITORS open
        pages; every two seconds while the visitor's runs are all waiting in the queue."""
        if not any(r.state in ("starting", "running", "stopping") for r in runs):
            return QUEUED_TICK_S
        return FAST_TICK_S if self.open_pages() <= FAST_TICK_VISITORS else SLOW_TICK_S

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
        """Thinned metric curves of a run, shared by its tabs and pages: redrawn only when a row
        with metrics arrives (every metrics_every steps), and the history is scanned once,
        each row when it arrives (a long run's history is thousands of rows)."""
        rows = run.history
        key = (run.metric_rows, id(rows))
        cached = self._frames.get((run.owner, run.id))
        if cached and cached[0] == key:
            return cached[1]
        scan = cached[2] if cached and cached[2].rows_id == id(rows) and cached[2].scanned <= len(rows) else None
        scan = scan or views.MetricScan(id(rows))
        scan.add(rows)
        frames = {"metrics": {name: views.frame_of(scan.measured.get(name, []), name)
                              for name in views.metric_columns(rows)[:METRIC_PLOTS]}}
        if len(self._frames) > 256:
            self._frames.clear()
        self._frames[(run.owner, run.id)] = (key, frames, scan)
        return frames

    def picture(self, run: Run, which: str = "samples", lang: str = "en") -> str:
        """A run's latest picture as an <img> (samples, curves or metrics), encoded once per picture."""
        count = {"samples": run.picture_count, "curves": run.curves_count, "metrics": run.metrics_count}[which]
        key = (run.owner, run.id, which, count, lang)
        cached = self._pictures.get(key)
        if cached is None:
            label = views.run_label(run, lang)
            if which == "samples":
                self.keep_picture(run)
                cached = views.picture_html(self.in_language(run, run.picture, lang),
                                            tr(lang, "alt_samples", label=label, step=run.picture_step),
                                            tr(lang, "waiting_picture"))
            elif which == "curves":
                cached = views.picture_html(self.curves_in_language(run, lang),
                                            tr(lang, "alt_curves", label=label, step=run.step),
                                            tr(lang, "curves_soon"), kind="curves")
            else:
                cached = views.picture_html(self.metrics_in_language(run, lang),
                                            tr(lang, "alt_metrics", name=run.name), "", kind="metrics")
            if len(self._pictures) > 256:
                self._pictures.clear()
            self._pictures[key] = cached
        return cached

    @staticmethod
    def in_language(run: Run, png: bytes | None, lang: str) -> bytes | None:
        """A sample picture with its legend in the page's language: the job draws it in the
        language of the page that started the run, and a page switched to the other one
        repaints the scatter's legend (render.relabel_scatter_png; once per picture and
        language, as the callers cache their HTML)."""
        if png is None or not _in_other_language(run, lang):
            return png
        return render.relabel_scatter_png(png, lang)

    @staticmethod
    def metrics_in_language(run: Run, lang: str) -> bytes | None:
        """The bar chart in the page's language: the job draws it in both, and an ended run's
        folder keeps both (a run saved before that has its own language's only)."""
        if run.metrics_picture_other is not None and _in_other_language(run, lang):
            return run.metrics_picture_other
        return run.metrics_picture

    @staticmethod
    def curves_in_language(run: Run, lang: str) -> bytes | None:
        """The loss curves in the page's language: the job draws them in the language of the
        page that started the run; a page in the other one redraws them as the job does, from
        the history rows the server keeps (ganapp.curves, about 9 ms, once per new curves
        picture and language, as `picture` caches its HTML)."""
        if run.curves is None or not run.history or not _in_other_language(run, lang):
            return run.curves
        try:
            return curves.training_curves_png(run.history, lang=lang)
        except Exception:  # a history the chart cannot read: the job's own picture
            return run.curves

    def keep_picture(self, run: Run, sample: tuple[int, bytes] | None = None) -> None:
        """Remember the run's latest sample picture by step (bounded), so that a pair can be
        shown at the same step: the side that is ahead shows its picture of the slower
        side's step. Only pictures some page saw are kept; between them, the nearest earlier."""
        sample = sample or run.sample_now()
        if sample is None:
            return
        step, picture = sample
        key = (run.owner, run.id)
        with self._lock:
            kept = self._kept.setdefault(key, [])
            if not kept or kept[-1][0] < step:
                kept.append((step, picture))
                if len(kept) > PICTURES_KEPT:  # thin the oldest half rather than forget the start
                    del kept[1:PICTURES_KEPT // 2:2]
                if len(self._kept) > RUNS_WITH_PICTURES:
                    self._kept.pop(next(iter(self._kept)))
            steps = {s for s, _ in self._kept.get(key, ())}
        self.views_kept.keep(run, run.inside, steps)  # the latest views, if of a kept picture's step

    def watch(self, *runs: Run) -> None:
        """Keep every sample picture of these runs (a pair on someone's screen), not only
        those a poll happens to see: the job server hands each picture over as it arrives
        (JobManager.add_picture_listener), so both sides have the same steps however busy
        the machine. A run stops being watched 30 s after a page last showed it."""
        now = time.monotonic()
        with self._lock:
            for run in runs:
                self._watched[(run.owner, run.id)] = now
            if len(self._watched) > 4 * RUNS_WITH_PICTURES:
                self._watched = {key: shown for key, shown in self._watched.items() if now - shown <= 30}

    def _on_picture(self, run: Run, step: int, png: bytes) -> None:
        """In the job server's pump thread: keep a watched run's new picture."""
        with self._lock:
            shown = self._watched.get((run.owner, run.id))
        if shown is not None and time.monotonic() - shown <= 30:
            self.keep_picture(run, (step, png))

    def _on_inside(self, run: Run, inside: tuple) -> None:
        """In the job server's pump thread: keep a watched run's new views (their picture came first)."""
        with self._lock:
            shown = self._watched.get((run.owner, run.id))
            steps = {s for s, _ in self._kept.get((run.owner, run.id), ())}
        if shown is not None and time.monotonic() - shown <= 30:
            self.views_kept.keep(run, inside, steps)

    def common_step(self, run_a: Run, run_b: Run, at_most: int | None = None) -> int | None:
        """The latest step (up to `at_most`) of which both runs' pictures are kept (None: none)."""
        self.keep_picture(run_a)
        self.keep_picture(run_b)
        with self._lock:
            steps_a = {step for step, _ in self._kept.get((run_a.owner, run_a.id), ())}
            steps_b = {step for step, _ in self._kept.get((run_b.owner, run_b.id), ())}
        both = {step for step in steps_a & steps_b if at_most is None or step <= at_most}
        return max(both) if both else None

    def kept_pictures(self, run: Run) -> list[tuple[int, bytes]]:
        """The run's kept sample pictures, (step, PNG) oldest first (its latest at least)."""
        self.keep_picture(run)
        with self._lock:
            return list(self._kept.get((run.owner, run.id), ()))

    def picture_at(self, run: Run, step: int, lang: str = "en") -> tuple[int, str] | None:
        """The run's kept picture of the latest step at or before `step`, as (step, <img>)."""
        self.keep_picture(run)
        with self._lock:
            kept = list(self._kept.get((run.owner, run.id), ()))
        earlier = [entry for entry in kept if entry[0] <= step]
        if not earlier:
            return None
        shown, png = earlier[-1]
        key = (run.owner, run.id, "at", shown, lang)
        cached = self._pictures.get(key)
        if cached is None:
            cached = views.picture_html(self.in_language(run, png, lang),
                                        tr(lang, "alt_samples", label=views.run_label(run, lang), step=shown), "")
            self._pictures[key] = cached
        return shown, cached

    def status_html(self, run: Run | None, lang: str = "en", **kw: Any) -> str:
        """The caption of the run on the left (the status of the run shown)."""
        if run is None:
            return views.caption_html(None, lang)
        position = self.jobs.queue_position(run) if run.state == "queued" else None
        return views.caption_html(run, lang, position=position, own_limit=self.jobs.waits_for_own_runs(run), **kw)

    def positions(self, runs: list[Run]) -> dict[str, int | None]:
        return {r.id: self.jobs.queue_position(r) for r in runs if r.state == "queued"}

    # ------------------------------------------------------------------ what the job server says
    def summary(self, run: Run) -> dict[str, Any]:
        """A run's summary for the API (with `warning`: the job server's word on it, or None)."""
        return run.describe(self.jobs.queue_position(run))

    def notices(self, owner: str, lang: str = "en") -> list[str]:
        """One-off messages for the visitor (e.g. that their oldest run made room), each once,
        in their language."""
        return [safety.shorten(refusal(notice, lang)) for notice in self.jobs.take_notices(owner)]

    def show_notices(self, owner: str, lang: str = "en") -> None:
        """The visitor's notices as warning toasts (after an action that added a run)."""
        for text in self.notices(owner, lang):
            safety.warning(text)

    # ------------------------------------------------------------------ uploaded checkpoints
    def open_upload(self, owner: str, path: str, lang: str = "en") -> Run:
        """Read an uploaded checkpoint as a 'view' run and wait for it (await_view). The job
        server checks the file and copies it into the run's folder at once, so Gradio's copy
        is deleted then, whatever the outcome: the upload folder keeps nothing. A refusal,
        which may quote the file's contents, is plain text."""
        try:
            run = self.jobs.load_checkpoint(owner, path, os.path.basename(path), lang=lang)
        except FileNotFoundError:
            # Gradio stores uploads by content: the same file, uploaded twice at once, may
            # already have been read and deleted for the other upload.
            raise safety.refusal(tr(lang, "refusal_upload_gone"), title=tr(lang, "not_loaded")) from None
        except JobError as error:
            raise safety.refusal(refusal(error, lang), title=tr(lang, "not_loaded")) from None
        except OSError as error:
            raise safety.refusal(error, title=tr(lang, "not_loaded")) from None
        finally:
            safety.discard_upload(path, self.uploads)
        self.show_notices(owner, lang)
        return self.await_view(owner, run, lang)

    def await_view(self, owner: str, run: Run, lang: str = "en") -> Run:
        """Wait for a 'view' job (a checkpoint being read); a failed one is removed, and its
        reason (which may quote the file's contents) is refused as plain text."""
        self.jobs.wait(owner, run.id, timeout_s=UPLOAD_WAIT_S)
        if run.state == "failed":
            self.jobs.remove(owner, run.id)  # a file that is no checkpoint leaves no run behind
            raise safety.refusal(run.reason or tr(lang, "not_a_checkpoint"), title=tr(lang, "not_loaded"))
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
        if not run_id or not isinstance(run_id, str):
            return None
        try:
            return self.jobs.get(owner, run_id)
        except JobError:
            return None

    def shown_run(self, owner: str, runs: list[Run], run_id: Any) -> Run | None:
        return self.owned_run(owner, run_id) or (runs[-1] if runs else None)

    def scoreboard_view(self, owner: str, runs: list[Run], lang: str = "en") -> tuple[Any, Any]:
        """The scoreboard table and its CSV file (English headers) for the download button."""
        table, header, rows = views.scoreboard(runs, lang)
        if table is None:
            return None, gr.DownloadButton(value=None)
        path = self.jobs.owner_folder(owner) / "scoreboard.csv"
        views.write_csv(path, header, rows)
        return table, gr.DownloadButton(value=str(path))


def user_error(error: Exception) -> gr.Error:
    """A refusal toast (or API error) for a request the form, the config or the job server
    refused: its text, which may quote the visitor's values, shows as plain text."""
    return safety.refusal(error, title="Not started" if isinstance(error, (ConfigError, InputError)) else "Refused")


@contextlib.contextmanager
def refusals():
    """Turn the refusals of a request (a wrong parameter, config or limit) into error replies."""
    try:
        yield
    except (InputError, ConfigError, JobError) as error:
        raise user_error(error) from None
