"""A data set a teacher draws: strokes and dots in a box, kept as one short text.

The drawing lives in the run's config (``GANConfig.drawn_points``) as a compact code, so
that it crosses every boundary the config crosses (the page's form, the shareable link,
the command line, the job spec and the checkpoint's metadata) and stays small and
checkable without torch or numpy:

- the drawing box is [-BOX, BOX]^2 with BOX = 3, the scale of the built-in 2-D sets
  (ring8's circle has radius 2, grid25 spans -4..4, spiral reaches 2); the page's canvas
  *is* this box, so what the teacher sees is the data;
- every vertex is quantised to 12 bits per coordinate (4,096 levels, a step of 0.0015)
  and written as four base64url characters (x then y, high 6 bits first);
- strokes are separated by ".", a stroke of one vertex is a dot;
- at most MAX_STROKES strokes and MAX_POINTS vertices, so a code has at most
  MAX_CODE_CHARS characters (a link stays under 2,000 characters).

Each stroke (or dot) is one mode of the data set, of equal weight; within a stroke the
data lie evenly along its length, with Gaussian ink of standard deviation INK_STD across
it (ganapp.data builds the pool). Drawings from elsewhere (a JSON file on the command
line) are normalised first: centred on their bounding box and scaled so that the larger
half-extent is FIT_HALF_EXTENT. Strokes are simplified (Ramer-Douglas-Peucker) so a long
stroke costs a few dozen vertices, not hundreds.

Every refusal is a DrawingError with an English message and a text key (with values)
that the page shows in the visitor's language (ganapp/web/text.py, keys ``draw_err_*``).
"""

from __future__ import annotations

import json
import math
from typing import Any

BOX = 3.0
LEVELS = 4096
MAX_STROKES = 32
MAX_POINTS = 400
MAX_CODE_CHARS = 4 * MAX_POINTS + MAX_STROKES - 1
FIT_HALF_EXTENT = 2.5
SIMPLIFY_TOLERANCE = 0.02  # in data units (about a pixel of a 360-pixel canvas); quantisation: 0.0015
DOT_LENGTH = 0.06  # a stroke shorter than this is a dot (a click that wobbled)
INK_STD = 0.05  # the data's spread across a stroke (grid25's std; ring8's is 0.02)
MAX_INPUT_BYTES = 512 * 1024  # a JSON drawing (file or canvas) read at most this large
MAX_INPUT_POINTS = 20_000  # raw points before simplification
MAX_RDP_POINTS = 2_000  # a stroke is thinned to at most this many before it is simplified

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
SEPARATOR = "."

Point = tuple[float, float]
Stroke = list[Point]


class DrawingError(ValueError):
    """A drawing cannot be used. `key` and `values` name the sentence in the page's text
    table (ganapp.web.text), so the page can say it in the visitor's language."""

    def __init__(self, message: str, key: str, **values: Any):
        super().__init__(message)
        self.key, self.values = key, values


# ------------------------------------------------------------------ the code
def _level(value: float) -> int:
    q = round((value + BOX) / (2 * BOX) * (LEVELS - 1))
    return min(max(q, 0), LEVELS - 1)


def _coordinate(level: int) -> float:
    return -BOX + 2 * BOX * level / (LEVELS - 1)


def encode(strokes: list[Stroke]) -> str:
    """Strokes of (x, y) points in the box -> the compact code (points outside are clamped).
    Checks the bounds; DrawingError when there are too many strokes or points."""
    check_size(strokes)
    parts = []
    for stroke in strokes:
        chars = []
        for x, y in stroke:
            for q in (_level(x), _level(y)):
                chars.append(ALPHABET[q >> 6] + ALPHABET[q & 63])
        parts.append("".join(chars))
    return SEPARATOR.join(parts)


