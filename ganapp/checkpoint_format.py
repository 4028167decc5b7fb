"""The checkpoint file's header and metadata, read and checked without torch.

A ganapp checkpoint is a safetensors file: 8 bytes giving the header's length, a JSON
header naming each tensor's dtype, shape and byte range, then the tensor bytes. The
header's `__metadata__` holds one string, "ganapp", itself JSON: the format and its
version, the run's config, the step, the training seconds and the loss history.

Everything in the header is checked here before anything else trusts it, with bounds
taken from what ganapp itself writes, and every refusal is a CheckpointError whose
message names the file and says what is wrong in at most a few hundred characters (no
user value is echoed beyond about 60 characters). JSON nesting and the number of JSON
objects and arrays are counted on the raw text *before* it is parsed, so a hostile
header can neither exhaust the recursion limit nor build millions of containers (the
safetensors header also has its items counted; the metadata's numbers are bounded only by
the header's size, which a server bounds with its upload limit).

This module imports neither torch nor safetensors: the web server calls
`read_checkpoint_info` to check an uploaded checkpoint's config against its limits
before any job builds a model from it.
"""

from __future__ import annotations

import itertools
import json
import math
import operator
import os
import re
import struct
from pathlib import Path
from typing import Any

from .config import ConfigError, GANConfig, short_repr

FORMAT = "ganapp-checkpoint"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors library's own limit
MAX_CHECKPOINT_BYTES = 2 * 1024**3
MAX_HEADER_ENTRIES = 10_000  # tensors in one file; ganapp writes fewer than 200
MAX_TENSOR_DIMS = 8
MAX_JSON_DEPTH = 8  # ganapp's header and metadata are 3 levels deep
MAX_HISTORY_ROWS = 1_000_000  # one row per logged step, and a run has at most 1,000,000 steps
MAX_ROW_KEYS = 64
MAX_NAME_CHARS = 60  # of a file name in a message

# The columns every history row has: training.HISTORY_COLUMNS, repeated here because the
# training module imports torch (a test checks that the two agree). Metric rows add more
# numbers under short names (modes_covered, frechet_distance, ...).
HISTORY_COLUMNS = ("step", "d_loss", "g_loss", "d_real", "d_fake", "seconds")
ROW_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")
METADATA_KEYS = ("format", "format_version", "config", "step", "seconds", "history")

# Bytes per element of each safetensors dtype (the library's list).
DTYPE_SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
               "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}

# Checkpoints written before `minibatch_reduction` existed summed the minibatch features:
# a default that changed later must not reinterpret their weights. (Without minibatch
# discrimination the setting touches no weight, and today's default applies.)
OLD_MINIBATCH_REDUCTION = "sum"


class CheckpointError(ValueError):
    """The file is not a ganapp checkpoint we can use; the message says why."""


