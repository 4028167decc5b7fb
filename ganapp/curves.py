"""Loss curves as a small PNG-ready picture, drawn in the job process.

A web page that polls plots of a few hundred points pays for them on every update: sending
two Gradio LinePlots of 240 points cost the server 15 ms per poll (measured), a picture of
the same curves 0.1 ms. So the job draws its curves itself, at most twice a second, and
the server only passes the bytes on. Numpy and Pillow only.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import picture_text

# A six-colour palette: the picture is drawn in palette mode, which makes its PNG small
# (about 6 KB) and quick to write. Blue and orange are ganapp.render's real and generated.
PALETTE = {"background": (255, 255, 255), "axis": (120, 120, 120), "grid": (232, 232, 232),
           "text": (40, 40, 40), "blue": (31, 119, 180), "orange": (255, 127, 14)}
_INDEX = {name: index for index, name in enumerate(PALETTE)}
BLUE, ORANGE = "blue", "orange"
MAX_POINTS = 300  # per curve; longer histories are thinned evenly (the newest point kept)


@functools.lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def warm_up() -> None:
    """Load the fonts now (the first load takes about 15 ms)."""
    _font(13), _font(15)


def thin(values: Sequence, limit: int = MAX_POINTS) -> np.ndarray:
    """Indices of at most about `limit` evenly spaced entries, always with the last one."""
    n = len(values)
    if n <= limit:
        return np.arange(n)
    index = np.arange(0, n, math.ceil(n / limit))
    return index if index[-1] == n - 1 else np.append(index, n - 1)


def nice_ticks(low: float, high: float, count: int = 5) -> np.ndarray:
    """About `count` round tick values (1, 2 or 5 times a power of ten apart) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return np.array([low])
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    return np.arange(first, high + step * 1e-6, step)


def _label(value: float) -> str:
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.0e}"
    return f"{value:,.6g}" if abs(value) >= 1000 else f"{value:.6g}"


def panel(
    series: Sequence[tuple[str, np.ndarray, np.ndarray, str]],
    *,
    size: tuple[int, int] = (480, 210),
    title: str = "",
    y_range: tuple[float, float] | None = None,
    lang: str = "en",
) -> np.ndarray:
    """One line chart: `series` are (label, x, y, colour name); non-finite y values break the line.

    The x axis spans the data; the y axis spans `y_range`, or the finite data with a margin.
    Returns a palette-mode Pillow image, with the title and a legend above the plot.
    """
    width, height = size
    image = Image.new("P", size, _INDEX["background"])
    image.putpalette([channel for colour in PALETTE.values() for channel in colour])
    draw = ImageDraw.Draw(image)
    AXIS, GRID, TEXT = _INDEX["axis"], _INDEX["grid"], _INDEX["text"]
    small = picture_text.font_for(lang, 13, _font(13))  # Chinese words need the CJK font
    large = picture_text.font_for(lang, 15, _font(15))
    left, right, top, bottom = 52, width - 10, 26, height - 22  # the plot box, in pixels
    draw.text((left, 4), title, fill=TEXT, font=large)

    xs = [np.asarray(x, np.float64) for _, x, _, _ in series]
    ys = [np.asarray(y, np.float64) for _, _, y, _ in series]
    finite_x = np.concatenate([x for x in xs if len(x)]) if any(len(x) for x in xs) else np.array([0.0, 1.0])
    x_low, x_high = float(finite_x.min()), float(finite_x.max())
    if x_high <= x_low:
        x_high = x_low + 1.0
    if y_range is not None:
        y_low, y_high = y_range
    else:
        finite_y = np.concatenate([y[np.isfinite(y)] for y in ys]) if ys else np.array([])
        y_low, y_high = (float(finite_y.min()), float(finite_y.max())) if finite_y.size else (0.0, 1.0)
        margin = 0.05 * (y_high - y_low) or 0.5
        y_low, y_high = y_low - margin, y_high + margin

    def to_pixels(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        px = left + (x - x_low) / (x_high - x_low) * (right - left)
        py = bottom - (np.clip(y, y_low, y_high) - y_low) / (y_high - y_low) * (bottom - top)
        return px, py

    for tick in nice_ticks(y_low, y_high, 4):
        _, py = to_pixels(np.array([x_low]), np.array([tick]))
        draw.line([left, py[0], right, py[0]], fill=GRID)
        draw.text((left - 4, py[0]), _label(tick), fill=TEXT, font=small, anchor="rm")
    for tick in nice_ticks(x_low, x_high, 5):
        px, _ = to_pixels(np.array([tick]), np.array([y_low]))
        draw.line([px[0], top, px[0], bottom], fill=GRID)
        draw.text((px[0], bottom + 3), _label(tick), fill=TEXT, font=small, anchor="ma")
    draw.rectangle([left, top, right, bottom], outline=AXIS)

    for (label, _, _, colour_name), x, y in zip(series, xs, ys):
        colour = _INDEX[colour_name]
        keep = thin(y)
        x, y = x[keep], y[keep]
        px, py = to_pixels(x, y)
        finite = np.isfinite(py)
        # Split the line where a value is missing (NaN/inf) rather than joining across it.
        for run in np.split(np.arange(len(y)), np.flatnonzero(np.diff(finite.astype(np.int8))) + 1):
            if len(run) and finite[run[0]]:
                points = list(zip(px[run].tolist(), py[run].tolist()))
                if len(points) == 1:
                    draw.ellipse([points[0][0] - 2, points[0][1] - 2, points[0][0] + 2, points[0][1] + 2],
                                 fill=colour)
                else:
                    draw.line(points, fill=colour, width=2, joint="curve")

    x = right  # the legend, right-aligned above the plot
    for label, _, _, colour in reversed(series):
        text_width = draw.textlength(label, font=small)
        x -= text_width
        draw.text((x, 8), label, fill=TEXT, font=small)
        draw.rectangle([x - 16, 11, x - 4, 21], fill=_INDEX[colour])
        x -= 28
    return image


def training_curves_png(history: list[dict[str, float]], *, width: int = 420, lang: str = "en") -> bytes:
    """The live view's two charts, stacked, as PNG bytes: D and G losses; mean D(x) and
    D(G(z)) in [0, 1]. Titles and legends in `lang` (ganapp.picture_text)."""
    lang = picture_text.picture_language(lang)
    words = functools.partial(picture_text.word, lang=lang)
    history = [history[i] for i in thin(history)]  # pick the rows first: 2,000 dicts are slow to read
    step = np.array([row["step"] for row in history], np.float64)

    def column(name: str) -> np.ndarray:
        return np.array([row.get(name, math.nan) for row in history], np.float64)

    losses = panel([(words("d_loss"), step, column("d_loss"), BLUE), (words("g_loss"), step, column("g_loss"), ORANGE)],
                   size=(width, 200), title=words("losses"), lang=lang)
    outputs = panel([(words("mean_d_real"), step, column("d_real"), BLUE),
                     (words("mean_d_fake"), step, column("d_fake"), ORANGE)],
                    size=(width, 180), title=words("d_outputs"), y_range=(0.0, 1.0), lang=lang)
    both = Image.new("P", (width, losses.height + outputs.height))
    both.putpalette(losses.getpalette())
    both.paste(losses, (0, 0))
    both.paste(outputs, (0, losses.height))
    buffer = io.BytesIO()
    both.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
