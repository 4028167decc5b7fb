"""The page's "Historical averaging in a tiny game" panel, over ganapp.games.

A folded section below the first screen, always there (a teacher reaches for it while
explaining section 3.3, with or without a run that uses historical averaging): the game,
the kind of averaging, the learning rate, the penalty weight and the steps; two pictures
(the paths in the (x, y) plane, the distance to the equilibrium per step); above them a
line saying what the class sees, and each path's outcome with its final distance, so a
setting where historical averaging does not help says so. Every change recomputes both
games in a few milliseconds (numpy) and redraws; nothing is kept per visitor.
"""

from __future__ import annotations

import base64
import functools
from types import SimpleNamespace

import gradio as gr

from ganapp import games

from . import safety
from .safety import html_text
from .text import language, tr

LR_SLIDER = (0.005, 0.5, 0.005)  # min, max, step: within games.LR_RANGE
WEIGHT_SLIDER = (0.0, 2.0, 0.01)  # the API allows up to games.WEIGHT_RANGE[1]; beyond 2 nothing new shows
STEPS_SLIDER = (50, games.STEPS_RANGE[1], 50)


def game_choices(lang: str) -> list[tuple[str, str]]:
    return [(tr(lang, f"games_{name}"), name) for name in games.GAMES]


def order_choices(lang: str) -> list[tuple[str, str]]:
    return [(tr(lang, f"games_{order}"), order) for order in games.ORDERS]


def mode_choices(lang: str) -> list[tuple[str, str]]:
    return [(tr(lang, "games_uniform"), "uniform"), (tr(lang, "games_exponential", decay=games.DEFAULT_DECAY),
                                                     "exponential")]


def _short(value: float) -> str:
    return f"{value:.3g}"


def outcome(path: games.Path, steps: int, lang: str) -> str:
    """One path's verdict in words, with its final distance."""
    if path.diverged:
        return tr(lang, "games_diverged", bound=f"{games.ESCAPE:,.0f}", step=f"{len(path.points):,}")
    return tr(lang, f"games_{path.verdict}", distance=_short(path.final_distance), steps=f"{steps:,}",
              start=_short(float(path.distance[0])))


def headline(result: games.Play, lang: str) -> str:
    """What the class sees, from the verdicts (never assumed)."""
    plain, averaged = result.plain.verdict == "reached", result.averaged.verdict == "reached"
    key = {(False, True): "only_averaged", (True, True): "both", (False, False): "neither",
           (True, False): "only_plain"}[(plain, averaged)]
    return tr(lang, f"games_{key}")


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="games-picture" alt="{html_text(alt)}" src="data:image/png;base64,{data}">'


def view_html(result: games.Play, lang: str) -> str:
    """The headline, both outcomes with their colours, and the two pictures with captions."""
    eq = "({:g}, {:g})".format(*result.equilibrium)
    rows = []
    for kind, path, label in (("plain", result.plain, tr(lang, "games_plain")),
                              ("averaged", result.averaged, tr(lang, "games_averaged", weight=f"{result.weight:g}"))):
        colon = "：" if lang == "zh-TW" else ": "
        rows.append(f'<li class="games-{kind}"><span class="games-swatch {kind}"></span>'
                    f'<b>{html_text(label)}</b>{colon}'
                    f'<span class="games-outcome">{html_text(outcome(path, result.steps, lang))}</span></li>')
    pictures = ((tr(lang, "games_plane", eq=eq), tr(lang, "games_alt_plane"), games.plane_png(result)),
                (tr(lang, "games_distance"), tr(lang, "games_alt_distance"), games.distance_png(result)))
    figures = "".join(f'<figure><figcaption>{html_text(caption)}</figcaption>{_img(png, alt)}</figure>'
                      for caption, alt, png in pictures)
    return (f'<div class="games-view" data-game="{result.game}" data-order="{result.order}" data-plain="{result.plain.verdict}" '
            f'data-averaged="{result.averaged.verdict}">'
            f'<p class="games-headline">{html_text(headline(result, lang))}</p>'
            f'<ul class="games-legend">{"".join(rows)}</ul><div class="games-figures">{figures}</div></div>')


@functools.lru_cache(maxsize=64)
def _view(game: str, order: str, mode: str, lr: float, weight: float, steps: int, lang: str) -> str:
    return view_html(games.play(game, lr=lr, weight=weight, steps=steps, mode=mode, order=order), lang)


def redraw(game, order, mode, lr, weight, steps, lang):
    """A control moved: both paths recomputed and drawn (about 10 ms; a class setting the
    same values, as told, is answered from a small cache of the latest 64 views)."""
    try:
        games.check(game, lr, weight, steps, mode, games.DEFAULT_DECAY, order)
        return _view(game, order, mode, float(lr), float(weight), int(steps), language(lang))
    except games.GameError as error:
        safety.warning(tr(lang, "games_refused", why=str(error)))
        return gr.skip()


