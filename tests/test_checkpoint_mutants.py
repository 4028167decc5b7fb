"""Checkpoint tests written to kill what the mutation run showed tests/test_checkpoint.py
letting through (docs/testing.md): whole messages instead of a word of them, the edges of
every bound (the last value accepted and the first refused), and the file-writing details.

tests/test_checkpoint.py stays the checkpoint's main suite; this file only adds to it.
"""

import json
import os
import struct
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)  # small models: one thread is fastest, and tests share 2 cores

from safetensors.torch import save_file

from ganapp import checkpoint, checkpoint_format
from ganapp.checkpoint import load_checkpoint, save_checkpoint, trainer_from_checkpoint
from ganapp.checkpoint_format import (CheckpointError, check_metadata, display_name, json_shape, parse_json,
                                      read_checkpoint_info, read_header)
from ganapp.config import ConfigError, GANConfig
from ganapp.training import Trainer

NOT_SAFETENSORS = ("{} is not a ganapp checkpoint (not a safetensors file); ganapp only loads .safetensors "
                   "checkpoints that it wrote, and never unpickles files")
PICKLE = ("{} is not a ganapp checkpoint (a pickle/torch.save file); ganapp only loads .safetensors "
          "checkpoints that it wrote, and never unpickles files")


def tiny(**changes) -> GANConfig:
    return GANConfig(**{**dict(data="ring8", batch_size=16, hidden_dim=16, steps=30, log_every=10, device="cpu"),
                        **changes})


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(tensors, metadata) of a tiny 30-step run, to rewrite with one thing changed."""
    trainer = Trainer(tiny())
    trainer.train()
    path = save_checkpoint(trainer, tmp_path_factory.mktemp("saved") / "good.safetensors")
    _, tensors, meta = load_checkpoint(path)
    return tensors, meta


def rewrite(tmp_path, saved, name="bad.safetensors", **changes) -> Path:
    tensors, meta = saved
    path = tmp_path / name
    save_file(tensors, path, metadata={"ganapp": json.dumps({**meta, **changes})})
    return path


def raw_file(path: Path, header: bytes, data: bytes = b"") -> Path:
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)
    return path


def refusal(read, path) -> str:
    with pytest.raises(CheckpointError) as error:
        read(path)
    return str(error.value)


def entry(dtype="U8", shape=(1,), offsets=(0, 1)) -> dict:
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


def header_bytes(entries: dict) -> bytes:
    return json.dumps(entries).encode()


# =========================================================================================
# VBN's reference noise: the state that the seed would hide
# =========================================================================================

def test_vbn_reference_noise_travels_in_the_checkpoint_even_when_the_seed_would_draw_another(tmp_path):
    """The seed redraws the same z_ref, so a checkpoint that lost it would still look right;
    here the saved z_ref differs from the seed's, and must come back."""
    config = tiny(virtual_batch_norm=True, vbn_reference_size=8)
    trainer = Trainer(config)
    with torch.no_grad():
        trainer.generator.reference_noise.mul_(-2.0).add_(0.5)
    path = save_checkpoint(trainer, tmp_path / "vbn.safetensors")
    resumed = trainer_from_checkpoint(path)
    assert torch.equal(resumed.generator.reference_noise, trainer.generator.reference_noise)
    assert not torch.equal(Trainer(config).generator.reference_noise, trainer.generator.reference_noise)
    assert (resumed.fixed_samples() == trainer.fixed_samples()).all()


# =========================================================================================
# save_checkpoint and trainer_from_checkpoint
# =========================================================================================

def test_save_writes_the_metadata_and_cpu_tensors_beside_a_temporary_file_it_removes(tmp_path, monkeypatch):
    trainer = Trainer(tiny(steps=4, log_every=2))
    trainer.train()
    written = []
    real_save_file = checkpoint.save_file

    def recording_save_file(tensors, filename, metadata):
        written.append(Path(filename))
        assert all(t.device.type == "cpu" and t.is_contiguous() for t in tensors.values())
        return real_save_file(tensors, filename, metadata=metadata)

    monkeypatch.setattr(checkpoint, "save_file", recording_save_file)
    target = tmp_path / "deep" / "er" / "run.safetensors"  # folders that do not exist yet
    assert save_checkpoint(trainer, str(target)) == target
    (temporary,) = written
    # Beside the target (the same file system, so the rename is atomic) and named after it.
    assert temporary.parent == target.parent
    assert temporary.name.startswith("run.safetensors.") and temporary.name.endswith(".tmp")
    assert sorted(os.listdir(target.parent)) == ["run.safetensors"]
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)
    header = read_header(target)
    meta = json.loads(header["__metadata__"]["ganapp"])
    assert meta == {"format": "ganapp-checkpoint", "format_version": 1, "config": trainer.config.to_dict(),
                    "step": 4, "seconds": trainer.seconds, "history": trainer.history}
    assert list(header["__metadata__"]) == ["ganapp"]


