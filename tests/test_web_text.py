"""Both languages are complete, and every setting is described once (GANConfig's metadata),
with bounds that agree with the config's own validation."""

from __future__ import annotations

import dataclasses
import math
import re

import pytest

from ganapp.config import Bounds, ConfigError, GANConfig, field_meta
from ganapp.presets import (PRESET_NOTES, PRESET_NOTES_ZH, PRESET_TITLES_ZH, PRESETS, READY_MADE_NOTES,
                            READY_MADE_NOTES_ZH, READY_MADE_TITLES_ZH)
from ganapp.web import text

FIELDS = [f.name for f in dataclasses.fields(GANConfig)]
# Simplified characters and mainland terms that a Taiwan reader would notice (CLASSROOM.md).
NOT_TAIWAN = re.compile("[数据网络图层设训练习类别损]|数据|網絡|信息|默認|默认|視頻|程序|文件夾")
CJK = re.compile(r"[\u4e00-\u9fff]")


def _is_chinese(value: str) -> bool:
    return bool(CJK.search(value)) and not NOT_TAIWAN.search(value)


@pytest.mark.parametrize("name", FIELDS)
def test_every_setting_has_a_label_and_help_in_both_languages(name):
    meta = field_meta(name)
    assert meta["label"] and meta["help"], name
    assert _is_chinese(meta["label_zh"]) or meta["label_zh"].startswith("Adam"), name
    assert _is_chinese(meta["help_zh"]), name
    assert meta["group"] in ("data", "technique", "training", "advanced"), name
    for value, (english, chinese) in meta.get("choice_labels", {}).items():
        assert value in (meta.get("choices") or ()) and english and chinese


def test_every_page_text_has_both_languages():
    for key, (english, chinese) in text.TEXT.items():
        assert english.strip() and chinese.strip(), key
        assert sorted(re.findall(r"{(\w+)}", english)) == sorted(re.findall(r"{(\w+)}", chinese)), key
        assert _is_chinese(chinese) or key == "steps_of", (key, chinese)  # "{step} / {total}" needs no words
    for table in (text.TECHNIQUE_NOTES, text.LOOK_FOR):
        for key, (english, chinese) in table.items():
            assert english and _is_chinese(chinese), key
    for key, (english, chinese, meaning, meaning_zh) in text.METRICS.items():
        assert english and meaning and _is_chinese(meaning_zh), key


def test_chinese_uses_the_origin_articles_terms():
    notes = " ".join(zh for _, zh in text.TECHNIQUE_NOTES.values())
    labels = {name: field_meta(name)["label_zh"] for name in FIELDS}
    for field, term in (("feature_matching", "特徵匹配"), ("minibatch_discrimination", "小批次判別"),
                        ("historical_averaging", "歷史平均法"), ("label_smoothing", "單邊的標籤平滑"),
                        ("virtual_batch_norm", "虛擬的批次歸一化")):
        assert labels[field].startswith(term), field
    assert "生成器" in notes and "判別器" in notes


def test_every_preset_and_ready_made_run_has_a_chinese_title_and_note():
    assert set(PRESET_TITLES_ZH) == set(PRESETS) == set(PRESET_NOTES_ZH) == set(PRESET_NOTES)
    assert set(READY_MADE_TITLES_ZH) == set(READY_MADE_NOTES_ZH) == set(READY_MADE_NOTES)
    for table in (PRESET_TITLES_ZH, PRESET_NOTES_ZH, READY_MADE_TITLES_ZH, READY_MADE_NOTES_ZH):
        assert all(_is_chinese(value) for value in table.values())


def test_the_language_comes_from_a_link_or_the_browser():
    assert text.language("zh-TW") == text.language("zh-Hant-TW,en;q=0.8") == "zh-TW"
    assert text.language("zh-CN") == "zh-TW"  # the only Chinese here, rather than English
    assert text.language("en-GB,zh;q=0.5") == text.language("fr") == text.language(None) == "en"
    assert text.tr("zh-TW", "state_running") == "訓練中" and text.tr("en", "queued_at", n=3) == "queued (#3 in line)"


# ------------------------------------------------------------------ bounds agree with validate()
def _near(bounds: Bounds, at: float, integer: bool) -> list[tuple[float, bool]]:
    """Values at and around one bound, with whether the bounds allow them."""
    step = 1 if integer else max(abs(at) * 1e-6, 1e-9)
    return [(v, bounds.allows(v)) for v in (at - step, at, at + step)]


@pytest.mark.parametrize("name", [n for n in FIELDS if field_meta(n).get("bounds")])
def test_each_settings_bounds_are_the_ones_validation_enforces(name):
    bounds = field_meta(name)["bounds"]
    integer = isinstance(getattr(GANConfig(), name), int) and name != "label_smoothing"
    edges = [bounds.low] + ([bounds.high] if bounds.high is not None and bounds.high < 2**62 else [])
    for edge in edges:
        for value, allowed in _near(bounds, edge, integer):
            value = int(value) if integer else value
            if not math.isfinite(value) or (integer and value < 0 and name != "seed" and bounds.low >= 0 and
                                             value < bounds.low - 1):
                continue
            try:
                GANConfig(**{name: value})
                accepted = True
            except ConfigError:
                accepted = False
            assert accepted == allowed, (name, value)
