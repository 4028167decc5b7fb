"""A pair of runs as one captioned animated GIF, for the course page (Pillow only).

The frames are the sample pictures the page kept of both runs (GanApp.keep_picture: every
picture of a pair on screen, up to 200 a run), side by side at the same step, each under
a caption in the class's language: the run's name, its techniques and the step. Chinese
captions need a CJK font (Debian's fonts-noto-cjk, installed by the Dockerfile and CI);
without one the captions fall back to Pillow's own font, which draws Latin letters only.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ganapp import picture_text

FONT_FILES = picture_text.CJK_FONT_FILES  # where a Traditional Chinese font may be installed
MAX_FRAMES = 60
FRAME_MS = 250
PANE = 320  # each side's picture, in pixels
CAPTION = 64


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
    if not side_a or not side_b:
        return []
    steps = sorted({s for s, _ in side_a} | {s for s, _ in side_b})
    steps = [s for s in steps if s >= max(side_a[0][0], side_b[0][0])]
    if len(steps) > MAX_FRAMES:
        stride = len(steps) / MAX_FRAMES
        steps = [steps[int(i * stride)] for i in range(MAX_FRAMES - 1)] + [steps[-1]]

    def at(side, step):
        return [png for s, png in side if s <= step][-1]

    return [(step, at(side_a, step), at(side_b, step)) for step in steps]


def pair_gif(frames: list[tuple[int, bytes, bytes]], captions: tuple[str, str], step_text, path: Path) -> Path:
    """Write the frames as an animated GIF with a caption over each side; `step_text(step)`
    words the step in the class's language."""
    font, small = caption_font(20), caption_font(18)
    images = []
    for step, png_a, png_b in frames:
        canvas = Image.new("RGB", (2 * PANE + 12, PANE + CAPTION), "white")
        draw = ImageDraw.Draw(canvas)
        for index, (png, caption) in enumerate(((png_a, captions[0]), (png_b, captions[1]))):
            left = index * (PANE + 12)
            picture = Image.open(io.BytesIO(png)).convert("RGB")
            picture.thumbnail((PANE, PANE))
            canvas.paste(picture, (left + (PANE - picture.width) // 2, CAPTION))
            draw.text((left + 4, 4), fit(caption, font, PANE - 8), fill="#1f2937", font=font)
            draw.text((left + 4, 34), step_text(step), fill="#1d4ed8", font=small)
        images.append(canvas.quantize(colors=64))
    images[0].save(path, save_all=True, append_images=images[1:], duration=FRAME_MS, loop=0, optimize=True)
    return path