def test_a_failed_save_leaves_neither_a_temporary_file_nor_a_target(tmp_path, monkeypatch):
    trainer = Trainer(tiny(steps=2))

    def failing_save_file(tensors, filename, metadata):
        Path(filename).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "save_file", failing_save_file)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(trainer, tmp_path / "run.safetensors")
    assert os.listdir(tmp_path) == []


def test_a_restored_trainer_gets_the_checkpoints_step_seconds_and_history(tmp_path, saved):
    _, meta = saved
    path = rewrite(tmp_path, saved, name="ok.safetensors", seconds=12.5)
    trainer = trainer_from_checkpoint(path)
    assert (trainer.step, trainer.seconds, trainer.history) == (30, 12.5, meta["history"])
    assert trainer.config.steps == 30 and trainer.config.hidden_dim == 16
    assert trainer_from_checkpoint(path, steps=30).config.steps == 30  # as many steps as it has: fine
    with pytest.raises(ConfigError) as error:
        trainer_from_checkpoint(path, steps=29)
    assert str(error.value) == "the checkpoint is at step 30; to continue it, steps must be at least that; got 29"
    more = trainer_from_checkpoint(path, steps=1234, device=torch.device("cpu"))
    assert more.config.steps == 1234 and more.device == torch.device("cpu")


def test_a_checkpoint_that_does_not_fit_its_config_says_so_in_full(tmp_path, saved):
    tensors, meta = saved
    path = tmp_path / "lying.safetensors"
    save_file(tensors, path, metadata={"ganapp": json.dumps({**meta, "config": {**meta["config"], "hidden_dim": 8}})})
    with pytest.raises(CheckpointError) as error:
        trainer_from_checkpoint(path)
    message = str(error.value)
    assert message.startswith("lying.safetensors does not fit: the checkpoint's generator does not match its "
                              "config's architecture (wrong shape for ")
    assert len(message) <= len("lying.safetensors does not fit: ") + 300


def test_a_long_does_not_fit_reason_is_cut_to_300_characters(tmp_path, saved, monkeypatch):
    path = rewrite(tmp_path, saved, name="ok.safetensors")

    def refuse(self, tensors):
        raise ValueError(reason)

    monkeypatch.setattr(Trainer, "load_state_tensors", refuse)
    for reason, shown in (("y" * 300, "y" * 300), ("y" * 301, "y" * 297 + "...")):
        assert refusal(trainer_from_checkpoint, path) == f"ok.safetensors does not fit: {shown}"


def test_tensors_that_safetensors_refuses_are_reported_as_damage(tmp_path, saved, monkeypatch):
    path = rewrite(tmp_path, saved, name="ok.safetensors")

    def refusing_load_file(filename, device):
        assert device == "cpu"
        raise RuntimeError("x" * 500)

    monkeypatch.setattr(checkpoint, "load_file", refusing_load_file)
    assert refusal(load_checkpoint, path) == "ok.safetensors is damaged: " + "x" * 197 + "..."
    assert refusal(trainer_from_checkpoint, path).startswith("ok.safetensors is damaged: xxx")


def test_load_checkpoint_returns_the_config_the_tensors_and_the_checked_metadata(tmp_path, saved):
    tensors, meta = saved
    config, loaded, info = load_checkpoint(rewrite(tmp_path, saved, name="ok.safetensors", seconds=7))
    assert config == GANConfig.from_dict(meta["config"])
    assert loaded.keys() == tensors.keys() and all(torch.equal(loaded[k], tensors[k]) for k in tensors)
    assert info == {"format": "ganapp-checkpoint", "format_version": 1, "config": config.to_dict(), "step": 30,
                    "seconds": 7.0, "history": meta["history"]}
    assert type(info["seconds"]) is float


