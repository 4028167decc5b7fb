"""The class on the page: a teacher opens a class, students join by link or code, run their
assignment with one Start, and the teacher's screen pools the results live.

    ?class=<code>      a student's link: opening it joins the class and shows the assignment
    ?view=class        the teacher's screen: the code in large type, the class's pictures,
                       the pooled table, one dot per run, and how to read mean ± std

`layout_student` (top of the controls) and `layout_section` (below) build the components,
`wire` their events; page.py calls the three. The class registry is
ganapp.server.classes (no gradio there); what a student is shown of other runs is only
the pooled table (variants, seeds and final metrics). Every text comes from
ganapp.web.text (the block "a class runs the ablation together"); everything a visitor
typed or a run's settings say is escaped here (safety.html_text).
"""

from __future__ import annotations

import base64
import io
import math
import time
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

import gradio as gr

from ganapp.config import ConfigError
from ganapp.jobs import JobError
from ganapp.presets import PRESET_TITLES_ZH, PRESETS
from ganapp.server.classes import MIN_RUNS, ClassRegistry, Classroom, cell

from . import safety
from .core import GanApp
from .safety import InputError, html_text
from .text import language, metric_name, tr

CLASS_TICK_S = 2.0  # the class's screens refresh this often (a stamp says when anything changed)
THUMB = 150  # pixels of a picture in the teacher's grid
DATA_SETS = ("ring8", "grid25", "spiral", "digits")
KIND_TECHNIQUES, KIND_ABLATION = "techniques", "ablation"
PLOT_METRICS = 2  # panels of the dot plot: the table's first (headline) metrics, at their size on a 1280 px screen
DOT_COLOURS = ("#1f77b4", "#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#666666")


def registry(app: GanApp) -> ClassRegistry:
    """The server's class registry, made once beside the JobManager."""
    if getattr(app, "classes", None) is None:
        app.classes = ClassRegistry(app.jobs)
    return app.classes


def experiment_choices(lang: str) -> list[tuple[str, str]]:
    pairs = [(tr(lang, "class_exp_pair", preset=(PRESET_TITLES_ZH.get(name, name) if lang == "zh-TW" else name)),
              f"pair:{name}") for name in PRESETS if not name.endswith(": vanilla")]
    return [(tr(lang, "class_exp_techniques"), KIND_TECHNIQUES), (tr(lang, "class_exp_ablation"), KIND_ABLATION),
            *pairs]


def experiment_spec(choice: Any, data: Any, steps: Any) -> dict[str, Any]:
    """The page's three fields as an experiment (ganapp.server.classes.make_experiment)."""
    if isinstance(steps, float) and steps.is_integer():
        steps = int(steps)
    if isinstance(choice, str) and choice.startswith("pair:"):
        return {"kind": "pair", "preset": choice[5:], **({"steps": steps} if steps else {})}
    return {"kind": choice if choice in (KIND_TECHNIQUES, KIND_ABLATION) else KIND_TECHNIQUES,
            "data": data if isinstance(data, str) else "ring8", "steps": steps or 2000}


# ================================================================== layout
def layout_student(ui: SimpleNamespace, lang: str) -> None:
    """The student's panel, at the top of the controls: hidden until the page is in a class."""
    def said(component, prop, key):
        ui.texts.append((component, prop, key, {}))
        return component

    ui.class_code = gr.State(None)  # the class this tab is in (its long code), or None
    ui.class_seen = gr.State(None)
    ui.class_timer = gr.Timer(CLASS_TICK_S, active=False)
    with gr.Column(visible=False, elem_id="class-student") as ui.class_student:
        ui.class_assignment = gr.HTML("", elem_id="class-assignment", padding=False)
        ui.class_start = said(gr.Button(tr(lang, "class_start"), variant="primary", size="lg",
                                        elem_id="class-start"), "value", "class_start")
        ui.class_own = said(gr.Button(tr(lang, "class_own"), size="md", elem_id="class-own"), "value", "class_own")


