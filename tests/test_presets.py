"""The app's preset menu: every preset is a valid config with a note, and each pair
differs from its vanilla partner only in the technique it shows. No training here:
the evidence in the notes comes from docs/results.md."""

import pytest

from ganapp.config import ConfigError, GANConfig
from ganapp.presets import PRESET_NOTES, PRESETS, preset_config

# Settings that belong to a technique; everything else must match the vanilla partner.
TECHNIQUE_FIELDS = {"feature_matching", "minibatch_discrimination", "minibatch_kernels", "minibatch_kernel_dim",
                    "minibatch_reduction",
                    "historical_averaging", "historical_averaging_weight", "historical_averaging_decay",
                    "label_smoothing", "virtual_batch_norm", "vbn_reference_size"}
# Names the app shipped with before the presets were measured; saved links and muscle memory use them.
ORIGINAL_NAMES = ["ring8: vanilla", "ring8: minibatch discrimination", "ring8: label smoothing 0.9",
                  "ring8: feature matching", "digits: vanilla", "digits: minibatch discrimination"]


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_validates(name):
    config = preset_config(name)
    assert isinstance(config, GANConfig)
    assert set(PRESETS[name]) <= set(config.to_dict()), "a preset may only name config fields"
    for field, value in PRESETS[name].items():
        assert getattr(config, field) == value


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_has_a_one_sentence_note(name):
    note = PRESET_NOTES[name]
    assert isinstance(note, str) and 20 < len(note) < 400 and "\n" not in note


def test_notes_and_presets_name_the_same_presets():
    assert list(PRESET_NOTES) == list(PRESETS)


def test_the_original_preset_names_still_work():
    for name in ORIGINAL_NAMES:
        config = preset_config(name)
        assert isinstance(config, GANConfig) and config.data == name.split(":")[0], name
        assert (config.techniques == []) == name.endswith(": vanilla"), name


def test_each_technique_has_a_preset():
    shown = {technique for name in PRESETS for technique in preset_config(name).techniques}
    assert {"FM", "MBD", "HA", "LS", "VBN"} <= shown


@pytest.mark.parametrize("name", [n for n in PRESETS if not n.endswith(": vanilla")])
def test_a_pair_differs_from_its_vanilla_partner_only_in_its_technique(name):
    partner = name.split(":")[0] + ": vanilla"
    assert partner in PRESETS, f"{name!r} has no vanilla partner {partner!r} to compare with"
    own, base = preset_config(name).to_dict(), preset_config(partner).to_dict()
    differing = {k for k in own if own[k] != base[k]}
    assert differing and differing <= TECHNIQUE_FIELDS, differing
    assert preset_config(name).techniques, f"{name!r} turns no technique on"


def test_unknown_preset_names_the_known_ones():
    with pytest.raises(KeyError, match="ring8: vanilla"):
        preset_config("no such preset")


def test_a_preset_is_not_changed_by_building_its_config():
    before = {name: dict(values) for name, values in PRESETS.items()}
    for name in PRESETS:
        preset_config(name).steps = 1
    assert PRESETS == before


def test_a_broken_preset_would_fail_loudly(monkeypatch):
    monkeypatch.setitem(PRESETS, "broken", {"data": "ring8", "steps": -1})
    with pytest.raises(ConfigError, match="steps"):
        preset_config("broken")


def test_ready_made_runs_are_shipped_with_a_note_and_match_their_names():
    from ganapp.checkpoint import load_checkpoint
    from ganapp.presets import READY_MADE_NOTES, ready_made_checkpoint, ready_made_runs

    assert ready_made_runs() == list(READY_MADE_NOTES)  # every run with a note is shipped
    for name in ready_made_runs():
        path = ready_made_checkpoint(name)
        assert path.stat().st_size < 1_000_000
        config, _, meta = load_checkpoint(path)
        assert name.startswith(config.data) and meta["step"] == config.steps
        assert ("minibatch" in name or "our-methods" in name) == config.minibatch_discrimination
        assert config.minibatch_reduction == ("sum" if name.endswith("-summed") else "mean")
    with pytest.raises(KeyError):
        ready_made_checkpoint("../runs/ring8-vanilla")
