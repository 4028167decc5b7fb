"""What the page shows, as small pure functions: run in, HTML or a table out, in either language.

Everything a visitor or a checkpoint could have written (run names, reasons, warnings)
goes through safety.html_text: escaped and shortened. Nothing here asks the job server
for anything; the handlers pass in what it said (a Run, its queue position).
"""

from __future__ import annotations

import base64
import csv
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from ganapp import curves, drawn, picture_text
from ganapp.jobs import ENDED_STATES, LOSS_COLUMNS, Run
from ganapp.presets import PRESET_TITLES_ZH

from . import safety
from .safety import html_text
from .text import metric_name, number, state_name, tr

CURVE_POINTS = 120  # per LinePlot curve: an update costs ~10 ms at 500 points, ~100 ms at 5,000
MODES = {"ring8": 8, "grid25": 25}  # real modes of the 2-D data sets, for "modes 3 / 8"


# ------------------------------------------------------------------ curves and tables
def thin(rows: list[dict], limit: int = CURVE_POINTS) -> list[dict]:
    """At most about `limit` rows, evenly spaced, always keeping the newest (ganapp.curves.thin)."""
    return rows if len(rows) <= limit else [rows[i] for i in curves.thin(rows, limit)]


def curve_frame(rows: list[dict], names: dict[str, str]) -> pd.DataFrame:
    """Long-format frame (step, value, curve) of the given columns; non-finite values dropped.

    Every label in `names` appears, with one empty (NaN) point if it has no data yet:
    Gradio 6.31's LinePlot fixes its colour legend when it first draws, so a curve that
    joins later would get no legend entry and no colour of its own.
    """
    steps, values, labels = [], [], []
    for column, label in names.items():
        before = len(steps)
        for row in rows:
            value = row.get(column)
            if isinstance(value, (int, float)) and math.isfinite(value):
                steps.append(int(row["step"]))
                values.append(float(value))
                labels.append(label)
        if len(steps) == before:
            steps.append(0)
            values.append(math.nan)
            labels.append(label)
    return pd.DataFrame({"step": pd.Series(steps, dtype="int64"), "value": pd.Series(values, dtype="float64"),
                         "curve": pd.Series(labels, dtype="string")})


def metric_frame(rows: list[dict], column: str) -> pd.DataFrame:
    """One metric over the steps where it was measured (a single line, so no legend)."""
    return frame_of([r for r in rows if _measured(r.get(column))], column)


def frame_of(measured: list[dict], column: str) -> pd.DataFrame:
    """metric_frame of the rows where `column` was measured (MetricScan keeps them)."""
    measured = thin(measured)
    return pd.DataFrame({"step": pd.Series([int(r["step"]) for r in measured], dtype="int64"),
                         "value": pd.Series([float(r[column]) for r in measured], dtype="float64")})


