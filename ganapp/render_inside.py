"""Drawing the views of ganapp.inside, in the job process, next to the sample picture.

- Layers over the 2-D sample picture: `heatmap_layer` (D(x) over the plotted box) and
  `arrows_layer` (G's push on a subset of the generated points). Both are RGBA pictures
  with exactly the geometry of ganapp.render.scatter_2d (same size, same plot box, same
  data-to-pixel mapping), transparent outside what they draw, so that the page stacks
  them over the unchanged sample picture and switches them on and off in the browser.
- Lens pictures, one per technique that is on: minibatch discrimination's closeness
  matrices and o(x), VBN's batch-mates demonstration, label smoothing's histogram of
  D(x) on real data, feature matching's two means and their distance over time.
  They carry numbers only (axis ticks); the words are the page's, in both languages.

`InsideViews` keeps what the views need across pictures (its own seeded real batch and
noise, feature matching's distance history) and returns PNG bytes per view.
Numpy, Pillow and torch only; no gradio.
"""

from __future__ import annotations

import math
import struct
import sys
import traceback
import zlib

import numpy as np
import torch
from PIL import Image, ImageDraw

from . import curves, inside, render
from .runfiles import plot_limits

VIEW_SEED = 104_729  # the views' own random stream: the trainer's streams are never touched
ARROWS = 64  # generated points that get an arrow
ARROW_PIXELS = 30.0  # a typical (90th percentile) push is drawn this long
ARROW_COLOUR = (17, 24, 39, 235)
ARROW_HALO = (255, 255, 255, 200)
MATRIX_SIDE = 48  # batch members shown in a closeness matrix
HISTOGRAM_POINTS = 256  # real points in label smoothing's histogram
# With minibatch discrimination a grid point is scored as one more member of this many generated
# points: the 64 x 64 grid against a batch of 64 was most of the views' cost (8 D steps a picture).
HEATMAP_BATCH = 16
VBN_SHOWN, VBN_MATES = 8, 24
FM_FEATURES = 32  # features shown as bars (the first ones, in a fixed order, so bars can be watched)
FM_HISTORY = 600  # distance points kept (thinned by half when full)
LENS_FONT = 16  # pixels; the pictures are shown at their natural size (text >= 14 px)

# D(x) colour scale: purple (D says "generated", 0) through white (0.5) to green ("real", 1),
# pale, because the page multiplies it with the sample picture (white shows the colour,
# the blue and orange dots stay readable). The page's legend uses the same three stops.
SCALE_STOPS = ((0.0, (196, 160, 230)), (0.5, (255, 255, 255)), (1.0, (150, 215, 150)))
MATRIX_LOW, MATRIX_HIGH = np.array([255, 255, 255], np.float32), np.array([153, 27, 27], np.float32)


