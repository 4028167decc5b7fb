"""Draw your own data (issue 10, part 4): a drawing pad in the data-set part of the settings.

The drawing is the config field ``drawn_points`` (ganapp.drawn's compact code), held in a
hidden text box that is one of the form's widgets, so Start, the link for the class,
presets, "copy its settings" and checkpoints carry it like any other setting. The pad
shows when the data set is "drawn":

- a square canvas (the box [-3, 3]^2 of the data) drawn on with the mouse, a pen or a
  finger (pointer events; the canvas takes the touch, so the page does not scroll while
  drawing); a stroke goes to the server when the pointer lifts, as JSON in a hidden text
  box, and comes back simplified and quantised in the field, which the canvas redraws;
- Undo, Clear and starting shapes (8 dots like ring8, 9 dots, a circle, two moons, a
  smile), each a named handler of this module;
- a line saying how many strokes and points the drawing has, or what is wrong, in the
  visitor's language; a drawing that cannot take a stroke is kept unchanged.

The browser script only draws and reports strokes; every rule (bounds, simplifying,
quantising, refusals) is ganapp.drawn's, in Python.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from urllib.parse import quote
from typing import Any

import gradio as gr

from ganapp import drawn

from . import safety
from .text import tr

SHAPE_KEYS = {"ring": "draw_shape_ring", "grid": "draw_shape_grid", "circle": "draw_shape_circle",
              "two-moons": "draw_shape_two_moons", "smile": "draw_shape_smile"}
MAX_STROKE_JSON = 512 * 1024  # the strokes of one request from the canvas, as JSON text

PAD_HTML = """<div class="draw-pad"><canvas width="720" height="720" role="img"
 aria-label="drawing pad: draw strokes or click dots"></canvas></div>"""

# Runs each time the pad is mounted (it is unmounted while another data set is chosen).
PAD_JS = r"""{  // a block of its own: Gradio's wrapper has names of its own (element, trigger, props, watch)
const BOX = 3, ALPHA = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const canvas = element.querySelector('canvas');
const ctx = canvas.getContext('2d');
const field = () => document.querySelector('#field-drawn_points textarea, #field-drawn_points input');
const toPx = (x, y) => [(x / BOX + 1) / 2 * canvas.width, (1 - y / BOX) / 2 * canvas.height];
function decode(code) {
  if (!code) return [];
  return code.split('.').map(part => {
    const pts = [];
    for (let i = 0; i + 3 < part.length; i += 4) {
      const q = [0, 2].map(j => ALPHA.indexOf(part[i + j]) * 64 + ALPHA.indexOf(part[i + j + 1]));
      pts.push(q.map(v => -BOX + 2 * BOX * v / 4095));
    }
    return pts;
  });
}
function frame() {
  ctx.fillStyle = '#ffffff'; ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.strokeStyle = '#c4c9d1'; ctx.lineWidth = 3;
  for (let v = -2; v <= 2; v += 1) {
    const [a, b] = toPx(v, v);
    ctx.beginPath(); ctx.moveTo(a, 0); ctx.lineTo(a, canvas.height); ctx.stroke();
    ctx.beginPath(); ctx.moveTo(0, b); ctx.lineTo(canvas.width, b); ctx.stroke();
  }
  ctx.beginPath(); const [cx, cy] = toPx(0, 0);
  ctx.arc(cx, cy, 2 / BOX * canvas.width / 2, 0, 2 * Math.PI); ctx.setLineDash([8, 8]); ctx.stroke();
  ctx.setLineDash([]);
}
function ink(pts, colour) {
  ctx.strokeStyle = colour; ctx.fillStyle = colour; ctx.lineWidth = 12; ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  if (pts.length === 1) {
    const [x, y] = toPx(...pts[0]); ctx.beginPath(); ctx.arc(x, y, 16, 0, 2 * Math.PI); ctx.fill(); return;
  }
  ctx.beginPath();
  pts.forEach((p, i) => { const [x, y] = toPx(...p); i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
  ctx.stroke();
}
let shown = null;
function redraw() {
  frame();
  const box = field();
  shown = box ? box.value : '';
  decode(shown).forEach(s => ink(s, '#1f77b4'));
}
// The field can change before this pad is mounted or while its change event is on its way
// (a link, a preset): a cheap check twice a second redraws whenever it differs.
const poll = setInterval(() => {
  if (!canvas.isConnected) { clearInterval(poll); return; }
  const box = field();
  if (!stroke && box && box.value !== shown) redraw();
}, 500);
window.ganappDrawRedraw = redraw;
let stroke = null;
function point(event) {
  const r = canvas.getBoundingClientRect();
  const x = ((event.clientX - r.left) / r.width * 2 - 1) * BOX;
  const y = (1 - (event.clientY - r.top) / r.height * 2) * BOX;
  return [Math.max(-BOX, Math.min(BOX, x)), Math.max(-BOX, Math.min(BOX, y))];
}
canvas.addEventListener('pointerdown', e => {
  e.preventDefault(); canvas.setPointerCapture(e.pointerId); stroke = [point(e)]; ink(stroke, '#d95f02');
});
canvas.addEventListener('pointermove', e => {
  if (!stroke || stroke.length > 2000) return;
  const p = point(e), q = stroke[stroke.length - 1];
  if (Math.hypot(p[0] - q[0], p[1] - q[1]) < 0.01) return;
  stroke.push(p); ink(stroke.slice(-2), '#d95f02');
});
function finish(e) {
  if (!stroke) return;
  const done = stroke; stroke = null;
  (window.ganappDrawPending = window.ganappDrawPending || []).push(done.map(p => [+p[0].toFixed(4), +p[1].toFixed(4)]));
  const send = document.querySelector('#draw-send');
  if (send) send.click();
}
canvas.addEventListener('pointerup', finish);
canvas.addEventListener('pointercancel', finish);
redraw();
}"""

# The stroke the canvas left, taken once (the button's event sends it as its first input).
# Every stroke not yet sent goes in one request; the button's trigger_mode="always_last" lets
# one request run at a time, so each starts from the drawing the previous one returned.
SEND_JS = """(stroke, code, lang) => { const s = window.ganappDrawPending || []; window.ganappDrawPending = [];
  return [s.length ? JSON.stringify({strokes: s}) : '', code, lang]; }"""

# When the field changes (a stroke came back, a shape, Clear, a link, a preset): redraw.
REDRAW_JS = """(code) => { if (window.ganappDrawRedraw && document.querySelector('#draw-pad canvas'))
  setTimeout(window.ganappDrawRedraw, 0); }"""

# The pad's CSS is in ganapp/web/style.py (the page's one style sheet, in <head>).


def build(form, lang: str) -> SimpleNamespace:
    """The pad's components, under the data-set menu; the field's hidden box goes into
    form.fields["drawn_points"]. Visible while the data set is "drawn"."""
    d = SimpleNamespace()
    d.field = gr.Textbox(form.defaults.drawn_points, visible="hidden", elem_id="field-drawn_points",
                         label=tr(lang, "draw_heading"))
    form.fields["drawn_points"] = d.field
    # The canvas leaves a finished stroke in window.ganappDrawPending and clicks this button,
    # whose event reads it (SEND_JS) and sends it to add_stroke.
    d.stroke = gr.Textbox("", visible="hidden", elem_id="draw-stroke")  # a State would not take the script's value
    d.send = gr.Button("send", visible="hidden", elem_id="draw-send")
    with gr.Column(visible=form.defaults.data == "drawn", elem_id="draw-section") as d.section:
        d.help = gr.Markdown(tr(lang, "draw_help"), elem_id="draw-help")
        d.pad = gr.HTML("", html_template=PAD_HTML, js_on_load=PAD_JS, elem_id="draw-pad")
        d.status = gr.HTML(status_html(form.defaults.drawn_points, lang), elem_id="draw-status")
        with gr.Row(elem_id="draw-buttons"):
            d.undo = gr.Button(tr(lang, "draw_undo"), size="sm", elem_id="draw-undo", min_width=80)
            d.clear = gr.Button(tr(lang, "draw_clear"), size="sm", elem_id="draw-clear", min_width=80)
        d.shapes = {}
        with gr.Row(elem_id="draw-shapes"):
            for name, key in SHAPE_KEYS.items():
                d.shapes[name] = gr.Button(tr(lang, key), size="sm", elem_id=f"draw-shape-{name}", min_width=80)
        d.metrics_note = gr.Markdown(tr(lang, "draw_metrics_note"), elem_id="draw-metrics-note")
    return d


def relabel(d: SimpleNamespace, lang: str) -> dict:
    out = {d.help: gr.update(value=tr(lang, "draw_help")), d.undo: gr.update(value=tr(lang, "draw_undo")),
           d.clear: gr.update(value=tr(lang, "draw_clear")),
           d.metrics_note: gr.update(value=tr(lang, "draw_metrics_note"))}
    for name, key in SHAPE_KEYS.items():
        out[d.shapes[name]] = gr.update(value=tr(lang, key))
    return out


def relabelled(d: SimpleNamespace) -> list:
    return [d.help, d.undo, d.clear, d.metrics_note, *d.shapes.values()]


# ------------------------------------------------------------------ what the pad says
def error_text(error: drawn.DrawingError, lang: str) -> str:
    """A drawing's refusal in `lang` (the key ganapp.drawn gave it)."""
    try:
        return tr(lang, error.key, **error.values)
    except (KeyError, IndexError, ValueError):
        return str(error)


def status_html(code: Any, lang: str, problem: str | None = None) -> str:
    """'3 strokes and dots, 42 of 400 points' (and a refusal in red, above it), or what is wrong."""
    try:
        strokes, points = drawn.describe(code if isinstance(code, str) else "")
        line = (tr(lang, "draw_status", strokes=strokes, points=points, most=drawn.MAX_POINTS) if strokes
                else tr(lang, "draw_nothing"))
    except drawn.DrawingError as error:
        line, problem = "", problem or error_text(error, lang)
    warning = f'<div class="draw-error" role="alert">{safety.html_text(problem)}</div>' if problem else ""
    save = ""
    if line and code:  # the drawing as a file for `--drawn-points FILE.json`, made in the browser
        href = "data:application/json;charset=utf-8," + quote(drawn.to_json(code))
        save = (f' <a class="draw-save" id="draw-save" download="drawing.json" href="{safety.html_text(href, 40_000)}">'
                f'{safety.html_text(tr(lang, "draw_save"))}</a>')
    return f'{warning}<div class="draw-count">{safety.html_text(line)}{save}</div>'


# ------------------------------------------------------------------ handlers
def add_stroke(strokes_json: Any, code: Any, lang: Any = "en"):
    """Strokes came from the canvas ({"strokes": [[[x, y], ...], ...]}, box coordinates):
    (the field's new code, the status line). A stroke that cannot be added leaves the
    drawing as it was before that stroke, and the line says why."""
    from .text import language

    lang = language(lang)
    code = code if isinstance(code, str) else ""
    try:
        if not isinstance(strokes_json, str) or not strokes_json:
            return gr.skip(), gr.skip()
        if len(strokes_json) > MAX_STROKE_JSON:
            raise drawn.DrawingError("the strokes are too long", "draw_err_too_big", most=drawn.MAX_INPUT_POINTS)
        try:
            value = json.loads(strokes_json)
        except (ValueError, RecursionError):
            raise drawn.DrawingError("the stroke is not valid JSON", "draw_err_json") from None
        raw = value.get("strokes") if isinstance(value, dict) else None
        strokes = drawn.read_strokes({"strokes": raw})
    except drawn.DrawingError as error:
        return code, status_html(code, lang, problem=error_text(error, lang))
    new = code
    for stroke in strokes:  # each kept until one cannot be added
        try:
            new = drawn.add_stroke(new, stroke)
        except drawn.DrawingError as error:
            return new, status_html(new, lang, problem=error_text(error, lang))
    return new, status_html(new, lang)


def undo(code: Any, lang: Any = "en"):
    from .text import language

    lang = language(lang)
    try:
        new = drawn.without_last(code if isinstance(code, str) else "")
    except drawn.DrawingError:
        new = ""
    return new, status_html(new, lang)


def clear(lang: Any = "en"):
    from .text import language

    return "", status_html("", language(lang))


def use_shape(name: str):
    def handler(lang: Any = "en"):
        from .text import language

        code = drawn.shape(name)
        return code, status_html(code, language(lang))

    handler.__name__ = f"draw_{name.replace('-', '_')}"
    return handler


def show_pad(data: Any):
    """The pad shows while the data set is "drawn"."""
    return gr.Column(visible=data == "drawn")


def wire(d: SimpleNamespace, data_menu, lang_state) -> None:
    """The pad's events: strokes, undo, clear, shapes, redraws, and showing it."""
    quick = dict(show_progress="hidden", api_visibility="private", concurrency_limit=None, queue=False)
    d.send.click(add_stroke, [d.stroke, d.field, lang_state], [d.field, d.status], js=SEND_JS,
                 trigger_mode="always_last", **quick)
    d.undo.click(undo, [d.field, lang_state], [d.field, d.status], **quick)
    d.clear.click(clear, [lang_state], [d.field, d.status], **quick)
    for name, button in d.shapes.items():
        button.click(use_shape(name), [lang_state], [d.field, d.status], **quick)
    d.field.change(None, d.field, None, js=REDRAW_JS, **quick)
    d.field.change(status_html, [d.field, lang_state], d.status, **quick)
    lang_state.change(status_html, [d.field, lang_state], d.status, **quick)  # the line in the new language
    data_menu.change(show_pad, data_menu, d.section, **quick)
