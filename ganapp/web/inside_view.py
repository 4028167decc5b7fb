"""The page's part of "see inside the game": layers over the sample picture and the lens panel.

The job draws every view (ganapp.render_inside) with its sample picture; the server keeps
the latest (Run.inside). Here:
- `build_layers(ui)` puts one HTML over the left pane's picture: D's heatmap and G's arrows,
  two transparent PNGs of the sample picture's exact geometry, stacked on it by the CSS
  (the heatmap multiplied in, so it sits "behind" the dots). The sample picture itself is
  unchanged (the pair view, replay and GIF export use it).
- `build_panel(ui)` adds two switches and the lens panel under the stage. A switch only
  sets a class on the page (a browser-side event): no server work, instant.
- `live(...)`, called by the live poll (ganapp.web.handlers.live_view), sends the layers
  and the lenses only when the run's views changed, like the sample picture.
All words are the page's (ganapp.web.text), so the pictures carry numbers only.
"""

from __future__ import annotations

import base64
import traceback
from typing import Any

import gradio as gr

from ganapp.jobs import Run

from . import views
from .safety import html_text
from .text import tr

LAYERS = ("heatmap", "arrows")
LENSES = ("mbd", "vbn", "ls", "fm")
ARROWS_SHOWN = 64  # ganapp.render_inside.ARROWS (not imported: the page does not import torch)
FM_SHOWN = 32  # ganapp.render_inside.FM_FEATURES
VBN_SHOWN = 8
HISTOGRAM_POINTS = 256
# A switch sets a class on <body>; the CSS hides that layer. No server round trip.
TOGGLE_JS = "(on) => {{ document.body.classList.toggle('inside-no-{layer}', !on); return []; }}"

_cache: dict[tuple, str] = {}


def build_layers(ui, side: str = "a") -> None:
    """The layers' HTML, placed right after a pane's picture, in the same stack (side "a" or "b")."""
    component = gr.HTML("", elem_id="inside-layers" if side == "a" else "inside-layers-b", padding=False,
                        elem_classes="inside-layers-host")
    setattr(ui, "inside_layers" if side == "a" else "inside_layers_b", component)


def build_panel(ui) -> None:
    """The switches and the lens panel (under the stage)."""
    with gr.Column(elem_id="inside-section"):
        heading = gr.Markdown(tr("en", "inside_heading"), elem_id="inside-heading")
        with gr.Row(elem_id="inside-switches"):
            ui.inside_heatmap = gr.Checkbox(True, label=tr("en", "inside_heatmap"), elem_id="inside-heatmap-switch")
            ui.inside_arrows = gr.Checkbox(True, label=tr("en", "inside_arrows"), elem_id="inside-arrows-switch")
        ui.inside_lens = gr.HTML(_placeholder(tr("en", "inside_none")), elem_id="inside-lens", padding=False)
    ui.texts += [(heading, "value", "inside_heading", {}), (ui.inside_heatmap, "label", "inside_heatmap", {}),
                 (ui.inside_arrows, "label", "inside_arrows", {})]


def wire(ui) -> None:
    for layer, switch in (("heatmap", ui.inside_heatmap), ("arrows", ui.inside_arrows)):
        switch.change(None, switch, None, js=TOGGLE_JS.format(layer=layer), api_visibility="private", queue=False,
                      show_progress="hidden")


def preset_switches(ui, name: str) -> dict:
    """What opening a lens preset (ganapp.presets.PRESET_VIEWS) switches on: its layers'
    switches (each switch's change sets the page's class, as a click would) and, for
    historical averaging, the tiny games' section opened. Nothing for another preset."""
    from ganapp.presets import PRESET_VIEWS

    wanted = PRESET_VIEWS.get(name)
    if wanted is None:
        return {}
    out: dict = {}
    for layer, switch in (("heatmap", ui.inside_heatmap), ("arrows", ui.inside_arrows)):
        if layer in wanted["layers"]:
            out[switch] = gr.update(value=True)
    games = getattr(getattr(ui, "games", None), "section", None)
    if wanted.get("games") and games is not None:
        out[games] = gr.update(open=True)
    return out