# ---------------------------------------------------------------------------------------
def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """The checked safetensors header of `path`, read as bytes and JSON only.

    Checks what the safetensors library checks, and refuses before parsing what it
    would only find out later: every entry a tensor with a known dtype, a shape and a
    byte range that matches it; the ranges back to back, covering exactly the data;
    `__metadata__` a mapping of strings.
    """
    path = Path(path)
    name = display_name(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as stream:
            prefix = stream.read(8)
            if len(prefix) < 8:
                raise CheckpointError(f"{name} is not a ganapp checkpoint: it is empty or truncated")
            (header_size,) = struct.unpack("<Q", prefix)
            if size > MAX_CHECKPOINT_BYTES:
                raise CheckpointError(f"{name} is too large for a ganapp checkpoint ({size:,} bytes; "
                                      f"at most {MAX_CHECKPOINT_BYTES:,})")
            if header_size > MAX_HEADER_BYTES or 8 + header_size > size:
                raise CheckpointError(_not_safetensors(name, prefix))
            raw = stream.read(header_size)
    except OSError as error:
        raise CheckpointError(f"cannot read the checkpoint {name}: {error.strerror or 'read error'}") from None
    if len(raw) < header_size:
        raise CheckpointError(f"{name} is truncated: it ended while its header was read")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointError(_not_safetensors(name, prefix)) from None
    if not text.startswith("{"):
        raise CheckpointError(_not_safetensors(name, prefix))
    header = parse_json(text, name=name, what="header",
                        max_containers=3 * MAX_HEADER_ENTRIES + 2,
                        max_items=(MAX_TENSOR_DIMS + 4) * MAX_HEADER_ENTRIES + 64,  # commas per entry
                        invalid=_not_safetensors(name, prefix))
    if not isinstance(header, dict):
        raise CheckpointError(_not_safetensors(name, prefix))
    if len(header) > MAX_HEADER_ENTRIES + 1:
        raise CheckpointError(f"{name} has {len(header):,} header entries; a checkpoint has at most "
                              f"{MAX_HEADER_ENTRIES:,} tensors")
    metadata = header.get("__metadata__", {})
    if not (isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())):
        raise CheckpointError(f"{name} has a damaged header: __metadata__ must map names to text")
    _check_tensor_entries(header, name=name, data_size=size - 8 - header_size)
    return header


def _check_tensor_entries(header: dict[str, Any], *, name: str, data_size: int) -> None:
    ranges = []
    for tensor, entry in header.items():
        if tensor == "__metadata__":
            continue
        shown = short_repr(tensor)
        if not (isinstance(entry, dict) and set(entry) == {"dtype", "shape", "data_offsets"}):
            raise CheckpointError(f"{name} has a damaged header: tensor {shown} needs exactly "
                                  "dtype, shape and data_offsets")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not (isinstance(dtype, str) and dtype in DTYPE_SIZES):
            raise CheckpointError(f"{name} has a damaged header: tensor {shown} has unknown dtype "
                                  f"{short_repr(dtype)}")
        if not (isinstance(shape, list) and len(shape) <= MAX_TENSOR_DIMS and all(_whole(d) for d in shape)):
            raise CheckpointError(f"{name} has a damaged header: tensor {shown} has shape {short_repr(shape)}; "
                                  f"a shape is a list of at most {MAX_TENSOR_DIMS} whole numbers >= 0")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_whole(o) for o in offsets)
                and offsets[0] <= offsets[1]):
            raise CheckpointError(f"{name} has a damaged header (tensor {shown}: data_offsets "
                                  f"{short_repr(offsets)})")
        if offsets[1] > data_size:
            raise CheckpointError(f"{name} is truncated: tensor {shown} runs past the end of the file")
        if offsets[1] - offsets[0] != math.prod(shape) * DTYPE_SIZES[dtype]:
            raise CheckpointError(f"{name} has a damaged header: tensor {shown}'s byte range does not fit "
                                  f"its shape {short_repr(shape)} and dtype {dtype}")
        ranges.append((offsets[0], offsets[1], shown))
    # The safetensors library wants the tensors back to back, covering exactly the data.
    position = 0
    for start, end, shown in sorted(ranges):
        if start != position:
            raise CheckpointError(f"{name} has a damaged header: tensor {shown} "
                                  f"{'overlaps another' if start < position else 'leaves a gap before it'}")
        position = end
    if position != data_size:
        raise CheckpointError(f"{name} has {data_size - position:,} bytes after its last tensor; "
                              "it is damaged or not a safetensors file")


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _not_safetensors(name: str, prefix: bytes) -> str:
    if prefix[:1] == b"\x80" or prefix[:2] == b"PK":
        kind = "a pickle/torch.save file"
    else:
        kind = "not a safetensors file"
    return (f"{name} is not a ganapp checkpoint ({kind}); ganapp only loads .safetensors checkpoints "
            "that it wrote, and never unpickles files")


def display_name(path: Path) -> str:
    """The file's name as messages show it: cut short, since an upload may name itself anything."""
    return short_repr(path.name, MAX_NAME_CHARS, quote=False)