def decode(code: Any) -> list[Stroke]:
    """The compact code -> strokes of (x, y) points in the box. "" is the empty drawing.
    DrawingError saying what is wrong for anything that is not a code ganapp writes."""
    if not isinstance(code, str):
        raise DrawingError(f"a drawing must be text; got {type(code).__name__}", "draw_err_broken")
    if not code:
        return []
    if len(code) > MAX_CODE_CHARS:
        raise DrawingError(f"a drawing has at most {MAX_CODE_CHARS:,} characters; this one has {len(code):,}",
                           "draw_err_broken")
    bad = next((c for c in code if c not in _INDEX and c != SEPARATOR), None)
    if bad is not None:
        raise DrawingError(f"a drawing uses only letters, digits, '-', '_' and '.'; found {bad!r}", "draw_err_broken")
    strokes: list[Stroke] = []
    for part in code.split(SEPARATOR):
        if not part or len(part) % 4:
            raise DrawingError("a drawing's stroke is cut short (each point is 4 characters, strokes are "
                               "separated by one '.')", "draw_err_broken")
        stroke = []
        for i in range(0, len(part), 4):
            x = (_INDEX[part[i]] << 6) | _INDEX[part[i + 1]]
            y = (_INDEX[part[i + 2]] << 6) | _INDEX[part[i + 3]]
            stroke.append((_coordinate(x), _coordinate(y)))
        strokes.append(stroke)
    check_size(strokes)
    return strokes


def check_size(strokes: list[Stroke]) -> None:
    if len(strokes) > MAX_STROKES:
        raise DrawingError(f"a drawing has at most {MAX_STROKES} strokes and dots; this one has {len(strokes):,}",
                           "draw_err_strokes", n=len(strokes), most=MAX_STROKES)
    points = sum(len(s) for s in strokes)
    if points > MAX_POINTS:
        raise DrawingError(f"a drawing has at most {MAX_POINTS} points after simplifying; this one has {points:,}",
                           "draw_err_points", n=points, most=MAX_POINTS)


def stroke_count(code: Any) -> int:
    """The number of strokes and dots (the drawn set's modes); 0 for a broken code."""
    try:
        return len(decode(code))
    except DrawingError:
        return 0


def describe(code: str) -> tuple[int, int]:
    """(strokes and dots, points) of a valid code."""
    strokes = decode(code)
    return len(strokes), sum(len(s) for s in strokes)


