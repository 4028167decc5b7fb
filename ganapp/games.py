"""Historical averaging in two tiny games (Salimans et al. 2016, sections 3 and 3.3).

Two players, one number each: x minimises V(x, y), y maximises it. Plain gradient
descent/ascent goes round the equilibrium instead of into it: simultaneous steps (both
from the same point, the paper's examples) spiral out; alternating steps (y first, as the
app updates D and then G) circle on an orbit. Historical averaging adds to each player's loss

    weight * ||theta - average of its past values||^2,

the average held constant, exactly as ganapp.techniques.historical_averaging does for the
generator and discriminator: per step the current value is folded into the history first
(so the penalty is 0 at step 1), then the gradient 2 weight (theta - average) joins the
game's own. `uniform` is the paper's (1/t) sum of all values so far; `exponential` is the
moving average avg <- decay avg + (1 - decay) theta, started at the first value.

The games:
 - "xy":  V = x y, equilibrium (0, 0). Simultaneous GD spirals out: each step multiplies
   the radius by sqrt(1 + lr^2) (section 3 cites the orbit of this game).
 - "fx":  V = (f(x) - 1)(y - 1) with f(x) = x for x < 0 and x^2 otherwise (section 3.3).
   The gradient (f'(x)(y - 1), f(x) - 1) vanishes only where f(x) = 1 and y = 1, so the
   equilibrium is (1, 1) (x = 1; f(x) = x < 0 can never be 1). Plain simultaneous GD circles
   it in loops that grow (it diverges at lr 0.05) or lingers near x = 0, where f' is small;
   alternating GD keeps circling it.

Numpy and Pillow only (no torch, no gradio): the page recomputes a game in milliseconds
when a slider moves. Every input is bounded and checked (GameError names the bad one).
A trajectory stops when a player leaves [-ESCAPE, ESCAPE] (it diverged).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ganapp.render import png_bytes

GAMES = ("xy", "fx")
MODES = ("uniform", "exponential")
ORDERS = ("simultaneous", "alternating")
START = {"xy": (1.0, 1.0), "fx": (0.5, 0.5)}
EQUILIBRIUM = {"xy": (0.0, 0.0), "fx": (1.0, 1.0)}
FORMULA = {"xy": "V = x·y", "fx": "V = (f(x) − 1)(y − 1)"}

# Defaults, chosen by measurement (tests/test_games.py checks them): at lr 0.05, weight 0.1
# and 1,500 steps plain GD leaves (xy: spirals out from 1.41 to 9.2; fx: diverges at step
# 873) and historical averaging ends within NEAR of the equilibrium (xy: 0.0059, fx:
# 0.00055). Uniform averaging converges slowly: at 1,000 steps xy is at 0.0086, barely
# inside; weight 0.05 leaves fx circling (0.67 after 1,000 steps), weight 2 is slow (0.25).
# Alternating, same defaults: plain GD keeps circling (xy 1.42, fx 0.67 from 1.41 and 0.71),
# historical averaging ends at 0.0060 and 0.00048.
DEFAULT_LR, DEFAULT_WEIGHT, DEFAULT_STEPS, DEFAULT_DECAY = 0.05, 0.1, 1500, 0.99
LR_RANGE = (0.001, 0.5)  # inclusive
WEIGHT_RANGE = (0.0, 5.0)
STEPS_RANGE = (1, 5000)
ESCAPE = 1e4  # |x| or |y| beyond this: the trajectory diverged and stops
NEAR = 0.01  # "reached the equilibrium": within this distance at the last step


class GameError(ValueError):
    """An input out of bounds, with a message a person can act on."""


def f(x: float) -> float:
    return x if x < 0 else x * x


def f_prime(x: float) -> float:
    return 1.0 if x < 0 else 2.0 * x


def value(game: str, x: float, y: float) -> float:
    """V(x, y): what x minimises and y maximises."""
    return x * y if game == "xy" else (f(x) - 1.0) * (y - 1.0)


def gradient(game: str, x: float, y: float) -> tuple[float, float]:
    """(dV/dx, dV/dy)."""
    if game == "xy":
        return y, x
    return f_prime(x) * (y - 1.0), f(x) - 1.0


def check(game: str, lr: float, weight: float, steps: int, mode: str, decay: float,
          order: str = "simultaneous") -> None:
    """Refuse what the games cannot run, naming the input, its bounds and the value given."""
    if game not in GAMES:
        raise GameError(f"game must be one of {', '.join(GAMES)}; got {str(game)[:40]!r}")
    if order not in ORDERS:
        raise GameError(f"updates must be one of {', '.join(ORDERS)}; got {str(order)[:40]!r}")
    if mode not in MODES:
        raise GameError(f"averaging must be one of {', '.join(MODES)}; got {str(mode)[:40]!r}")
    for name, number, (low, high) in (("learning rate", lr, LR_RANGE), ("penalty weight", weight, WEIGHT_RANGE)):
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number) \
                or not low <= number <= high:
            raise GameError(f"{name} must be a number between {low:g} and {high:g}; got {str(number)[:40]}")
    if isinstance(steps, bool) or not isinstance(steps, (int, float)) or not math.isfinite(steps) \
            or steps != int(steps) or not STEPS_RANGE[0] <= steps <= STEPS_RANGE[1]:
        raise GameError(f"steps must be a whole number between {STEPS_RANGE[0]} and {STEPS_RANGE[1]:,}; "
                        f"got {str(steps)[:40]}")
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 < decay < 1:
        raise GameError(f"decay must be strictly between 0 and 1; got {str(decay)[:40]}")


def trajectory(game: str, *, lr: float, weight: float, steps: int, mode: str = "uniform",
               decay: float = DEFAULT_DECAY, order: str = "simultaneous",
               start: tuple[float, float] | None = None) -> np.ndarray:
    """Points (x_t, y_t) for t = 0..steps, shape (steps + 1, 2), or fewer rows if it diverged.

    Each step, each player folds its current value into its history, then
    x <- x - lr (dV/dx + 2 weight (x - avg_x)),  y <- y - lr (-dV/dy + 2 weight (y - avg_y)).
    `simultaneous`: both gradients at the same point (the paper's examples). `alternating`:
    y, the maximiser, steps first and x answers at the new y, as the app's training step
    updates D, then G against the updated D. weight 0 is plain gradient descent/ascent."""
    check(game, lr, weight, steps, mode, decay, order)
    alternating = order == "alternating"
    x, y = start or START[game]
    points = [(x, y)]
    sum_x = sum_y = avg_x = avg_y = 0.0
    for t in range(1, int(steps) + 1):
        if mode == "uniform":
            sum_x, sum_y = sum_x + x, sum_y + y
            avg_x, avg_y = sum_x / t, sum_y / t
        elif t == 1:
            avg_x, avg_y = x, y
        else:
            avg_x, avg_y = decay * avg_x + (1 - decay) * x, decay * avg_y + (1 - decay) * y
        if alternating:
            y = y - lr * (-gradient(game, x, y)[1] + 2 * weight * (y - avg_y))
            x = x - lr * (gradient(game, x, y)[0] + 2 * weight * (x - avg_x))
        else:
            dx, dy = gradient(game, x, y)
            x, y = x - lr * (dx + 2 * weight * (x - avg_x)), y - lr * (-dy + 2 * weight * (y - avg_y))
        if not (abs(x) <= ESCAPE and abs(y) <= ESCAPE):  # also catches NaN
            break
        points.append((x, y))
    return np.array(points, dtype=np.float64)


@dataclass(frozen=True)
class Path:
    """One trajectory and how it ended."""
    points: np.ndarray  # (n, 2)
    distance: np.ndarray  # (n,) distance to the equilibrium at each step
    diverged: bool  # left [-ESCAPE, ESCAPE] before the last step

    @property
    def final_distance(self) -> float:
        return math.inf if self.diverged else float(self.distance[-1])

    @property
    def verdict(self) -> str:
        """diverged; reached (within NEAR at the last step); away (ended farther than 1.5 times
        the starting distance); closer (the whole last quarter of the steps within half the
        starting distance); else orbiting (still circling at about the starting distance)."""
        if self.diverged:
            return "diverged"
        start, end = float(self.distance[0]), float(self.distance[-1])
        if end < NEAR:
            return "reached"
        if end > 1.5 * start:
            return "away"
        last_quarter = self.distance[len(self.distance) * 3 // 4:]
        return "closer" if float(last_quarter.max()) < 0.5 * start else "orbiting"


@dataclass(frozen=True)
class Play:
    """Both trajectories of one setting: plain GD and GD with historical averaging."""
    game: str
    lr: float
    weight: float
    steps: int
    mode: str
    decay: float
    order: str
    plain: Path
    averaged: Path

    @property
    def equilibrium(self) -> tuple[float, float]:
        return EQUILIBRIUM[self.game]

    def summary(self, max_points: int = 500) -> dict:
        """A JSON-ready reply: the settings, each path's verdict, final distance, the step it
        ended at and at most `max_points` of its points (evenly spaced, the last kept)."""
        def side(path: Path) -> dict:
            keep = _thin(len(path.points), max_points)
            return {"verdict": path.verdict, "final_distance": None if path.diverged else path.final_distance,
                    "last_step": len(path.points) - 1, "steps_shown": keep.tolist(),
                    "x": path.points[keep, 0].tolist(), "y": path.points[keep, 1].tolist(),
                    "distance": path.distance[keep].tolist()}
        return {"game": self.game, "formula": FORMULA[self.game], "equilibrium": list(self.equilibrium),
                "start": list(START[self.game]), "lr": self.lr, "weight": self.weight, "steps": self.steps,
                "averaging": self.mode, "decay": self.decay, "updates": self.order, "plain": side(self.plain),
                "historical_averaging": side(self.averaged)}


def _thin(n: int, limit: int) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    index = np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))
    return index


def _path(game: str, points: np.ndarray, steps: int) -> Path:
    distance = np.hypot(points[:, 0] - EQUILIBRIUM[game][0], points[:, 1] - EQUILIBRIUM[game][1])
    return Path(points, distance, diverged=len(points) < steps + 1)


def play(game: str, *, lr: float = DEFAULT_LR, weight: float = DEFAULT_WEIGHT, steps: int = DEFAULT_STEPS,
         mode: str = "uniform", decay: float = DEFAULT_DECAY, order: str = "simultaneous") -> Play:
    """Plain GD and GD with historical averaging from the game's start."""
    check(game, lr, weight, steps, mode, decay, order)
    steps = int(steps)
    plain = trajectory(game, lr=lr, weight=0.0, steps=steps, mode=mode, decay=decay, order=order)
    averaged = trajectory(game, lr=lr, weight=weight, steps=steps, mode=mode, decay=decay, order=order)
    return Play(game, float(lr), float(weight), steps, mode, float(decay), order, _path(game, plain, steps),
                _path(game, averaged, steps))


# ============================================================================ pictures
# Words stay out of the pictures (the page writes titles and the legend in the visitor's
# language); inside are numbers, the letters x and y, and the colour-blind-safe pair of
# the page: plain GD orange #d95f02, with historical averaging blue #1f77b4.
PLAIN_COLOUR, AVERAGED_COLOUR = (217, 95, 2), (31, 119, 180)
INK, GRID, FRAME = (31, 41, 55), (229, 231, 235), (156, 163, 175)
SIZE = (440, 400)
FONT_PX = 20  # the pictures show at their own size on a laptop, at 324 px on a 390 px phone: 14.7 px


@functools.lru_cache(maxsize=2)
def _font(size: int = FONT_PX):
    return ImageFont.load_default(size=size)


def _ticks(low: float, high: float, count: int = 6) -> list[float]:
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    return [round(v, 10) for v in np.arange(first, high + step * 1e-6, step)]


def _number(v: float) -> str:
    return f"{v:g}" if abs(v) < 1e4 else f"{v:.0e}"


def _frame(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int]) -> None:
    draw.rectangle(box, outline=FRAME, width=1)


