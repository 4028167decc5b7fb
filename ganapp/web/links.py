"""Links a teacher can share: the URL carries the preset (or ready-made run), the settings
that differ from it, the language and the view. Opening a link fills the form and opens
the view; it never starts training.

    ?preset=ring8%2C+G+without+batch+norm%3A+minibatch+discrimination&lang=zh-TW&view=present
    ?steps=3000&minibatch_discrimination=1&hide=advanced,api
    ?data=drawn&drawn_points=1UgA.vFvF.gA1U  (a drawing: ganapp.drawn's code, 4 characters a point)

`view` and `hide` are read by the page's own script (page.HEAD) before it draws, so that
nothing hidden flashes; the server reads the rest (parse) and writes links (build).
Pure functions: the tests call them directly.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, get_type_hints
from urllib.parse import parse_qsl, urlencode, urlsplit

from ganapp import drawn
from ganapp.config import GANConfig

from .text import language

VIEWS = ("present", "class")  # class: the teacher's screen (ganapp.web.classes_view)
HIDEABLE = ("settings", "advanced", "runs", "details", "compare", "scoreboard", "load", "api", "glossary", "link",
            "games")
PAGE_KEYS = ("preset", "ready", "lang", "view", "hide", "class")
NOT_IN_LINKS = ("device",)
MAX_VALUE_CHARS = 200


@dataclasses.dataclass
class Link:
    """What a link asks for. `settings` are typed values by GANConfig field name;
    `ignored` names the parameters that could not be used, with why."""

    preset: str | None = None
    ready: str | None = None
    lang: str | None = None
    view: str | None = None
    hide: tuple[str, ...] = ()
    class_code: str | None = None  # ?class=CODE: a class to join (ganapp.web.classes_view reads it)
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    ignored: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def _fields() -> dict[str, Any]:
    hints = get_type_hints(GANConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(GANConfig) if f.name not in NOT_IN_LINKS}


def parse_value(kind: Any, text: str) -> Any:
    """A setting's text from a URL as the field's type; ValueError when it is not one."""
    text = text.strip()
    if kind is bool:
        if text.lower() in ("1", "true", "on", "yes"):
            return True
        if text.lower() in ("0", "false", "off", "no"):
            return False
        raise ValueError("expected on or off")
    if kind is int:
        number = float(text)
        if not math.isfinite(number) or number != int(number):
            raise ValueError("expected a whole number")
        return int(number)
    if kind is float or kind == (float | None):
        if kind != float and text.lower() in ("off", "none", ""):
            return None
        number = float(text)
        if not math.isfinite(number):
            raise ValueError("expected a number")
        return number
    return text


def parse(query: dict[str, str] | str, presets: set[str], ready_made: set[str]) -> Link:
    """A link's query (a dict of parameters, or the text after '?') as a Link. Unknown
    parameters and unusable values are set aside in `ignored`, never an error: a link on
    a board should open whatever it can."""
    pairs = parse_qsl(query, keep_blank_values=True) if isinstance(query, str) else list(query.items())
    link = Link()
    kinds = _fields()
    for key, value in pairs[:100]:
        if key == "drawn_points" and isinstance(value, str):  # a drawing: longer, and checked whole
            try:
                drawn.decode(value)
                link.settings[key] = value
            except drawn.DrawingError:
                link.ignored.append((key, "draw_link_broken"))  # a text key: the page says it in its language
            continue
        if not isinstance(key, str) or not isinstance(value, str) or len(value) > MAX_VALUE_CHARS:
            continue
        if key == "preset":
            if value in presets:
                link.preset = value
            elif value:
                link.ignored.append((key, "unknown preset"))
        elif key == "ready":
            if value in ready_made:
                link.ready = value
            elif value:
                link.ignored.append((key, "unknown ready-made run"))
        elif key == "lang":
            link.lang = language(value)
        elif key == "view":
            link.view = value if value in VIEWS else None
        elif key == "class":
            link.class_code = value or None
        elif key == "hide":
            link.hide = tuple(p for p in value.split(",") if p in HIDEABLE)
        elif key in kinds:
            try:
                link.settings[key] = parse_value(kinds[key], value)
            except ValueError as error:
                link.ignored.append((key, str(error)))
        elif not key.startswith("__"):
            link.ignored.append((key, "unknown setting"))
    return link


def build(page_url: str, *, settings: dict[str, Any], base: GANConfig, preset: str | None = None,
          ready: str | None = None, lang: str = "en") -> str:
    """The link for the class: `page_url` without its query, then the preset or ready-made
    run, the settings that differ from `base` (the preset's config, or the defaults), the
    language, and the view and hidden parts that `page_url` already asked for."""
    parts = urlsplit(page_url or "")
    kept = dict(parse_qsl(parts.query))
    query: dict[str, str] = {}
    if preset:
        query["preset"] = preset
    if ready:
        query["ready"] = ready
    for name in _fields():
        if name not in settings:
            continue
        if name == "drawn_points" and settings.get("data") != "drawn":
            continue  # the canvas keeps a drawing while another data set is chosen; the link does not
        value = settings[name]
        if value != getattr(base, name):
            query[name] = _text(value)
    query["lang"] = lang
    for key in ("view", "hide"):
        if kept.get(key):
            query[key] = kept[key]
    base_url = f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.scheme else (parts.path or "/")
    return f"{base_url}?{urlencode(query)}"


def _text(value: Any) -> str:
    if value is None:
        return "off"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
