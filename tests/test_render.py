"""Tests for ganapp.render: shapes, colours where points land, PNG round trips, speed (printed)."""

import io
import os

import numpy as np
import pytest
from PIL import Image

from ganapp import render


def _close_to(pixel, colour, tolerance=3):
    return np.all(np.abs(np.asarray(pixel, int) - np.asarray(colour, int)) <= tolerance)


# ---------------------------------------------------------------------------- image_grid


def test_grid_of_64_digits_is_8_by_8_tiles_of_32_px():
    images = np.zeros((64, 1, 8, 8), np.float32)
    grid = render.image_grid(images)
    assert grid.dtype == np.uint8
    # 8 tiles of 32 px plus 9 one-pixel paddings.
    assert grid.shape == (8 * 32 + 9, 8 * 32 + 9, 3)
    assert 256 <= grid.shape[1] <= 320


def test_grid_of_16_mnist_digits():
    grid = render.image_grid(np.zeros((16, 1, 28, 28), np.float32), padding=2)
    tile = 28 * 2  # default scale 2 keeps 4 columns under 320 px
    assert grid.shape == (4 * tile + 5 * 2, 4 * tile + 5 * 2, 3)
    assert grid.dtype == np.uint8


def test_grid_with_explicit_rows_scale_and_partial_last_row():
    grid = render.image_grid(np.zeros((5, 3, 4, 6), np.float32), nrow=3, scale=2, padding=1)
    # 3 columns, 2 rows; the sixth cell is empty padding.
    assert grid.shape == (2 * 8 + 3, 3 * 12 + 4, 3)
    assert np.all(grid[1 + 8 + 1 :, 2 * 13 + 1 :] == render.GRID_PADDING)


def test_grid_maps_minus_one_to_black_and_plus_one_to_white():
    images = np.stack([-np.ones((1, 4, 4)), np.ones((1, 4, 4))]).astype(np.float32)
    grid = render.image_grid(images, nrow=2, scale=1, padding=1)
    assert grid.shape == (6, 11, 3)
    assert np.all(grid[1:5, 1:5] == 0)
    assert np.all(grid[1:5, 6:10] == 255)
    # Padding around and between the tiles is the (dark, non-black) padding colour.
    for pad in (grid[0], grid[5], grid[:, 0], grid[:, 5], grid[:, 10]):
        assert np.all(pad == render.GRID_PADDING)
    assert tuple(render.GRID_PADDING) != (0, 0, 0)


def test_grid_keeps_colour_channels_and_mid_grey():
    images = np.zeros((1, 3, 2, 2), np.float32)
    images[0, 0] = 1.0  # red channel full, others mid grey
    grid = render.image_grid(images, scale=1, padding=0)
    assert grid.shape == (2, 2, 3)
    assert np.all(grid[..., 0] == 255)
    assert np.all(np.abs(grid[..., 1:].astype(int) - 128) <= 1)


def test_grid_passes_uint8_through_and_clips_floats():
    images = np.arange(16, dtype=np.uint8).reshape(1, 1, 4, 4) * 16
    grid = render.image_grid(images, scale=1, padding=0)
    assert grid.dtype == np.uint8
    assert np.array_equal(grid[..., 0], images[0, 0])
    assert np.array_equal(grid[..., 2], images[0, 0])
    wild = render.image_grid(np.array([[[[5.0, -7.0]]]]), scale=1, padding=0)
    assert wild[0, 0, 0] == 255 and wild[0, 1, 0] == 0


def test_grid_upscales_with_nearest_neighbour():
    images = np.array([[[[-1.0, 1.0]]]], np.float32)  # one row: black, white
    grid = render.image_grid(images, scale=3, padding=0)
    assert grid.shape == (3, 6, 3)
    assert np.all(grid[:, :3] == 0) and np.all(grid[:, 3:] == 255)


def test_grid_rejects_bad_shapes_with_a_clear_error():
    with pytest.raises(ValueError, match="shape"):
        render.image_grid(np.zeros((4, 28, 28)))
    with pytest.raises(ValueError, match="at least one"):
        render.image_grid(np.zeros((0, 1, 8, 8)))


# ---------------------------------------------------------------------------- scatter_2d


