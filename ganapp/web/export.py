"""A pair of runs as one captioned animated GIF, for the course page (Pillow and numpy).

The frames are the sample pictures the page kept of both runs (GanApp.keep_picture: every
picture of a pair on screen, up to 200 a run), side by side at the same step, each under
a caption in the class's language: the run's name, its techniques and the step. Chinese
captions need a CJK font (Debian's fonts-noto-cjk, installed by the Dockerfile and CI);
without one the captions fall back to Pillow's own font, which draws Latin letters only.
On request each frame also has the views inside the game kept at its pictures' steps
(ganapp.web.timelapse): D's heatmap and G's arrows composited on the picture as the page
stacks them, and the lens pictures under it.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ganapp import picture_text

FONT_FILES = picture_text.CJK_FONT_FILES  # where a Traditional Chinese font may be installed
MAX_FRAMES = 60
FRAME_MS = 250
PANE = 320  # each side's picture, in pixels
CAPTION = 64
LENS_ORDER = ("mbd", "vbn", "ls", "fm", "fm_distance")  # the lens pictures under a picture, in the page's order
LENS_GAP = 6
COLOURS_WITH_VIEWS = 192  # the heatmap's gradient needs more than the 64 colours of dots on white


def caption_font(size: int = 20):
    """Noto Sans CJK TC when installed (it draws 繁體中文 and Latin), else Pillow's default."""
    return picture_text.cjk_font(size) or ImageFont.load_default(size)


def fit(text: str, font, width: int) -> str:
    """`text`, cut with an ellipsis to at most `width` pixels in `font`."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def pair_frames(side_a: list[tuple[int, bytes]], side_b: list[tuple[int, bytes]]) -> list[tuple[int, bytes, bytes]]:
    """(step, picture of A, picture of B) at each step either side drew, each side's picture
    being its latest at or before that step; at most MAX_FRAMES, evenly spaced, last kept."""
    return [(step, a[1], b[1]) for step, a, b in pair_frames_steps(side_a, side_b)]


def pair_frames_steps(side_a: list[tuple[int, bytes]], side_b: list[tuple[int, bytes]]
                      ) -> list[tuple[int, tuple[int, bytes], tuple[int, bytes]]]:
    """pair_frames with each side's (picture's own step, picture): the step its views were drawn at."""
    if not side_a or not side_b:
        return []
    steps = sorted({s for s, _ in side_a} | {s for s, _ in side_b})
    steps = [s for s in steps if s >= max(side_a[0][0], side_b[0][0])]
    if len(steps) > MAX_FRAMES:
        stride = len(steps) / MAX_FRAMES
        steps = [steps[int(i * stride)] for i in range(MAX_FRAMES - 1)] + [steps[-1]]

    def at(side, step):
        return [entry for entry in side if entry[0] <= step][-1]

    return [(step, at(side_a, step), at(side_b, step)) for step in steps]


def composite(png: bytes, views: dict[str, bytes] | None, *, layers: bool = True) -> Image.Image:
    """The sample picture as the page shows it with its layers: D's heatmap multiplied in
    (CSS mix-blend-mode: multiply, so it lies under the dots) and G's arrows drawn over it.
    The layers have the picture's exact geometry (ganapp.render_inside); one that does not
    is scaled to it."""
    picture = Image.open(io.BytesIO(png)).convert("RGB")
    if not layers or not views:
        return picture
    if "heatmap" in views:
        heat = Image.open(io.BytesIO(views["heatmap"])).convert("RGBA").resize(picture.size)
        rgb = np.asarray(heat, dtype=np.float32)
        alpha = rgb[..., 3:4] / 255.0
        base = np.asarray(picture, dtype=np.float32)
        blended = (1 - alpha) * base + alpha * base * rgb[..., :3] / 255.0  # the CSS multiply over an opaque picture
        picture = Image.fromarray(np.clip(blended + 0.5, 0, 255).astype(np.uint8))
    if "arrows" in views:
        arrows = Image.open(io.BytesIO(views["arrows"])).convert("RGBA").resize(picture.size)
        picture = Image.alpha_composite(picture.convert("RGBA"), arrows).convert("RGB")
    return picture


def lens_strip(views: dict[str, bytes] | None, width: int = PANE) -> Image.Image | None:
    """The lens pictures of one set of views (LENS_ORDER), each scaled to `width`, one under
    another; None without any."""
    tiles = []
    for name in LENS_ORDER:
        if views and name in views:
            tile = Image.open(io.BytesIO(views[name])).convert("RGB")
            tiles.append(tile.resize((width, max(1, round(tile.height * width / tile.width)))))
    if not tiles:
        return None
    strip = Image.new("RGB", (width, sum(t.height for t in tiles) + LENS_GAP * (len(tiles) - 1)), "white")
    top = 0
    for tile in tiles:
        strip.paste(tile, (0, top))
        top += tile.height + LENS_GAP
    return strip


def views_of(kept: dict[int, tuple] | None, step: int) -> dict[str, bytes] | None:
    """The pictures of the views kept at exactly this step (None: none kept)."""
    found = (kept or {}).get(step)
    return found[1] if found else None


def pair_gif(frames: list, captions: tuple[str, str], step_text, path: Path, *,
             views: tuple[dict, dict] | None = None, layers: bool = False, lenses: bool = False) -> Path:
    """Write the frames as an animated GIF with a caption over each side; `step_text(step)`
    words the step in the class's language. Frames are pair_frames' (step, PNG A, PNG B) or
    pair_frames_steps' (step, (step, PNG A), (step, PNG B)). With `views` (each side's kept
    views by step, ganapp.web.timelapse.KeptViews.all) and frames that carry each picture's
    own step: `layers` draws D's heatmap and G's arrows on each picture as the page does,
    `lenses` puts that step's lens pictures under it (the views of that picture's step)."""
    font, small = caption_font(20), caption_font(18)
    strips = []
    for step, *pictures in frames:
        row = []
        for index, picture in enumerate(pictures):
            own, png = picture if isinstance(picture, tuple) else (None, picture)
            shown = views_of(views[index], own) if views and own is not None else None
            row.append((composite(png, shown, layers=layers), lens_strip(shown) if lenses else None))
        strips.append(row)
    below = max((s.height for row in strips for _, s in row if s is not None), default=0)
    height = PANE + CAPTION + (below + 8 if below else 0)
    images = []
    for (step, *_), row in zip(frames, strips):
        canvas = Image.new("RGB", (2 * PANE + 12, height), "white")
        draw = ImageDraw.Draw(canvas)
        for index, ((picture, strip), caption) in enumerate(zip(row, captions)):
            left = index * (PANE + 12)
            picture.thumbnail((PANE, PANE))
            canvas.paste(picture, (left + (PANE - picture.width) // 2, CAPTION))
            if strip is not None:
                canvas.paste(strip, (left, PANE + CAPTION + 8))
            draw.text((left + 4, 4), fit(caption, font, PANE - 8), fill="#1f2937", font=font)
            draw.text((left + 4, 34), step_text(step), fill="#1d4ed8", font=small)
        images.append(canvas.quantize(colors=COLOURS_WITH_VIEWS if layers or lenses else 64))
    images[0].save(path, save_all=True, append_images=images[1:], duration=FRAME_MS, loop=0, optimize=True)
    return path

