"""A pair as a captioned animated GIF (ganapp.web.export), made from pictures in memory."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from ganapp.web import export


def _png(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (shade, shade, shade)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_frames_pair_each_step_with_each_sides_picture_at_or_before_it():
    side_a = [(0, b"a0"), (100, b"a100"), (200, b"a200")]
    side_b = [(0, b"b0"), (150, b"b150")]
    assert export.pair_frames(side_a, side_b) == [(0, b"a0", b"b0"), (100, b"a100", b"b0"),
                                                 (150, b"a100", b"b150"), (200, b"a200", b"b150")]
    assert export.pair_frames(side_a, []) == []
    many = [(step, b"x") for step in range(0, 10_000, 10)]
    frames = export.pair_frames(many, many)
    assert len(frames) == export.MAX_FRAMES and frames[-1][0] == 9_990


def test_a_pair_becomes_an_animated_gif_with_chinese_captions(tmp_path):
    frames = export.pair_frames([(s, _png(s)) for s in (0, 100, 200)], [(s, _png(255 - s)) for s in (0, 100, 200)])
    path = export.pair_gif(frames, ("ring8：原始 GAN", "ring8：小批次判別"), lambda step: f"第 {step} 步",
                           tmp_path / "pair.gif")
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 3
        assert gif.size == (2 * export.PANE + 12, export.PANE + export.CAPTION)
    if any(Path(f).is_file() for f in export.FONT_FILES):  # fonts-noto-cjk draws the captions' Chinese
        assert "TC" in export.caption_font().getname()[0]