# =========================================================================================
# read_header: the file and its safetensors header
# =========================================================================================

def test_files_too_short_too_large_or_not_safetensors_are_refused_in_full(tmp_path, monkeypatch):
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    assert refusal(read_header, empty) == "empty.safetensors is not a ganapp checkpoint: it is empty or truncated"
    seven = tmp_path / "seven.safetensors"
    seven.write_bytes(b"1234567")
    assert refusal(read_header, seven) == "seven.safetensors is not a ganapp checkpoint: it is empty or truncated"

    ok = raw_file(tmp_path / "ok.safetensors", b"{}")
    assert read_header(ok) == {}
    size = ok.stat().st_size
    monkeypatch.setattr(checkpoint_format, "MAX_CHECKPOINT_BYTES", size)
    assert read_header(ok) == {}  # exactly at the limit
    monkeypatch.setattr(checkpoint_format, "MAX_CHECKPOINT_BYTES", size - 1)
    assert refusal(read_header, ok) == (f"ok.safetensors is too large for a ganapp checkpoint ({size:,} bytes; "
                                        f"at most {size - 1:,})")
    monkeypatch.undo()

    big = raw_file(tmp_path / "big.safetensors", b"{}" + b" " * 1998)
    monkeypatch.setattr(checkpoint_format, "MAX_HEADER_BYTES", 2000)
    assert read_header(big) == {}  # a header exactly at the limit
    monkeypatch.setattr(checkpoint_format, "MAX_HEADER_BYTES", 1999)
    assert refusal(read_header, big) == NOT_SAFETENSORS.format("big.safetensors")
    monkeypatch.undo()

    # The header's length says more than the file holds (by one byte).
    short = tmp_path / "short.safetensors"
    short.write_bytes(struct.pack("<Q", 3) + b"{}")
    assert refusal(read_header, short) == NOT_SAFETENSORS.format("short.safetensors")

    for name, prefix in (("pickle.safetensors", b"\x80\x04\x95"), ("zip.safetensors", b"PK\x03\x04")):
        path = tmp_path / name
        path.write_bytes(prefix + b"\xff" * 20)
        assert refusal(read_header, path) == PICKLE.format(name)
    for name, header in (("latin1.safetensors", b"{\xe9}"), ("list.safetensors", b"[1]"),
                         ("space.safetensors", b" {}"), ("broken.safetensors", b"{\"a\": }")):
        assert refusal(read_header, raw_file(tmp_path / name, header)) == NOT_SAFETENSORS.format(name), name


def test_a_file_that_cannot_be_read_is_named_with_the_reason(tmp_path):
    assert refusal(read_header, tmp_path / "gone.safetensors") == (
        "cannot read the checkpoint gone.safetensors: No such file or directory")
    folder = tmp_path / "folder.safetensors"
    folder.mkdir()
    assert refusal(read_header, folder) == "cannot read the checkpoint folder.safetensors: Is a directory"


def test_a_read_error_without_a_reason_and_a_file_that_shrinks_while_read(tmp_path, monkeypatch):
    import io

    path = raw_file(tmp_path / "f.safetensors", b"{}")

    def failing_open(*args, **kwargs):
        raise OSError("no strerror here")

    monkeypatch.setattr(checkpoint_format, "open", failing_open, raising=False)
    assert refusal(read_header, path) == "cannot read the checkpoint f.safetensors: read error"

    def shrinking_open(*args, **kwargs):  # the file lost its last byte after it was measured
        return io.BytesIO(struct.pack("<Q", 2) + b"{")

    monkeypatch.setattr(checkpoint_format, "open", shrinking_open, raising=False)
    assert refusal(read_header, path) == "f.safetensors is truncated: it ended while its header was read"


def test_metadata_holding_a_lone_surrogate_is_refused_plainly(tmp_path):
    # JSON may escape half of a surrogate pair; decoded, it is a str that UTF-8 cannot encode.
    header = b'{"__metadata__": {"ganapp": "\\ud800 \\udfff ["}}'
    path = raw_file(tmp_path / "half.safetensors", header)
    assert "\ud800" in read_header(path)["__metadata__"]["ganapp"]
    assert refusal(read_checkpoint_info, path) == "half.safetensors has a damaged ganapp metadata: it is not valid JSON"