def layout(lang: str) -> SimpleNamespace:
    """The folded section and its controls, drawn at the defaults."""
    g = SimpleNamespace()
    with gr.Accordion(tr(lang, "games_section"), open=False, elem_id="games-section") as g.section:
        g.explain = gr.Markdown(tr(lang, "games_explain"), elem_id="games-explain")
        g.game = gr.Radio(game_choices(lang), value="xy", label=tr(lang, "games_game"), elem_id="games-game")
        with gr.Row():
            g.order = gr.Radio(order_choices(lang), value="simultaneous", label=tr(lang, "games_order"),
                               elem_id="games-order", scale=2)
            g.mode = gr.Radio(mode_choices(lang), value="uniform", label=tr(lang, "games_mode"), elem_id="games-mode",
                              scale=2)
        with gr.Row():
            g.lr = gr.Slider(*LR_SLIDER[:2], step=LR_SLIDER[2], value=games.DEFAULT_LR, label=tr(lang, "games_lr"),
                             elem_id="games-lr")
            g.weight = gr.Slider(*WEIGHT_SLIDER[:2], step=WEIGHT_SLIDER[2], value=games.DEFAULT_WEIGHT,
                                 label=tr(lang, "games_weight"), elem_id="games-weight")
            g.steps = gr.Slider(*STEPS_SLIDER[:2], step=STEPS_SLIDER[2], value=games.DEFAULT_STEPS,
                                label=tr(lang, "games_steps"), elem_id="games-steps")
        g.view = gr.HTML(view_html(games.play("xy"), lang), elem_id="games-view", padding=False)
    return g


def relabel(lang, game, order, mode, lr, weight, steps) -> dict:
    """Every text of the section in `lang`, and the pictures' words redrawn."""
    return {
        "section": gr.Accordion(label=tr(lang, "games_section")),
        "explain": gr.Markdown(tr(lang, "games_explain")),
        "game": gr.Radio(choices=game_choices(lang), label=tr(lang, "games_game")),
        "order": gr.Radio(choices=order_choices(lang), label=tr(lang, "games_order")),
        "mode": gr.Radio(choices=mode_choices(lang), label=tr(lang, "games_mode")),
        "lr": gr.Slider(label=tr(lang, "games_lr")),
        "weight": gr.Slider(label=tr(lang, "games_weight")),
        "steps": gr.Slider(label=tr(lang, "games_steps")),
        "view": redraw(game, order, mode, lr, weight, steps, lang),
    }


def wire(g: SimpleNamespace, lang_state) -> None:
    """A control's change redraws at once (`input` fires while a slider is dragged and on
    each arrow key; `release` would miss the keyboard). A tab sends its latest value only
    once the previous answer is back (always_last), and all tabs share one worker (one
    concurrency group of 1): 30 students dragging at once cost the server at most one
    thread's time, the rest wait their turn (milliseconds each). A language change
    relabels the section."""
    inputs = [g.game, g.order, g.mode, g.lr, g.weight, g.steps, lang_state]
    live = dict(show_progress="hidden", api_visibility="private", trigger_mode="always_last", concurrency_limit=1,
                concurrency_id="games-redraw")
    for control in (g.game, g.order, g.mode, g.lr, g.weight, g.steps):
        control.input(redraw, inputs, g.view, **live)
    names = ("section", "explain", "game", "order", "mode", "lr", "weight", "steps", "view")
    outputs = [getattr(g, name) for name in names]

    def on_language(lang, game, order, mode, lr, weight, steps):
        updates = relabel(lang, game, order, mode, lr, weight, steps)
        return [updates[name] for name in names]

    lang_state.change(on_language, [lang_state, g.game, g.order, g.mode, g.lr, g.weight, g.steps], outputs,
                      show_progress="hidden", api_visibility="private", queue=False)


def game_trajectories(game: str = "xy", lr: float = games.DEFAULT_LR, weight: float = games.DEFAULT_WEIGHT,
                      steps: int = games.DEFAULT_STEPS, averaging: str = "uniform", max_points: int = 500,
                      updates: str = "simultaneous") -> dict:
    """Historical averaging in a tiny game (the page's folded section): plain simultaneous
    gradient descent and the same with historical averaging, from the game's start. game:
    "xy" (V = xy) or "fx" (V = (f(x) - 1)(y - 1), section 3.3); lr 0.001-0.5; weight 0-5;
    steps 1-5,000; averaging "uniform" or "exponential" (decay 0.99); updates
    "simultaneous" (both players from the same point) or "alternating" (y first, as the
    app updates D, then G). Returns each path's verdict (reached, closer, orbiting, away,
    diverged), final distance to the equilibrium and at most max_points (2-5,001) of its
    points."""
    try:
        max_points = safety.whole_number("max_points", max_points, 2, games.STEPS_RANGE[1] + 1, default=500)
        return games.play(game, lr=lr, weight=weight, steps=steps, mode=averaging,
                          order=updates).summary(max_points)
    except ValueError as error:  # GameError and safety's InputError
        raise safety.refusal(str(error)) from None