def preset_outputs(ui) -> list:
    """The components a lens preset may switch (the preset menu's and the page load's extra outputs)."""
    games = getattr(getattr(ui, "games", None), "section", None)
    return [ui.inside_heatmap, ui.inside_arrows, *([games] if games is not None else [])]


def outputs(ui) -> list:
    """The live poll's extra outputs."""
    return [ui.inside_layers, ui.inside_layers_b, ui.inside_lens]


def live(ui, run: Run | None, partner: Run | None, last: dict, now: dict, out: dict, lang: str,
         switched: bool, held: tuple[int | None, int | None] = (None, None)) -> None:
    """Send the layers (each pane's run) and the lens panel (both runs' lenses) when a run's
    views, the runs shown or the language changed. `held`: the steps the panes' pictures are
    held at (a pair), so that each pane's layers are those of its picture's step. A bug here
    costs the views, never the live poll."""
    try:
        _live(ui, run, partner, last, now, out, lang, switched, held)
    except Exception:
        traceback.print_exc()


def _live(ui, run, partner, last, now, out, lang, switched, held) -> None:
    chosen = [views_at(r, step) if r is not None else None for r, step in ((run, held[0]), (partner, held[1]))]
    key = tuple((r.id, r.inside_count, v[0] if v else None) if r is not None else None
                for r, v in zip((run, partner), chosen)) + (lang,)
    if not switched and key == last.get("inside"):
        return
    now["inside"] = key
    out[ui.inside_layers] = layers_html(run, lang, chosen[0])
    out[ui.inside_layers_b] = layers_html(partner, lang, chosen[1])
    out[ui.inside_lens] = lens_html(run, lang, shown=chosen[0]) + (
        lens_html(partner, lang, side="b", shown=chosen[1]) if partner is not None else "")


def views_at(run: Run, held: int | None):
    """The run's views for a picture of step `held`: the latest, or (a pair's side that is ahead)
    the kept views of the greatest step at or before it; None when there are none."""
    latest = run.inside
    if held is None or latest is None or latest[0] <= held:
        return latest
    earlier = [v for v in getattr(run, "inside_kept", []) if v[0] <= held]
    return max(earlier, key=lambda v: v[0]) if earlier else None


# ---------------------------------------------------------------------------- HTML


def _img(png: bytes, css: str, alt: str, style: str = "") -> str:
    data = base64.b64encode(png).decode("ascii")
    styled = f' style="{style}"' if style else ""
    return f'<img class="{css}"{styled} alt="{html_text(alt)}" src="data:image/png;base64,{data}">'


def _placeholder(text: str) -> str:
    return f'<div class="inside-placeholder">{html_text(text)}</div>'


def _cached(run: Run, which: str, lang: str, make, step: int) -> str:
    key = (run.owner, run.id, run.inside_count, step, which, lang)
    html = _cache.get(key)
    if html is None:
        if len(_cache) > 256:
            _cache.clear()
        html = _cache[key] = make()
    return html


def layer_images(run: Run, lang: str, inside, style: str = "") -> str:
    """The <img> of each layer (heatmap, arrows) of the views `inside`, or nothing."""
    step, pictures, _ = inside
    alt = tr(lang, "inside_alt_layers", label=views.run_label(run, lang), step=step)
    return "".join(_img(pictures[name], f"inside-layer inside-{name}", alt if name == "heatmap" else "", style)
                   for name in LAYERS if name in pictures)


def layers_html(run: Run | None, lang: str, inside=None) -> str:
    """Two stacked <img> (heatmap, arrows) of the run's views (`inside`, else its latest), or nothing."""
    inside = inside if inside is not None else (run.inside if run is not None else None)
    if inside is None or not any(name in inside[1] for name in LAYERS):
        return ""
    return _cached(run, "layers", lang, lambda: f'<div class="inside-layers">{layer_images(run, lang, inside)}</div>',
                   inside[0])


def _number(value: Any, digits: int = 3) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "?"
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.1e}"
    return f"{value:.{digits}g}"


def _loss_name(run: Run, lang: str) -> str:
    config = run.config
    if config is None:
        return ""
    if config.feature_matching:
        loss = tr(lang, "inside_loss_fm")
    else:
        loss = tr(lang, "inside_loss_sat" if config.generator_loss == "saturating" else "inside_loss_ns")
    return tr(lang, "inside_loss_mbd", loss=loss) if config.minibatch_discrimination else loss


