"""The few words drawn inside the job's pictures, in English and Traditional Chinese.

A run's pictures (the sample picture's legend, the loss curves' titles and legends, the
metrics bar chart's title and collapse warning) are drawn in the job process, once, in
the language of the page that started the run (the job spec's `lang`). Chinese needs a
CJK font: Debian's fonts-noto-cjk (installed by the Dockerfile and .ci/run). Where it is
missing, pictures fall back to English rather than draw empty boxes. Torch-free; Pillow
only. Terms follow /shared/CLASSROOM.md (生成器, 判別器, 模式崩潰).
"""

from __future__ import annotations

import functools
from pathlib import Path

from PIL import ImageFont

LANGUAGES = ("en", "zh-TW")

# key -> (English, 繁體中文)
WORDS: dict[str, tuple[str, str]] = {
    "real": ("real", "真實資料"),
    "generated": ("generated", "生成的樣本"),
    "losses": ("losses", "損失"),
    "d_loss": ("D loss", "判別器損失"),
    "g_loss": ("G loss", "生成器損失"),
    "d_outputs": ("D's outputs", "判別器的輸出"),
    "mean_d_real": ("mean D(x)", "平均 D(x)"),
    "mean_d_fake": ("mean D(G(z))", "平均 D(G(z))"),
    "per_modes": ("high-quality samples per mode", "每個模式的高品質樣本數"),
    "per_strokes": ("high-quality samples per drawn stroke", "每一筆畫的高品質樣本數"),
    "per_classes": ("samples per class (the classifier's top guess)", "每個類別的樣本數（分類器的第一猜測）"),
    "collapse": ("Mode collapse: only {covered} of {total} {what} covered",
                 "模式崩潰：{total} 個{what}只涵蓋了 {covered} 個"),
    "modes": ("modes", "模式"),
    "strokes": ("strokes", "筆畫"),
    "classes": ("classes", "類別"),
}

# Where Debian (fonts-noto-cjk) and other systems keep a font with Traditional Chinese.
CJK_FONT_FILES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Medium.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
)


def picture_language(lang: object) -> str:
    """The language pictures are drawn in: `lang` when known and drawable here, else English."""
    if lang == "zh-TW" and cjk_font(12) is not None:
        return "zh-TW"
    return "en"


def word(key: str, lang: str = "en", **values: object) -> str:
    english, chinese = WORDS[key]
    text = chinese if lang == "zh-TW" else english
    return text.format(**values) if values else text


@functools.lru_cache(maxsize=16)
def cjk_font(size: int) -> ImageFont.FreeTypeFont | None:
    """Noto Sans CJK TC at `size` pixels, or None when no CJK font is installed."""
    for path in CJK_FONT_FILES:
        if not Path(path).is_file():
            continue
        for index in range(10):  # a .ttc holds several faces: take the Traditional Chinese one
            try:
                font = ImageFont.truetype(path, size, index=index)
            except OSError:
                break
            if "TC" in font.getname()[0]:
                return font
    return None


def font_for(lang: str, size: int, fallback):
    """The font to draw `lang`'s words at `size` pixels: the CJK font for Chinese, else `fallback`."""
    if lang == "zh-TW":
        font = cjk_font(size)
        if font is not None:
            return font
    return fallback