def test_a_long_file_name_is_cut_in_messages(tmp_path):
    name = "n" * 100 + ".safetensors"
    path = tmp_path / name
    path.write_bytes(b"")
    shown = "n" * 57 + "..."
    assert display_name(path) == shown and display_name(Path("a b.safetensors")) == "a b.safetensors"
    assert refusal(read_header, path) == f"{shown} is not a ganapp checkpoint: it is empty or truncated"


def test_header_entries_and_metadata_are_counted_and_checked_in_full(tmp_path):
    limit = checkpoint_format.MAX_HEADER_ENTRIES
    at_limit = {"__metadata__": {}, **{f"k{i}": 1 for i in range(limit)}}
    path = raw_file(tmp_path / "flat.safetensors", json.dumps(at_limit).encode())
    # limit + 1 entries pass the count (the metadata is one of them) and fail on the first tensor
    assert refusal(read_header, path) == ("flat.safetensors has a damaged header: tensor 'k0' needs exactly "
                                          "dtype, shape and data_offsets")
    over = {**at_limit, "one_more": 1}
    assert refusal(read_header, raw_file(tmp_path / "flat.safetensors", json.dumps(over).encode())) == (
        f"flat.safetensors has {limit + 2:,} header entries; a checkpoint has at most {limit:,} tensors")

    for metadata in ({"ganapp": 5}, [1], "text", {"a": "b", "c": None}):
        header = {"__metadata__": metadata, "w": entry()}
        assert refusal(read_header, raw_file(tmp_path / "meta.safetensors", header_bytes(header), b"\0")) == (
            "meta.safetensors has a damaged header: __metadata__ must map names to text"), metadata
    fine = {"__metadata__": {"a": "b"}, "w": entry()}
    assert read_header(raw_file(tmp_path / "fine.safetensors", header_bytes(fine), b"\0")) == fine
    no_metadata = {"w": entry()}
    assert read_header(raw_file(tmp_path / "bare.safetensors", header_bytes(no_metadata), b"\0")) == no_metadata


def test_the_header_json_is_bounded_at_exactly_its_limits(tmp_path):
    limit = checkpoint_format.MAX_HEADER_ENTRIES
    # limit zero-size tensors: 3 containers each, plus the header and the metadata.
    tensors = {f"t{i}": entry(shape=(0,), offsets=(0, 0)) for i in range(limit)}
    header = {"__metadata__": {}, **tensors}
    assert len(read_header(raw_file(tmp_path / "many.safetensors", header_bytes(header)))) == limit + 1
    header["extra"] = {}
    containers = 3 * limit + 3
    assert refusal(read_header, raw_file(tmp_path / "many.safetensors", header_bytes(header))) == (
        f"many.safetensors has a damaged header: {containers:,} JSON objects and lists, "
        f"{4 * limit + 2:,} items (a checkpoint has far fewer)")
    items = (checkpoint_format.MAX_TENSOR_DIMS + 4) * limit + 64
    at_items = b'{"a": [' + b"0," * items + b'0]}'  # exactly `items` commas
    assert refusal(read_header, raw_file(tmp_path / "items.safetensors", at_items)) == (
        "items.safetensors has a damaged header: tensor 'a' needs exactly dtype, shape and data_offsets")
    over_items = b'{"a": [' + b"0," * (items + 1) + b'0]}'
    assert refusal(read_header, raw_file(tmp_path / "items.safetensors", over_items)) == (
        f"items.safetensors has a damaged header: 2 JSON objects and lists, {items + 2:,} items "
        "(a checkpoint has far fewer)")