def _measured(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


class MetricScan:
    """The rows of one history list where each metric was measured, kept up to date by
    scanning only the rows that arrived since (the page's plots redraw from them)."""

    def __init__(self, rows_id: int) -> None:
        self.rows_id, self.scanned = rows_id, 0
        self.measured: dict[str, list[dict]] = {}

    def add(self, rows: list[dict]) -> None:
        for row in rows[self.scanned:]:
            for key, value in row.items():
                if key not in LOSS_COLUMNS and _measured(value):
                    self.measured.setdefault(key, []).append(row)
        self.scanned = len(rows)


def metric_columns(rows: list[dict]) -> list[str]:
    """Numeric history columns beyond the losses: what ganapp.metrics measured."""
    seen: dict[str, None] = {}
    for row in rows[-50:] + rows[:1]:
        for key, value in row.items():
            if key not in LOSS_COLUMNS and isinstance(value, (int, float)) and not isinstance(value, bool):
                seen[key] = None
    return list(seen)


# The comparison's two curves, named the same in both languages: Gradio 6.31's LinePlot keeps
# the colour legend of its first drawing, so curves renamed by a language switch ("Left" to
# "左邊") were no longer drawn at all.
COMPARE_SERIES = ("Left · 左邊", "Right · 右邊")
COMPARE_COLOURS = dict(zip(COMPARE_SERIES, ("#1f77b4", "#d95f02")))


def compare_frame(sides: dict[str, Run | None], column: str) -> pd.DataFrame:
    """One history column of both runs, as curves named by side (a fixed legend)."""
    frames = []
    for side, run in sides.items():
        rows = [r for r in run.history if column in r] if run else []
        frames.append(curve_frame(thin(rows, CURVE_POINTS // 2), {column: side}))
    return pd.concat(frames, ignore_index=True)


# ------------------------------------------------------------------ words about a run
def run_label(run: Run, lang: str = "en") -> str:
    """A run as menus, titles and alt texts name it: a preset's run by its title in `lang`."""
    return f"{display_name(run, lang)} [{run.id}]"


def display_name(run: Run, lang: str) -> str:
    """A run's name as the page shows it: a preset's run by the preset's title in `lang`."""
    if lang == "zh-TW" and run.name in PRESET_TITLES_ZH:
        return PRESET_TITLES_ZH[run.name]
    return run.name


def techniques_text(run: Run, lang: str) -> str:
    return ", ".join(run.techniques) or tr(lang, "vanilla")


def state_text(run: Run, position: int | None, own_limit: bool, lang: str = "en") -> str:
    if run.state == "queued" and position:
        return tr(lang, "queued_after_own" if own_limit else "queued_at", n=position)
    if run.state == "running" and getattr(run, "paused", False):  # the job says it waits (ganapp.web.play)
        return tr(lang, "state_paused")
    return state_name(run.state, lang)


def headline(run: Run, lang: str) -> str:
    """The one number a class watches: 'modes 1 / 8', 'classes 10, score 6.9'."""
    m = run.metrics
    data = run.config.data if run.config else ""
    if "modes_covered" in m:
        total = MODES.get(data) or (drawn.stroke_count(run.config.drawn_points) if data == "drawn" else 0) or "?"
        text = tr(lang, "headline_modes", n=number(m["modes_covered"]), total=total)
        if "high_quality" in m:
            text += " · " + tr(lang, "headline_quality", value=f"{m['high_quality']:.1f}")
        return text
    if "classifier_score" in m:
        return tr(lang, "headline_classes", n=number(m.get("classes_covered", 0)), score=f"{m['classifier_score']:.1f}")
    if "nn_distance" in m:
        return tr(lang, "headline_distance", value=f"{m['nn_distance']:.3g}")
    return tr(lang, "headline_none")


def metrics_line(metrics: dict[str, float], lang: str = "en") -> str:
    """The latest numbers, each beside real held-out data's value through the same classifier."""
    parts = []
    for name in sorted(k for k in metrics if not k.startswith("real_")):
        text = f"{metric_name(name, lang)}: {metrics[name]:.3g}"
        if f"real_{name}" in metrics:
            text += f" ({tr(lang, 'real_data')}: {metrics[f'real_{name}']:.3g})"
        parts.append(text)
    return " · ".join(parts)


# ------------------------------------------------------------------ HTML pieces
def picture_html(png: bytes | None, alt: str, placeholder: str = "no picture yet", *, kind: str = "samples") -> str:
    """An <img> of PNG bytes; its alt text (it names the run) is escaped, like all run data."""
    if not png:
        return f'<div class="ganapp-placeholder">{html_text(placeholder)}</div>'
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="ganapp-picture {kind}" alt="{html_text(alt)}" src="data:image/png;base64,{data}">'


_COLLAPSE = re.compile(r"Mode collapse: only (\d+) of (\d+) (modes|strokes|classes) covered")


def collapse_warning(text: str | None, lang: str) -> str | None:
    """The job's collapse warning (ganapp.metrics.coverage_warning) in `lang`."""
    found = _COLLAPSE.fullmatch(text or "")
    if not found or lang == "en":
        return text
    covered, total, what = found.groups()
    return picture_text.word("collapse", lang, covered=covered, total=total, what=picture_text.word(what, lang))


def caption_html(run: Run | None, lang: str, *, position: int | None = None, own_limit: bool = False,
                 shown_step: int | None = None, primary: bool = True) -> str:
    """A pane's caption: state, step / total, speed, name · data · techniques · seed, the
    headline metric, and the server's notes. The primary pane's caption keeps the ids the
    tests and scripts look for (state-text, step-count, run-note, run-warning). Every line
    has a fixed height (CSS), so a note arriving moves nothing."""
    ids = primary
    if run is None:
        return (f'<div class="ganapp-caption state-none" data-run="" data-lang="{html_text(lang, 8)}">'
                f'<div class="cap-top"><span class="state"'
                f'{" id=state-text" if ids else ""}>{html_text(tr(lang, "state_none"))}</span></div>'
                f'<div class="what">{html_text(tr(lang, "no_run_what"))}</div>'
                '<div class="headline">&nbsp;</div><div class="notes"></div></div>')
    state = state_text(run, position, own_limit, lang)
    total = run.total_steps
    step = f'<span{" id=step-count" if ids else ""}>{run.step:,}</span>'
    counter = tr(lang, "step_of", step="\x00", total=f"{total:,}") if total else tr(lang, "step_only", step="\x00")
    counter = html_text(counter).replace("\x00", step)
    speed = run.steps_per_second()
    speed_text = (tr(lang, "speed", speed=f"{speed:,.0f}", seconds=f"{run.seconds:.1f}") if speed
                  else tr(lang, "speed_none", seconds=f"{run.seconds:.1f}"))
    data = run.config.data if run.config else tr(lang, "from_checkpoint")
    seed = f" · {tr(lang, 'seed', seed=run.config.seed)}" if run.config else ""
    held = None
    if shown_step is not None and shown_step < run.picture_step:
        held = tr(lang, "held", shown=f"{shown_step:,}", step=f"{run.step:,}")
    # One line, the server's notes first and the pair's "shown at step N" last: on a projector
    # the line is cut at its end, so what matters most (a failure, a collapse) stays in sight.
    notes = [(run.note, "run-note", "reason"), (run.reason, None, "reason"), (run.warning, "run-warning", "warning"),
             (collapse_warning(run.metrics_warning, lang), None, "reason"), (held, None, "held")]
    notes_html = "".join(f'<span class="{cls}"{f" id={nid}" if nid and ids else ""}>{html_text(text)}</span>'
                         for text, nid, cls in notes if text)
    # data-run and data-lang: which run this pane shows, for the page's live script (ganapp.web.live).
    return (f'<div class="ganapp-caption state-{html_text(run.state, 20)}" data-run="{html_text(run.id, 64)}" '
            f'data-lang="{html_text(lang, 8)}">'
            f'<div class="cap-top"><span class="state"{" id=state-text" if ids else ""}>{html_text(state)}</span>'
            f'<span class="counter">{counter}</span></div>'
            f'<div class="what">{html_text(display_name(run, lang), safety.NAME_CHARS)} · {html_text(data)} · '
            f'{html_text(techniques_text(run, lang))}{seed}<span class="speed"> · {html_text(speed_text)}</span></div>'
            f'<div class="headline">{html_text(headline(run, lang))}</div>'
            f'<div class="notes">{notes_html}</div></div>')


def curves_caption_html(run: Run, lang: str) -> str:
    """Pane B's caption while it shows the left run's loss curves."""
    return (f'<div class="ganapp-caption state-curves" data-run=""><div class="cap-top"><span class="state">'
            f'{html_text(tr(lang, "loss_curves"))}</span></div>'
            f'<div class="what">{html_text(tr(lang, "curves_of", name=display_name(run, lang)), safety.NAME_CHARS + 40)}'
            '</div>'
            f'<div class="headline"><span class="speed">{html_text(metric_name("d_loss", lang))} · '
            f'{html_text(metric_name("g_loss", lang))} · {html_text(metric_name("d_real", lang))} · '
            f'{html_text(metric_name("d_fake", lang))}</span></div><div class="notes"></div></div>')


def empty_caption_html(lang: str) -> str:
    return (f'<div class="ganapp-caption state-none" data-run=""><div class="cap-top"><span class="state">&nbsp;</span>'
            '</div>'
            f'<div class="what">{html_text(tr(lang, "pane_b_empty"))}</div>'
            '<div class="headline">&nbsp;</div><div class="notes"></div></div>')


# ------------------------------------------------------------------ tables
RUNS_COLUMNS = ("run", "name", "data", "techniques", "state", "steps")


def runs_frame(runs: list[Run], positions: dict[str, int | None], lang: str = "en") -> pd.DataFrame:
    rows = []
    for r in reversed(runs):
        position = positions.get(r.id)
        steps = f"{r.total_steps:,}" if r.active else tr(lang, "steps_of", step=f"{r.step:,}", total=f"{r.total_steps:,}")
        state = tr(lang, "queued_at", n=position) if position else state_name(r.state, lang)
        rows.append([r.id, r.name, r.config.data if r.config else "?", techniques_text(r, lang), state, steps])
    return pd.DataFrame(rows, columns=[tr(lang, f"col_{c}") for c in RUNS_COLUMNS])


def scoreboard(runs: list[Run], lang: str = "en") -> tuple[pd.DataFrame | None, list[str], list[list[Any]]]:
    """The scoreboard (one row per ended run, friendly column names in `lang`), and its
    English header and rows for the CSV file."""
    ended = [r for r in runs if r.state in ENDED_STATES and r.config is not None]
    if not ended:
        return None, [], []
    metric_names = sorted({k for r in ended for k in r.metrics})
    header = ["run", "name", "data", "techniques", "state", "steps", "final D loss", "final G loss",
              *metric_names, "seconds"]
    rows = []
    for r in ended:
        last = r.history[-1] if r.history else {}
        rows.append([r.id, r.name, r.config.data, "+".join(r.techniques) or "vanilla", r.state, r.step,
                     _round(last.get("d_loss")), _round(last.get("g_loss")),
                     *(_round(r.metrics.get(m)) for m in metric_names), round(r.seconds, 1)])
    if lang == "en":
        shown_header = header[:8] + [metric_name(m, lang) for m in metric_names] + ["seconds"]
    else:
        shown_header = ([tr(lang, f"col_{c}") for c in ("run", "name", "data", "techniques", "state", "steps",
                                                        "final_d", "final_g")]
                        + [metric_name(m, lang) for m in metric_names] + [tr(lang, "col_seconds")])
    shown_rows = [[state_name(c, lang) if i == 4 else c for i, c in enumerate(row)] for row in rows]
    return pd.DataFrame(shown_rows, columns=_unique(shown_header)), header, rows


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows([[csv_cell(cell) for cell in row] for row in rows])


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def csv_cell(value: Any) -> Any:
    """A run name as a spreadsheet's text, never a formula: '=HYPERLINK(...)' would run when opened."""
    return "'" + value if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _round(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) and math.isfinite(value) else value