# ------------------------------------------------------------------ from input
def simplify(stroke: Stroke, tolerance: float = SIMPLIFY_TOLERANCE) -> Stroke:
    """Ramer-Douglas-Peucker: the fewest vertices within `tolerance` of the stroke; a stroke
    shorter than DOT_LENGTH becomes a dot at its middle. Iterative, so any length is safe."""
    if not stroke:
        return []
    if _length(stroke) < DOT_LENGTH:
        xs, ys = zip(*stroke)
        return [((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2)]
    import numpy as np  # here only: config imports this module for decode(), which needs no numpy

    stroke = _thin(stroke, tolerance)
    points = np.asarray(stroke, np.float64)
    keep = np.zeros(len(points), bool)
    keep[[0, -1]] = True
    pending = [(0, len(points) - 1)]
    while pending:  # at most MAX_RDP_POINTS splits, each one vectorised pass: bounded time
        first, last = pending.pop()
        if last - first < 2:
            continue
        a, b, inner = points[first], points[last], points[first + 1:last]
        direction = b - a
        span = float(direction @ direction)
        t = np.zeros(len(inner)) if span == 0 else np.clip((inner - a) @ direction / span, 0.0, 1.0)
        distance = np.sqrt(((inner - (a + t[:, None] * direction)) ** 2).sum(axis=1))
        where = int(distance.argmax())
        if distance[where] > tolerance:
            keep[first + 1 + where] = True
            pending += [(first, first + 1 + where), (first + 1 + where, last)]
    return [stroke[i] for i in np.flatnonzero(keep)]


def _thin(stroke: Stroke, tolerance: float) -> Stroke:
    """Drop points closer than half the tolerance to the last one kept (the last point
    stays), then keep at most MAX_RDP_POINTS, evenly by index, so simplify's time is bounded."""
    kept = [stroke[0]]
    for p in stroke[1:-1]:
        if math.dist(p, kept[-1]) >= tolerance / 2:
            kept.append(p)
    kept.append(stroke[-1])
    if len(kept) > MAX_RDP_POINTS:
        step = (len(kept) - 1) / (MAX_RDP_POINTS - 1)
        kept = [kept[round(i * step)] for i in range(MAX_RDP_POINTS)]
    return kept


def _length(stroke: Stroke) -> float:
    return sum(math.dist(a, b) for a, b in zip(stroke, stroke[1:]))


def _segment_distance(p: Point, a: Point, b: Point) -> float:
    dx, dy = b[0] - a[0], b[1] - a[1]
    span = dx * dx + dy * dy
    t = 0.0 if span == 0 else min(max(((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / span, 0.0), 1.0)
    return math.dist(p, (a[0] + t * dx, a[1] + t * dy))


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DrawingError(f"a point's coordinates must be finite numbers; got {str(value)[:40]!r}",
                           "draw_err_numbers")
    return float(value)


def read_strokes(value: Any) -> list[Stroke]:
    """Strokes from parsed JSON: {"strokes": [[[x, y], ...], ...]}, {"points": [[x, y], ...]}
    (each point a dot), a list of strokes, or a list of points (dots). Bounded; DrawingError."""
    if isinstance(value, dict):
        unknown = set(value) - {"strokes", "points", "box"}
        if unknown or not set(value) - {"box"}:
            raise DrawingError('a drawing is {"strokes": [[[x, y], ...], ...]} or {"points": [[x, y], ...]}',
                               "draw_err_shape")
        strokes = _as_strokes(value.get("strokes", []), "strokes") + _as_strokes(value.get("points", []), "points")
    elif isinstance(value, list):
        is_points = bool(value) and all(isinstance(p, list) and len(p) == 2 and not isinstance(p[0], list)
                                        for p in value)
        strokes = _as_strokes(value, "points" if is_points else "strokes")
    else:
        raise DrawingError('a drawing is {"strokes": [[[x, y], ...], ...]} or {"points": [[x, y], ...]}',
                           "draw_err_shape")
    if not strokes:
        raise DrawingError("the drawing is empty: draw at least one stroke or dot", "draw_err_empty")
    return strokes


def _as_strokes(items: Any, kind: str) -> list[Stroke]:
    if not isinstance(items, list):
        raise DrawingError(f'"{kind}" must be a list', "draw_err_shape")
    if kind == "points":
        items = [[p] for p in items]
    if len(items) > MAX_INPUT_POINTS:
        raise DrawingError(f"a drawing has at most {MAX_INPUT_POINTS:,} points before simplifying",
                           "draw_err_too_big", most=MAX_INPUT_POINTS)
    strokes, total = [], 0
    for stroke in items:
        if not isinstance(stroke, list) or not stroke:
            raise DrawingError("each stroke must be a non-empty list of [x, y] points", "draw_err_shape")
        total += len(stroke)
        if total > MAX_INPUT_POINTS:
            raise DrawingError(f"a drawing has at most {MAX_INPUT_POINTS:,} points before simplifying",
                               "draw_err_too_big", most=MAX_INPUT_POINTS)
        points = []
        for point in stroke:
            if not (isinstance(point, list) and len(point) == 2):
                raise DrawingError("each point must be a pair [x, y]", "draw_err_shape")
            points.append((_number(point[0]), _number(point[1])))
        strokes.append(points)
    return strokes


def parse_json(text: Any) -> Any:
    """JSON text of a drawing, bounded in size before it is parsed."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise DrawingError("a drawing file must be UTF-8 JSON text", "draw_err_json") from None
    if not isinstance(text, str):
        raise DrawingError("a drawing must be JSON text", "draw_err_json")
    if len(text) > MAX_INPUT_BYTES:
        raise DrawingError(f"a drawing's JSON is at most {MAX_INPUT_BYTES // 1024} KB", "draw_err_too_big",
                           most=MAX_INPUT_POINTS)
    if text.count("[") > 3 * MAX_INPUT_POINTS + 10 or text.count("{") > 2:
        raise DrawingError(f"a drawing has at most {MAX_INPUT_POINTS:,} points before simplifying",
                           "draw_err_too_big", most=MAX_INPUT_POINTS)
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise DrawingError("the drawing is not valid JSON", "draw_err_json") from None


def normalise(strokes: list[Stroke], half_extent: float = FIT_HALF_EXTENT) -> list[Stroke]:
    """Centre on the bounding box and scale so that the larger half-extent is `half_extent`
    (aspect kept). A drawing of one point moves to the centre."""
    xs = [x for s in strokes for x, _ in s]
    ys = [y for s in strokes for _, y in s]
    cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    extent = max(max(xs) - min(xs), max(ys) - min(ys)) / 2
    scale = half_extent / extent if extent > 1e-12 else 1.0
    return [[((x - cx) * scale, (y - cy) * scale) for x, y in s] for s in strokes]


def from_json(text: Any, *, fit: bool = True) -> str:
    """A JSON drawing (see read_strokes) -> the compact code: normalised (when `fit`),
    simplified, bounded. This is what `--drawn-points FILE.json` reads. A drawing the page
    saved ({"box": 3.0, ...}, to_json) is taken as it is: the same code comes back."""
    value = parse_json(text)
    strokes = read_strokes(value)
    if isinstance(value, dict) and value.get("box") == BOX:  # saved from the page (to_json): as it was drawn
        return encode(strokes)
    if fit:
        strokes = normalise(strokes)
    else:
        strokes = [[(min(max(x, -BOX), BOX), min(max(y, -BOX), BOX)) for x, y in s] for s in strokes]
    return encode([simplify(s) for s in strokes])


def add_stroke(code: str, stroke: Stroke) -> str:
    """The drawing `code` with one more stroke (in box coordinates, clamped to the box),
    simplified more coarsely where needed to fit the points left; DrawingError (the drawing
    unchanged) when there is no room."""
    strokes = decode(code)
    if len(strokes) >= MAX_STROKES:
        raise DrawingError(f"a drawing has at most {MAX_STROKES} strokes and dots", "draw_err_strokes",
                           n=len(strokes) + 1, most=MAX_STROKES)
    stroke = [(min(max(x, -BOX), BOX), min(max(y, -BOX), BOX)) for x, y in stroke]
    left = MAX_POINTS - sum(len(s) for s in strokes)
    tolerance = SIMPLIFY_TOLERANCE
    simple = simplify(stroke, tolerance)
    while len(simple) > left and tolerance < BOX:
        tolerance *= 2
        simple = simplify(stroke, tolerance)
    if not simple or len(simple) > left:
        raise DrawingError(f"the drawing is full ({MAX_POINTS} points)", "draw_err_points",
                           n=MAX_POINTS - left + len(simple), most=MAX_POINTS)
    return encode(strokes + [simple])


def without_last(code: str) -> str:
    """The drawing without its last stroke or dot."""
    return encode(decode(code)[:-1])


def to_json(code: str) -> str:
    """The drawing as JSON {"box": 3.0, "strokes": ...} in box coordinates; from_json (and so
    `--drawn-points FILE.json`) reads it back to the same code, without normalising it."""
    return json.dumps({"box": BOX, "strokes": [[[round(x, 4), round(y, 4)] for x, y in s] for s in decode(code)]})


# ------------------------------------------------------------------ starting shapes
def shape(name: str) -> str:
    """A starting drawing: "ring" (8 dots on radius 2, like ring8), "grid" (9 dots),
    "circle" (one stroke), "two-moons", "smile"."""
    if name == "ring":
        strokes = [[(2 * math.cos(a), 2 * math.sin(a))] for a in (k * math.pi / 4 for k in range(8))]
    elif name == "grid":
        strokes = [[(x, y)] for x in (-2.0, 0.0, 2.0) for y in (-2.0, 0.0, 2.0)]
    elif name == "circle":
        strokes = [[(2 * math.cos(a), 2 * math.sin(a)) for a in (k * 2 * math.pi / 48 for k in range(49))]]
    elif name == "two-moons":
        upper = [(-0.5 + 1.5 * math.cos(a), -0.25 + 1.5 * math.sin(a)) for a in (k * math.pi / 24 for k in range(25))]
        lower = [(0.5 - 1.5 * math.cos(a), 0.25 - 1.5 * math.sin(a)) for a in (k * math.pi / 24 for k in range(25))]
        strokes = [upper, lower]
    elif name == "smile":
        mouth = [(1.6 * math.cos(a), 1.6 * math.sin(a) - 0.2)
                 for a in (math.pi + k * math.pi / 20 for k in range(21))]
        strokes = [[(-0.9, 1.0)], [(0.9, 1.0)], mouth]
    else:
        raise DrawingError(f"unknown shape {name!r}", "draw_err_shape")
    return encode([simplify(s) for s in strokes])


SHAPES = ("ring", "grid", "circle", "two-moons", "smile")
