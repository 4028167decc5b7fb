"""The settings form and the class link, called directly (no server): messages at the field
in the visitor's words and language, bounds from the server's limits, knobs tied to their
technique, and links that round-trip the settings."""

from __future__ import annotations

import gradio as gr
import pytest

from ganapp.config import GANConfig
from ganapp.presets import PRESETS, preset_config
from ganapp.web import links
from ganapp.web.form import SWITCH_FIELDS, ConfigForm, technique_fields


@pytest.fixture(scope="module")
def form():
    with gr.Blocks():
        return ConfigForm(GANConfig(), max_steps=20_000, max_batch_size=1024, max_hidden_dim=512)


def _values(form: ConfigForm, config: GANConfig = GANConfig(), **changes) -> dict:
    values = {component: component.value for component in form.components}
    values.update(form.from_config(config))
    for name, value in changes.items():
        values[form.ls_alpha if name == "label_smoothing" else form.fields[name]] = value
    return values


def test_a_good_form_has_no_problems(form):
    assert form.problems(_values(form), "en") == {}
    for name in PRESETS:
        assert form.problems(_values(form, preset_config(name)), "zh-TW") == {}, name


@pytest.mark.parametrize("name, value, english, chinese", [
    ("lr_generator", -1, "Learning rate of the generator must be more than 0 and at most 1; you entered -1.",
     "生成器的學習率必須大於 0 且不超過 1；你輸入的是 -1。"),
    ("steps", 1_000_000_000, "Training steps must be between 1 and 20,000 (this server's limit); you entered "
                             "1,000,000,000.", "訓練步數必須介於 1 到 20,000 之間（這台伺服器的上限）"),
    ("steps", 2.5, "Training steps must be a whole number; you entered 2.5.", "訓練步數必須是整數"),
    ("batch_size", None, "Batch size is empty: enter a number.", "批次大小是空的"),
    ("batch_size", 2048, "between 2 and 1,024 (this server's limit)", "介於 2 到 1,024 之間"),
    ("beta1", 1, "Adam β1 must be at least 0 and less than 1; you entered 1.", "至少 0 且小於 1"),
])
def test_a_bad_value_gets_a_message_at_its_field_in_the_users_words(form, name, value, english, chinese):
    values = _values(form, **{name: value})
    (component, message), = form.problems(values, "en").items()
    assert component is form.fields[name] and english in message and "_" not in message  # no internal names
    assert chinese in form.problems(values, "zh-TW")[component]


def test_a_knob_is_judged_only_while_its_technique_is_on(form):
    off = _values(form, label_smoothing=0.3, minibatch_kernels=0)
    assert form.problems(off, "en") == {}  # both techniques are off: their knobs do not matter
    on = dict(off)
    on[form.ls_on], on[form.fields["minibatch_discrimination"]] = True, True
    problems = form.problems(on, "en")
    assert problems[form.ls_alpha] == ("Target for real data (α) must be more than 0.5 and at most 1; "
                                       "you entered 0.3.")
    assert "Kernels (B) must be between 1 and 1,024" in problems[form.fields["minibatch_kernels"]]


def test_every_knob_belongs_to_a_technique_switch_and_starts_disabled(form):
    knobs = technique_fields()
    assert set(knobs) == set(SWITCH_FIELDS)
    assert knobs["minibatch_discrimination"] == ["minibatch_kernels", "minibatch_kernel_dim", "minibatch_reduction"]
    assert knobs["historical_averaging"] == ["historical_averaging_weight", "historical_averaging_decay"]
    assert knobs["virtual_batch_norm"] == ["vbn_reference_size"]
    for switch, components in form.knobs.items():
        for component in components:
            assert component.interactive is False, (switch, component.elem_id)  # every technique is off by default
    assert form.ls_alpha in form.knobs["label_smoothing"]


def test_the_form_speaks_both_languages(form):
    english, chinese = form.relabel("en"), form.relabel("zh-TW")
    assert english[form.fields["steps"]]["label"] == "Training steps (at most 20,000)"
    assert chinese[form.fields["steps"]]["label"] == "訓練步數（最多 20,000）"
    assert chinese[form.fields["minibatch_discrimination"]]["label"] == "小批次判別（minibatch discrimination）"
    assert ("關閉", "off") in chinese[form.fields["historical_averaging"]]["choices"]
    assert all("label" in update for update in chinese.values() if "value" not in update)


# ------------------------------------------------------------------ links
def test_a_link_round_trips_the_preset_settings_and_language():
    preset = "ring8, G without batch norm: minibatch discrimination"
    settings = preset_config(preset).replace(steps=3000, label_smoothing=0.8, seed=7).to_dict()
    url = links.build("http://10.0.0.5:7860/?view=present&hide=advanced,api&lang=en", settings=settings,
                      base=preset_config(preset), preset=preset, lang="zh-TW")
    assert url.startswith("http://10.0.0.5:7860/?preset=ring8%2C+G+without")
    assert "device" not in url and "minibatch_discrimination" not in url  # only what differs from the preset
    link = links.parse(url.split("?", 1)[1], set(PRESETS), set())
    assert (link.preset, link.lang, link.view, link.hide) == (preset, "zh-TW", "present", ("advanced", "api"))
    assert link.settings == {"steps": 3000, "label_smoothing": 0.8, "seed": 7}
    assert link.ignored == []


def test_a_link_with_nonsense_opens_what_it_can():
    link = links.parse({"preset": "nope", "steps": "many", "colour": "red", "label_smoothing": "off",
                        "virtual_batch_norm": "1", "hide": "api,<script>", "view": "evil"}, set(PRESETS), set())
    assert link.preset is None and link.view is None and link.hide == ("api",)
    assert link.settings == {"label_smoothing": None, "virtual_batch_norm": True}
    assert [key for key, _ in link.ignored] == ["preset", "steps", "colour"]