BAD_ENTRIES = [
    (5, "tensor 'w' needs exactly dtype, shape and data_offsets"),
    ({"dtype": "U8", "shape": [1]}, "tensor 'w' needs exactly dtype, shape and data_offsets"),
    ({**entry(), "extra": 1}, "tensor 'w' needs exactly dtype, shape and data_offsets"),
    (entry(dtype=5), "tensor 'w' has unknown dtype 5"),
    (entry(dtype="Q9"), "tensor 'w' has unknown dtype 'Q9'"),
    ({**entry(), "shape": "1"}, "tensor 'w' has shape '1'; a shape is a list of at most 8 whole numbers >= 0"),
    (entry(shape=(1,) * 9), "tensor 'w' has shape [1, 1, 1, 1, 1, 1, 1, 1, 1]; a shape is a list of at most 8 "
                            "whole numbers >= 0"),
    (entry(shape=(-1,)), "tensor 'w' has shape [-1]; a shape is a list of at most 8 whole numbers >= 0"),
    (entry(shape=(True,)), "tensor 'w' has shape [True]; a shape is a list of at most 8 whole numbers >= 0"),
    (entry(shape=(1.0,)), "tensor 'w' has shape [1.0]; a shape is a list of at most 8 whole numbers >= 0"),
    ({**entry(), "data_offsets": "0"}, "(tensor 'w': data_offsets '0')"),
    (entry(offsets=(0,)), "(tensor 'w': data_offsets [0])"),
    (entry(offsets=(0, 1, 1)), "(tensor 'w': data_offsets [0, 1, 1])"),
    (entry(offsets=(-1, 1)), "(tensor 'w': data_offsets [-1, 1])"),
    (entry(offsets=(False, 1)), "(tensor 'w': data_offsets [False, 1])"),
    (entry(offsets=(0, 1.0)), "(tensor 'w': data_offsets [0, 1.0])"),
    (entry(offsets=(1, 0)), "(tensor 'w': data_offsets [1, 0])"),
]


@pytest.mark.parametrize("bad, words", BAD_ENTRIES)
def test_a_damaged_tensor_entry_is_refused_in_full(tmp_path, bad, words):
    path = raw_file(tmp_path / "entry.safetensors", header_bytes({"w": bad}), b"\0")
    expected = "entry.safetensors has a damaged header" + (" " if words.startswith("(") else ": ") + words
    assert refusal(read_header, path) == expected


def test_tensor_byte_ranges_must_fit_their_shapes_and_cover_the_data_exactly(tmp_path):
    def read(entries, data, name="ranges.safetensors"):
        return read_header(raw_file(tmp_path / name, header_bytes(entries), data))

    eight_dims = entry("U8", (1,) * 8, (0, 1))
    assert read({"w": eight_dims}, b"\0")["w"] == eight_dims  # 8 dimensions: the most allowed
    assert read({"w": entry("F32", (2, 3), (0, 24))}, bytes(24))["w"]["shape"] == [2, 3]
    assert read({"w": entry("U8", (0,), (0, 0))}, b"") == {"w": entry("U8", (0,), (0, 0))}  # empty tensor
    assert read({"a": entry("I16", (2,), (4, 8)), "b": entry("I32", (1,), (0, 4))}, bytes(8))  # any order

    def refused(entries, data):
        return refusal(lambda p: read(entries, data, p.name), tmp_path / "ranges.safetensors")

    assert refused({"w": entry("U8", (2,), (0, 2))}, b"\0") == (
        "ranges.safetensors is truncated: tensor 'w' runs past the end of the file")
    assert refused({"w": entry("F32", (2,), (0, 4))}, bytes(4)) == (
        "ranges.safetensors has a damaged header: tensor 'w''s byte range does not fit its shape [2] and dtype F32")
    assert refused({"w": entry("F64", (1,), (0, 4))}, bytes(4)) == (
        "ranges.safetensors has a damaged header: tensor 'w''s byte range does not fit its shape [1] and dtype F64")
    assert refused({"a": entry("U8", (2,), (0, 2)), "b": entry("U8", (2,), (1, 3))}, bytes(3)) == (
        "ranges.safetensors has a damaged header: tensor 'b' overlaps another")
    assert refused({"a": entry("U8", (1,), (0, 1)), "b": entry("U8", (1,), (2, 3))}, bytes(3)) == (
        "ranges.safetensors has a damaged header: tensor 'b' leaves a gap before it")
    assert refused({"a": entry("U8", (1,), (1, 2))}, bytes(2)) == (
        "ranges.safetensors has a damaged header: tensor 'a' leaves a gap before it")
    assert refused({"a": entry("U8", (1,), (0, 1))}, bytes(1235)) == (
        "ranges.safetensors has 1,234 bytes after its last tensor; it is damaged or not a safetensors file")
    assert refused({}, b"\0") == (
        "ranges.safetensors has 1 bytes after its last tensor; it is damaged or not a safetensors file")


# =========================================================================================
# The JSON bounds
# =========================================================================================