def _pixel_of(point, limits, size):
    """Where scatter_2d puts the centre of `point`'s dot: the module's layout arithmetic."""
    top, left, side = render._plot_box(size)
    xmin, xmax, ymin, ymax = limits
    u = min(max((point[0] - xmin) / (xmax - xmin), 0.0), 1.0)
    v = min(max((ymax - point[1]) / (ymax - ymin), 0.0), 1.0)
    return top + 2 + round(v * (side - 5)), left + 2 + round(u * (side - 5))


def test_scatter_shape_dtype_and_colours_where_points_land():
    limits = (-2.0, 2.0, -2.0, 2.0)
    real = np.tile([[-1.0, -1.0]], (200, 1))
    fake = np.tile([[1.0, 1.0]], (200, 1))
    picture = render.scatter_2d(real, fake, limits=limits)
    assert picture.shape == (320, 320, 3) and picture.dtype == np.uint8
    r, c = _pixel_of((1.0, 1.0), limits, 320)
    assert _close_to(picture[r, c], render.FAKE_COLOUR)
    assert _close_to(picture[r + 1, c], render.FAKE_COLOUR)  # dots are 3 px wide
    r, c = _pixel_of((-1.0, -1.0), limits, 320)
    assert _close_to(picture[r, c], render.REAL_COLOUR)
    # Generated points are drawn over real ones.
    both = render.scatter_2d(real, np.tile([[-1.0, -1.0]], (200, 1)), limits=limits)
    assert _close_to(both[r, c], render.FAKE_COLOUR)


def test_scatter_single_points_are_translucent():
    limits = (-1.0, 1.0, -1.0, 1.0)
    picture = render.scatter_2d(None, np.array([[0.0, 0.0]]), limits=limits)
    r, c = _pixel_of((0.0, 0.0), limits, 320)
    pixel = picture[r, c].astype(int)
    assert not _close_to(pixel, render.BACKGROUND) and not _close_to(pixel, render.FAKE_COLOUR)


def test_scatter_clips_outside_points_to_the_border():
    limits = (-1.0, 1.0, -1.0, 1.0)
    far = np.tile([[100.0, 0.0]], (100, 1))
    picture = render.scatter_2d(None, far, limits=limits)
    r, c = _pixel_of((100.0, 0.0), limits, 320)
    assert _close_to(picture[r, c], render.FAKE_COLOUR)
    # Infinite points are outside too, and land on the edge instead of breaking the plot.
    picture = render.scatter_2d(None, np.tile([[-np.inf, np.inf]], (100, 1)), limits=limits)
    r, c = _pixel_of((-2.0, 2.0), limits, 320)
    assert _close_to(picture[r, c], render.FAKE_COLOUR)


def test_scatter_skips_nan_points_and_accepts_empty_and_none():
    limits = (-1.0, 1.0, -1.0, 1.0)
    blank = render.scatter_2d(None, None, limits=limits)
    assert blank.shape == (320, 320, 3)
    with_nan = render.scatter_2d(
        np.full((10, 2), np.nan), np.array([[np.nan, 0.5], [0.5, np.nan]]), limits=limits
    )
    assert np.array_equal(with_nan, blank)
    empty = render.scatter_2d(np.zeros((0, 2)), np.array([]), limits=limits)
    assert np.array_equal(empty, blank)
    # Default limits with nothing to go on still work.
    assert render.scatter_2d(None, None).shape == (320, 320, 3)
    assert render.scatter_2d(np.full((3, 2), np.nan), None, size=128).shape == (128, 128, 3)


def test_scatter_default_limits_fit_the_real_points():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(500, 2)) * [3.0, 1.0] + [10.0, -5.0]
    picture = render.scatter_2d(real, None)
    top, left, side = render._plot_box(320)
    plot = picture[top : top + side, left : left + side].astype(int)
    # The frame line, then a white ring inside it: nothing was pinned to the edge.
    assert np.all(plot[0] == render.FRAME) and np.all(plot[:, -1] == render.FRAME)
    for ring in (plot[1, 1:-1], plot[-2, 1:-1], plot[1:-1, 1], plot[1:-1, -2]):
        assert np.all(ring == 255)
    bluish = plot[..., 2] - plot[..., 0] > 30  # even a lone real dot is this blue
    assert bluish.sum() > 500
    # Roughly square limits: the cloud (3:1 in data units) stays 3:1 on screen.
    rows, cols = np.nonzero(bluish)
    assert 2.0 < np.ptp(cols) / np.ptp(rows) < 4.5


