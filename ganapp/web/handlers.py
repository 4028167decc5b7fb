"""The page's event handlers: small named methods over the layout's components.

Each reads like "look up the visitor's runs, ask the job server, return what changed".
A poll (the timer's tick) updates the live view: the two panes' captions and pictures.
The rarer views (metrics, the comparison, the runs list) redraw in events of their own,
triggered when their stamp changes. Gradio 6.31 rebuilds the component of every output
an event skips (1-2 ms each, measured), so the frequent event has few outputs, and it
sends small text values again rather than skipping them: only the pictures and plots,
which are costly to send, are skipped when unchanged.

Nothing here raises an error into the page's outputs: a refusal is a toast (placed away
from the pictures by the CSS) and a bad setting a message at its field (validate_start),
so no output panel ever shows an error badge. The API (ganapp.web.api) raises instead.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import gradio as gr

from ganapp.config import ConfigError, GANConfig
from ganapp.jobs import ENDED_STATES, JobError, Run
from ganapp.presets import (PRESET_NOTES, PRESET_NOTES_ZH, PRESET_TITLES_ZH, PRESETS, READY_MADE_NOTES,
                            READY_MADE_NOTES_ZH, READY_MADE_TITLES_ZH, preset_config, ready_made_runs)

from . import export, inside_view, links, play, safety, timelapse, views
from .core import GanApp
from .form import SWITCH_FIELDS, ConfigForm, field_label, number_value
from .safety import InputError
from .text import LOOK_FOR, METRICS, OVERLAY_COLUMNS, TECHNIQUE_NOTES, TEXT, language, metric_meaning, metric_name, \
    pick, refusal, tr

START_WAIT_S = 1.0  # Start waits this long for the first picture, to show it without a tick
NO_PRESET = "-"
NO_READY = "-"
OVERLAYS = {"G loss": "g_loss", "D loss": "d_loss", "mean D(x)": "d_real", "mean D(G(z))": "d_fake"}


# ------------------------------------------------------------------ choices in a language
def preset_choices(lang: str) -> list[tuple[str, str]]:
    titles = PRESET_TITLES_ZH if lang == "zh-TW" else {}
    return [(tr(lang, "preset_none"), NO_PRESET), *((titles.get(n, n), n) for n in PRESETS)]


def ready_choices(lang: str) -> list[tuple[str, str]]:
    titles = READY_MADE_TITLES_ZH if lang == "zh-TW" else {}
    return [(tr(lang, "ready_none"), NO_READY), *((titles.get(n, n), n) for n in ready_made_runs())]


def preset_note(name: str, lang: str) -> str:
    notes = PRESET_NOTES_ZH if lang == "zh-TW" else PRESET_NOTES
    return notes.get(name, "")


def ready_note(name: str, lang: str) -> str:
    notes = READY_MADE_NOTES_ZH if lang == "zh-TW" else READY_MADE_NOTES
    return notes.get(name, "")


def overlay_column(name: Any) -> str:
    """The history column of an overlay choice (a column name, or its English title)."""
    if not isinstance(name, str) or len(name) > 60:
        return "g_loss"
    return OVERLAYS.get(name, name)


def overlay_choices(lang: str, extra: list[str] = ()) -> list[tuple[str, str]]:
    return [(metric_name(c, lang), c) for c in (*OVERLAY_COLUMNS, *extra)]


def look_for(run_a: Run | None, run_b: Run | None, lang: str) -> str:
    """The line under the pictures: what to watch for in what is shown."""
    def on(run: Run) -> list[str]:
        return [s for s in SWITCH_FIELDS if run.config and ConfigForm.is_on(s, run.config)]

    if run_a is None or run_a.config is None:
        return pick(LOOK_FOR["none"], lang)
    if run_a.config.is_image and not run_b:
        return pick(LOOK_FOR["digits"], lang)
    if run_b is not None and run_b.config is not None:
        techniques = on(run_b)
        if not run_a.config.is_image and not run_a.config.generator_batch_norm and not on(run_a):
            return pick(LOOK_FOR["collapse_pair"], lang)
        text = pick(LOOK_FOR["pair"], lang)
        if techniques:
            text += " " + pick(TECHNIQUE_NOTES[techniques[0]], lang)
        return text
    techniques = on(run_a)
    return pick(TECHNIQUE_NOTES[techniques[0]], lang) if techniques else pick(LOOK_FOR["vanilla"], lang)


def glossary_markdown(lang: str) -> str:
    rows = [f"| {metric_name(name, lang)} | {metric_meaning(name, lang)} |" for name in METRICS]
    head = "| | |" if lang == "en" else "| | |"
    return "\n".join([head, "|---|---|", *rows])


def merge(out: dict, component: Any, **props: Any) -> None:
    """Add property changes to an output that may already hold a value or an update."""
    current = out.get(component)
    if current is None:
        out[component] = gr.update(**props)
    elif isinstance(current, dict) and current.get("__type__") == "update":
        out[component] = {**current, **props}
    elif isinstance(current, gr.blocks.Block):
        out[component] = {**current.constructor_args, **props, "__type__": "update"}
    else:
        out[component] = gr.update(value=current, **props)


class Handlers:
    """The handlers of one page, over its components (`ui`, made by ganapp.web.page)."""

    def __init__(self, app: GanApp, ui: SimpleNamespace, form: ConfigForm):
        self.app, self.ui, self.form = app, ui, form
        ui_ = ui
        # What each event draws. The live view is what a tick changes.
        self.live_outputs = [ui_.status, ui_.samples, ui_.status_b, ui_.samples_b, ui_.look_for, ui_.timer,
                             ui_.live_seen, *inside_view.outputs(ui_), *play.outputs(ui_)]
        self.metrics_outputs = [ui_.metrics_row, *ui_.metric_plots, ui_.metrics_picture, ui_.metrics_text,
                                ui_.metrics_seen]
        self.compare_outputs = [ui_.compare_picture_a, ui_.compare_picture_b, ui_.compare_plot, ui_.overlay,
                                ui_.replay, ui_.compare_seen]
        self.rare_outputs = [ui_.runs_table, ui_.shown, ui_.compare_a, ui_.compare_b, ui_.files, ui_.scoreboard,
                             ui_.scoreboard_download, ui_.rare_seen]
        self.stamps = [ui_.metrics_stamp, ui_.compare_stamp, ui_.rare_stamp]
        self.view_outputs = [*self.live_outputs, *self.metrics_outputs, *self.compare_outputs, *self.rare_outputs,
                             *self.stamps]
        self.shown_outputs = [*self.live_outputs, ui_.shown, ui_.partner, *self.stamps]

    # ================================================================== the views
    def live_view(self, run: Run | None, partner: Run | None, runs: list[Run], last: dict, out: dict,
                  lang: str) -> None:
        """Both panes: captions and pictures, sent only when new. With a pair, both pictures
        are of the same step: the side that is ahead shows its kept picture of the other
        side's step (GanApp.keep_picture), and its caption says so; a paused pair shows each
        side as it is (its steps by hand). Without one, the right
        pane shows the left run's loss curves. And the timer: polling goes on while any of
        the visitor's runs is active; its decision is taken before the captions are read,
        so the poll that switches it off always shows the final state."""
        ui, app = self.ui, self.app
        now = dict(last)
        timer_key = (app.refresh_interval(runs), any(r.active for r in runs))
        if timer_key != last.get("timer"):
            now["timer"] = timer_key
            out[ui.timer] = gr.Timer(value=timer_key[0], active=timer_key[1])
        else:
            out[ui.timer] = timer_key[0]  # the same interval as a plain value: cheaper than a skip
        ids = (run.id if run else None, partner.id if partner else None, lang)
        switched = last.get("ids") != ids
        now["ids"] = ids
        play.live(ui, run, partner, switched, last, now, out, lang)  # the pause button and its status line
        a_step = b_step = None  # the steps the pictures are held at (None: the latest)
        if run is not None and partner is not None:
            app.watch(run, partner)
        sample_a = run.sample_now() if run is not None else None
        sample_b = partner.sample_now() if partner is not None else None
        if sample_a is not None and sample_b is not None and not (play.paused(run) and play.paused(partner)):
            # (A paused pair shows each side's latest picture instead: a step taken by hand,
            # D's or G's, shows at once on both sides, whose steps differ by what they trained.)
            # The slower side's step, or a step of which both sides kept a picture when one is
            # close to it: jobs draw at multiples of sample_every but skip some when busy, so
            # the two sides' steps need not match; the faster side then shows its picture
            # nearest before the slower side's (ganapp.web.core.GanApp.picture_at). Both sides
            # are held at steps read once here: a job's next picture arriving while this poll
            # runs must not show on one side only.
            app.keep_picture(run, sample_a)
            app.keep_picture(partner, sample_b)
            common = min(sample_a[0], sample_b[0])
            both = app.common_step(run, partner, at_most=common)
            close = run.config.sample_every if run.config else 100
            if both is not None and common - both <= close:
                common = both
            a_step = min(common, sample_a[0])
            b_step = min(common, sample_b[0])
        out[ui.status] = app.status_html(run, lang, shown_step=a_step)  # short texts: resent, cheaper than a skip
        inside_view.live(ui, run, partner, last, now, out, lang, switched, (a_step, b_step))  # the inside views
        if run is None:
            if switched:
                out[ui.samples] = views.picture_html(None, "", tr(lang, "samples_here"))
                out[ui.samples_b] = views.picture_html(None, "", tr(lang, "curves_here"))
                out[ui.status_b] = views.empty_caption_html(lang)
                out[ui.look_for] = look_for(None, None, lang)
            out[ui.live_seen] = now
            return
        if switched:
            out[ui.look_for] = look_for(run, partner, lang)
        self._pane(run, a_step, "a", last, now, out, ui.samples, lang, switched)
        if partner is not None:
            out[ui.status_b] = app.status_html(partner, lang, shown_step=b_step, primary=False)
            self._pane(partner, b_step, "b", last, now, out, ui.samples_b, lang, switched)
        else:
            if switched or run.curves_count != last.get("curves") or run.curves is None:
                out[ui.samples_b] = app.picture(run, "curves", lang)
                out[ui.status_b] = views.curves_caption_html(run, lang)
                now["curves"] = run.curves_count
        out[ui.live_seen] = now

    def _pane(self, run: Run, held: int | None, side: str, last: dict, now: dict, out: dict, component,
              lang: str, switched: bool) -> None:
        """One pane's picture: the latest, or the kept one of step `held`; sent when it changes."""
        app = self.app
        app.keep_picture(run)
        shown = app.picture_at(run, held, lang) if held is not None else None
        key = ("held", shown[0]) if shown else ("latest", run.picture_count)
        if switched or key != last.get(side) or run.picture is None:
            out[component] = shown[1] if shown else app.picture(run, "samples", lang)
            now[side] = key

    def metrics_view(self, run: Run | None, last: dict, out: dict, lang: str) -> None:
        """One small plot per metric, ganapp.metrics' bar chart and the latest numbers."""
        ui, app = self.ui, self.app
        now = dict(last)
        run_id = run.id if run else None
        switched = last.get("run", "-") != run_id or last.get("lang") != lang
        now["run"], now["lang"] = run_id, lang
        frames = app.frames(run)["metrics"] if run else {}
        names = list(frames)
        if switched or names != last.get("names") or (run and run.metric_rows != last.get("rows")):
            relabel = switched or names != last.get("names")  # a plain value is cheaper than new props
            for index, plot in enumerate(ui.metric_plots):
                if index < len(names):
                    frame = frames[names[index]]
                    # The x axis spans the steps measured so far (not the planned total), so a
                    # stopped run's curve fills its plot; one point gets a little room around it.
                    # The span goes with every new frame: a frame alone keeps the old x_lim, and
                    # the curve's later points would fall outside the plot.
                    steps = list(frame["step"])
                    span = [min(steps), max(steps)] if len(steps) > 1 else [0, max(steps[0] * 2, 1)] if steps \
                        else [0, 1]
                    out[plot] = (gr.LinePlot(frame, visible=True, label=metric_name(names[index], lang), x_lim=span,
                                             x_title=tr(lang, "col_steps"))
                                 if relabel else gr.LinePlot(frame, x_lim=span))
                elif relabel and (index < len(last.get("names", ())) or switched):
                    out[plot] = gr.LinePlot(None, visible=False)
            now["names"], now["rows"] = names, run.metric_rows if run else 0
        if run is not None and (switched or run.metrics_count != last.get("count")):
            now["count"] = run.metrics_count
            out[ui.metrics_picture] = app.picture(run, "metrics", lang)
            out[ui.metrics_text] = safety.markdown_text(views.metrics_line(run.metrics, lang), limit=1000)
        visible = bool(names) or (run is not None and run.metrics_picture is not None)
        if visible != last.get("visible", False) or switched:
            out[ui.metrics_row] = gr.Row(visible=visible)
            now["visible"] = visible
        if now != last:
            out[ui.metrics_seen] = now

    def compare_key(self, run_a: Run | None, run_b: Run | None, overlay_name: str, lang: str) -> tuple:
        return (overlay_name, lang, *((r.id, self.app.throttled(r, "compare", r.version)) if r else None
                                      for r in (run_a, run_b)))

    def compare_view(self, owner: str, a_id: Any, b_id: Any, overlay_name: Any, last: dict, out: dict,
                     lang: str) -> None:
        """Two runs' pictures side by side and one of their curves overlaid."""
        ui, app = self.ui, self.app
        now = dict(last)
        column = overlay_column(overlay_name)
        run_a, run_b = app.owned_run(owner, a_id), app.owned_run(owner, b_id)
        key = self.compare_key(run_a, run_b, column, lang)
        if key != last.get("key"):
            now["key"] = key
            out[ui.compare_picture_a] = self.compare_pane(run_a, "a", lang)
            out[ui.compare_picture_b] = self.compare_pane(run_b, "b", lang)
            sides = {tr(lang, "left"): run_a, tr(lang, "right"): run_b}
            colon = "：" if lang == "zh-TW" else ": "
            title = " · ".join(f"{side}{colon}{views.run_label(r, lang)}" for side, r in sides.items() if r)
            label = f"{metric_name(column, lang)} — {title}" if title else tr(lang, "both_runs")
            series = dict(zip(views.COMPARE_SERIES, (run_a, run_b)))
            frame = views.compare_frame(series, column) if run_a or run_b else None
            out[ui.compare_plot] = (frame if label == last.get("label")
                                    else gr.LinePlot(frame, label=label, x_title=tr(lang, "col_steps"),
                                                     color_title=tr(lang, "compare_legend"),
                                                     color_map=views.COMPARE_COLOURS))
            now["label"] = label
            steps = [s for r in (run_a, run_b) if r for s, _ in app.kept_pictures(r)]
            latest = max(steps, default=0)
            out[ui.replay] = gr.Slider(minimum=0, maximum=max(latest, 1), value=latest, step=1)
            extra = sorted({m for r in (run_a, run_b) if r for m in views.metric_columns(r.history)})
            choices = overlay_choices(lang, extra)
            if choices != last.get("overlays"):
                now["overlays"] = choices
                out[ui.overlay] = gr.Dropdown(choices=choices, value=column)
        if now != last:
            out[ui.compare_seen] = now

    def compare_pane(self, run: Run | None, side: str, lang: str) -> str:
        """One side of the comparison as the step slider shows it at its right end: the run's
        latest picture with the views inside the game of that picture's step (the page's
        switches), so that "Show side by side" and the replay look the same."""
        if run is None:
            return ""
        shown = timelapse.pane_html(self.app, run, None, lang, side)  # keeps the newest picture first
        return shown[1] if shown is not None else self.app.picture(run, "samples", lang)

    def rare_view(self, owner: str, runs: list[Run], run: Run | None, last: dict, out: dict, lang: str) -> None:
        """The runs list and pickers, the shown run's files and the scoreboard."""
        ui, app = self.ui, self.app
        now = dict(last)
        run_id = run.id if run else None
        list_key = (runs_key(runs), lang)
        if list_key != last.get("list") or run_id != last.get("run"):
            now["list"], now["run"] = list_key, run_id
            out[ui.runs_table] = views.runs_frame(runs, app.positions(runs), lang)
            choices = [(views.run_label(r, lang), r.id) for r in reversed(runs)]
            out[ui.shown] = gr.Dropdown(choices=choices, value=run_id)
            out[ui.compare_a] = gr.Dropdown(choices=choices)
            out[ui.compare_b] = gr.Dropdown(choices=choices)
        files_key = (run_id, tuple(sorted(run.files.items())) if run and not run.active else ())
        if files_key != last.get("files"):
            now["files"] = files_key
            out[ui.files] = [run.files[k] for k in ("checkpoint", "samples", "metrics", "config")
                             if run and k in run.files and _is_file(run.files[k])] or None
        score_key = (tuple((r.id, r.state) for r in runs if r.state in ENDED_STATES), lang)
        if score_key != last.get("score"):
            now["score"] = score_key
            out[ui.scoreboard], out[ui.scoreboard_download] = app.scoreboard_view(owner, runs, lang)
        if now != last:
            out[ui.rare_seen] = now

    def current_stamps(self, owner: str, runs: list[Run], run: Run | None, a_id: Any, b_id: Any,
                       overlay_name: Any, lang: str) -> dict:
        ui, app = self.ui, self.app
        keys = {
            ui.metrics_stamp: (app.throttled(run, "metrics", (run.id, run.metrics_count, run.metric_rows))
                               if run else None, lang),
            ui.compare_stamp: self.compare_key(app.owned_run(owner, a_id), app.owned_run(owner, b_id),
                                               overlay_column(overlay_name), lang),
            ui.rare_stamp: (runs_key(runs), run.id if run else None,
                            tuple(sorted(run.files)) if run and not run.active else (), lang),
        }
        return {stamp: f"{hash(key) & 0xFFFFFFFFFFFF:x}" for stamp, key in keys.items()}

    def partner_of(self, owner: str, run: Run | None, partner_id: Any) -> Run | None:
        partner = self.app.owned_run(owner, partner_id)
        return partner if partner is not None and run is not None and partner.id != run.id else None

    # ================================================================== drawing everything
    def render(self, owner: str, shown_id: Any, a_id: Any, b_id: Any, overlay_name: Any, partner_id: Any = None,
               lang: str = "en") -> dict:
        """Every view of the page, drawn afresh (page load, a language switch...)."""
        lang = language(lang)
        runs = self.app.jobs.runs(owner)
        run = self.app.shown_run(owner, runs, shown_id)
        out: dict = {}
        # The stamps and the runs list (with the timer) first, the live view last: the
        # pump may end a run meanwhile, and a live view newer than the timer's decision
        # is fine, while an older one could be left on the page with the timer off.
        out.update(self.current_stamps(owner, runs, run, a_id, b_id, overlay_name, lang))
        self.rare_view(owner, runs, run, {}, out, lang)
        self.metrics_view(run, {}, out, lang)
        self.compare_view(owner, a_id, b_id, overlay_name, {}, out, lang)
        self.live_view(run, self.partner_of(owner, run, partner_id), runs, {}, out, lang)
        return out

    def show_run(self, owner: str, run_id: Any, a_id: Any, b_id: Any, overlay_name: Any, partner_id: Any = None,
                 lang: str = "en") -> dict:
        """After an action that picks the run(s) to show (Start, a click in the list...):
        the live view and the run picker at once, and new stamps, whose change events then
        redraw the rarer views. A small reply reaches the page sooner than `render`'s."""
        ui, app = self.ui, self.app
        runs = app.jobs.runs(owner)
        run = app.shown_run(owner, runs, run_id)
        partner = self.partner_of(owner, run, partner_id)
        out = self.current_stamps(owner, runs, run, a_id, b_id, overlay_name, lang)
        out[ui.shown] = gr.Dropdown(choices=[(views.run_label(r, lang), r.id) for r in reversed(runs)],
                                    value=run.id if run else None)
        out[ui.partner] = partner.id if partner else None
        self.live_view(run, partner, runs, {}, out, lang)
        return out

    # ================================================================== polls and redraws
    def tick(self, owner, shown_id, a_id, b_id, overlay_name, last, partner_id=None, lang="en",
             request: gr.Request = None):
        """The poll: the live view's changes, and the stamps of the rarer views."""
        ui, app = self.ui, self.app
        if not app.valid_owner(owner):
            return {ui.timer: gr.Timer(active=False), ui.live_seen: {}}
        lang = language(lang)
        app.note_page(request.session_hash if request is not None else owner)
        runs = app.jobs.runs(owner)
        run = app.shown_run(owner, runs, shown_id)
        # Stamps first, the live view last (see render): unchanged stamps trigger nothing.
        out = self.current_stamps(owner, runs, run, a_id, b_id, overlay_name, lang)
        self.live_view(run, self.partner_of(owner, run, partner_id), runs, last if isinstance(last, dict) else {},
                       out, lang)
        return out

    def refresh_stamps(self, owner, shown_id, a_id, b_id, overlay_name, lang="en"):
        """The stamps of the rarer views, and nothing else: what the live script asks Gradio
        for while its own route brings the live panes (ganapp.web.live). A changed stamp's
        change event then redraws its view."""
        if not self.app.valid_owner(owner):
            return gr.skip()
        runs = self.app.jobs.runs(owner)
        return self.current_stamps(owner, runs, self.app.shown_run(owner, runs, shown_id), a_id, b_id,
                                   overlay_name, language(lang))

    # The redraws triggered by a stamp stay silent about a missing token: on a first
    # visit the stamps change before the browser has stored the new token (page load
    # already drew everything), and an error toast there would only confuse.
    def on_metrics_stamp(self, owner, shown_id, last, lang="en"):
        if not self.app.valid_owner(owner):
            return gr.skip()
        out: dict = {}
        self.metrics_view(self.app.shown_run(owner, self.app.jobs.runs(owner), shown_id),
                          last if isinstance(last, dict) else {}, out, language(lang))
        return out or gr.skip()

    def on_compare_stamp(self, owner, a_id, b_id, overlay_name, last, lang="en"):
        if not self.app.valid_owner(owner):
            return gr.skip()
        out: dict = {}
        self.compare_view(owner, a_id, b_id, overlay_name, last if isinstance(last, dict) else {}, out,
                          language(lang))
        return out or gr.skip()

    def on_rare_stamp(self, owner, shown_id, last, lang="en"):
        if not self.app.valid_owner(owner):
            return gr.skip()
        runs = self.app.jobs.runs(owner)
        out: dict = {}
        self.rare_view(owner, runs, self.app.shown_run(owner, runs, shown_id), last if isinstance(last, dict) else {},
                       out, language(lang))
        return out or gr.skip()

    # ================================================================== load, language, links
    def on_load(self, owner, shown_id, a_id, b_id, overlay_name, partner_id, request: gr.Request = None):
        """A page opens: a visitor token (issued by the job server on a first visit), the
        language (the link's, else the browser's), the link's preset, settings and
        ready-made run in the form, and every view drawn. Nothing starts training."""
        ui, app = self.ui, self.app
        query = dict(request.query_params) if request is not None else {}
        link = links.parse(query, set(PRESETS), set(ready_made_runs()))
        header = request.headers.get("accept-language", "") if request is not None else ""
        lang = link.lang or language(header)
        out: dict = {}
        if not app.valid_owner(owner):  # a first visit, or a token of another server
            try:
                owner = app.jobs.issue_token(safety.client_host(request))
            except JobError as error:  # too many new visitors from one address
                safety.warning(error)
                return {ui.token_box: "", ui.live_token: ""}
        app.note_page(request.session_hash if request is not None else owner)
        if link.ready:
            opened = self._open_ready_once(owner, link.ready)
            if opened is not None:
                shown_id, partner_id = opened.id, None
        out.update(self.render(owner, shown_id, a_id, b_id, overlay_name, partner_id, lang))
        out[ui.owner] = owner
        out[ui.token_box] = owner
        out[ui.live_token] = owner  # for the page's live script (ganapp.web.live)
        out[ui.lang] = lang
        out[ui.lang_switch] = lang
        out[ui.partner] = partner_id if self.partner_of(owner, app.owned_run(owner, shown_id), partner_id) else None
        if lang != "en":
            for component, update in self.relabel(lang).items():
                merge(out, component, **{k: v for k, v in update.items() if k != "__type__"})
        self._fill_from_link(link, lang, out)
        for key, why in link.ignored[:3]:
            shown = field_label(key, lang) if key in self.form.fields else key  # the setting's words, not its name
            safety.info(tr(lang, "link_ignored", name=shown, why=tr(lang, why) if why in TEXT else why))
        return out

    def _open_ready_once(self, owner: str, name: str) -> Run | None:
        """A link's ready-made run, opened once per visitor (a reload shows the same run)."""
        for run in reversed(self.app.jobs.runs(owner)):
            if run.kind == "view" and run.name.split(" (")[0] == name:  # "NAME (ready-made, step N)"
                return run
        try:
            return self.app.await_view(owner, self.app.jobs.open_ready_made(owner, name))
        except (JobError, gr.Error) as error:
            safety.warning(getattr(error, "message", error))
            return None

    def _fill_from_link(self, link: links.Link, lang: str, out: dict) -> None:
        ui, form = self.ui, self.form
        base = preset_config(link.preset) if link.preset else None
        if link.preset:
            merge(out, ui.preset, value=link.preset)
            merge(out, ui.preset_note, value=safety.markdown_text(preset_note(link.preset, lang), limit=2000))
            for component, update in inside_view.preset_switches(ui, link.preset).items():
                out[component] = update
        if link.ready:
            merge(out, ui.ready_made, value=link.ready)
            merge(out, ui.preset_note, value=safety.markdown_text(ready_note(link.ready, lang), limit=2000))
        if base is None and not link.settings:
            return
        values = form.from_config(base or GANConfig())
        for name, value in link.settings.items():
            if name == "label_smoothing":
                values[form.ls_on] = value is not None
                if value is not None:
                    values[form.ls_alpha] = value
            elif name in form.fields:
                values[form.fields[name]] = value
        for component, value in values.items():
            merge(out, component, value=value)
        self._knob_states(values, out)

    def _knob_states(self, values: dict, out: dict) -> None:
        """Each technique's knobs usable exactly while its switch is on."""
        for switch, knobs in self.form.knobs.items():
            on = self.form.is_on_value(switch, values)
            for knob in knobs:
                merge(out, knob, interactive=on)

    def relabel(self, lang: str) -> dict:
        """Every static text of the page in `lang`: the page's own and the form's."""
        ui = self.ui
        out: dict = {}
        for component, prop, key, values in ui.texts:
            text = tr(lang, key, **values)
            out[component] = gr.update(**{prop: text})
        out.update(self.form.relabel(lang))
        out[ui.preset] = gr.update(label=tr(lang, "preset"), choices=preset_choices(lang))
        if ui.ready_made is not None:
            out[ui.ready_made] = gr.update(label=tr(lang, "ready_made"), choices=ready_choices(lang))
        out[ui.glossary] = gr.update(value=glossary_markdown(lang))
        out[ui.runs_table] = gr.update(headers=[tr(lang, f"col_{c}") for c in views.RUNS_COLUMNS])
        out[ui.scoreboard] = gr.update(headers=[tr(lang, f"col_{c}") for c in ("run", "name", "data", "techniques",
                                                                                "state", "steps", "seconds")])
        out[ui.overlay] = gr.update(label=tr(lang, "overlay"), choices=overlay_choices(lang))
        timelapse.relabel(ui, lang, out)
        return out

    def switch_language(self, lang, owner, shown_id, a_id, b_id, overlay_name, partner_id, preset_name, ready_name):
        """The visitor picked a language: every text relabelled and every view redrawn in it."""
        lang = language(lang)
        out: dict = {self.ui.lang: lang}
        if self.app.valid_owner(owner):
            out.update(self.render(owner, shown_id, a_id, b_id, overlay_name, partner_id, lang))
        for component, update in self.relabel(lang).items():
            merge(out, component, **{k: v for k, v in update.items() if k != "__type__"})
        note = (preset_note(preset_name, lang) if preset_name in PRESETS
                else ready_note(ready_name, lang) if ready_name in READY_MADE_NOTES else "")
        merge(out, self.ui.preset_note, value=safety.markdown_text(note, limit=2000))
        return out

    def make_link(self, page_url, lang, preset_name, ready_name, *form_values):
        """The link for the class: this page's address with the preset (or ready-made run),
        the settings that differ from it, the language, and the view the page was opened in."""
        form = self.form
        values = dict(zip(form.components, form_values))
        settings = {name: values[c] for name, c in form.fields.items()}
        for name, component in form.fields.items():
            if isinstance(component, gr.Number) and values[component] is not None:
                try:
                    settings[name] = number_value(name, values[component], integer=component.precision == 0)
                except ConfigError:
                    pass
        settings["label_smoothing"] = values[form.ls_alpha] if values[form.ls_on] else None
        preset = preset_name if preset_name in PRESETS else None
        ready = ready_name if ready_name in READY_MADE_NOTES else None
        base = preset_config(preset) if preset else GANConfig()
        url = links.build(page_url if isinstance(page_url, str) else "", settings=settings, base=base,
                          preset=preset, ready=ready, lang=language(lang))
        return gr.Textbox(value=url, visible=True)

    # ================================================================== actions
    def validate_start(self, owner, run_name, lang, a_id, b_id, overlay_name, *form_values):
        """Gradio's validator for Start: a message at each field whose value cannot start,
        in the visitor's language and words; nothing is started then."""
        lang = language(lang)
        values = dict(zip(self.form.components, form_values))
        problems = self.form.problems(values, lang)
        return [gr.validate(True, "")] * 6 + [gr.validate(c not in problems, problems.get(c, ""))
                                             for c in self.form.components]

    def start(self, owner, run_name, lang, a_id, b_id, overlay_name, *form_values):
        """Start one run from the form; show it on the left, its loss curves on the right."""
        app = self.app
        lang = language(lang)
        if not app.valid_owner(owner):
            return self._refuse(tr(lang, "no_token"), None)
        values = dict(zip(self.form.components, form_values))
        try:
            name = safety.text_param("run name", run_name, max_chars=safety.NAME_CHARS)
            config = self.form.to_config(values)
        except (InputError, ConfigError) as error:  # validate_start has said it at the field
            return self._refuse(tr(lang, "form_has_errors"), error)
        try:
            run = app.jobs.submit(owner, config, name=name, lang=lang)
        except (ConfigError, JobError) as error:
            return self._refuse(tr(lang, "server_says", text=refusal(error, lang)), None)
        app.show_notices(owner, lang)
        wait_for_first_picture(app, [run])
        return self.show_run(owner, run.id, a_id, b_id, overlay_name, None, lang)

    def start_pair(self, owner, preset_name, overlay_name, lang):
        """One click for a class: the chosen technique preset and its vanilla partner (same
        data, seed and steps), started together and shown side by side, vanilla on the left."""
        ui, app = self.ui, self.app
        lang = language(lang)
        if preset_name not in PRESETS or preset_name.endswith(": vanilla"):
            return self._refuse(tr(lang, "choose_preset_first"), None, title=tr(lang, "not_started"))
        if not app.valid_owner(owner):
            return self._refuse(tr(lang, "no_token"), None)
        partner_name = preset_name.split(":")[0] + ": vanilla"
        try:
            # Both sides draw every sample_every steps (a few percent of a vanilla run's time),
            # so that the two panes show pictures of the same step.
            base = app.jobs.submit(owner, preset_config(partner_name), name=partner_name, every_picture=True,
                                   lang=lang)
        except (ConfigError, JobError) as error:
            return self._refuse(tr(lang, "server_says", text=refusal(error, lang)), None)
        try:
            other = app.jobs.submit(owner, preset_config(preset_name), name=preset_name, every_picture=True,
                                    lang=lang)
        except (ConfigError, JobError) as error:
            app.jobs.stop(owner, base.id)  # both or neither
            app.jobs.wait(owner, base.id, timeout_s=10)
            if not base.active:
                app.jobs.remove(owner, base.id)
            return self._refuse(tr(lang, "server_says", text=refusal(error, lang)), None)
        app.watch(base, other)  # keep both sides' pictures from the first, to show them at the same steps
        app.show_notices(owner, lang)
        wait_for_first_picture(app, [base, other])
        out = self.show_run(owner, base.id, base.id, other.id, overlay_name, other.id, lang)
        choices = [(views.run_label(r, lang), r.id) for r in reversed(app.jobs.runs(owner))]
        out[ui.compare_a] = gr.Dropdown(choices=choices, value=base.id)
        out[ui.compare_b] = gr.Dropdown(choices=choices, value=other.id)
        return out

    def _refuse(self, text: str, why: Any, title: str | None = None):
        """A refusal as a toast, and nothing else changes (no error badge on any output)."""
        gr.Warning(safety.message(text), title=title or "")
        return gr.skip()

    def stop(self, owner, shown_id, partner_id, lang="en"):
        """Stop the run shown (and its partner, for a pair). The page learns of it from its
        next poll: a reply drawn now could arrive after that poll's, and show a stale state."""
        app = self.app
        if not app.valid_owner(owner):
            return
        targets = [app.owned_run(owner, shown_id), app.owned_run(owner, partner_id)]
        if targets[0] is None:
            targets[0] = next((r for r in reversed(app.jobs.runs(owner)) if r.active), None)
        active = [r for r in targets if r is not None and r.active]
        if not active:
            safety.info(tr(language(lang), "nothing_to_stop"))
        for run in active:
            app.jobs.stop(owner, run.id)

    def show(self, owner, shown_id, a_id, b_id, overlay_name, lang="en"):
        if not self.app.valid_owner(owner):
            return gr.skip()
        return self.show_run(owner, shown_id, a_id, b_id, overlay_name, None, language(lang))

    def pick_row(self, owner, a_id, b_id, overlay_name, lang, event: gr.SelectData):
        if not self.app.valid_owner(owner):
            return gr.skip()
        row = event.row_value or []
        return self.show_run(owner, row[0] if row else None, a_id, b_id, overlay_name, None, language(lang))

    def compare(self, owner, shown_id, a_id, b_id, overlay_name, lang="en"):
        app = self.app
        lang = language(lang)
        if not app.valid_owner(owner):
            return gr.skip()
        if not (app.owned_run(owner, a_id) or app.owned_run(owner, b_id)):
            safety.info(tr(lang, "choose_two_runs"))
        runs = app.jobs.runs(owner)
        stamp = self.ui.compare_stamp
        out = {stamp: self.current_stamps(owner, runs, app.shown_run(owner, runs, shown_id), a_id, b_id,
                                          overlay_name, lang)[stamp]}
        self.compare_view(owner, a_id, b_id, overlay_name, {}, out, lang)
        return out

    def replay(self, owner, a_id, b_id, step, lang="en"):
        """Both compared runs' kept pictures at (or just before) `step`, each with the views
        inside the game of its picture's step (ganapp.web.timelapse): the runs replayed."""
        app = self.app
        if not app.valid_owner(owner) or not isinstance(step, (int, float)):
            return gr.skip()
        lang = language(lang)
        out = {}
        for run_id, component, side in ((a_id, self.ui.compare_picture_a, "a"), (b_id, self.ui.compare_picture_b, "b")):
            run = app.owned_run(owner, run_id)
            shown = timelapse.pane_html(app, run, int(step), lang, side) if run else None
            if shown is not None:
                out[component] = shown[1]
        return out or gr.skip()

    def export_pair(self, owner, a_id, b_id, lang="en", with_views=None):
        """The two compared runs as one captioned animated GIF, for the course page; with
        `with_views` ("layers", "lenses"), each frame has the views of its pictures' steps."""
        app = self.app
        lang = language(lang)
        run_a = app.owned_run(owner, a_id) if app.valid_owner(owner) else None
        run_b = app.owned_run(owner, b_id) if run_a is not None else None
        frames = export.pair_frames_steps(app.kept_pictures(run_a), app.kept_pictures(run_b)) if run_b else []
        options = timelapse.gif_options(with_views)
        if not frames:
            return self._refuse(tr(lang, "gif_none"), None)
        # A preset's title after its data set ("ring8, G without batch norm: vanilla" -> "vanilla")
        # fits a caption; other names are cut to the pane's width.
        captions = tuple(views.display_name(r, lang).split("：" if lang == "zh-TW" else ": ")[-1]
                         + f" · {views.techniques_text(r, lang)}" for r in (run_a, run_b))
        suffix = "".join(f"-{option}" for option in sorted(options))
        path = app.jobs.owner_folder(owner) / f"pair-{run_a.id}-{run_b.id}-{lang}{suffix}.gif"
        export.pair_gif(frames, captions, lambda step: tr(lang, "step_only", step=f"{step:,}"), path,
                        views=(app.views_kept.all(run_a), app.views_kept.all(run_b)) if options else None,
                        layers="layers" in options, lenses="lenses" in options)
        return gr.DownloadButton(value=str(path), visible=True, label=tr(lang, "gif_download"))

    def suggest_continue(self, owner, shown_id):
        """Twice the shown run's planned steps (within the server's limit), as a suggestion."""
        run = self.app.owned_run(owner, shown_id) if self.app.valid_owner(owner) else None
        if run is None or run.config is None:
            return gr.skip()
        return min(2 * run.config.steps, self.app.jobs.limits.max_steps)

    def continue_training(self, owner, shown_id, steps, a_id, b_id, overlay_name, lang="en"):
        app = self.app
        lang = language(lang)
        run = app.owned_run(owner, shown_id) if app.valid_owner(owner) else None
        if run is None:
            return self._refuse(tr(lang, "choose_run_to_continue"), None)
        try:
            new = app.jobs.continue_run(owner, run.id, number_value("steps", steps, integer=True), lang=lang)
        except (InputError, ConfigError, JobError) as error:
            return self._refuse(tr(lang, "server_says", text=refusal(error, lang)), None)
        app.show_notices(owner, lang)
        return self.show_run(owner, new.id, a_id, b_id, overlay_name, None, lang)

    def load_checkpoint(self, owner, path, a_id, b_id, overlay_name, lang="en"):
        ui, app = self.ui, self.app
        owner = app.owner(owner)
        if not path:
            return gr.skip()
        if not isinstance(path, str):
            raise safety.refusal("choose one checkpoint file")
        lang = language(lang)
        run = app.open_upload(owner, path, lang)
        out = self.show_run(owner, run.id, a_id, b_id, overlay_name, None, lang)
        out[ui.upload] = None
        return out

    def open_ready_made(self, owner, name, a_id, b_id, overlay_name, lang="en"):
        ui, app = self.ui, self.app
        lang = language(lang)
        if name not in READY_MADE_NOTES or not app.valid_owner(owner):
            return gr.skip()
        try:
            run = app.jobs.open_ready_made(owner, name, lang=lang)
        except JobError as error:
            return self._refuse(tr(lang, "server_says", text=refusal(error, lang)), None)
        app.show_notices(owner, lang)
        try:
            app.await_view(owner, run)
        except gr.Error as error:
            return self._refuse(error.message, None)
        out = self.show_run(owner, run.id, a_id, b_id, overlay_name, None, lang)
        out[ui.ready_made] = NO_READY
        out[ui.preset_note] = safety.markdown_text(ready_note(name, lang), limit=2000)
        return out

    def copy_settings(self, owner, shown_id, lang="en"):
        run = self.app.owned_run(owner, shown_id) if self.app.valid_owner(owner) else None
        if run is None or run.config is None:
            return self._refuse(tr(language(lang), "choose_run_first"), None)
        out = self.form.from_config(run.config)
        self._knob_states(out, out)
        return out

    def apply_preset(self, name, lang="en"):
        """Fill the form from a preset, and say what the preset showed when measured."""
        if name not in PRESETS:
            return gr.skip()
        out = self.form.from_config(preset_config(name))
        self._knob_states(dict(out), out)
        out[self.ui.preset_note] = safety.markdown_text(preset_note(name, language(lang)), limit=2000)
        out.update(inside_view.preset_switches(self.ui, name))  # a lens preset: its views switched on
        return out

    def switch_knobs(self, switch: str):
        """A technique switch changed: its knobs usable exactly while it is on."""
        knobs = self.form.knobs[switch]

        def toggle(value):
            on = value not in (False, None, "off")
            updates = [gr.update(interactive=on) for _ in knobs]
            return updates[0] if len(updates) == 1 else updates  # one output takes its value bare

        toggle.__name__ = f"toggle_{switch}_knobs"
        return toggle, knobs


RUNS_KEY_FIELDS = ("id", "name", "state", "total_steps")


def runs_key(runs: list[Run]) -> tuple:
    """What the runs list shows: it changes with states, not with every step."""
    return tuple((r.id, r.name, r.state, r.total_steps, r.step if not r.active else None) for r in runs)


def wait_for_first_picture(app: GanApp, runs: list[Run]) -> None:
    """Show the first pictures straight away when the jobs start at once (~0.1-0.3 s),
    rather than on the next tick."""
    deadline = time.monotonic() + START_WAIT_S

    def waiting() -> bool:
        return any(r.state in ("starting", "running") and r.picture_count == 0 for r in runs)

    while waiting() and time.monotonic() < deadline:
        time.sleep(0.01)
    if any(r.state == "queued" and not app.jobs.waits_for_own_runs(r) for r in runs):
        time.sleep(0.1)  # the pump starts a job within 0.05 s when a slot is free
        while waiting() and time.monotonic() < deadline:
            time.sleep(0.01)


def _is_file(path: str) -> bool:
    import os

    return os.path.isfile(path)
