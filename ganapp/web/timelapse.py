"""The time-lapse of the views inside the game: every view kept at each kept picture's step.

How the views reach the page: the job draws them with each sample picture and sends an
`Inside` message right after its `Samples` (ganapp.worker); the job server's pump sets
`Run.inside` (the latest) and hands each one to its inside listeners
(JobManager.add_inside_listener); the page's GanApp keeps them here, keyed by the step of
their picture, beside the pictures it keeps (GanApp.keep_picture):
- a watched run (a pair on someone's screen, GanApp.watch): every view, from the listener;
- any run a page shows: the latest views whenever a poll keeps its latest picture.
Views are kept only for a step whose picture is kept, and dropped when that picture is
thinned away (GanApp.keep_picture halves the oldest half past PICTURES_KEPT), so the step
slider ("Compare two runs") replays the heatmap, the arrows and the lenses of exactly the
picture it shows, for a single run and for both sides of a pair, and the GIF export can
draw them (ganapp.web.export).

Memory (the same bounds as the pictures, plus one of bytes): at most PICTURES_KEPT steps
for each of at most RUNS_WITH_PICTURES runs, and at most VIEWS_BYTES_KEPT bytes of views
per run (past it the oldest half is thinned, as the pictures are). Measured bundle of views
per step (`python scripts/views_bytes.py`): ring8 with heatmap, arrows and all four lenses
57-66 KB (heatmap 14-19 KB, arrows 6-9 KB, closeness matrices 17-18 KB, VBN 6 KB, histogram
3-4 KB, feature bars 7-8 KB and distance 3-4 KB); ring8 vanilla (heatmap and arrows only)
12-29 KB; digits with the four lenses 36-40 KB. So a run keeps its 200 steps in 2.4-13 MB,
within 8 MiB but for the ring8 run with every lens (about 128 steps before thinning), and
the worst case, whatever the PNGs hold, is RUNS_WITH_PICTURES x VIEWS_BYTES_KEPT =
32 x 8 MiB = 256 MiB (the pictures themselves: 200 x 5-14 KB x 32 runs, about 90 MB at most
as measured).
"""

from __future__ import annotations

import threading
from typing import Any

import gradio as gr

from ganapp.jobs import Run

from . import inside_view
from .text import tr

VIEWS_BYTES_KEPT = 8 * 2**20  # views kept per run, in bytes of PNG
Views = tuple[int, dict[str, bytes], dict[str, float]]  # (step, PNG bytes by view name, numbers): Run.inside
GIF_OPTIONS = ("layers", "lenses")


def size_of(inside: Views) -> int:
    return sum(len(png) for png in inside[1].values())


class KeptViews:
    """Runs' views by step, bounded (see the module's note). Thread-safe: the job server's
    pump thread keeps views while the page's handlers read them."""

    def __init__(self, runs: int, per_run: int, bytes_per_run: int = VIEWS_BYTES_KEPT):
        self.runs, self.per_run, self.bytes_per_run = runs, per_run, bytes_per_run
        self._views: dict[tuple[str, str], dict[int, Views]] = {}  # run -> {step: views}, oldest step first
        self._lock = threading.Lock()

    def keep(self, run: Run, inside: Views | None, picture_steps: set[int]) -> None:
        """Keep `inside` (a run's views) if a picture of its step is kept (`picture_steps`,
        the run's kept pictures' steps, read under GanApp's lock); forget the views of
        pictures no longer kept."""
        key = (run.owner, run.id)
        with self._lock:
            kept = self._views.get(key)
            if kept is not None:
                for step in [s for s in kept if s not in picture_steps]:
                    del kept[step]
            if inside is None or int(inside[0]) not in picture_steps:
                return
            if kept is None:
                kept = self._views[key] = {}
                while len(self._views) > self.runs:
                    self._views.pop(next(iter(self._views)))
            step = int(inside[0])
            if step in kept:
                return
            older = bool(kept) and step < next(reversed(kept))
            kept[step] = inside
            if older:  # a step older than the newest kept: keep them in step order
                self._views[key] = kept = dict(sorted(kept.items()))
            while len(kept) > self.per_run or (len(kept) > 2 and sum(map(size_of, kept.values())) > self.bytes_per_run):
                steps = list(kept)
                for old in steps[1:max(len(steps) // 2, 2):2]:  # thin the oldest half, keep the first
                    del kept[old]

    def at(self, run: Run, step: int) -> Views | None:
        """The run's views of exactly this picture step, or None."""
        with self._lock:
            return self._views.get((run.owner, run.id), {}).get(int(step))

    def all(self, run: Run) -> dict[int, Views]:
        with self._lock:
            return dict(self._views.get((run.owner, run.id), {}))

    def bytes(self) -> int:
        with self._lock:
            return sum(size_of(v) for kept in self._views.values() for v in kept.values())


# ---------------------------------------------------------------------------- the page


def pane_html(app, run: Run | None, step: int | None, lang: str, side: str = "a") -> tuple[int, str] | None:
    """One side of "Compare two runs" at `step` (None: its latest kept picture): the kept
    sample picture of the latest step at or before it, with D's heatmap and G's arrows of
    that same step stacked on it (switched by the page's switches, like the stage's layers),
    and under it the lenses of that step. (shown step, HTML), or None without a picture."""
    if run is None:
        return None
    kept = app.kept_pictures(run)
    if not kept:
        return None
    shown = app.picture_at(run, kept[-1][0] if step is None else int(step), lang)
    if shown is None:
        return None
    shown_step, picture = shown
    inside = app.views_kept.at(run, shown_step)
    if inside is None:  # no views (a data set without them): the picture, and which step it is
        pane = f'{picture}{inside_view.step_line(shown_step, lang)}'
        return shown_step, f'<div class="timelapse-pane" data-step="{shown_step}">{pane}</div>'
    stack = picture
    images = inside_view.layer_images(run, lang, inside, style=LAYER_STYLE)
    if images:
        cell = picture.replace('<img class="ganapp-picture', f'<img style="{CELL_STYLE}" class="ganapp-picture', 1)
        stack = f'<div class="inside-layers-host timelapse-stack"><div class="inside-layers">{cell}{images}</div></div>'
    lenses = inside_view.lens_html(run, lang, shown=inside, ids=f"-replay-{side}")
    return shown_step, f'<div class="timelapse-pane" data-step="{shown_step}">{stack}{lenses}</div>'


# The replayed picture and its layers share one grid cell at the picture's own size (the
# stage's layers are sized to the screen by the CSS; inline styles win over it).
CELL_STYLE = "grid-area:1/1;width:100%;height:auto;margin:0 auto"
LAYER_STYLE = "height:auto;min-height:0"


def gif_choices(lang: str) -> list[tuple[str, str]]:
    return [(tr(lang, f"gif_with_{option}"), option) for option in GIF_OPTIONS]


def gif_options(value: Any) -> set[str]:
    """The export's options from the page's checkboxes (anything else is ignored)."""
    if not isinstance(value, (list, tuple)):
        return set()
    return {v for v in value if v in GIF_OPTIONS}


def build_gif_options(ui, lang: str):
    """The export's options, beside its button (the page's layout calls this)."""
    ui.gif_with = gr.CheckboxGroup(gif_choices(lang), value=[], label=tr(lang, "gif_with"), elem_id="gif-with",
                                   scale=2)
    return ui.gif_with


def relabel(ui, lang: str, out: dict) -> None:
    out[ui.gif_with] = gr.update(label=tr(lang, "gif_with"), choices=gif_choices(lang))