@pytest.mark.parametrize("text, shape", [
    ("1", (0, 0, 0)),
    ("[]", (1, 1, 0)),
    ("{}", (1, 1, 0)),
    ("[1, 2, 3]", (1, 1, 2)),
    ("[[], {}]", (2, 3, 1)),
    ('{"a": [[1]], "b": {"c": [2, 3]}}', (3, 5, 2)),
    ('["[[[,,", "}}"]', (1, 1, 1)),  # brackets and commas inside strings do not count
    ('["a\\"[,", []]', (2, 2, 1)),  # nor after an escaped quote
    ('[[[]]] [', (3, 4, 0)),
    ('["unterminated [[[', (1, 1, 0)),
    ("]]][[[", (0, 3, 0)),  # not JSON: an estimate, never below 0
    ("][", (1, 1, 0)),
])
def test_json_shape_counts_depth_containers_and_commas_outside_strings(text, shape):
    assert json_shape(text) == shape


def test_json_shape_skips_the_depth_past_max_containers():
    assert json_shape("[[[]]]", max_containers=3) == (3, 3, 0)
    assert json_shape("[[[]]]", max_containers=2) == (0, 3, 0)
    assert json_shape("[]", max_containers=0) == (1, 1, 0)
    assert json_shape("[[]]", max_containers=1) == (0, 2, 0)


def test_parse_json_bounds_depth_containers_and_items_exactly():
    def parse(text, **bounds):
        return parse_json(text, name="f", what="thing", **{"max_containers": 100, **bounds})

    deepest = "[" * 8 + "]" * 8
    assert parse(deepest) == json.loads(deepest)
    with pytest.raises(CheckpointError) as error:
        parse("[" * 9 + "]" * 9)
    assert str(error.value) == "f has a damaged thing: JSON nested 9 levels deep (a checkpoint needs at most 8)"
    assert parse("[[], []]", max_containers=3) == [[], []]
    with pytest.raises(CheckpointError) as error:
        parse("[[], [], []]", max_containers=3)
    assert str(error.value) == "f has a damaged thing: 4 JSON objects and lists, 3 items (a checkpoint has far fewer)"
    assert parse("[1, 2, 3]", max_items=2) == [1, 2, 3]
    with pytest.raises(CheckpointError) as error:
        parse("[1, 2, 3]", max_items=1)
    assert str(error.value) == "f has a damaged thing: 1 JSON objects and lists, 3 items (a checkpoint has far fewer)"
    assert parse("[" + "1," * 5000 + "1]") == [1] * 5001  # no bound on items unless asked
    with pytest.raises(CheckpointError) as error:
        parse('{"a": 1, "b": {"c": 2, "c": 3}}')
    assert str(error.value) == "f has a damaged thing: the key 'c' appears twice"
    with pytest.raises(CheckpointError) as error:
        parse('{"a": 1, "b": 2, "b": 3, "a": 4}')
    assert str(error.value) == "f has a damaged thing: the key 'b' appears twice"
    assert parse('{"a": 1, "b": {"a": 2}}') == {"a": 1, "b": {"a": 2}}
    with pytest.raises(CheckpointError) as error:
        parse("[1, ")
    assert str(error.value) == "f has a damaged thing: it is not valid JSON"
    with pytest.raises(CheckpointError) as error:
        parse("[" + "9" * 5000 + "]", invalid="my own words")
    assert str(error.value) == "my own words"


# =========================================================================================
# check_metadata: the "ganapp" metadata
# =========================================================================================

def meta_text(saved, **changes) -> str:
    return json.dumps({**saved[1], **changes})


def refused_meta(raw, name="m.safetensors") -> str:
    with pytest.raises(CheckpointError) as error:
        check_metadata(raw, name=name)
    return str(error.value)


def test_missing_foreign_or_other_version_metadata_is_refused_in_full(tmp_path, saved):
    assert refused_meta(None) == "m.safetensors is a safetensors file but not a ganapp checkpoint (no ganapp metadata)"
    bare = raw_file(tmp_path / "bare.safetensors", b"{}")
    assert refusal(read_checkpoint_info, bare) == (
        "bare.safetensors is a safetensors file but not a ganapp checkpoint (no ganapp metadata)")
    for raw in ("[1]", '"text"', meta_text(saved, format="other"), json.dumps({"config": {}})):
        assert refused_meta(raw) == "m.safetensors is not a ganapp checkpoint", raw
    for version, shown in ((2, "2"), (True, "True"), ("1", "'1'"), (1.0, "1.0"), (None, "None")):
        assert refused_meta(meta_text(saved, format_version=version)) == (
            f"m.safetensors has checkpoint format version {shown}; this ganapp reads version 1")