def test_scatter_draws_mode_crosses_and_a_legend():
    limits = (-1.0, 1.0, -1.0, 1.0)
    blank = render.scatter_2d(None, None, limits=limits)
    marked = render.scatter_2d(None, None, limits=limits, modes=np.array([[0.0, 0.0]]))
    r, c = _pixel_of((0.0, 0.0), limits, 320)
    assert tuple(marked[r, c]) == render.MODE_COLOUR
    assert tuple(marked[r, c + 3]) == render.MODE_COLOUR
    assert tuple(marked[r + 3, c]) == render.MODE_COLOUR
    assert np.sum(np.any(marked != blank, axis=2)) == 17  # one '+' of arm 4
    legend = blank[: render._line_height()]
    for colour in (render.REAL_COLOUR, render.FAKE_COLOUR):
        assert np.all(legend == colour, axis=2).any()
    assert (legend.sum(axis=2) < 300).any()  # dark text pixels


def test_scatter_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        render.scatter_2d(np.zeros((5, 3)), None)
    with pytest.raises(ValueError, match="limits"):
        render.scatter_2d(None, None, limits=(1.0, -1.0, 0.0, 1.0))


# ---------------------------------------------------------------------------- composition


def test_side_by_side_width_is_sum_of_widths_plus_gaps():
    a = np.zeros((50, 30, 3), np.uint8)
    b = np.full((70, 40, 3), 200, np.uint8)
    c = np.zeros((20, 10), np.uint8)  # grayscale is accepted
    joined = render.side_by_side([a, b, c], gap=5)
    assert joined.shape == (70, 30 + 40 + 10 + 2 * 5, 3) and joined.dtype == np.uint8
    assert np.all(joined[:50, :30] == 0)
    assert np.all(joined[50:, :30] == 255)  # shorter pictures padded with white
    assert np.all(joined[:, 30:35] == 255)  # the gap
    assert np.all(joined[:, 35:75] == 200)


def test_side_by_side_titles_go_above_the_pictures():
    a = np.zeros((40, 60, 3), np.uint8)
    titled = render.side_by_side([a, a], titles=["real", "generated"], gap=8)
    strip = titled.shape[0] - 40
    assert strip > 0 and titled.shape[1] == 128
    assert np.all(titled[strip:, :60] == 0)
    assert (titled[:strip, :60] < 128).any() and (titled[:strip, 68:] < 128).any()
    with pytest.raises(ValueError, match="titles"):
        render.side_by_side([a, a], titles=["one"])


# ---------------------------------------------------------------------------- bar_chart


def test_bar_chart_highlights_low_bars_in_the_warning_colour():
    values = [50, 0, 48, 3, 52, 49, 51, 47]
    labels = [str(i) for i in range(8)]
    chart = render.bar_chart(
        values, labels=labels, size=(320, 160), highlight_below=10, title="samples per mode"
    )
    assert chart.shape == (160, 320, 3) and chart.dtype == np.uint8

    def columns_of(colour):
        return set(np.nonzero(np.all(chart == colour, axis=2).any(axis=0))[0])

    slot = (320 - 8) / 8
    red, calm = columns_of(render.WARNING_COLOUR), columns_of(render.BAR_COLOUR)
    bars_with = lambda cols: {int((x - 4) // slot) for x in cols}  # noqa: E731
    assert bars_with(red) == {1, 3}  # the empty mode still shows a red sliver
    assert bars_with(calm) == {0, 2, 4, 5, 6, 7}
    plain = render.bar_chart(values)
    assert not np.all(plain == render.WARNING_COLOUR, axis=2).any()


def test_bar_chart_of_zeros_and_many_bars():
    assert render.bar_chart([0, 0, 0]).shape == (160, 320, 3)
    many = render.bar_chart(np.arange(25), labels=[f"mode {i}" for i in range(25)])
    assert many.shape == (160, 320, 3)


# ---------------------------------------------------------------------------- PNG output


def test_png_bytes_round_trips_rgb_and_grayscale():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(33, 47, 3), dtype=np.uint8)
    data = render.png_bytes(rgb)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), rgb)
    gray = rng.integers(0, 256, size=(20, 10), dtype=np.uint8)
    back = Image.open(io.BytesIO(render.png_bytes(gray, compress_level=6)))
    assert back.mode == "L" and np.array_equal(np.asarray(back), gray)
    with pytest.raises(ValueError, match="uint8"):
        render.png_bytes(np.zeros((4, 4, 3), np.float32))