# ---------------------------------------------------------------------------------------
# A JSON string, or an unterminated one running to the end: this always matches where it
# starts, so cutting strings out stays linear even for hostile text.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_OPEN, _CLOSE = 2, 0  # bracket codes for the depth count below
_BRACKET_CODES = bytes.maketrans(b"[{]}", bytes([_OPEN, _OPEN, _CLOSE, _CLOSE]))
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[{]}")


def json_shape(text: str, *, max_containers: int | None = None) -> tuple[int, int, int]:
    """(deepest nesting, objects and arrays, commas) of JSON text, counted without parsing.

    Strings are cut out first, so brackets and commas inside them do not count. For text
    that is not valid JSON the numbers are only an estimate, which is fine: the parser
    refuses it anyway. Linear time, no recursion; the depth is not counted (0) when there
    are more than `max_containers` containers.
    """
    skeleton = _STRING.sub("", text).encode("utf-8", "replace")
    commas = skeleton.count(b",")
    brackets = skeleton.translate(_BRACKET_CODES, _NOT_BRACKETS)
    containers = brackets.count(_OPEN)
    if containers <= 1 or (max_containers is not None and containers > max_containers):
        return (containers if containers <= 1 else 0), containers, commas
    # With 2 for an opening and 0 for a closing bracket, the running sum minus the
    # number of brackets so far is the depth after each bracket.
    depth = max(map(operator.sub, itertools.accumulate(brackets), itertools.count(1)))
    return max(depth, 0), containers, commas


def parse_json(text: str, *, name: str, what: str, max_containers: int, max_items: int | None = None,
               invalid: str | None = None) -> Any:
    """json.loads with the nesting, the number of containers and of items (commas) bounded
    before parsing, duplicate keys refused, and every failure a CheckpointError."""
    depth, containers, commas = json_shape(text, max_containers=max_containers)
    if containers > max_containers or (max_items is not None and commas > max_items):
        raise CheckpointError(f"{name} has a damaged {what}: {containers:,} JSON objects and lists, "
                              f"{commas + 1:,} items (a checkpoint has far fewer)")
    if depth > MAX_JSON_DEPTH:
        raise CheckpointError(f"{name} has a damaged {what}: JSON nested {depth:,} levels deep "
                              f"(a checkpoint needs at most {MAX_JSON_DEPTH})")
    try:
        return json.loads(text, object_pairs_hook=_refuse_duplicate_keys)
    except _DuplicateKey as error:
        raise CheckpointError(f"{name} has a damaged {what}: the key {error} appears twice") from None
    except (ValueError, RecursionError):  # JSONDecodeError, a number too long to convert
        raise CheckpointError(invalid or f"{name} has a damaged {what}: it is not valid JSON") from None


class _DuplicateKey(ValueError):
    pass


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise _DuplicateKey(short_repr(duplicate))
    return result


# ---------------------------------------------------------------------------------------
def read_checkpoint_info(path: str | os.PathLike) -> tuple[GANConfig, dict[str, Any]]:
    """The config and the checked metadata of a ganapp checkpoint, without loading a tensor.

    The metadata dict has `format`, `format_version`, `config` (the config's dict),
    `step` (int, 0 <= step <= config.steps), `seconds` (finite float >= 0) and `history`
    (a list of rows, each a dict of HISTORY_COLUMNS and metric names to finite numbers,
    steps increasing). Raises CheckpointError saying what is wrong.
    """
    path = Path(path)
    header = read_header(path)
    return check_metadata(header.get("__metadata__", {}).get("ganapp"), name=display_name(path))