def test_the_metadata_json_is_bounded_by_the_history_rows_allowed(saved, monkeypatch):
    assert refused_meta("{") == "m.safetensors has a damaged ganapp metadata: it is not valid JSON"
    monkeypatch.setattr(checkpoint_format, "MAX_HISTORY_ROWS", 4)  # so at most 4 + 16 containers
    at_limit = "[" + ", ".join(["[]"] * 19) + "]"
    assert refused_meta(at_limit) == "m.safetensors is not a ganapp checkpoint"  # counted, parsed, then refused
    assert refused_meta("[" + ", ".join(["[]"] * 20) + "]") == (
        "m.safetensors has a damaged ganapp metadata: 21 JSON objects and lists, 20 items (a checkpoint has far fewer)")
    monkeypatch.setattr(checkpoint_format, "MAX_HISTORY_ROWS", 2)
    assert refused_meta(meta_text(saved)) == "m.safetensors has 3 history rows; a checkpoint at step 30 has at most 2"


def test_unknown_and_missing_metadata_entries_are_listed(saved):
    meta = dict(saved[1])
    del meta["seconds"], meta["step"]
    raw = json.dumps({**meta, "zeta": 1, "alpha": 2})
    assert refused_meta(raw) == "m.safetensors has damaged ganapp metadata (unknown entries 'alpha, zeta'; missing step, seconds)"
    assert refused_meta(meta_text(saved, extra=1)) == "m.safetensors has damaged ganapp metadata (unknown entries 'extra')"
    assert refused_meta(json.dumps(meta)) == "m.safetensors has damaged ganapp metadata (missing step, seconds)"


def test_an_invalid_config_is_refused_with_its_own_message(saved):
    bad = {**saved[1]["config"], "steps": -3}
    with pytest.raises(ConfigError) as config_error:
        GANConfig.from_dict(bad)
    assert refused_meta(meta_text(saved, config=bad)) == f"m.safetensors has an invalid config: {config_error.value}"
    long = {**saved[1]["config"], **{f"{i}" * 100: 1 for i in range(6)}}  # a message of about 340 characters
    with pytest.raises(ConfigError) as config_error:
        GANConfig.from_dict(long)
    words = str(config_error.value)
    assert len(words) > 300
    assert refused_meta(meta_text(saved, config=long)) == f"m.safetensors has an invalid config: {words[:297]}..."


def test_a_config_message_of_exactly_300_characters_is_kept_whole(saved):
    def config_message(length):
        keys = {c * 70: 1 for c in "abcd"} | {"e" * length: 1}  # five unknown settings
        with pytest.raises(ConfigError) as error:
            GANConfig.from_dict({**saved[1]["config"], **keys})
        return {**saved[1]["config"], **keys}, str(error.value)

    config, words = next(config_message(n) for n in range(1, 100) if len(config_message(n)[1]) == 300)
    assert refused_meta(meta_text(saved, config=config)) == f"m.safetensors has an invalid config: {words}"


def test_a_config_from_before_minibatch_reduction_existed_gets_the_sum_only_with_minibatch_discrimination(saved):
    config = {k: v for k, v in saved[1]["config"].items() if k != "minibatch_reduction"}
    assert check_metadata(meta_text(saved, config=config), name="m")[0].minibatch_reduction == "mean"
    with_mbd = {**config, "minibatch_discrimination": True}
    checked, meta = check_metadata(meta_text(saved, config=with_mbd), name="m")
    assert checked.minibatch_reduction == "sum" and meta["config"]["minibatch_reduction"] == "sum"


