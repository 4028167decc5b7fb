"""The settings form, generated from GANConfig's field metadata (STYLE habits 9 and 15).

Each field's label, help, group, bounds, choices and technique switch are written once, on
the field (ganapp/config.py); this module turns them into widgets, labels them in either
language, converts the widgets' values to one GANConfig and back, and says, field by
field and in the visitor's words, what is wrong with a value. A new knob is one field in
GANConfig (with its metadata); nothing here changes.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, get_type_hints

import gradio as gr

from ganapp.config import DATASETS, MAX_BATCH_SIZE, Bounds, ConfigError, GANConfig, field_help, field_meta

from . import draw
from .text import TECHNIQUE_NOTES, pick, tr

# The switches whose knobs the form disables while they are off (a knob names its switch
# in its metadata: knob_of).
SWITCH_FIELDS = ("feature_matching", "minibatch_discrimination", "historical_averaging", "label_smoothing",
                 "virtual_batch_norm")


def field_label(name: str, lang: str) -> str:
    meta = field_meta(name)
    return meta["label_zh"] if lang == "zh-TW" else meta["label"]


def field_info(name: str, lang: str) -> str:
    meta = field_meta(name)
    return meta["help_zh"] if lang == "zh-TW" else meta["help"]


def choice_pairs(name: str, lang: str) -> list[tuple[str, str]] | None:
    """(label, value) pairs of a field with choices (or a menu), in `lang`."""
    meta = field_meta(name)
    values = meta.get("choices") or meta.get("menu")
    if not values:
        return None
    labels = meta.get("choice_labels", {})
    return [(pick(labels[v], lang) if v in labels else v, v) for v in values]


def _shown(value: float) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def bound_rule(bounds: Bounds, lang: str, *, server_limit: bool = False) -> str:
    """'between 1 and 20,000 (this server's limit)' / '大於 0 且不超過 1'."""
    low, high = _shown(bounds.low), _shown(bounds.high) if bounds.high is not None else None
    if high is None:
        return tr(lang, "rule_more_than" if bounds.low_open else "rule_at_least", low=low)
    key = {(False, False): "rule_between", (True, False): "rule_open_low", (False, True): "rule_open_high",
           (True, True): "rule_open_both"}[(bounds.low_open, bounds.high_open)]
    rule = tr(lang, key, low=low, high=high)
    return rule + (tr(lang, "server_limit") if server_limit else "")


