"""Words inside the job's pictures in the language of the page that started the run
(ganapp.picture_text): the legend, the curves' titles and legends, the bar chart's title
and collapse warning. Nothing but the words changes: the plot is the same, pixel for pixel."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ganapp import curves, metrics, picture_text, render
from ganapp.config import GANConfig

needs_cjk = pytest.mark.skipif(picture_text.cjk_font(12) is None,
                               reason="no CJK font here (apt-get install fonts-noto-cjk)")
RNG = np.random.default_rng(0)
REAL, FAKE = RNG.normal(size=(200, 2)), RNG.normal(size=(200, 2))


@needs_cjk
def test_the_scatter_legend_is_chinese_and_the_plot_is_unchanged():
    english = render.scatter_2d(REAL, FAKE, limits=(-3, 3, -3, 3))
    chinese = render.scatter_2d(REAL, FAKE, limits=(-3, 3, -3, 3), lang="zh-TW")
    top, left, side = render._plot_box(english.shape[0])
    assert english.shape == chinese.shape
    assert np.array_equal(english[top:], chinese[top:])  # the plot box and below: the same pixels
    assert not np.array_equal(english[:top], chinese[:top])  # the legend strip: other words
    # The Chinese legend is drawn with glyphs, not the boxes of a font without them.
    strip = chinese[:top].astype(int)
    assert (np.abs(strip - 255).sum(axis=2) > 200).sum() > 40


def test_an_unknown_language_or_no_cjk_font_draws_english(monkeypatch):
    english = render.scatter_2d(REAL, FAKE, limits=(-3, 3, -3, 3))
    assert np.array_equal(render.scatter_2d(REAL, FAKE, limits=(-3, 3, -3, 3), lang="fr"), english)
    monkeypatch.setattr(picture_text, "cjk_font", lambda size: None)
    assert picture_text.picture_language("zh-TW") == "en"
    render._blank_scatter.cache_clear()
    try:
        assert np.array_equal(render.scatter_2d(REAL, FAKE, limits=(-3, 3, -3, 3), lang="zh-TW"), english)
    finally:
        render._blank_scatter.cache_clear()


@needs_cjk
def test_the_loss_curves_speak_chinese():
    history = [{"step": s, "d_loss": 1.0 + 0.01 * s, "g_loss": 2.0 - 0.01 * s, "d_real": 0.6, "d_fake": 0.4}
               for s in range(1, 60)]
    english = Image.open(io.BytesIO(curves.training_curves_png(history)))
    chinese = Image.open(io.BytesIO(curves.training_curves_png(history, lang="zh-TW")))
    assert english.size == chinese.size
    a, b = np.asarray(english.convert("RGB")), np.asarray(chinese.convert("RGB"))
    assert not np.array_equal(a, b)
    assert np.array_equal(a[40:180, 60:400], b[40:180, 60:400])  # the lines themselves: the same


@needs_cjk
def test_the_bar_chart_title_and_collapse_warning_are_chinese():
    measured = {"histogram": [90, 0, 0, 0, 0, 0, 0, 10], "histogram_labels": [str(k) for k in range(8)],
                "histogram_title": "high-quality samples per mode", "histogram_kind": "modes",
                "modes_covered": 2, "warning": metrics.coverage_warning(2, 8, "modes")}
    assert measured["warning"] == "Mode collapse: only 2 of 8 modes covered"
    english = metrics.metrics_picture(measured)
    chinese = metrics.metrics_picture(measured, lang="zh-TW")
    line = render._line_height()
    assert np.array_equal(english[line + 2:], chinese[line + 2:])  # the bars and labels
    assert not np.array_equal(english[:line + 2], chinese[:line + 2])
    assert picture_text.word("collapse", "zh-TW", covered=2, total=8, what=picture_text.word("modes", "zh-TW")) \
        == "模式崩潰：8 個模式只涵蓋了 2 個"
    calm = dict(measured, warning=None, modes_covered=8)
    assert not np.array_equal(metrics.metrics_picture(calm, lang="zh-TW")[:line + 2], chinese[:line + 2])


@needs_cjk
def test_a_job_started_from_a_chinese_page_draws_chinese_words(manager):
    """Through the job server and a real job process: the same run in both languages gives
    the same samples, and pictures that differ only in the legend strip."""
    config = GANConfig(data="ring8", steps=40, batch_size=32, hidden_dim=32, log_every=5, sample_every=20,
                       metrics_every=0, seed=3)
    owner = manager.issue_token()
    runs = {lang: manager.submit(owner, config, lang=lang) for lang in ("en", "zh-TW")}
    pictures = {}
    for lang, run in runs.items():
        assert manager.wait(owner, run.id, timeout_s=120).state == "finished", run.reason
        assert run.spec["lang"] == lang
        pictures[lang] = np.asarray(Image.open(io.BytesIO(run.picture)).convert("RGB"))
    top = render._plot_box(pictures["en"].shape[0])[0]
    assert np.array_equal(pictures["en"][top:], pictures["zh-TW"][top:])
    assert not np.array_equal(pictures["en"][:top], pictures["zh-TW"][:top])
    assert manager.submit(owner, config, lang="<b>").spec["lang"] == "en"  # anything else: English


def test_the_collapse_warning_in_a_caption_follows_the_page_language():
    from ganapp.web import views

    english = "Mode collapse: only 1 of 8 modes covered"
    assert views.collapse_warning(english, "en") == english
    assert views.collapse_warning(english, "zh-TW") == "模式崩潰：8 個模式只涵蓋了 1 個"
    assert views.collapse_warning("Mode collapse: only 3 of 10 classes covered", "zh-TW") == \
        "模式崩潰：10 個類別只涵蓋了 3 個"
    assert views.collapse_warning("something else", "zh-TW") == "something else"
    assert views.collapse_warning(None, "zh-TW") is None