def _figure(title: str, images: str, text: str, name: str) -> str:
    return (f'<figure class="inside-lens-card" id="lens-{name}"><figcaption><b>{html_text(title)}</b></figcaption>'
            f'{images}<p>{html_text(text)}</p></figure>')


def step_line(step: int, lang: str) -> str:
    """"at step 1,200" under a picture: the step its views (or the picture alone) show."""
    return f'<div class="inside-step">{html_text(tr(lang, "inside_step", step=f"{step:,}"))}</div>'


def lens_html(run: Run | None, lang: str, side: str = "a", shown=None, ids: str | None = None) -> str:
    """The colour scale and arrows' note (2-D data), then one card per technique's lens. The
    right pane's run (side "b") comes second, under its name, its cards' ids ending in -b
    (`ids`: another ending, for the replayed views of ganapp.web.timelapse)."""
    suffix = ids if ids is not None else "" if side == "a" else "-b"
    title = (f'<div class="inside-run">{html_text(tr(lang, "inside_right_run", label=views.run_label(run, lang)))}</div>'
             if side == "b" and run is not None else "")
    if run is None:
        return _placeholder(tr(lang, "inside_none"))
    chosen = shown if shown is not None else run.inside
    if chosen is None:
        return title + _placeholder(tr(lang, "inside_waiting") if run.active or run.inside is not None
                                    else tr(lang, "inside_nothing"))

    def make() -> str:
        step, pictures, numbers = chosen
        parts = [title, step_line(step, lang)]
        if "heatmap" in pictures:
            parts.append(
                '<div class="inside-scale">'
                f'<span>{html_text(tr(lang, "inside_scale_low"))}</span>'
                '<span class="inside-scale-bar"></span>'
                f'<span>{html_text(tr(lang, "inside_scale_high"))}</span>'
                f'<span class="inside-scale-range">{html_text(tr(lang, "inside_scale_range", low=_number(numbers.get("d_min")), high=_number(numbers.get("d_max"))))}</span>'
                '</div>')
        if "arrows" in pictures:
            parts.append(f'<p class="inside-note inside-arrows-note">{html_text(tr(lang, "inside_arrows_note", loss=_loss_name(run, lang), count=ARROWS_SHOWN))}</p>')
        cards = []
        config = run.config
        if "mbd" in pictures:
            kernels = config.minibatch_kernels if config is not None else "?"
            cards.append(_figure(tr(lang, "lens_mbd_title"), _img(pictures["mbd"], "inside-lens-img", ""),
                                 tr(lang, "lens_mbd_text", kernels=kernels, real=_number(numbers.get("mbd_real"), 2),
                                    fake=_number(numbers.get("mbd_fake"), 2)), f"mbd{suffix}"))
        if "vbn" in pictures:
            key = "lens_vbn_text_image" if config is not None and config.is_image else "lens_vbn_text"
            cards.append(_figure(tr(lang, "lens_vbn_title"), _img(pictures["vbn"], "inside-lens-img", ""),
                                 tr(lang, key, shown=VBN_SHOWN, bn=_number(numbers.get("vbn_bn_shift")),
                                    vbn=_number(numbers.get("vbn_vbn_shift"))), f"vbn{suffix}"))
        if "ls" in pictures:
            cards.append(_figure(tr(lang, "lens_ls_title"), _img(pictures["ls"], "inside-lens-img", ""),
                                 tr(lang, "lens_ls_text", n=HISTOGRAM_POINTS, alpha=_number(numbers.get("ls_alpha")),
                                    mean=_number(numbers.get("ls_mean"))), f"ls{suffix}"))
        if "fm" in pictures:
            images = _img(pictures["fm"], "inside-lens-img", "")
            if "fm_distance" in pictures:
                images += _img(pictures["fm_distance"], "inside-lens-img", "")
            cards.append(_figure(tr(lang, "lens_fm_title"), images,
                                 tr(lang, "lens_fm_text", shown=FM_SHOWN,
                                    distance=_number(numbers.get("fm_distance"))), f"fm{suffix}"))
        if cards:
            parts.append(f'<div class="inside-lenses">{"".join(cards)}</div>')
        return "".join(parts)

    return _cached(run, "lens" + suffix, lang, make, chosen[0])