def layout_section(ui: SimpleNamespace, limits, lang: str) -> None:
    """The class section below the stage: join by code, open a class, and the teacher's board."""
    def said(component, prop, key, **values):
        ui.texts.append((component, prop, key, values))
        return component

    with gr.Column(elem_id="class-section"):
        said(gr.Markdown(f"## {tr(lang, 'class_section')}", elem_id="class-heading"), "value", "class_heading")
        with gr.Row(elem_id="class-join", equal_height=True):
            ui.class_code_in = said(gr.Textbox(label=tr(lang, "class_join_code"), max_length=64,
                                               elem_id="class-code-in", scale=1), "label", "class_join_code")
            ui.class_name_in = said(gr.Textbox(label=tr(lang, "class_your_name"), max_length=40,
                                               elem_id="class-name-in", scale=2), "label", "class_your_name")
            ui.class_join = said(gr.Button(tr(lang, "class_join"), elem_id="class-join-button", scale=1),
                                 "value", "class_join")
        ui.class_student_table = gr.HTML("", elem_id="class-student-table", padding=False)
        with gr.Accordion(tr(lang, "class_teacher_head"), open=False, elem_id="class-setup") as setup:
            said(setup, "label", "class_teacher_head")
            with gr.Row():
                ui.class_experiment = said(gr.Dropdown(experiment_choices(lang), value=KIND_TECHNIQUES,
                                                       label=tr(lang, "class_experiment"), elem_id="class-experiment",
                                                       scale=3), "label", "class_experiment")
                ui.class_data = said(gr.Dropdown(list(DATA_SETS), value="ring8", label=tr(lang, "class_data"),
                                                 elem_id="class-data", scale=1), "label", "class_data")
                ui.class_steps = said(gr.Number(2000, precision=0, minimum=1, maximum=limits.max_steps,
                                                label=tr(lang, "class_steps"), elem_id="class-steps", scale=1),
                                      "label", "class_steps")
            with gr.Row():
                ui.class_names = said(gr.Checkbox(False, label=tr(lang, "class_names"), elem_id="class-names"),
                                      "label", "class_names")
                ui.class_open = said(gr.Button(tr(lang, "class_open"), variant="primary", elem_id="class-open"),
                                     "value", "class_open")
                ui.class_assign = said(gr.Button(tr(lang, "class_assign"), elem_id="class-assign"),
                                       "value", "class_assign")
                ui.class_close = said(gr.Button(tr(lang, "class_close"), variant="stop", elem_id="class-close"),
                                      "value", "class_close")
        with gr.Column(visible=False, elem_id="class-board") as ui.class_board:
            ui.class_banner = gr.HTML("", elem_id="class-banner", padding=False)
            ui.class_table = gr.HTML("", elem_id="class-table", padding=False)
            with gr.Row(elem_id="class-pictures", equal_height=False):
                ui.class_plot = gr.HTML("", elem_id="class-plot", padding=False)
                ui.class_grid = gr.HTML("", elem_id="class-grid", padding=False)
            ui.class_read = said(gr.Markdown(tr(lang, "class_how_to_read"), elem_id="class-read"), "value",
                                 "class_how_to_read")
            with gr.Row():
                ui.class_csv = said(gr.DownloadButton(tr(lang, "class_export_csv"), value=None, elem_id="class-csv"),
                                    "label", "class_export_csv")
                ui.class_md = said(gr.DownloadButton(tr(lang, "class_export_md"), value=None, elem_id="class-md"),
                                   "label", "class_export_md")