def colour_scale(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> RGB uint8 along SCALE_STOPS (linear between stops)."""
    v = np.clip(np.nan_to_num(np.asarray(values, np.float32), nan=0.5), 0.0, 1.0)
    positions = np.array([p for p, _ in SCALE_STOPS], np.float32)
    colours = np.array([c for _, c in SCALE_STOPS], np.float32)
    out = np.stack([np.interp(v, positions, colours[:, k]) for k in range(3)], axis=-1)
    return np.rint(out).astype(np.uint8)


def _pixel_axes(size: int) -> tuple[int, int, int, int]:
    """(top, left, side, inner) of scatter_2d's plot box; data maps to [left+2, left+2+inner]."""
    top, left, side = render._plot_box(size)
    return top, left, side, side - 5


def heatmap_layer(values: np.ndarray, *, size: int = 320) -> np.ndarray:
    """RGBA (size, size, 4): D(x) values (r, r) from `inside.heatmap`, coloured, filling the
    plot box of a scatter_2d picture of `size` (each pixel takes the cell its data point falls in)."""
    values = np.asarray(values)
    rows, cols = values.shape
    top, left, side, inner = _pixel_axes(size)
    layer = np.zeros((size, size, 4), np.uint8)
    pixels = np.arange(1, side - 1)  # the box's interior, inside its frame line
    u = np.clip((pixels - 2) / inner, 0.0, 1.0 - 1e-9)  # 0 at xmin / ymax, 1 at xmax / ymin
    col_index = (u * cols).astype(np.intp)
    row_index = (u * rows).astype(np.intp)
    rgba = np.empty((rows, cols, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = colour_scale(values), 255
    # Rows then columns: two cheap takes rather than one (side, side) fancy index.
    layer[top + 1:top + side - 1, left + 1:left + side - 1] = rgba.take(row_index, axis=0).take(col_index, axis=1)
    return layer


def arrow_pixels(points: np.ndarray, vectors: np.ndarray, limits, *, size: int = 320
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Start pixels (x, y) of the points and the arrows' pixel vectors, scaled so that the
    90th percentile push is ARROW_PIXELS long (the longest at most twice that)."""
    xmin, xmax, ymin, ymax = (float(v) for v in limits)
    top, left, side, inner = _pixel_axes(size)
    points, vectors = np.asarray(points, np.float64), np.asarray(vectors, np.float64)
    px = left + 2 + np.clip((points[:, 0] - xmin) / (xmax - xmin), 0, 1) * inner
    py = top + 2 + np.clip((ymax - points[:, 1]) / (ymax - ymin), 0, 1) * inner
    d = np.stack([vectors[:, 0] / (xmax - xmin) * inner, -vectors[:, 1] / (ymax - ymin) * inner], axis=1)
    d = np.nan_to_num(d, nan=0.0, posinf=0.0, neginf=0.0)
    lengths = np.hypot(d[:, 0], d[:, 1])
    typical = float(np.percentile(lengths, 90)) if len(lengths) else 0.0
    if typical > 0:
        d *= ARROW_PIXELS / typical
        lengths = np.hypot(d[:, 0], d[:, 1])
        too_long = lengths > 2 * ARROW_PIXELS
        d[too_long] *= (2 * ARROW_PIXELS / lengths[too_long])[:, None]
    return np.stack([px, py], axis=1), d


def arrows_layer(points: np.ndarray, vectors: np.ndarray, limits, *, size: int = 320) -> np.ndarray:
    """RGBA (size, size, 4): an arrow from each generated point along its push, on
    transparency, inside the plot box (not over its legend or margins)."""
    starts, d = arrow_pixels(points, vectors, limits, size=size)
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    for width, colour in ((4, ARROW_HALO), (2, ARROW_COLOUR)):  # a white halo keeps arrows visible on dots
        for (x, y), (dx, dy) in zip(starts.tolist(), d.tolist()):
            length = math.hypot(dx, dy)
            if length < 2:
                draw.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], fill=colour)
                continue
            tip = (x + dx, y + dy)
            draw.line([(x, y), tip], fill=colour, width=width)
            ux, uy = dx / length, dy / length
            head = min(7.0, 0.45 * length)
            wing = [(tip[0] - head * ux + 0.6 * head * uy, tip[1] - head * uy - 0.6 * head * ux),
                    (tip[0] - head * ux - 0.6 * head * uy, tip[1] - head * uy + 0.6 * head * ux)]
            draw.polygon([tip, *wing], fill=colour)
    layer = np.array(image)
    top, left, side, _ = _pixel_axes(size)  # an arrow from a point near the edge stops at the plot's frame
    outside = np.ones((size, size), bool)
    outside[top:top + side, left:left + side] = False
    layer[outside] = 0
    return layer


def rgba_png(array: np.ndarray, *, compress_level: int = 1) -> bytes:
    """RGBA (H, W, 4) uint8 as PNG bytes: render.png_bytes' hand-written encoder, colour type 6."""
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 4 or 0 in array.shape:
        raise ValueError(f"rgba_png expects a non-empty uint8 (H, W, 4) array, got {array.dtype} {array.shape}")
    height, width = array.shape[:2]
    rows = np.zeros((height, 1 + width * 4), np.uint8)  # filter byte 0 ("None") on each row
    rows[:, 1:] = array.reshape(height, -1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"".join([b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", header),
                     chunk(b"IDAT", zlib.compress(rows.tobytes(), compress_level)), chunk(b"IEND", b"")])


# ---------------------------------------------------------------------------- lenses


def _font():
    return curves._font(LENS_FONT)


def _matrix_tile(matrix: np.ndarray, peak: float, cell: int) -> np.ndarray:
    share = np.clip(np.asarray(matrix, np.float32) / max(peak, 1e-12), 0.0, 1.0)[..., None]
    colours = np.rint(MATRIX_LOW + share * (MATRIX_HIGH - MATRIX_LOW)).astype(np.uint8)
    return np.repeat(np.repeat(colours, cell, axis=0), cell, axis=1)


def _strip(values_by_row: list[tuple[np.ndarray, tuple[int, int, int]]], *, width: int = 420) -> np.ndarray:
    """Dot strips on one shared axis [0, max]: one row per (values, colour), tick numbers below."""
    row_height, margin = 26, 14
    font = _font()
    height = row_height * len(values_by_row) + 26
    image = Image.new("RGB", (width, height), render.BACKGROUND)
    draw = ImageDraw.Draw(image)
    finite = np.concatenate([v[np.isfinite(v)] for v, _ in values_by_row]) if values_by_row else np.zeros(1)
    high = float(finite.max()) if finite.size else 1.0
    ticks = curves.nice_ticks(0.0, high * 1.05 if high > 0 else 1.0, 4)
    top_value = float(ticks[-1]) if len(ticks) and ticks[-1] > 0 else max(high, 1.0)
    if top_value < high:
        top_value = high
    scale = (width - 2 * margin) / top_value
    for row, (values, colour) in enumerate(values_by_row):
        y = row * row_height + row_height // 2
        draw.line([margin, y, width - margin, y], fill=render.FRAME)
        for value in np.asarray(values, np.float64)[np.isfinite(values)].tolist():
            x = margin + value * scale
            draw.ellipse([x - 4, y - 4, x + 4, y + 4], outline=colour, width=2)
    base = row_height * len(values_by_row) + 2
    for tick in ticks:
        x = margin + float(tick) * scale
        draw.line([x, base - 4, x, base], fill=render.TEXT)
        draw.text((x, base + 1), curves._label(float(tick)), fill=render.TEXT, font=font, anchor="ma")
    return np.asarray(image).copy()


def mbd_picture(lens: dict) -> np.ndarray:
    """The real batch's closeness matrix beside the generated batch's (sum over kernels; white 0,
    dark red = every kernel says 'identical'), and o(x) summed over kernels below (real blue,
    generated orange)."""
    kernels = float(lens["kernels"])
    n = lens["real_matrix"].shape[0]
    cell = max(2, 200 // max(n, 1))
    tiles = [_matrix_tile(lens[f"{name}_matrix"], kernels, cell) for name in ("real", "fake")]
    matrices = render.side_by_side(tiles, gap=16)
    strip = _strip([(lens["real_o"], render.REAL_COLOUR), (lens["fake_o"], render.FAKE_COLOUR)],
                   width=matrices.shape[1])
    canvas = np.full((matrices.shape[0] + 10 + strip.shape[0], matrices.shape[1], 3), 255, np.uint8)
    canvas[:matrices.shape[0]] = matrices
    canvas[matrices.shape[0] + 10:] = strip
    return canvas


def vbn_picture(demo: dict, *, is_image: bool) -> np.ndarray:
    """BN (left) and VBN (right): each noise vector's output in batch A (filled dot) and in
    batch B (ring), joined by a line. For images: rows BN in A, BN in B, VBN in A, VBN in B."""
    if is_image:
        rows = np.concatenate([demo["bn_a"], demo["bn_b"], demo["vbn_a"], demo["vbn_b"]])
        return render.image_grid(rows, nrow=demo["bn_a"].shape[0], scale=3 if rows.shape[-1] <= 8 else 1, padding=2)
    everything = np.concatenate([demo[k] for k in ("bn_a", "bn_b", "vbn_a", "vbn_b")])
    low, high = everything.min(axis=0), everything.max(axis=0)
    span = float((high - low).max()) or 1.0
    centre = (low + high) / 2
    half = span / 2 * 1.2
    panels = []
    side = 200
    colours = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
               (227, 119, 194), (23, 190, 207)]
    for name in ("bn", "vbn"):
        image = Image.new("RGB", (side, side), render.BACKGROUND)
        draw = ImageDraw.Draw(image)
        draw.rectangle([0, 0, side - 1, side - 1], outline=render.FRAME)

        def to_px(p):
            return (side / 2 + (p[0] - centre[0]) / half * (side / 2 - 8),
                    side / 2 - (p[1] - centre[1]) / half * (side / 2 - 8))

        for i, (a, b) in enumerate(zip(demo[f"{name}_a"], demo[f"{name}_b"])):
            colour = colours[i % len(colours)]
            (ax, ay), (bx, by) = to_px(a), to_px(b)
            draw.line([ax, ay, bx, by], fill=colour, width=2)
            draw.ellipse([ax - 5, ay - 5, ax + 5, ay + 5], fill=colour)
            draw.ellipse([bx - 8, by - 8, bx + 8, by + 8], outline=colour, width=2)
        panels.append(np.asarray(image).copy())
    return render.side_by_side(panels, gap=16)


def histogram_picture(counts: np.ndarray, alpha: float, *, size: tuple[int, int] = (420, 190)) -> np.ndarray:
    """Bars of the counts over [0, 1] with alpha marked by a red line; ticks 0, 0.5, alpha, 1."""
    width, height = size
    font = _font()
    image = Image.new("RGB", size, render.BACKGROUND)
    draw = ImageDraw.Draw(image)
    left, right, top, bottom = 12, width - 12, 8, height - 26
    counts = np.asarray(counts, np.float64)
    peak = counts.max() if counts.size and counts.max() > 0 else 1.0
    slot = (right - left) / len(counts)
    for i, count in enumerate(counts.tolist()):
        h = count / peak * (bottom - top)
        if h > 0:
            draw.rectangle([left + i * slot + 1, bottom - h, left + (i + 1) * slot - 1, bottom], fill=render.REAL_COLOUR)
    draw.line([left, bottom, right, bottom], fill=render.TEXT)
    x_alpha = left + alpha * (right - left)
    draw.line([x_alpha, top, x_alpha, bottom], fill=render.WARNING_COLOUR, width=3)
    for tick in (0.0, 0.5, 1.0):
        x = left + tick * (right - left)
        draw.line([x, bottom, x, bottom + 4], fill=render.TEXT)
        anchor = "la" if tick == 0 else "ra" if tick == 1 else "ma"
        draw.text((x, bottom + 5), f"{tick:g}", fill=render.TEXT, font=font, anchor=anchor)
    draw.text((x_alpha - 4, bottom + 5), f"{alpha:g}", fill=render.WARNING_COLOUR, font=font, anchor="ra")
    return np.asarray(image).copy()


def feature_bars_picture(real: np.ndarray, fake: np.ndarray, *, size: tuple[int, int] = (420, 170)) -> np.ndarray:
    """Pairs of bars per feature (real blue, generated orange) around a zero line."""
    width, height = size
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    image = Image.new("RGB", size, render.BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = _font()
    left, right, top, bottom = 60, width - 6, 10, height - 10
    values = np.concatenate([real, fake, [0.0]])
    values = values[np.isfinite(values)]
    low, high = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    if high - low < 1e-12:
        high = low + 1.0

    def y_of(v: float) -> float:
        return bottom - (min(max(v, low), high) - low) / (high - low) * (bottom - top)

    zero = y_of(0.0)
    slot = (right - left) / max(len(real), 1)
    bar = max(1.0, slot * 0.4)
    for i, (r, f) in enumerate(zip(real.tolist(), fake.tolist())):
        x = left + i * slot + slot * 0.1
        for value, colour, offset in ((r, render.REAL_COLOUR, 0.0), (f, render.FAKE_COLOUR, bar)):
            if math.isfinite(value):
                y = y_of(value)
                draw.rectangle([x + offset, min(y, zero), x + offset + bar - 1, max(y, zero)], fill=colour)
    draw.line([left, zero, right, zero], fill=render.TEXT)
    draw.text((left - 4, top), f"{high:.2g}", fill=render.TEXT, font=font, anchor="rm")
    draw.text((left - 4, zero), "0", fill=render.TEXT, font=font, anchor="rm")
    if low < 0:
        draw.text((left - 4, bottom), f"{low:.2g}", fill=render.TEXT, font=font, anchor="rm")
    return np.asarray(image).copy()


def distance_picture(steps: list[int], distances: list[float], *, width: int = 420) -> np.ndarray:
    chart = curves.panel([("", np.asarray(steps, np.float64), np.asarray(distances, np.float64), curves.ORANGE)],
                         size=(width, 170), title="")
    return np.asarray(chart.convert("RGB")).copy()


# ---------------------------------------------------------------------------- per run


class InsideViews:
    """What a job draws inside the game, picture after picture, for one trainer.

    `draw(step, samples)` -> (pictures, numbers): PNG bytes by view name ("heatmap",
    "arrows" for 2-D data; "mbd", "vbn", "ls", "fm", "fm_distance" when that technique is
    on) and the numbers the page prints beside them. `samples` are the fixed-noise samples
    just drawn for the sample picture (no extra generator pass for the layers).
    """

    def __init__(self, trainer):
        self.trainer = trainer
        config, dataset = trainer.config, trainer.dataset
        self.is_image = dataset.is_image
        rng = torch.Generator().manual_seed(config.seed + VIEW_SEED)
        self.batch = min(config.batch_size, 256)
        self.real = dataset.sample(self.batch, rng)  # feature matching's real batch for the arrows and lens
        self.real_many = dataset.sample(HISTOGRAM_POINTS, rng) if config.label_smoothing is not None else None
        self.limits = None if self.is_image else plot_limits(dataset)
        self.size = 320
        self.vbn_noise = None
        if config.virtual_batch_norm:
            self.vbn_noise = [torch.randn(n, config.noise_dim, generator=rng) for n in (VBN_SHOWN, VBN_MATES,
                                                                                       VBN_MATES)]
        self.fm_steps: list[int] = []
        self.fm_distances: list[float] = []

    def draw(self, step: int, samples: np.ndarray) -> tuple[dict[str, bytes], dict[str, float]]:
        trainer, config = self.trainer, self.trainer.config
        discriminator = trainer.discriminator
        device = next(discriminator.parameters()).device
        fake = torch.as_tensor(np.asarray(samples[:self.batch]), dtype=torch.float32, device=device)
        real = self.real.to(device)
        pictures: dict[str, bytes] = {}
        numbers: dict[str, float] = {}
        if not self.is_image:
            values = inside.heatmap(discriminator, self.limits, batch=fake[:HEATMAP_BATCH])
            pictures["heatmap"] = rgba_png(heatmap_layer(values, size=self.size))
            vectors = inside.push(discriminator, fake, feature_matching=config.feature_matching,
                                  saturating=config.generator_loss == "saturating", real_batch=real)
            shown = min(ARROWS, len(vectors))
            pictures["arrows"] = rgba_png(arrows_layer(fake[:shown].cpu().numpy(), vectors[:shown], self.limits,
                                                       size=self.size))
            numbers["d_min"], numbers["d_max"] = float(values.min()), float(values.max())
        if discriminator.minibatch is not None:
            n = min(MATRIX_SIDE, len(fake), len(real))
            lens = inside.closeness_lens(discriminator, real[:n], fake[:n])
            pictures["mbd"] = render.png_bytes(mbd_picture(lens))
            numbers["mbd_real"] = float(lens["real_matrix"].mean() / float(lens["kernels"]))
            numbers["mbd_fake"] = float(lens["fake_matrix"].mean() / float(lens["kernels"]))
        if self.vbn_noise is not None:
            noise, mates_a, mates_b = (t.to(device) for t in self.vbn_noise)
            demo = inside.vbn_demo(trainer.generator, noise, mates_a, mates_b)
            pictures["vbn"] = render.png_bytes(vbn_picture(demo, is_image=self.is_image))
            numbers["vbn_bn_shift"], numbers["vbn_vbn_shift"] = demo["bn_shift"], demo["vbn_shift"]
        if config.label_smoothing is not None:
            probabilities = inside.batched_real_probabilities(discriminator, self.real_many.to(device), self.batch)
            counts, _ = inside.real_histogram(probabilities)
            pictures["ls"] = render.png_bytes(histogram_picture(counts, float(config.label_smoothing)))
            numbers["ls_alpha"] = float(config.label_smoothing)
            numbers["ls_mean"] = float(np.mean(probabilities))
        if config.feature_matching:
            means = inside.feature_means(discriminator, real, fake)
            self.fm_steps.append(int(step))
            self.fm_distances.append(means["distance"])
            if len(self.fm_steps) > FM_HISTORY:
                self.fm_steps, self.fm_distances = self.fm_steps[:-1:2] + self.fm_steps[-1:], \
                    self.fm_distances[:-1:2] + self.fm_distances[-1:]
            pictures["fm"] = render.png_bytes(feature_bars_picture(means["real"][:FM_FEATURES],
                                                                   means["fake"][:FM_FEATURES]))
            pictures["fm_distance"] = render.png_bytes(distance_picture(self.fm_steps, self.fm_distances))
            numbers["fm_distance"] = means["distance"]
        return pictures, numbers



class SafeInsideViews:
    """InsideViews as a job uses them: a drawing error is printed to the job's log and
    switches the views off for the rest of the run; it never fails the run."""

    def __init__(self, trainer):
        self.views: InsideViews | None = None
        try:
            self.views = InsideViews(trainer)
        except Exception:
            traceback.print_exc(file=sys.stderr)

    def draw(self, step: int, samples: np.ndarray) -> tuple[dict[str, bytes], dict[str, float]] | None:
        if self.views is None:
            return None
        try:
            pictures, numbers = self.views.draw(step, samples)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            self.views = None
            return None
        return (pictures, numbers) if pictures else None
