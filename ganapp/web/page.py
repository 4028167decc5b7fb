"""The page's layout and wiring: build_demo(manager) -> gr.Blocks.

The first screen is the lesson (at 1280x720 and 1920x1080, without scrolling): the
chooser, "Start the pair", Start and Stop on the left, with the settings folded under
them; on the right two panes, each a caption (state, step / total, name, techniques, the
headline metric) over a live picture, and a line saying what to look for. Below it: the
measured notes and metrics, your runs, the comparison, the scoreboard, the glossary,
loading a checkpoint and the API. Handlers live in ganapp.web.handlers, the views in
ganapp.web.views, the words in ganapp.web.text.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from types import SimpleNamespace

import gradio as gr

from ganapp.config import GANConfig
from ganapp.jobs import JobManager
from ganapp.presets import ready_made_runs

from . import api, draw, games_view, live, views
from . import classes_view  # a class runs the ablation together
from . import inside_view  # see inside the game: D's heatmap, G's arrows, the lenses
from . import play  # pause, single steps, slow motion
from . import timelapse  # the step slider replays the views inside the game too
from .core import FAST_TICK_S, METRIC_PLOTS, GanApp
from .form import ConfigForm
from .handlers import NO_PRESET, NO_READY, Handlers, glossary_markdown, look_for, overlay_choices, preset_choices, \
    ready_choices
from .style import COPY_JS, PAGE_URL_JS, REMEMBER_RUN_JS, SHOW_PANES_JS
from .text import LANGUAGES, tr

AXES = dict(x_axis_format="d", y_axis_format=".3~r", x_title="step", y_title=" ")  # whole steps, short numbers
LANG = "en"  # the page is laid out in English; on_load relabels it for other languages


def layout(app: GanApp, limits) -> tuple[SimpleNamespace, ConfigForm]:
    """Every component of the page, in a namespace, and the settings form. Static texts are
    registered in ui.texts (component, property, text key, values) for relabelling."""
    ui = SimpleNamespace(texts=[])

    def said(component, prop: str, key: str, **values):
        ui.texts.append((component, prop, key, values))
        return component

    ui.owner = gr.BrowserState(None, storage_key="ganapp-owner-token")
    ui.lang = gr.State(LANG)
    ui.partner = gr.State(None)  # the second run of a pair, shown in the right pane
    # What this tab already shows, per group of views, so that polls send only changes,
    # and the stamps whose changes trigger the rarer views' redraws (see handlers).
    ui.live_seen, ui.metrics_seen, ui.compare_seen, ui.rare_seen = (gr.State(None) for _ in range(4))
    # The stamps are hidden text boxes rather than States: a direct (unqueued) event's
    # changed States trigger no change events in the browser, a changed value does.
    ui.metrics_stamp, ui.compare_stamp, ui.rare_stamp = (gr.Textbox("", visible="hidden", elem_id=f"{name}-stamp")
                                                         for name in ("metrics", "compare", "rare"))
    ui.page_url = gr.Textbox("", visible="hidden", elem_id="page-url")
    ui.timer = gr.Timer(FAST_TICK_S, active=False)
    # The Gradio poll, clicked by the page's live script (ganapp.web.live) when a rarer view
    # has news; the live panes themselves come from the script's own light route.
    ui.live_refresh = gr.Button("", visible="hidden", elem_id="live-refresh")
    ui.live_token = gr.Textbox("", visible="hidden", elem_id="live-token")  # the script's token (on_load sets it)
    # The rarer views' stamps alone, clicked by the live script while its route answers: a
    # Gradio event that carries three short strings, not the live panes the route already sent.
    ui.stamps_refresh = gr.Button("", visible="hidden", elem_id="stamps-refresh")

    with gr.Row(elem_id="header"):
        ui.title = said(gr.Markdown(f"# {tr(LANG, 'title')}", elem_id="title"), "value", "title_md")
    with gr.Row(elem_id="main"):
        with gr.Column(scale=1, min_width=300, elem_id="controls"):
            classes_view.layout_student(ui, LANG)  # a student's class assignment (hidden outside a class)
            ui.preset = gr.Dropdown(preset_choices(LANG), value=NO_PRESET, label=tr(LANG, "preset"), elem_id="preset")
            ui.pair_button = said(gr.Button(tr(LANG, "pair_button"), variant="primary", size="lg",
                                            elem_id="pair-button"), "value", "pair_button")
            with gr.Row():
                ui.start_button = said(gr.Button(tr(LANG, "start"), variant="primary", elem_id="start-button",
                                                 min_width=100), "value", "start")
                ui.stop_button = said(gr.Button(tr(LANG, "stop"), variant="stop", elem_id="stop-button",
                                                min_width=100), "value", "stop")
            play.build(ui, LANG)  # pause, single steps, slow motion (ganapp.web.play)
            choices = ready_made_runs()
            ui.ready_made = gr.Dropdown(ready_choices(LANG), value=NO_READY, label=tr(LANG, "ready_made"),
                                        elem_id="ready-made", visible=bool(choices))
            with gr.Accordion(tr(LANG, "settings"), open=False, elem_id="settings") as ui.settings:
                said(ui.settings, "label", "settings")
                form = ConfigForm(GANConfig(), limits.max_steps, max_batch_size=limits.max_batch_size,
                                  max_hidden_dim=limits.max_hidden_dim)
                ui.run_name = said(gr.Textbox(label=tr(LANG, "run_name"), max_length=80, elem_id="run-name"),
                                   "label", "run_name")
            # The language and the link last in the keyboard's order: Start comes first.
            with gr.Row(elem_id="share-row"):
                ui.lang_switch = gr.Radio([(name, code) for code, name in LANGUAGES.items()], value=LANG,
                                          show_label=False, label=tr(LANG, "language"), container=False,
                                          elem_id="lang-switch", min_width=230)
                ui.link_button = said(gr.Button(tr(LANG, "copy_link"), size="md", elem_id="link-button",
                                                min_width=200), "value", "copy_link")
            ui.link_box = said(gr.Textbox(label=tr(LANG, "link_box"), visible=False, interactive=False,
                                          buttons=["copy"], elem_id="share-link"), "label", "link_box")
        with gr.Column(scale=3, elem_id="stage"):
            with gr.Row(elem_id="panes", equal_height=False):
                with gr.Column(elem_id="pane-a", min_width=300):
                    ui.status = gr.HTML(app.status_html(None, LANG), elem_id="status", padding=False)
                    with gr.Column(elem_id="stack-a", elem_classes="inside-stack"):  # the inside views on it
                        ui.samples = gr.HTML(views.picture_html(None, "", tr(LANG, "samples_here")),
                                             elem_id="samples", padding=False)
                        inside_view.build_layers(ui)
                with gr.Column(elem_id="pane-b", min_width=300):
                    ui.status_b = gr.HTML(views.empty_caption_html(LANG), elem_id="status-b", padding=False)
                    # The loss curves are a picture the job draws (ganapp.curves): a poll that
                    # sent two plots of 240 points cost the server 15 ms, a picture 0.1 ms.
                    with gr.Column(elem_id="stack-b", elem_classes="inside-stack"):  # a partner's views on it
                        ui.samples_b = gr.HTML(views.picture_html(None, "", tr(LANG, "curves_here")),
                                               elem_id="samples-b", padding=False)
                        inside_view.build_layers(ui, "b")
            ui.look_for = gr.HTML(look_for(None, None, LANG), elem_id="look-for", padding=False)
            inside_view.build_panel(ui)

    with gr.Column(elem_id="below"):
        classes_view.layout_section(ui, limits, LANG)  # join a class, open one, the teacher's screen
        with gr.Column(elem_id="details"):
            said(gr.Markdown(f"## {tr(LANG, 'section_details')}"), "value", "h_details")
            ui.preset_note = gr.Markdown("", elem_id="preset-note")
            with gr.Row(visible=False) as ui.metrics_row:
                with gr.Column(scale=3):
                    with gr.Row():
                        ui.metric_plots = [gr.LinePlot(None, x="step", y="value", show_label=True, height=200, **AXES,
                                                       visible=False, min_width=220, elem_id=f"metric-plot-{i}")
                                           for i in range(METRIC_PLOTS)]
                with gr.Column(scale=2):
                    ui.metrics_picture = gr.HTML("", elem_id="metrics-picture")
                    ui.metrics_text = gr.Markdown("", elem_id="metrics-text")
        ui.games = games_view.layout(LANG)  # historical averaging in a tiny game (folded)
        with gr.Column(elem_id="runs-section"):
            said(gr.Markdown(f"## {tr(LANG, 'section_runs')}"), "value", "h_runs")
            ui.runs_table = said(gr.Dataframe(headers=[tr(LANG, f"col_{c}") for c in views.RUNS_COLUMNS], value=None,
                                              interactive=False, wrap=True, elem_id="runs-table",
                                              label=tr(LANG, "runs_table")), "label", "runs_table")
            with gr.Row():
                ui.shown = said(gr.Dropdown([], value=None, label=tr(LANG, "shown_run"), allow_custom_value=True,
                                            elem_id="shown-run", scale=3), "label", "shown_run")
                ui.copy_button = said(gr.Button(tr(LANG, "copy_settings"), scale=1), "value", "copy_settings")
                ui.continue_steps = said(gr.Number(None, precision=0, label=tr(LANG, "continue_to"), scale=1,
                                                   min_width=140, elem_id="continue-steps"), "label", "continue_to")
                ui.continue_button = said(gr.Button(tr(LANG, "continue"), scale=1), "value", "continue")
            ui.files = said(gr.File(label=tr(LANG, "files"), file_count="multiple", interactive=False,
                                    elem_id="run-files"), "label", "files")
        with gr.Accordion(tr(LANG, "section_compare"), open=True, elem_id="compare-section") as compare_section:
            said(compare_section, "label", "section_compare")
            with gr.Row():  # the run pickers wider than the curve's: a pair's names differ at their ends
                ui.compare_a = said(gr.Dropdown([], value=None, label=tr(LANG, "left"), allow_custom_value=True,
                                                elem_id="compare-a", scale=2, min_width=280), "label", "left")
                ui.compare_b = said(gr.Dropdown([], value=None, label=tr(LANG, "right"), allow_custom_value=True,
                                                elem_id="compare-b", scale=2, min_width=280), "label", "right")
                ui.overlay = gr.Dropdown(overlay_choices(LANG), value="g_loss", label=tr(LANG, "overlay"),
                                         allow_custom_value=True, elem_id="compare-curve", scale=1)
                ui.compare_button = said(gr.Button(tr(LANG, "compare_button"), elem_id="compare-button", scale=0,
                                                   min_width=180), "value", "compare_button")
            # The slider right above the pictures it replays: dragging it, the teacher sees them change.
            ui.replay = said(gr.Slider(0, 1, value=0, step=1, label=tr(LANG, "replay"), elem_id="replay"),
                             "label", "replay")
            with gr.Row(elem_id="compare-pictures"):
                ui.compare_picture_a = gr.HTML("", elem_id="compare-picture-a")
                ui.compare_picture_b = gr.HTML("", elem_id="compare-picture-b")
            ui.compare_plot = gr.LinePlot(None, x="step", y="value", color="curve", **AXES,
                                          color_map=views.COMPARE_COLOURS,
                                          label=tr(LANG, "both_runs"), show_label=True, elem_id="compare-plot")
            with gr.Row():
                ui.gif_button = said(gr.Button(tr(LANG, "make_gif"), elem_id="gif-button"), "value", "make_gif")
                timelapse.build_gif_options(ui, LANG)  # "with D's view and arrows", "with the lenses"
                ui.gif_download = said(gr.DownloadButton(tr(LANG, "gif_download"), value=None, visible=False,
                                                         elem_id="gif-download"), "label", "gif_download")
        with gr.Accordion(tr(LANG, "section_scoreboard"), open=True, elem_id="scoreboard-section") as board:
            said(board, "label", "section_scoreboard")
            ui.scoreboard = said(gr.Dataframe(headers=["run", "name", "data", "techniques", "state", "steps",
                                                       "seconds"], value=None, interactive=False, wrap=True,
                                              elem_id="scoreboard", label=tr(LANG, "scoreboard")), "label", "scoreboard")
            ui.scoreboard_download = said(gr.DownloadButton(tr(LANG, "scoreboard_download"), value=None,
                                                            elem_id="scoreboard-download"), "label",
                                          "scoreboard_download")
        with gr.Accordion(tr(LANG, "section_glossary"), open=False, elem_id="glossary-section") as glossary:
            said(glossary, "label", "section_glossary")
            ui.glossary = gr.Markdown(glossary_markdown(LANG), elem_id="glossary")
        with gr.Accordion(tr(LANG, "section_load"), open=False, elem_id="load-section") as load:
            said(load, "label", "section_load")
            mb = limits.max_upload_bytes // 2**20
            said(gr.Markdown(tr(LANG, "load_help", mb=mb)), "value", "load_help", mb=mb)
            ui.upload = said(gr.File(label=tr(LANG, "checkpoint"), file_types=[".safetensors"], type="filepath",
                                     elem_id="checkpoint-upload"), "label", "checkpoint")
        with gr.Accordion(tr(LANG, "section_api"), open=False, elem_id="api-section") as api_section:
            said(api_section, "label", "section_api")
            said(gr.Markdown(tr(LANG, "api_help")), "value", "api_help")
            ui.token_box = said(gr.Textbox(label=tr(LANG, "token"), interactive=False, elem_id="owner-token",
                                           buttons=["copy"]), "label", "token")
    return ui, form


def wire(demo: gr.Blocks, ui: SimpleNamespace, form: ConfigForm, h: Handlers) -> None:
    """Every event of the page, each to one named handler."""
    views_in = [ui.compare_a, ui.compare_b, ui.overlay]
    quick = dict(show_progress="hidden", api_visibility="private", concurrency_limit=None)
    # Polls and redraws skip Gradio's queue: they take milliseconds and never wait for
    # training, and a direct call costs the server less than a queued one.
    poll = dict(quick, queue=False)
    relabelled = list(h.relabel("en"))
    load_outputs = unique([*h.view_outputs, ui.owner, ui.token_box, ui.live_token, ui.lang, ui.lang_switch, ui.partner,
                           *relabelled, *form.components, ui.preset, ui.preset_note, ui.ready_made,
                           *inside_view.preset_outputs(ui)])
    loaded = demo.load(h.on_load, [ui.owner, ui.shown, *views_in, ui.partner], load_outputs, **quick)
    classes_view.wire(demo, ui, form, h, loaded)  # a class's events, after the load has a token
    inside_view.wire(ui)
    ui.live_refresh.click(h.tick, [ui.owner, ui.shown, *views_in, ui.live_seen, ui.partner, ui.lang],
                          [*h.live_outputs, *h.stamps], **poll)
    ui.stamps_refresh.click(h.refresh_stamps, [ui.owner, ui.shown, *views_in, ui.lang], h.stamps, **poll)
    ui.metrics_stamp.change(h.on_metrics_stamp, [ui.owner, ui.shown, ui.metrics_seen, ui.lang], h.metrics_outputs,
                            **poll)
    ui.compare_stamp.change(h.on_compare_stamp, [ui.owner, *views_in, ui.compare_seen, ui.lang], h.compare_outputs,
                            **poll)
    ui.rare_stamp.change(h.on_rare_stamp, [ui.owner, ui.shown, ui.rare_seen, ui.lang], h.rare_outputs, **poll)

    start_inputs = [ui.owner, ui.run_name, ui.lang, *views_in, *form.components]
    ui.start_button.click(None, None, None, js=REMEMBER_RUN_JS)  # first: Gradio runs a click's events in order
    started = ui.start_button.click(h.start, start_inputs, h.shown_outputs, validator=h.validate_start,
                                    api_visibility="private", concurrency_limit=None, show_progress="hidden")
    started.success(None, None, None, js=SHOW_PANES_JS)
    ui.pair_button.click(None, None, None, js=REMEMBER_RUN_JS)  # first: Gradio runs a click's events in order
    paired = ui.pair_button.click(h.start_pair, [ui.owner, ui.preset, ui.overlay, ui.lang],
                                  [*h.shown_outputs, ui.compare_a, ui.compare_b], api_visibility="private",
                                  concurrency_limit=None, show_progress="hidden")
    paired.success(None, None, None, js=SHOW_PANES_JS)
    ui.stop_button.click(h.stop, [ui.owner, ui.shown, ui.partner, ui.lang], None, **quick)
    play.wire(ui, h.app, [ui.owner, ui.shown, ui.partner, ui.lang])
    ui.shown.input(h.show, [ui.owner, ui.shown, *views_in, ui.lang], h.shown_outputs, **quick)
    ui.runs_table.select(h.pick_row, [ui.owner, *views_in, ui.lang], h.shown_outputs, **quick)
    # One event with both choices: two dropdown events could answer out of order.
    for trigger in (ui.compare_button.click, ui.overlay.input):
        trigger(h.compare, [ui.owner, ui.shown, *views_in, ui.lang], [*h.compare_outputs, ui.compare_stamp], **quick)
    ui.replay.release(h.replay, [ui.owner, ui.compare_a, ui.compare_b, ui.replay, ui.lang],
                      [ui.compare_picture_a, ui.compare_picture_b], **quick)
    ui.gif_button.click(h.export_pair, [ui.owner, ui.compare_a, ui.compare_b, ui.lang, ui.gif_with], ui.gif_download,
                        api_visibility="private", concurrency_limit=2, show_progress="hidden")
    ui.shown.change(h.suggest_continue, [ui.owner, ui.shown], ui.continue_steps, **quick)
    ui.continue_button.click(h.continue_training, [ui.owner, ui.shown, ui.continue_steps, *views_in, ui.lang],
                             h.shown_outputs, api_visibility="private", show_progress="hidden")
    ui.upload.upload(h.load_checkpoint, [ui.owner, ui.upload, *views_in, ui.lang], [*h.shown_outputs, ui.upload],
                     api_visibility="private")
    ui.ready_made.select(h.open_ready_made, [ui.owner, ui.ready_made, *views_in, ui.lang],
                         [*h.shown_outputs, ui.ready_made, ui.preset_note], api_visibility="private",
                         show_progress="hidden")
    ui.copy_button.click(h.copy_settings, [ui.owner, ui.shown, ui.lang], form.components, **quick)
    ui.preset.input(h.apply_preset, [ui.preset, ui.lang], [*form.components, ui.preset_note,
                                                           *inside_view.preset_outputs(ui)], **quick)
    for switch in form.knobs:
        toggle, knobs = h.switch_knobs(switch)
        if knobs:
            source = form.ls_on if switch == "label_smoothing" else form.fields[switch]
            source.change(toggle, source, knobs, **poll)
    switch_outputs = unique([*h.view_outputs, ui.lang, *relabelled, ui.preset_note])
    ui.lang_switch.input(h.switch_language, [ui.lang_switch, ui.owner, ui.shown, *views_in, ui.partner, ui.preset,
                                             ui.ready_made], switch_outputs, **quick)
    draw.wire(form.drawing, form.fields["data"], ui.lang)  # the drawn data set's pad
    link_event = ui.link_button.click(h.make_link, [ui.page_url, ui.lang, ui.preset, ui.ready_made,
                                                    *form.components], ui.link_box, js=PAGE_URL_JS, **quick)
    link_event.then(None, ui.link_box, None, js=COPY_JS)
    games_view.wire(ui.games, ui.lang)


def unique(components: list) -> list:
    """The components once each, in order (an event's outputs may not repeat one)."""
    seen: set[int] = set()
    out = []
    for component in components:
        if id(component) not in seen:
            seen.add(id(component))
            out.append(component)
    return out


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
    live.register(jobs, app)  # for the live route launch_options() makes for this job server

    with gr.Blocks(title="ganapp: GAN techniques, live", analytics_enabled=False, fill_width=True,
                   delete_cache=(300, 1800)) as demo:
        # Gradio's cache (uploads, copies of run files for download) is swept every 5
        # minutes of what is older than 30; an upload is deleted as soon as the job server
        # has copied it (GanApp.open_upload), and UploadGuard bounds what waits meanwhile.
        demo.ganapp = app  # for tests and scripts
        app.uploads = demo.upload_file_set
        ui, form = layout(app, jobs.limits)
        handlers = Handlers(app, ui, form)
        wire(demo, ui, form, handlers)
        api.wire_api(app, demo)
        api.wire_class_api(app, demo)  # open_class, join_class, ... (ganapp.web.classes_view)
    demo.queue(default_concurrency_limit=8)
    # Gradio's queue looks for work every millisecond when it has none (on Linux): 7% of a
    # core on an idle server, taken from training (measured). Every 10 ms costs 2% and adds
    # at most 10 ms to a queued event (polls do not use the queue).
    if hasattr(demo._queue, "sleep_when_free"):
        demo._queue.sleep_when_free = max(demo._queue.sleep_when_free, 0.01)
    # The handlers and components, for tests and benchmarks.
    app.handlers, app.ui, app.form = handlers, ui, form
    app.render, app.show_run, app.tick, app.stamps = handlers.render, handlers.show_run, handlers.tick, handlers.stamps
    app.seen = {"live": ui.live_seen, "metrics": ui.metrics_seen, "compare": ui.compare_seen, "rare": ui.rare_seen}
    app.on_metrics_stamp, app.on_compare_stamp = handlers.on_metrics_stamp, handlers.on_compare_stamp
    app.on_rare_stamp = handlers.on_rare_stamp
    return demo