def test_save_png_is_atomic_and_readable(tmp_path):
    picture = render.scatter_2d(np.zeros((5, 2)), np.ones((5, 2)))
    path = tmp_path / "samples.png"
    path.write_bytes(b"old")
    render.save_png(picture, path)
    assert np.array_equal(np.asarray(Image.open(path)), picture)
    assert os.listdir(tmp_path) == ["samples.png"]  # no temporary file left behind
    render.save_png(picture[:, :, 0], str(path))  # str paths and grayscale too
    assert Image.open(path).mode == "L"
    assert os.listdir(tmp_path) == ["samples.png"]


def test_save_png_leaves_no_temporary_file_when_it_fails(tmp_path):
    with pytest.raises(IsADirectoryError):
        render.save_png(np.zeros((4, 4, 3), np.uint8), tmp_path)  # a folder, not a file
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------- the app's real sizes
# (Speed is measured, not asserted, outside the test suite: this machine is shared.)


def test_the_app_sized_pictures_encode_to_pngs_that_decode_to_the_same_pixels():
    """The sizes the app renders every poll: 2500 + 2500 points, a grid of 64 28x28 digits."""
    rng = np.random.default_rng(0)
    real = rng.normal(size=(2500, 2))
    fake = rng.normal(size=(2500, 2)) * 1.5
    scatter = render.scatter_2d(real, fake, limits=(-4.0, 4.0, -4.0, 4.0))
    digits = rng.uniform(-1, 1, size=(64, 1, 28, 28)).astype(np.float32)
    grid = render.image_grid(digits)
    assert scatter.shape == (320, 320, 3) and grid.shape[0] == grid.shape[1] > 8 * 28
    for picture in (scatter, grid):
        decoded = np.asarray(Image.open(io.BytesIO(render.png_bytes(picture))))
        assert np.array_equal(decoded, picture)
    # Both colours are drawn, and the digits' grey levels survive (not all black or white).
    assert any(_close_to(pixel, render.REAL_COLOUR) for pixel in scatter.reshape(-1, 3)[::7])
    assert any(_close_to(pixel, render.FAKE_COLOUR) for pixel in scatter.reshape(-1, 3)[::7])
    assert len(np.unique(grid)) > 100


def test_a_scatter_relabelled_in_the_other_language_is_the_one_drawn_in_it():
    """A page switched to the other language repaints the picture's legend strip: the result
    is byte for byte the picture the job would have drawn in that language, with points
    pinned to the frame (a diverging G) and the modes' crosses; other pictures stay as they are."""
    from ganapp import picture_text

    if picture_text.picture_language("zh-TW") != "zh-TW":
        pytest.skip("no CJK font here (fonts-noto-cjk): pictures are drawn in English")
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(300, 2)), rng.normal(scale=9.0, size=(64, 2))  # many pinned to the edges
    modes = rng.normal(size=(8, 2))
    for size in (320, 200):
        drawn = {lang: render.png_bytes(render.scatter_2d(real, fake, size=size, modes=modes, lang=lang,
                                                          limits=(-2, 2, -2, 2)))
                 for lang in ("en", "zh-TW")}
        assert drawn["en"] != drawn["zh-TW"]
        assert render.relabel_scatter_png(drawn["en"], "zh-TW") == drawn["zh-TW"]
        assert render.relabel_scatter_png(drawn["zh-TW"], "en") == drawn["en"]
        assert render.relabel_scatter_png(drawn["en"], "en") is drawn["en"]
    grid = render.png_bytes(render.image_grid(rng.uniform(-1, 1, size=(16, 1, 8, 8)).astype(np.float32)))
    assert render.relabel_scatter_png(grid, "zh-TW") is grid
    assert render.relabel_scatter_png(b"not a picture", "zh-TW") == b"not a picture"