# ================================================================== views
def _html_table(table: dict[str, Any], lang: str) -> str:
    """The pooled table as HTML: variant, techniques, n, each metric's mean ± std; failed or
    stopped runs and small n said in the variant's cell; every cell escaped."""
    columns = table["metrics"]
    if not table["rows"]:
        return f'<p class="class-empty">{html_text(tr(lang, "class_no_runs"))}</p>'
    head = [tr(lang, "class_col_variant"), tr(lang, "class_col_techniques"), tr(lang, "class_col_n")] + \
        [metric_name(name, lang) for name in columns]
    lines = ['<div class="class-table-scroll"><table class="class-pooled"><thead><tr>'
             + "".join(f"<th>{html_text(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for row in table["rows"]:
        notes = []
        if row["apart"]:
            notes.append(tr(lang, "class_apart", n=row["apart"]))
        if row["active"]:
            notes.append(tr(lang, "class_active", n=row["active"]))
        if row["few"]:
            notes.append(tr(lang, "class_few", n=row["n"], least=MIN_RUNS))
        variant = f'<b>{html_text(row["variant"], 120)}</b>' + "".join(
            f'<div class="class-note{" few" if "3" in note and row["few"] else ""}">{html_text(note)}</div>'
            for note in notes)
        techniques = tr(lang, "class_no_technique") if row["techniques"] == "none" else row["techniques"] or "–"
        cells = [variant, html_text(techniques), str(row["n"])] + \
            [html_text(cell(row, name)) for name in columns]
        lines.append(f'<tr class="{"few" if row["few"] else ""}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    if table["reference"]:
        cells = [html_text(tr(lang, "real_data")), "–", "–"] + [
            html_text(f"{table['reference'][n]:.3g}") if n in table["reference"] else "–" for n in columns]
        lines.append("<tr class=\"reference\">" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    lines.append("</tbody></table></div>")
    lines.append(f'<p class="class-legend">{html_text(tr(lang, "class_legend"), 600)}</p>')
    return "".join(lines)


def _font(size: int):
    from .export import caption_font

    return caption_font(size)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round values between low and high (1, 2, 2.5 or 5 times a power of ten apart)."""
    raw = (high - low) / count
    if not raw > 0 or not math.isfinite(raw):
        return [low]
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    return [round(first + k * step, 12) + 0.0 for k in range(int((high - first) / step) + 1)]


def dots_png(table: dict[str, Any], lang: str) -> bytes | None:
    """One panel per metric (the table's first PLOT_METRICS): a column per variant, one dot
    per finished run (seeds side by side), the mean as a bar and ± std as a line. Text 18 px."""
    from PIL import Image, ImageDraw

    metrics = table["metrics"][:PLOT_METRICS]
    variants = [row["variant"] for row in table["rows"]]
    if not metrics or not table["dots"]:
        return None
    panel_w, panel_h, left, bottom, top = 360, 380, 70, 110, 40
    image = Image.new("RGB", (panel_w * len(metrics), panel_h), "white")
    draw = ImageDraw.Draw(image)
    font, small = _font(20), _font(18)
    for index, name in enumerate(metrics):
        x0 = index * panel_w
        values = [d[name] for d in table["dots"] if name in d and math.isfinite(d[name])]
        if not values:
            continue
        for row in table["rows"]:  # the std bars inside the frame too
            mean, std = row.get(f"{name}_mean", math.nan), row.get(f"{name}_std", math.nan)
            if math.isfinite(mean) and math.isfinite(std):
                values += [mean - std, mean + std]
        low, high = min(values), max(values)
        if high - low < 1e-9:
            low, high = low - 1, high + 1
        pad = (high - low) * 0.08
        low, high = low - pad, high + pad
        plot_w, plot_h = panel_w - left - 20, panel_h - top - bottom

        def y_of(value: float) -> float:
            return top + plot_h * (1 - (value - low) / (high - low))

        draw.text((x0 + panel_w // 2, 4), metric_name(name, lang), fill="#1f2937", font=font, anchor="mt")
        draw.line([(x0 + left, top), (x0 + left, top + plot_h), (x0 + left + plot_w, top + plot_h)], fill="#374151")
        for value in nice_ticks(low, high):
            y = y_of(value)
            draw.line([(x0 + left - 5, y), (x0 + left, y)], fill="#374151")
            draw.line([(x0 + left + 1, y), (x0 + left + plot_w, y)], fill="#e5e7eb")
            draw.text((x0 + left - 8, y), f"{value:g}", fill="#1f2937", font=small, anchor="rm")
        step = plot_w / max(1, len(variants))
        for column, variant in enumerate(variants):
            cx = x0 + left + step * (column + 0.5)
            colour = DOT_COLOURS[column % len(DOT_COLOURS)]
            dots = sorted((d["seed"], d[name]) for d in table["dots"] if d["variant"] == variant and name in d
                          and math.isfinite(d[name]))
            width = min(step * 0.45, 7.0 * len(dots))
            for k, (_, value) in enumerate(dots):  # the seeds side by side, left of the centre
                dx = -step * 0.12 + ((k / (len(dots) - 1) - 0.5) * width if len(dots) > 1 else 0)
                y = y_of(value)
                draw.ellipse([cx + dx - 6, y - 6, cx + dx + 6, y + 6], fill=colour, outline="#1f2937")
            row = table["rows"][column]
            mean, std = row.get(f"{name}_mean", math.nan), row.get(f"{name}_std", math.nan)
            if math.isfinite(mean):  # right of the dots: the mean, and ± one std with caps
                mx = cx + step * 0.28
                draw.line([(mx - 9, y_of(mean)), (mx + 9, y_of(mean))], fill="#1f2937", width=4)
                if math.isfinite(std) and std > 0:
                    draw.line([(mx, y_of(mean - std)), (mx, y_of(mean + std))], fill="#1f2937", width=2)
                    for end in (mean - std, mean + std):
                        draw.line([(mx - 5, y_of(end)), (mx + 5, y_of(end))], fill="#1f2937", width=2)
            label = variant if len(variant) <= 14 else variant[:13] + "…"
            label_image = Image.new("RGBA", (130, 26), (255, 255, 255, 0))
            ImageDraw.Draw(label_image).text((128, 13), label, fill="#1f2937", font=small, anchor="rm")
            rotated = label_image.rotate(40, expand=True)
            image.paste(rotated, (int(cx - rotated.width + 12), int(top + plot_h + 4)), rotated)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=1)
    return buffer.getvalue()


@lru_cache(maxsize=512)
def _thumbnail(key: tuple, png: bytes) -> str:
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.thumbnail((THUMB, THUMB))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def grid_html(pictures: list[dict[str, Any]], lang: str) -> str:
    """The class's current pictures, small, each captioned by variant and seed (and the
    student's name only when the class shows names; else "student 3")."""
    if not pictures:
        return f'<p class="class-empty">{html_text(tr(lang, "class_no_pictures"))}</p>'
    tiles = []
    for picture in pictures:
        who = picture["name"] or tr(lang, "class_student_n", n=picture["student"])
        caption = f'{picture["variant"]} · {tr(lang, "seed", seed=picture["seed"])}'
        where = tr(lang, "step_of", step=f'{picture["step"]:,}', total=f'{picture["steps"]:,}')
        data = _thumbnail(picture["key"], picture["png"])
        tiles.append(f'<figure class="class-tile state-{html_text(picture["state"], 20)}">'
                     f'<img alt="{html_text(caption)}, {html_text(where)}" src="data:image/png;base64,{data}">'
                     f'<figcaption><b>{html_text(caption, 80)}</b><br>{html_text(where)} · {html_text(who, 60)}'
                     "</figcaption></figure>")
    return '<div class="class-grid">' + "".join(tiles) + "</div>"


def banner_html(room: Classroom, link: str, board_link: str, lang: str) -> str:
    """The code in large type, the students' link, the teacher's screen link, and the class's state."""
    closes = time.strftime("%H:%M", time.gmtime(room.closes))
    state = tr(lang, "class_closes", time=closes, students=len(room.students), runs=len(room.runs)) if room.open \
        else tr(lang, "class_closed")
    return ('<div class="class-banner">'
            f'<div class="class-code-label">{html_text(tr(lang, "class_code_big"))}</div>'
            f'<div class="class-code" id="class-short-code">{html_text(room.short)}</div>'
            f'<div class="class-what">{html_text(experiment_text(room.experiment, lang), 300)}</div>'
            f'<div class="class-links">{html_text(tr(lang, "class_link_label"))}: '
            f'<a href="{html_text(link, 400)}" id="class-link">{html_text(link, 400)}</a><br>'
            f'{html_text(tr(lang, "class_board_link"))}: <a href="{html_text(board_link, 400)}" id="class-board-link">'
            f'{html_text(board_link, 400)}</a></div>'
            f'<div class="class-state">{html_text(state)}</div></div>')


def experiment_text(experiment, lang: str) -> str:
    """What the class runs, in the visitor's language."""
    if experiment.kind == "pair":
        preset = PRESET_TITLES_ZH.get(experiment.preset, experiment.preset) if lang == "zh-TW" else experiment.preset
        return tr(lang, "class_what_pair", preset=preset, steps=f"{experiment.steps:,}")
    key = "class_what_techniques" if experiment.kind == KIND_TECHNIQUES else "class_what_ablation"
    return tr(lang, key, data=experiment.data, steps=f"{experiment.steps:,}")


def assignment_html(room: Classroom, number: int, variant: str, seed: int, lang: str, done: bool = False) -> str:
    experiment = room.experiment
    config = experiment.config(variant, seed)
    techniques = "+".join(config.techniques) or tr(lang, "vanilla")
    lines = [tr(lang, "class_you_are", n=number, code=room.short),
             tr(lang, "class_assignment", variant=variant, techniques=techniques, seed=seed,
                steps=f"{experiment.steps:,}", data=experiment.data)]
    if done:
        lines.append(tr(lang, "class_done"))
    if not room.open:
        lines.append(tr(lang, "class_closed"))
    return '<div class="class-assignment">' + "".join(f"<p>{html_text(line, 300)}</p>" for line in lines) + "</div>"


def _base_url(page_url: Any) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(page_url if isinstance(page_url, str) else "")
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.scheme else (parts.path or "/")


# ================================================================== handlers
class ClassHandlers:
    """The class's events over the page's components and its handlers (`h`, for the live panes).
    The methods are named class_* : Gradio names each event after its function, and a page
    event named "open_class" or "start" would take the API's and the page's own names."""

    def __init__(self, app: GanApp, ui: SimpleNamespace, form, h):
        self.app, self.ui, self.form, self.h = app, ui, form, h
        self.classes = registry(app)
        self.board_outputs = [ui.class_board, ui.class_banner, ui.class_table, ui.class_plot, ui.class_grid,
                              ui.class_csv, ui.class_md]
        self.outputs = [ui.class_code, ui.class_seen, ui.class_timer, ui.class_student, ui.class_assignment,
                        ui.class_student_table, *self.board_outputs]
        self.load_outputs = [*self.outputs, ui.class_experiment]
        self._links: dict[str, str] = {}  # class code -> the page's address, for its links
        self._dots: dict[str, tuple[tuple, str]] = {}  # class code -> (what was drawn, the plot's <img>)

    # ---------------------------------------------------------------- drawing
    def draw(self, owner: str, code: Any, last: Any, lang: str) -> dict:
        """Everything the class shows this tab, sent only when its stamp changed: the teacher's
        board (code, table, dots, pictures, exports) or a student's assignment and table."""
        ui, classes = self.ui, self.classes
        out: dict = {}
        room = classes._find(code) if code else None
        teaching = room is not None and room.teacher == self.app.jobs.owner_key(owner)
        if room is None and not code:
            room = classes.teaching(owner)
            teaching = room is not None
        if room is None:
            return {ui.class_timer: gr.Timer(active=False), ui.class_student: gr.Column(visible=False),
                    ui.class_board: gr.Column(visible=False), ui.class_code: None}
        stamp = (classes.stamp(room, pictures=teaching), lang, teaching)
        if isinstance(last, dict) and last.get("stamp") == repr(stamp):
            return {}
        out[ui.class_seen] = {"stamp": repr(stamp)}
        out[ui.class_code] = room.code
        out[ui.class_timer] = gr.Timer(active=room.open or any(e.run.active for e in room.runs))
        if teaching:
            table = classes.table(owner, room.code)
            base = self._links.get(room.code, "/")
            link, board = f"{base}?class={room.code}&lang={lang}", f"{base}?view=class&lang={lang}"
            out[ui.class_board] = gr.Column(visible=True)
            out[ui.class_banner] = banner_html(room, link, board, lang)
            out[ui.class_table] = _html_table(table, lang)
            out[ui.class_plot] = self.dots_html(room.code, table, lang)
            out[ui.class_grid] = grid_html(classes.pictures(owner, room.code), lang)
            folder = self.app.jobs.owner_folder(owner)
            csv_path, md_path = folder / f"class-{room.short}.csv", folder / f"class-{room.short}.md"
            csv_path.write_text(classes.export(owner, room.code, "csv"), encoding="utf-8")
            md_path.write_text(classes.export(owner, room.code, "markdown"), encoding="utf-8")
            out[ui.class_csv] = gr.DownloadButton(value=str(csv_path))
            out[ui.class_md] = gr.DownloadButton(value=str(md_path))
            out[ui.class_student] = gr.Column(visible=False)
        else:
            _, student, variant, seed = classes.assignment(owner, room.code)
            out[ui.class_student] = gr.Column(visible=True)
            out[ui.class_assignment] = assignment_html(room, student.number, variant, seed, lang,
                                                       done=classes.assignment_done(room, student))
            out[ui.class_student_table] = _html_table(classes.table(owner, room.code), lang)
            out[ui.class_board] = gr.Column(visible=False)
        return out

    def dots_html(self, code: str, table: dict, lang: str) -> str:
        """The dot plot as an <img>, drawn again only when the finished runs change (60 ms a drawing)."""
        key = (code, lang, repr(table["dots"]))
        cached = self._dots.get(code)
        if cached is not None and cached[0] == key:
            return cached[1]
        png = dots_png(table, lang)
        html = "" if png is None else (f'<img class="class-dots" alt="{html_text(tr(lang, "class_plot_alt"))}" '
                                       f'src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">')
        if len(self._dots) > 100:
            self._dots.clear()
        self._dots[code] = (key, html)
        return html

    def _refuse(self, lang: str, error: Exception):
        gr.Warning(safety.message(tr(lang, "server_says", text=str(error))))
        return gr.skip()

    # ---------------------------------------------------------------- events
    def class_on_load(self, owner, lang, request: gr.Request = None):
        """After the page's own load: a link's class joins it (a student) or shows it (its
        teacher); `?view=class` shows the teacher's latest class."""
        if not self.app.valid_owner(owner):
            return {}
        lang = language(lang)
        out = {self.ui.class_experiment: gr.Dropdown(choices=experiment_choices(lang))}
        query = dict(request.query_params) if request is not None else {}
        code = query.get("class")
        if code:
            room = self.classes._find(code)
            if room is not None and room.teacher == self.app.jobs.owner_key(owner):
                return {**out, **self.draw(owner, room.code, None, lang)}
            try:
                room, _ = self.classes.join(owner, code, client=safety.client_host(request))
            except (JobError, ConfigError) as error:
                self._refuse(lang, error)
                return out
            safety.info(tr(lang, "class_joined", code=room.short))
            return {**out, **self.draw(owner, room.code, None, lang)}
        return {**out, **self.draw(owner, None, None, lang)}

    def class_tick(self, owner, code, last, lang):
        if not self.app.valid_owner(owner):
            return {self.ui.class_timer: gr.Timer(active=False)}
        return self.draw(owner, code, last, language(lang)) or gr.skip()

    def class_relabel(self, lang, owner, code):
        lang = language(lang)
        out = {self.ui.class_experiment: gr.Dropdown(choices=experiment_choices(lang))}
        if self.app.valid_owner(owner) and (code or self.classes.teaching(owner)):
            out.update(self.draw(owner, code, None, lang))
        return out

    def class_join(self, owner, code, name, lang, request: gr.Request = None):
        lang = language(lang)
        if not self.app.valid_owner(owner):
            return self._refuse(lang, JobError(tr(lang, "no_token")))
        try:
            name = safety.text_param("name", name, max_chars=40)
            room, _ = self.classes.join(owner, code, client=safety.client_host(request), name=name)
        except (JobError, ConfigError, InputError) as error:
            return self._refuse(lang, error)
        safety.info(tr(lang, "class_joined", code=room.short))
        return self.draw(owner, room.code, None, lang)

    def class_open(self, page_url, owner, choice, data, steps, names, lang):
        lang = language(lang)
        if not self.app.valid_owner(owner):
            return self._refuse(lang, JobError(tr(lang, "no_token")))
        try:
            room = self.classes.open_class(owner, experiment_spec(choice, data, steps), show_names=bool(names))
        except (JobError, ConfigError) as error:
            return self._refuse(lang, error)
        self._remember_links(room, page_url, lang)
        safety.info(tr(lang, "class_opened", code=room.short))
        return self.draw(owner, room.code, None, lang)

    def _remember_links(self, room: Classroom, page_url: Any, lang: str) -> None:
        self._links[room.code] = _base_url(page_url)
        if len(self._links) > 1000:
            self._links.pop(next(iter(self._links)))

    def class_assign(self, page_url, owner, code, choice, data, steps, lang):
        lang = language(lang)
        try:
            room = self.classes.assign(owner, code or "", experiment_spec(choice, data, steps))
        except (JobError, ConfigError) as error:
            return self._refuse(lang, error)
        self._remember_links(room, page_url, lang)
        return self.draw(owner, room.code, None, lang)

    def class_close(self, owner, code, lang):
        lang = language(lang)
        try:
            room = self.classes.close(owner, code or "")
        except (JobError, ConfigError) as error:
            return self._refuse(lang, error)
        return self.draw(owner, room.code, None, lang)

    def class_start(self, owner, code, lang, a_id, b_id, overlay_name):
        """One press: the student's assigned run starts (their own run), shown in the live panes."""
        from .handlers import wait_for_first_picture

        lang = language(lang)
        if not self.app.valid_owner(owner) or not code:
            return self._refuse(lang, JobError(tr(lang, "class_not_in")))
        try:
            run, variant, seed = self.classes.start_assignment(owner, code)
        except (JobError, ConfigError) as error:
            return self._refuse(lang, error)
        safety.info(tr(lang, "class_started", variant=variant, seed=seed))
        wait_for_first_picture(self.app, [run])
        return self.h.show_run(owner, run.id, a_id, b_id, overlay_name, None, lang)

    def class_start_own(self, owner, code, lang, a_id, b_id, overlay_name, *form_values):
        """The form's settings as a run of the student's own, pooled under its own variant."""
        lang = language(lang)
        if not self.app.valid_owner(owner) or not code:
            return self._refuse(lang, JobError(tr(lang, "class_not_in")))
        try:
            config = self.form.to_config(dict(zip(self.form.components, form_values)))
            run, variant = self.classes.start_own(owner, code, config)
        except (InputError, ConfigError, JobError) as error:
            return self._refuse(lang, error)
        safety.info(tr(lang, "class_started", variant=variant, seed=config.seed))
        return self.h.show_run(owner, run.id, a_id, b_id, overlay_name, None, lang)


def wire(demo: gr.Blocks, ui: SimpleNamespace, form, h, loaded) -> ClassHandlers:
    """The class's events; `loaded` is the page's load event (the token exists after it)."""
    from .style import PAGE_URL_JS

    c = ClassHandlers(h.app, ui, form, h)
    quick = dict(show_progress="hidden", api_visibility="private", concurrency_limit=None)
    views_in = [ui.compare_a, ui.compare_b, ui.overlay]
    loaded.then(c.class_on_load, [ui.owner, ui.lang], c.load_outputs, **quick)
    ui.class_timer.tick(c.class_tick, [ui.owner, ui.class_code, ui.class_seen, ui.lang], c.outputs, **quick,
                        queue=False)
    # A language switch: the experiment menu and the class's views in the new language at once.
    ui.lang_switch.input(c.class_relabel, [ui.lang_switch, ui.owner, ui.class_code], c.load_outputs, **quick)
    ui.class_join.click(c.class_join, [ui.owner, ui.class_code_in, ui.class_name_in, ui.lang], c.outputs, **quick)
    ui.class_code_in.submit(c.class_join, [ui.owner, ui.class_code_in, ui.class_name_in, ui.lang], c.outputs, **quick)
    setup = [ui.class_experiment, ui.class_data, ui.class_steps]
    ui.class_open.click(c.class_open, [ui.page_url, ui.owner, *setup, ui.class_names, ui.lang], c.outputs,
                        js=PAGE_URL_JS, **quick)
    ui.class_assign.click(c.class_assign, [ui.page_url, ui.owner, ui.class_code, *setup, ui.lang], c.outputs,
                          js=PAGE_URL_JS, **quick)
    ui.class_close.click(c.class_close, [ui.owner, ui.class_code, ui.lang], c.outputs, **quick)
    ui.class_start.click(c.class_start, [ui.owner, ui.class_code, ui.lang, *views_in], h.shown_outputs, **quick)
    ui.class_own.click(c.class_start_own, [ui.owner, ui.class_code, ui.lang, *views_in, *form.components],
                       h.shown_outputs, **quick)
    return c
