"""Property tests of the checkpoint reader: whatever the bytes, the header or the metadata,
the answer is a checked result or a CheckpointError with a short message, never another
exception (RecursionError included); what it accepts, safetensors loads."""

import json
import struct

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from ganapp.checkpoint_format import (DTYPE_SIZES, FORMAT, FORMAT_VERSION, HISTORY_COLUMNS, CheckpointError,
                                      check_metadata, read_checkpoint_info, read_header)
from ganapp.config import GANConfig

MAX_MESSAGE = 400
NAME = "upload.safetensors"

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-3, 3000),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


def nested(depth: int, objects: bool) -> str:
    return ('{"a": ' * depth + '"[{"' + "}" * depth) if objects else ("[" * depth + "]" * depth)


# Text nested up to 200,000 levels deep, as arrays or as objects.
deep_json = st.builds(nested, st.integers(1, 200_000), st.booleans())
too_deep_json = st.builds(nested, st.integers(8, 200_000), st.booleans())
settle = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("properties")


def outcome(read, path):
    """read(path)'s result, or None for a CheckpointError with a short message naming the file."""
    try:
        return read(path)
    except CheckpointError as error:
        message = str(error)
        assert len(message) <= MAX_MESSAGE, message[:500]
        assert path.name in message or "checkpoint" in message, message
        return None


def write(path, header: bytes, data: bytes = b""):
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)
    return path


# --- any bytes ------------------------------------------------------------------------------------
@settle
@given(st.binary(max_size=300))
def test_any_bytes_are_refused_plainly(folder, raw):
    path = folder / NAME
    path.write_bytes(raw)
    assert outcome(read_checkpoint_info, path) is None


@settle
@given(st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode()),
                 deep_json.map(str.encode)), st.binary(max_size=64))
def test_any_header_after_a_right_length_is_refused_plainly(folder, header, data):
    path = write(folder / NAME, header, data)
    assert outcome(read_checkpoint_info, path) is None


@settle
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6), st.binary(max_size=64))
def test_any_json_object_header_gives_a_header_or_a_plain_refusal(folder, header, data):
    path = write(folder / NAME, json.dumps(header).encode(), data)
    if outcome(read_header, path) is not None:
        load_file(str(path))  # what the reader accepts, safetensors loads


# --- tensor entries: consistent ones load, and whatever is accepted loads ---------------------------
@st.composite
def tensor_files(draw):
    """A header of consistent tensor entries, then maybe one thing changed."""
    names = draw(st.lists(st.text(min_size=1, max_size=6), max_size=5, unique=True))
    header, position = {}, 0
    for name in names:
        dtype = draw(st.sampled_from(sorted(DTYPE_SIZES)))
        shape = draw(st.lists(st.integers(0, 4), max_size=3))
        size = DTYPE_SIZES[dtype]
        for d in shape:
            size *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [position, position + size]}
        position += size
    if draw(st.booleans()):
        header["__metadata__"] = draw(st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2))
    data = bytes(position)
    changed = False
    if names and draw(st.booleans()):
        entry = header[draw(st.sampled_from(names))]
        key = draw(st.sampled_from(["dtype", "shape", "data_offsets", "extra"]))
        entry[key] = draw(json_values)
        changed = True
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))] + draw(st.binary(max_size=3))
        changed = True
    return header, data, changed


@settle
@given(tensor_files())
def test_tensor_entries_are_accepted_exactly_when_they_fit(folder, case):
    header, data, changed = case
    path = write(folder / NAME, json.dumps(header).encode(), data)
    accepted = outcome(read_header, path)
    if not changed:
        assert accepted is not None
    if accepted is not None:
        tensors = load_file(str(path))
        assert {k: list(v.shape) for k, v in tensors.items()} == {
            k: e["shape"] for k, e in accepted.items() if k != "__metadata__"}


# --- the ganapp metadata ------------------------------------------------------------------------
configs = st.builds(GANConfig, data=st.sampled_from(["ring8", "digits"]), steps=st.integers(1, 5000),
                    log_every=st.integers(1, 50), minibatch_discrimination=st.booleans(),
                    label_smoothing=st.one_of(st.none(), st.floats(0.6, 1)))
numbers = st.one_of(st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False))


@st.composite
def valid_metadata(draw):
    config = draw(configs)
    step = draw(st.integers(0, config.steps))
    steps = sorted(draw(st.sets(st.integers(1, max(step, 1)), max_size=min(step, 12)))) if step else []
    extra = st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True), numbers, max_size=4)
    history = [{**draw(extra), **{c: draw(numbers) for c in HISTORY_COLUMNS}, "step": s} for s in steps]
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "config": config.to_dict(), "step": step,
            "seconds": draw(st.floats(0, 1e9)), "history": history}


@pytest.mark.slow
@settle
@given(valid_metadata())
def test_valid_metadata_is_accepted_as_it_is(meta):
    config, checked = check_metadata(json.dumps(meta), name=NAME)
    assert config == GANConfig.from_dict(meta["config"])
    assert checked == meta


def refusal(raw: str):
    try:
        check_metadata(raw, name=NAME)
    except CheckpointError as error:
        message = str(error)
        assert NAME in message and len(message) <= MAX_MESSAGE, message[:500]
        return message
    return None


@pytest.mark.slow
@settle
@given(valid_metadata(), st.sampled_from(["format", "format_version", "config", "step", "seconds", "history",
                                          "other"]), json_values)
def test_any_top_level_value_is_checked(meta, key, value):
    refusal(json.dumps({**meta, key: value}))


@pytest.mark.slow
@settle
@given(valid_metadata(), st.data())
def test_any_config_or_history_value_is_checked(meta, data):
    assume(meta["history"])
    changed = json.loads(json.dumps(meta))
    if data.draw(st.booleans()):
        field = data.draw(st.sampled_from(sorted(changed["config"]) + ["unknown_setting"]))
        changed["config"][field] = data.draw(json_values)
    else:
        row = data.draw(st.sampled_from(changed["history"]))
        row[data.draw(st.one_of(st.sampled_from(sorted(row)), st.text(max_size=70)))] = data.draw(json_values)
    refusal(json.dumps(changed))


@settle
@given(st.one_of(st.text(max_size=200), deep_json, json_values.map(json.dumps)))
def test_any_metadata_text_is_checked(raw):
    assert refusal(raw) is not None


@pytest.mark.slow
@settle
@given(valid_metadata(), too_deep_json)
def test_deep_nesting_anywhere_is_refused_without_recursion(meta, deep):
    raw = json.dumps({**meta, "history": "HOLE"}).replace('"HOLE"', deep)
    message = refusal(raw)
    assert message is not None


@settings(max_examples=30, deadline=None)
@given(valid_metadata())
def test_a_file_with_valid_metadata_reads_back(folder, meta):
    header = {"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, "__metadata__": {"ganapp": json.dumps(meta)}}
    path = write(folder / NAME, json.dumps(header).encode(), b"\0")
    config, checked = read_checkpoint_info(path)
    assert checked == meta and config.to_dict() == meta["config"]
