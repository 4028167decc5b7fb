"""Property tests of GANConfig's validation: any values give a config or a ConfigError that
names the field, in a short message; valid configs round-trip through dicts and JSON."""

import dataclasses
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ganapp.config import DATASETS, DEVICES, GENERATOR_LOSSES, HA_MODES, MINIBATCH_REDUCTIONS, ConfigError, GANConfig
from ganapp.drawn import shape

FIELDS = [f.name for f in dataclasses.fields(GANConfig)]
MAX_MESSAGE = 300

# What JSON (and a careless caller) can put in a field: every scalar type, edge numbers,
# huge whole numbers, long text, containers.
scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(), st.integers(-10, 5000), st.sampled_from([0, 1, 2, 4, 2**63, 10**400, -(10**4000)]),
    st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 1), st.floats(-10, 5000),
    st.text(max_size=20), st.text(min_size=200, max_size=400),
    st.sampled_from(DATASETS + HA_MODES + GENERATOR_LOSSES + MINIBATCH_REDUCTIONS + DEVICES),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                            max_size=3), max_leaves=8)


@pytest.mark.slow  # 400 examples: about 3 s on a quiet 2-core machine
@settings(max_examples=400, deadline=None)
@given(st.sampled_from(FIELDS), values)
def test_one_wrong_field_is_named_in_a_short_message(name, value):
    """Fields are checked independently, so the message must be about the one we changed."""
    changed = {**GANConfig().to_dict(), name: value}
    try:
        config = GANConfig.from_dict(changed)
    except ConfigError as error:
        message = str(error)
        assert name in message and len(message) <= MAX_MESSAGE, message
    else:
        config.validate()
        kept = getattr(config, name)
        assert kept == value and type(kept) in (type(value), float), (name, value)


@pytest.mark.slow  # about 2.5 s on a quiet 2-core machine
@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=30)), values, max_size=8))
def test_any_dict_gives_a_config_or_a_config_error(changed):
    try:
        config = GANConfig.from_dict(changed)
    except ConfigError as error:
        message = str(error)
        assert len(message) <= MAX_MESSAGE, message
        assert "unknown setting" in message or any(name in message for name in changed), message
    else:
        assert set(changed) <= set(FIELDS)
        assert GANConfig.from_dict(config.to_dict()) == config


@given(st.dictionaries(st.one_of(st.integers(), st.none(), st.tuples(st.integers())), values, min_size=1, max_size=3))
def test_keys_that_are_not_text_are_refused(changed):
    try:
        GANConfig.from_dict(changed)
    except ConfigError as error:
        assert "unknown setting" in str(error)
    else:
        raise AssertionError("a config from non-text keys")


@given(st.one_of(st.none(), st.integers(), st.text(), st.lists(st.integers())))
def test_a_config_must_be_a_dictionary(value):
    try:
        GANConfig.from_dict(value)
    except ConfigError as error:
        assert "dictionary" in str(error)


# A drawn data set needs its drawing (ganapp.drawn); the others have none.
data_sets = st.sampled_from(DATASETS).map(lambda d: {"data": d, "drawn_points": shape("ring") if d == "drawn" else ""})
valid_configs = st.builds(
    lambda data_set, **values: GANConfig(**data_set, **values),
    data_set=data_sets, steps=st.integers(1, 1_000_000), batch_size=st.integers(2, 4096),
    seed=st.integers(0, 2**63 - 1), noise_dim=st.integers(1, 1024), hidden_dim=st.integers(4, 4096),
    lr_generator=st.floats(1e-9, 1), lr_discriminator=st.one_of(st.floats(1e-9, 1), st.just(1)),
    beta1=st.floats(0, 0.999), generator_loss=st.sampled_from(GENERATOR_LOSSES),
    minibatch_discrimination=st.booleans(), minibatch_kernels=st.integers(1, 1024),
    minibatch_kernel_dim=st.integers(1, 256), minibatch_reduction=st.sampled_from(MINIBATCH_REDUCTIONS),
    historical_averaging=st.sampled_from(HA_MODES), historical_averaging_weight=st.floats(0, 100),
    historical_averaging_decay=st.floats(0.001, 0.999),
    label_smoothing=st.one_of(st.none(), st.floats(0.51, 1)), virtual_batch_norm=st.booleans(),
    log_every=st.integers(1, 10**6), metrics_every=st.integers(0, 10**6), device=st.sampled_from(DEVICES),
)


@given(valid_configs)
def test_valid_configs_round_trip_through_dicts_and_json(config):
    assert GANConfig.from_dict(config.to_dict()) == config
    assert GANConfig.from_json(config.to_json()) == config
    assert GANConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert all(math.isfinite(v) for v in config.to_dict().values() if isinstance(v, float))


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=200), st.builds(lambda d: "[" * d + "]" * d, st.integers(1, 100_000)),
                 st.builds(lambda n: '{"seed": ' + "9" * n + "}", st.integers(1, 10_000))))
def test_any_json_text_gives_a_config_or_a_config_error(text):
    try:
        GANConfig.from_json(text)
    except ConfigError as error:
        assert len(str(error)) <= MAX_MESSAGE


def test_whole_numbers_beyond_any_float_or_string_limit_are_refused_briefly():
    for name in ("steps", "lr_generator", "label_smoothing"):
        for value in (10**400, -(10**5000)):  # beyond a float; beyond Python's int-to-text limit
            try:
                GANConfig(**{name: value})
            except ConfigError as error:
                assert name in str(error) and "digits" in str(error) and len(str(error)) <= MAX_MESSAGE
            else:
                raise AssertionError(name)