def test_step_and_seconds_are_bounded_at_exactly_their_limits(saved):
    history = saved[1]["history"]  # rows at steps 10, 20, 30
    assert check_metadata(meta_text(saved, step=30), name="m")[1]["step"] == 30  # the config's last step
    assert check_metadata(meta_text(saved, step=0, history=[]), name="m")[1]["step"] == 0
    for step in (31, -1, True, 3.0, "30"):
        shown = repr(step)
        assert refused_meta(meta_text(saved, step=step)) == (
            f"m.safetensors has step {shown}; it must be a whole number from 0 to the config's 30 steps"), step
    big = {**saved[1]["config"], "steps": 12345}
    assert refused_meta(meta_text(saved, config=big, step=12346)) == (
        "m.safetensors has step 12346; it must be a whole number from 0 to the config's 12,345 steps")
    for seconds in (0, 0.0, 2**63):
        assert check_metadata(meta_text(saved, seconds=seconds), name="m")[1]["seconds"] == float(seconds)
    for seconds, shown in ((-0.001, "-0.001"), (True, "True"), ("1", "'1'"), (2**63 + 1, str(2**63 + 1)),
                           (None, "None")):
        assert refused_meta(meta_text(saved, seconds=seconds)) == (
            f"m.safetensors has training seconds {shown}; they must be a finite number >= 0"), seconds
    for seconds, shown in ((float("inf"), "inf"), (float("-inf"), "-inf"), (float("nan"), "nan")):
        assert refused_meta(meta_text(saved, seconds=seconds)) == (
            f"m.safetensors has training seconds {shown}; they must be a finite number >= 0")


def row(step, **more):
    return {"step": step, "d_loss": 1.0, "g_loss": 1.0, "d_real": 0.5, "d_fake": 0.5, "seconds": 1.0, **more}


def test_history_rows_are_checked_in_full(saved):
    def refused_history(history, step=30):
        return refused_meta(meta_text(saved, history=history, step=step))

    prefix = "m.safetensors has a damaged history"
    assert refused_history({"step": 1}) == f"{prefix}: it must be a list of rows; got dict"
    assert refused_history("rows") == f"{prefix}: it must be a list of rows; got str"
    assert refused_history([row(1), row(2), row(3)], step=2) == (
        "m.safetensors has 3 history rows; a checkpoint at step 2 has at most 2")
    assert check_metadata(meta_text(saved, history=[row(1), row(2)], step=2), name="m")[1]["history"] == [row(1), row(2)]
    assert refused_history([row(10), 7]) == f"{prefix}: row 1 is 7, not a mapping of names to numbers"
    assert refused_history([{"step": 10, "d_loss": 1.0}]) == f"{prefix}: row 0 lacks g_loss, d_real, d_fake, seconds"
    many = row(10, **{f"m{i}": 1.0 for i in range(58)})  # 64 entries: the most a row may have
    assert check_metadata(meta_text(saved, history=[many]), name="m")[1]["history"] == [many]
    too_many = {**many, "m58": 1.0}
    assert refused_history([too_many]) == f"{prefix}: row 0 has 65 entries (at most 64)"
    assert refused_history([row(10, **{"Bad Name": 1.0})]) == (
        f"{prefix}: row 0 has the name 'Bad Name'; names are short, lower-case letters, digits and _")
    assert refused_history([row(10, **{"1st": 1.0})]).endswith("has the name '1st'; names are short, lower-case "
                                                              "letters, digits and _")
    assert check_metadata(meta_text(saved, history=[row(10, **{"a_1": 2})]), name="m")  # a good name
    for value, shown in (("low", "'low'"), (None, "None"), (True, "True"), ([1], "[1]"), (2**63 + 1, str(2**63 + 1))):
        assert refused_history([row(10, d_loss=value)]) == (
            f"{prefix}: row 0 has d_loss = {shown}; values must be finite numbers"), value
    assert check_metadata(meta_text(saved, history=[row(10, d_loss=2**63, g_loss=-(2**63))]), name="m")
    for rows, index, shown, previous in (([row(0)], 0, "0", 0), ([row(10), row(10)], 1, "10", 10),
                                         ([row(20), row(10)], 1, "10", 20), ([row(31)], 0, "31", 0),
                                         ([row(10.0)], 0, "10.0", 0)):
        assert refused_history(rows) == (
            f"{prefix}: row {index} has step {shown}; row steps are whole numbers that increase, above "
            f"{previous} and at most the checkpoint's 30"), rows
    assert check_metadata(meta_text(saved, history=[row(1), row(30)]), name="m")[1]["history"][-1]["step"] == 30
    thousands = {**saved[1]["config"], "steps": 5000}
    assert refused_meta(meta_text(saved, config=thousands, step=4000, history=[row(4500)])) == (
        f"{prefix}: row 0 has step 4500; row steps are whole numbers that increase, above 0 and at most the "
        "checkpoint's 4,000")