def plane_png(result: Play) -> bytes:
    """The (x, y) plane: both trajectories, the start (ring) and the equilibrium (cross).
    The view is centred on the equilibrium and holds both paths, but at most 7 times the
    starting distance: a diverging path leaves the picture (the distance picture shows it)."""
    width, height = SIZE
    left, top, right, bottom = 58, 12, width - 12, height - 54
    image = Image.new("RGB", SIZE, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    ex, ey = result.equilibrium
    start_distance = float(result.plain.distance[0])
    reach = max(float(np.abs(p.points - (ex, ey)).max()) for p in (result.plain, result.averaged))
    half = min(max(reach * 1.08, 1.2 * start_distance), 7 * start_distance)
    span = (right - left, bottom - top)
    scale = min(span) / (2 * half)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    font = _font()

    def pixel(x, y):
        return cx + (np.asarray(x) - ex) * scale, cy - (np.asarray(y) - ey) * scale

    x_low, x_high = ex - (cx - left) / scale, ex + (right - cx) / scale
    y_low, y_high = ey - (bottom - cy) / scale, ey + (cy - top) / scale
    for tick in _ticks(x_low, x_high):
        px = float(pixel(tick, ey)[0])
        draw.line([px, top, px, bottom], fill=GRID)
        draw.text((px, bottom + 4), _number(tick), fill=INK, font=font, anchor="ma")
    for tick in _ticks(y_low, y_high):
        py = float(pixel(ex, tick)[1])
        draw.line([left, py, right, py], fill=GRID)
        draw.text((left - 5, py), _number(tick), fill=INK, font=font, anchor="rm")
    draw.text(((left + right) / 2, height - 4), "x", fill=INK, font=font, anchor="md")
    draw.text((6, (top + bottom) / 2), "y", fill=INK, font=font, anchor="lm")

    # The paths, clipped to the plot box: drawn on a layer of the box's size, then pasted.
    layer = Image.new("RGB", (right - left, bottom - top), (255, 255, 255))
    pen = ImageDraw.Draw(layer)
    for path, colour in ((result.plain, PLAIN_COLOUR), (result.averaged, AVERAGED_COLOUR)):
        px, py = pixel(path.points[:, 0], path.points[:, 1])
        px, py = np.clip(px - left, -1e5, 1e5), np.clip(py - top, -1e5, 1e5)
        pen.line(list(zip(px.tolist(), py.tolist())), fill=colour, width=3, joint="curve")
        end_x, end_y = float(px[-1]), float(py[-1])
        pen.ellipse([end_x - 6, end_y - 6, end_x + 6, end_y + 6], fill=colour, outline=(255, 255, 255))
    image.paste(_with_grid(layer, image, left, top), (left, top))
    draw = ImageDraw.Draw(image)
    sx, sy = (float(v) for v in pixel(*START[result.game]))
    draw.ellipse([sx - 8, sy - 8, sx + 8, sy + 8], outline=INK, width=3)
    gx, gy = (float(v) for v in pixel(ex, ey))
    draw.line([gx - 11, gy, gx + 11, gy], fill=INK, width=4)
    draw.line([gx, gy - 11, gx, gy + 11], fill=INK, width=4)
    _frame(draw, (left, top, right, bottom))
    return png_bytes(np.asarray(image))


def _with_grid(layer: Image.Image, image: Image.Image, left: int, top: int) -> Image.Image:
    """The layer over the grid already drawn in `image`: white pixels of the layer show the grid."""
    under = np.asarray(image.crop((left, top, left + layer.width, top + layer.height))).copy()
    over = np.asarray(layer)
    blank = (over == 255).all(axis=2)
    under[~blank] = over[~blank]
    return Image.fromarray(under)


def distance_png(result: Play) -> bytes:
    """Distance to the equilibrium against step, on a log scale (each grid line a factor of
    10); a diverged path ends in a cross at the step it left, at the top edge."""
    width, height = SIZE
    left, top, right, bottom = 74, 12, width - 30, height - 46
    image = Image.new("RGB", SIZE, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    font = _font()
    floor = 1e-8
    finite = np.concatenate([p.distance for p in (result.plain, result.averaged)])
    low = math.floor(math.log10(max(float(finite.min()), floor)))
    # The top: a little above the highest path (or the escape bound), not a whole decade.
    high = math.log10(max(float(finite.max()), floor)) + 0.15
    if any(p.diverged for p in (result.plain, result.averaged)):
        high = max(high, math.log10(ESCAPE) + 0.15)
    high = max(high, low + 1)
    steps = max(result.steps, 1)

    def pixel(step, distance):
        logs = np.log10(np.maximum(np.asarray(distance, np.float64), floor))
        return (left + np.asarray(step, np.float64) / steps * (right - left),
                bottom - (np.clip(logs, low, high) - low) / (high - low) * (bottom - top))

    every = max(1, math.ceil((high - low) / 6))
    for k in range(low, math.floor(high) + 1):
        if (k - low) % every:
            continue
        py = float(pixel(0, 10.0 ** k)[1])
        draw.line([left, py, right, py], fill=GRID)
        label = f"{10 ** k:,}" if 0 <= k <= 4 else f"{10.0 ** k:g}" if k >= -3 else f"1e{k}"
        draw.text((left - 5, py), label, fill=INK, font=font, anchor="rm")
    for tick in _ticks(0, steps, 4):
        px = float(pixel(tick, 1)[0])
        draw.line([px, top, px, bottom], fill=GRID)
        draw.text((px, bottom + 4), f"{int(tick):,}", fill=INK, font=font, anchor="ma")
    near = float(pixel(0, NEAR)[1])
    if top < near < bottom:  # the "reached" threshold, dashed
        for x in range(left, right, 12):
            draw.line([x, near, min(x + 6, right), near], fill=INK, width=1)
    for path, colour in ((result.plain, PLAIN_COLOUR), (result.averaged, AVERAGED_COLOUR)):
        step = np.arange(len(path.distance))
        px, py = pixel(step, path.distance)
        if len(px) > 1:
            draw.line(list(zip(px.tolist(), py.tolist())), fill=colour, width=3, joint="curve")
        end_x, end_y = float(px[-1]), float(py[-1])
        if path.diverged:
            end_y = top + 2
            draw.line([end_x - 8, end_y - 0, end_x + 8, end_y + 16], fill=colour, width=4)
            draw.line([end_x - 8, end_y + 16, end_x + 8, end_y], fill=colour, width=4)
        else:
            draw.ellipse([end_x - 6, end_y - 6, end_x + 6, end_y + 6], fill=colour, outline=(255, 255, 255))
    _frame(draw, (left, top, right, bottom))
    return png_bytes(np.asarray(image))
