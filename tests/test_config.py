"""The one config object: validation in words a student understands, JSON round trip."""

import dataclasses
import json

import pytest

from ganapp import data
from ganapp.config import DATASETS, TWO_D_DATASETS, ConfigError, GANConfig


def test_defaults_are_valid_and_round_trip_through_json():
    config = GANConfig()
    assert GANConfig.from_json(config.to_json()) == config
    assert json.loads(config.to_json())["data"] == "ring8"


def test_every_technique_is_off_by_default():
    config = GANConfig()
    assert config.techniques == []
    on = GANConfig(feature_matching=True, minibatch_discrimination=True, historical_averaging="uniform",
                   label_smoothing=0.9, virtual_batch_norm=True)
    assert on.techniques == ["FM", "MBD", "HA", "LS", "VBN"]
    assert on.replace(minibatch_reduction="sum").techniques[1] == "MBD-sum"
    assert GANConfig.from_dict(on.to_dict()) == on


def test_data_set_names_agree_with_the_data_module():
    assert DATASETS == data.DATASETS and TWO_D_DATASETS == data.TWO_D


@pytest.mark.parametrize("changes, words", [
    (dict(lr_generator=-1.0), "lr_generator (learning rate) must be > 0"),
    (dict(steps=0), "steps must be between 1"),
    (dict(batch_size=1), "batch_size must be between 2"),
    (dict(data="cifar"), "data must be one of ring8"),
    (dict(label_smoothing=0.3), "label_smoothing is the real target alpha"),
    (dict(historical_averaging="yes"), "historical_averaging must be one of off, uniform, exponential"),
    (dict(historical_averaging_decay=1.0), "strictly between 0 and 1"),
    (dict(steps="many"), "steps must be a whole number"),
    (dict(steps=True), "steps must be a whole number"),
    (dict(beta1=float("nan")), "beta1 must be a finite number"),
    (dict(feature_matching="no"), "feature_matching must be a true/false value"),
])
def test_bad_settings_say_what_is_wrong(changes, words):
    with pytest.raises(ConfigError) as error:
        GANConfig(**changes)
    assert words in str(error.value)


def test_unknown_keys_and_bad_json_are_refused():
    with pytest.raises(ConfigError, match="unknown setting"):
        GANConfig.from_dict({"data": "ring8", "learning_rate": 1})
    with pytest.raises(ConfigError, match="not valid JSON"):
        GANConfig.from_json("{data: ring8")
    with pytest.raises(ConfigError, match="dictionary"):
        GANConfig.from_dict(["ring8"])


def test_whole_numbers_are_accepted_for_real_fields():
    config = GANConfig(lr_generator=1, label_smoothing=1)
    assert isinstance(config.lr_generator, float) and config.label_smoothing == 1.0


def test_every_field_has_help_text():
    for f in dataclasses.fields(GANConfig):
        assert f.metadata.get("help"), f.name