class ConfigForm:
    """The widgets that edit a GANConfig, built from the fields' metadata, and the one
    conversion each way.

    Every field has a widget of its own (`fields[name]`), except label smoothing, which is a
    switch plus its knob (ls_on, ls_alpha) because its value is "off" or a number. `device`
    is not offered: the server decides where jobs run. Bounds shown and checked here are
    the config's, narrowed by the server's limits (`server_bounds`: steps, batch size,
    model width), so the form never allows what the server refuses.
    """

    NOT_OFFERED = ("device",)

    def __init__(self, defaults: GANConfig, max_steps: int, *, max_batch_size: int = MAX_BATCH_SIZE,
                 max_hidden_dim: int = 4096, lang: str = "en"):
        self.defaults = defaults
        self.server_bounds = {"steps": Bounds(1, max_steps), "batch_size": Bounds(2, max_batch_size),
                              "hidden_dim": Bounds(4, max_hidden_dim)}
        self.fields: dict[str, gr.components.Component] = {}
        self.knobs: dict[str, list[gr.components.Component]] = {s: [] for s in SWITCH_FIELDS}
        self.notes: dict[str, gr.Markdown] = {}
        self.headers: dict[str, gr.components.Component] = {}  # group -> its heading (relabelled)
        self._kinds = get_type_hints(GANConfig)
        names = [f.name for f in dataclasses.fields(GANConfig) if f.name not in self.NOT_OFFERED]
        groups: dict[str, list[str]] = {}
        for name in names:
            groups.setdefault(field_meta(name)["group"], []).append(name)

        self._widget("data", lang)
        self.drawing = draw.build(self, lang)  # the drawn data set's pad and its field (drawn_points)
        self.headers["technique"] = gr.Markdown(f"### {tr(lang, 'group_technique')}", elem_classes="form-heading")
        for switch in SWITCH_FIELDS:
            knobs = [n for n in groups["technique"] if field_meta(n).get("knob_of") == switch]
            with gr.Group(elem_classes="technique"):
                with gr.Row(equal_height=True):
                    if switch == "label_smoothing":
                        self.ls_on = gr.Checkbox(defaults.label_smoothing is not None, label=field_label(switch, lang),
                                                 elem_id="field-label_smoothing-on", scale=2, min_width=200)
                        self.ls_alpha = gr.Number(defaults.label_smoothing or 0.9, label=self.knob_label(lang),
                                                  elem_id="field-label_smoothing", scale=1, min_width=140,
                                                  interactive=defaults.label_smoothing is not None)
                        self.knobs[switch].append(self.ls_alpha)
                    else:
                        self._widget(switch, lang, scale=2, min_width=200)
                        for knob in knobs:
                            self.knobs[switch].append(self._widget(knob, lang, scale=1, min_width=140,
                                                                   interactive=self.is_on(switch, defaults)))
                self.notes[switch] = gr.Markdown(pick(TECHNIQUE_NOTES[switch], lang), elem_classes="technique-note")
        self.headers["training"] = gr.Markdown(f"### {tr(lang, 'group_training')}", elem_classes="form-heading")
        with gr.Row():
            for name in groups["training"]:
                self._widget(name, lang, min_width=140)
        with gr.Accordion(tr(lang, "group_advanced"), open=False, elem_id="advanced") as self.advanced:
            with gr.Row():
                for name in groups["advanced"]:
                    switch = field_meta(name).get("knob_of")
                    widget = self._widget(name, lang, min_width=160,
                                          interactive=None if switch is None else self.is_on(switch, defaults))
                    if switch:
                        self.knobs[switch].append(widget)
        self.headers["advanced"] = self.advanced

    # ------------------------------------------------------------------ building
    def _widget(self, name: str, lang: str, **layout: Any) -> gr.components.Component:
        """The widget a field's type and metadata call for."""
        value = getattr(self.defaults, name)
        common = dict(label=self.label(name, lang), info=field_info(name, lang), elem_id=f"field-{name}", **layout)
        if common.get("interactive") is None:
            common.pop("interactive", None)
        kind = self._kinds[name]
        choices = choice_pairs(name, lang)
        if kind is bool:
            common.pop("info")  # a switch's explanation is the note under it
            widget = gr.Checkbox(value, **common)
        elif choices and field_meta(name).get("menu"):
            widget = gr.Dropdown(choices, value=value, **common)
        elif choices:
            widget = gr.Radio(choices, value=value, **common)
        else:
            widget = gr.Number(value, precision=0 if kind is int else None, **common)
        self.fields[name] = widget
        return widget

    def bounds(self, name: str) -> Bounds | None:
        return self.server_bounds.get(name) or field_meta(name).get("bounds")

    def label(self, name: str, lang: str) -> str:
        """A field's label; steps also show the server's limit ('Training steps (at most 20,000)')."""
        label = field_label(name, lang)
        if name == "steps":
            return tr(lang, "steps_label_limit", label=label, high=_shown(self.bounds(name).high))
        return label

    def knob_label(self, lang: str) -> str:
        return pick(field_meta("label_smoothing")["knob_label"], lang)

    @staticmethod
    def is_on(switch: str, config: GANConfig) -> bool:
        value = getattr(config, switch)
        return value not in (False, None, "off")

    # ------------------------------------------------------------------ the one conversion
    @property
    def components(self) -> list[gr.components.Component]:
        return [*self.fields.values(), self.ls_on, self.ls_alpha]

    def offered_fields(self) -> set[str]:
        return set(self.fields) | {"label_smoothing"}

    def to_config(self, values: dict[gr.components.Component, Any]) -> GANConfig:
        """Widget values -> a validated GANConfig; ConfigError names the widget's setting."""
        settings: dict[str, Any] = {}
        for name, component in self.fields.items():
            value = values[component]
            if name == "drawn_points":  # kept by the pad whatever the data set; used with "drawn" only
                settings[name] = value if values[self.fields["data"]] == "drawn" and isinstance(value, str) else ""
                continue
            if value is None or value == "":
                raise ConfigError(f"{name} is empty: {field_help(name)}")
            if isinstance(component, gr.Number):
                value = number_value(name, value, integer=component.precision == 0)
            settings[name] = value
        settings["label_smoothing"] = (number_value("label_smoothing", values[self.ls_alpha], integer=False)
                                       if values[self.ls_on] else None)
        return GANConfig.from_dict(settings)

    def from_config(self, config: GANConfig) -> dict[gr.components.Component, Any]:
        """A GANConfig -> the value of every widget (for presets, links and 'copy its settings')."""
        values: dict[gr.components.Component, Any] = {c: getattr(config, n) for n, c in self.fields.items()}
        if not config.drawn_points:  # a config without a drawing leaves the pad's drawing as it is
            values.pop(self.fields["drawn_points"])
        values[self.ls_on] = config.label_smoothing is not None
        if config.label_smoothing is not None:
            values[self.ls_alpha] = config.label_smoothing
        return values

    # ------------------------------------------------------------------ errors at the field
    def problems(self, values: dict[gr.components.Component, Any], lang: str) -> dict[gr.components.Component, str]:
        """What is wrong with each widget's value, in `lang` and the visitor's words (never a
        field's internal name); empty when the form would start. The rules are the config's
        bounds and the server's limits; a knob of a switched-off technique is not judged."""
        found: dict[gr.components.Component, str] = {}
        for name, component in [*self.fields.items(), ("label_smoothing", self.ls_alpha)]:
            if name == "label_smoothing" and not values.get(self.ls_on):
                continue
            switch = field_meta(name).get("knob_of")
            if switch and switch != "label_smoothing" and not self.is_on_value(switch, values):
                continue
            label = self.knob_label(lang) if name == "label_smoothing" else field_label(name, lang)
            problem = self._problem(name, component, values.get(component), label, lang)
            if problem:
                found[component] = problem
        data = self.fields["data"]
        if values.get(data) == "drawn" and data not in found:  # said at the data set: the drawing's box is hidden
            problem = self._drawing_problem(values.get(self.fields["drawn_points"]), lang)
            if problem:
                found[data] = problem
        return found

    @staticmethod
    def _drawing_problem(code: Any, lang: str) -> str | None:
        from ganapp import drawn

        try:
            if not drawn.decode(code if isinstance(code, str) else ""):
                return tr(lang, "draw_err_needed")
        except drawn.DrawingError as error:
            return draw.error_text(error, lang)
        return None

    def is_on_value(self, switch: str, values: dict) -> bool:
        if switch == "label_smoothing":
            return bool(values.get(self.ls_on))
        return values.get(self.fields[switch]) not in (False, None, "off")

    def _problem(self, name: str, component, value: Any, label: str, lang: str) -> str | None:
        shown = repr(value) if isinstance(value, str) else value
        if isinstance(component, gr.Number) or name == "label_smoothing":
            if value is None or value == "":
                return tr(lang, "err_empty", label=label)
            try:
                number = float(value)
            except (TypeError, ValueError):
                return tr(lang, "err_number", label=label, value=str(shown)[:40])
            if not math.isfinite(number):
                return tr(lang, "err_number", label=label, value=str(shown)[:40])
            integer = self._kinds[name] is int
            if integer and number != int(number):
                return tr(lang, "err_whole", label=label, value=_shown(number))
            bounds = self.bounds(name)
            if bounds is not None and not bounds.allows(number):
                return tr(lang, "err_range", label=label, value=_shown(number),
                          rule=bound_rule(bounds, lang, server_limit=name in self.server_bounds))
            return None
        choices = field_meta(name).get("choices") or field_meta(name).get("menu")
        if choices and value not in choices:
            return tr(lang, "err_choice", label=label)
        return None

    # ------------------------------------------------------------------ both languages
    def relabel(self, lang: str) -> dict[gr.components.Component, Any]:
        """Every label, help text, choice label, heading and note of the form, in `lang`."""
        out: dict[gr.components.Component, Any] = {}
        for name, component in self.fields.items():
            update: dict[str, Any] = {"label": self.label(name, lang)}
            if not isinstance(component, gr.Checkbox):
                update["info"] = field_info(name, lang)
            choices = choice_pairs(name, lang)
            if choices:
                update["choices"] = choices
            out[component] = gr.update(**update)
        out[self.ls_on] = gr.update(label=field_label("label_smoothing", lang))
        out[self.ls_alpha] = gr.update(label=self.knob_label(lang))
        for switch, note in self.notes.items():
            out[note] = gr.update(value=pick(TECHNIQUE_NOTES[switch], lang))
        out[self.headers["technique"]] = gr.update(value=f"### {tr(lang, 'group_technique')}")
        out[self.headers["training"]] = gr.update(value=f"### {tr(lang, 'group_training')}")
        out[self.advanced] = gr.update(label=tr(lang, "group_advanced"))
        out.update(draw.relabel(self.drawing, lang))
        return out

    @property
    def relabelled(self) -> list:
        return [*self.fields.values(), self.ls_on, self.ls_alpha, *self.notes.values(),
                self.headers["technique"], self.headers["training"], self.advanced, *draw.relabelled(self.drawing)]


def number_value(name: str, value: Any, *, integer: bool) -> int | float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number; got {value!r}") from None
    if integer:
        if not math.isfinite(number) or number != int(number):
            raise ConfigError(f"{name} must be a whole number; got {value!r}")
        return int(number)
    return number


def technique_fields() -> dict[str, list[str]]:
    """Each technique switch and the fields that are its knobs (from the metadata)."""
    knobs: dict[str, list[str]] = {s: [] for s in SWITCH_FIELDS}
    for f in dataclasses.fields(GANConfig):
        switch = f.metadata.get("knob_of")
        if switch:
            knobs[switch].append(f.name)
    return knobs


__all__ = ["ConfigForm", "DATASETS", "SWITCH_FIELDS", "bound_rule", "choice_pairs", "field_info", "field_label",
           "number_value", "technique_fields"]