def check_metadata(raw: str | None, *, name: str) -> tuple[GANConfig, dict[str, Any]]:
    """Parse and check the "ganapp" metadata string of a checkpoint called `name`."""
    if raw is None:
        raise CheckpointError(f"{name} is a safetensors file but not a ganapp checkpoint (no ganapp metadata)")
    meta = parse_json(raw, name=name, what="ganapp metadata", max_containers=MAX_HISTORY_ROWS + 16)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{name} is not a ganapp checkpoint")
    version = meta.get("format_version")
    if not (isinstance(version, int) and not isinstance(version, bool) and version == FORMAT_VERSION):
        raise CheckpointError(f"{name} has checkpoint format version {short_repr(version)}; "
                              f"this ganapp reads version {FORMAT_VERSION}")
    unknown = sorted(set(meta) - set(METADATA_KEYS))
    missing = [key for key in METADATA_KEYS if key not in meta]
    if unknown or missing:
        parts = ([f"unknown entries {short_repr(', '.join(unknown))}"] if unknown else []) + \
                ([f"missing {', '.join(missing)}"] if missing else [])
        raise CheckpointError(f"{name} has damaged ganapp metadata ({'; '.join(parts)})")

    values = meta["config"]
    if isinstance(values, dict) and values.get("minibatch_discrimination") and "minibatch_reduction" not in values:
        values = {**values, "minibatch_reduction": OLD_MINIBATCH_REDUCTION}
    try:
        config = GANConfig.from_dict(values)
    except ConfigError as error:
        raise CheckpointError(f"{name} has an invalid config: {_cut(str(error))}") from None

    step = meta["step"]
    if not (_whole(step) and step <= config.steps):
        raise CheckpointError(f"{name} has step {short_repr(step)}; it must be a whole number from 0 to "
                              f"the config's {config.steps:,} steps")
    seconds = meta["seconds"]
    if not (_number(seconds) and seconds >= 0):
        raise CheckpointError(f"{name} has training seconds {short_repr(seconds)}; "
                              "they must be a finite number >= 0")
    history = _check_history(meta["history"], name=name, step=step)
    return config, {"format": FORMAT, "format_version": FORMAT_VERSION, "config": config.to_dict(),
                    "step": step, "seconds": float(seconds), "history": history}


def _check_history(history: Any, *, name: str, step: int) -> list[dict[str, float]]:
    if not isinstance(history, list):
        raise CheckpointError(f"{name} has a damaged history: it must be a list of rows; "
                              f"got {type(history).__name__}")
    if len(history) > min(MAX_HISTORY_ROWS, step):
        raise CheckpointError(f"{name} has {len(history):,} history rows; a checkpoint at step {step:,} "
                              f"has at most {min(MAX_HISTORY_ROWS, step):,}")
    previous = 0
    for index, row in enumerate(history):
        where = f"{name} has a damaged history: row {index:,}"
        if not isinstance(row, dict):
            raise CheckpointError(f"{where} is {short_repr(row)}, not a mapping of names to numbers")
        if len(row) > MAX_ROW_KEYS:
            raise CheckpointError(f"{where} has {len(row):,} entries (at most {MAX_ROW_KEYS})")
        missing = [column for column in HISTORY_COLUMNS if column not in row]
        if missing:
            raise CheckpointError(f"{where} lacks {', '.join(missing)}")
        for key, value in row.items():
            if not ROW_KEY.fullmatch(key):
                raise CheckpointError(f"{where} has the name {short_repr(key)}; names are short, "
                                      "lower-case letters, digits and _")
            if not _number(value):
                raise CheckpointError(f"{where} has {key} = {short_repr(value)}; values must be finite numbers")
        row_step = row["step"]
        if not (_whole(row_step) and previous < row_step <= step):
            raise CheckpointError(f"{where} has step {short_repr(row_step)}; row steps are whole numbers "
                                  f"that increase, above {previous:,} and at most the checkpoint's {step:,}")
        previous = row_step
    return history


def _number(value: Any) -> bool:
    """A finite float, or an int that a float can hold (not a bool, which JSON keeps apart)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) <= 2**63
    return isinstance(value, float) and math.isfinite(value)


def _cut(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."
