"""Checkpoints: one safetensors file, written atomically, resumed exactly, loaded without code."""

import json
import os
import pickle
import struct

import pytest
import torch

torch.set_num_threads(1)  # small models: one thread is fastest, and tests share 2 cores
from safetensors.torch import save_file

from ganapp.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, trainer_from_checkpoint
from ganapp.config import GANConfig
from ganapp.training import Trainer

ALL_FIVE = dict(feature_matching=True, minibatch_discrimination=True, historical_averaging="uniform",
                label_smoothing=0.9, virtual_batch_norm=True)


def losses(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


@pytest.mark.slow
@pytest.mark.parametrize("data", ["ring8", "digits"])
def test_a_resumed_run_matches_an_uninterrupted_one(tmp_path, data):
    config = GANConfig(data=data, steps=60, log_every=10, **ALL_FIVE)
    straight = Trainer(config)
    straight.train()

    first = Trainer(config.replace(steps=30))
    first.train()
    path = save_checkpoint(first, tmp_path / "run.safetensors")
    resumed = trainer_from_checkpoint(path, steps=60)
    assert resumed.step == 30 and len(resumed.history) == 3
    # The state that makes the rest identical travelled: VBN's reference noise, HA's sums, Adam's moments, RNGs.
    assert torch.equal(resumed.generator.reference_noise, first.generator.reference_noise)
    assert int(resumed.discriminator_average.count) == 30
    resumed.train()
    assert losses(resumed.history) == losses(straight.history)


def test_checkpoint_is_written_atomically_and_self_describing(tmp_path):
    trainer = Trainer(GANConfig(steps=5))
    trainer.train()
    path = save_checkpoint(trainer, tmp_path / "c.safetensors")
    assert sorted(os.listdir(tmp_path)) == ["c.safetensors"]  # no temporary file left behind
    config, tensors, meta = load_checkpoint(path)
    assert config == trainer.config and meta["step"] == 5 and meta["history"] == trainer.history
    assert "generator.output.weight" in tensors and "rng.noise" in tensors


class Boom:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_file_is_refused_and_nothing_in_it_runs(tmp_path):
    marker = tmp_path / "pwned"
    for name, write in (("torch.pt", lambda p: torch.save({"x": Boom(str(marker))}, p)),
                        ("plain.pkl", lambda p: p.write_bytes(pickle.dumps(Boom(str(marker)))))):
        path = tmp_path / name
        write(path)
        with pytest.raises(CheckpointError, match="not a ganapp checkpoint"):
            load_checkpoint(path)
        assert not marker.exists()


def test_truncated_empty_and_foreign_files_are_refused(tmp_path):
    trainer = Trainer(GANConfig(steps=2))
    path = save_checkpoint(trainer, tmp_path / "good.safetensors")
    raw = path.read_bytes()
    cases = {
        "empty.safetensors": b"",
        "short.safetensors": raw[:5],
        "truncated.safetensors": raw[: len(raw) // 2],
        "text.safetensors": b"hello, this is not a checkpoint at all",
        "huge_header.safetensors": struct.pack("<Q", 2**40) + b"{}",
    }
    for name, content in cases.items():
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(CheckpointError) as error:
            load_checkpoint(bad)
        assert name in str(error.value)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a ganapp checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path):
    small = Trainer(GANConfig(hidden_dim=32, steps=2))
    path = save_checkpoint(small, tmp_path / "small.safetensors")
    # Same tensors, but a config that claims a different architecture.
    config, tensors, meta = load_checkpoint(path)
    meta["config"]["hidden_dim"] = 64
    lying = tmp_path / "lying.safetensors"
    save_file(tensors, lying, metadata={"ganapp": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="does not fit.*wrong shape"):
        trainer_from_checkpoint(lying)
    meta["config"]["minibatch_discrimination"] = True
    meta["config"]["hidden_dim"] = 32
    save_file(tensors, lying, metadata={"ganapp": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="does not fit.*missing"):
        trainer_from_checkpoint(lying)
    meta["config"]["steps"] = -3
    save_file(tensors, lying, metadata={"ganapp": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="invalid config.*steps"):
        load_checkpoint(lying)


def test_a_checkpoint_from_before_a_setting_existed_keeps_the_value_it_was_trained_with(tmp_path):
    """Checkpoints written before `minibatch_reduction` existed were trained with the sum."""
    trainer = Trainer(GANConfig(minibatch_discrimination=True, hidden_dim=32, steps=3))
    trainer.train()
    path = save_checkpoint(trainer, tmp_path / "new.safetensors")
    assert load_checkpoint(path)[0].minibatch_reduction == "mean"  # today's default, stored
    _, tensors, meta = load_checkpoint(path)
    del meta["config"]["minibatch_reduction"]
    old = tmp_path / "old.safetensors"
    save_file(tensors, old, metadata={"ganapp": json.dumps(meta)})
    assert load_checkpoint(old)[0].minibatch_reduction == "sum"
    assert trainer_from_checkpoint(old).discriminator.minibatch.reduction == "sum"
    # Without minibatch discrimination the setting changes no weight: today's default applies.
    meta["config"]["minibatch_discrimination"] = False
    save_file({k: v for k, v in tensors.items() if "minibatch" not in k}, old, metadata={"ganapp": json.dumps(meta)})
    assert load_checkpoint(old)[0].minibatch_reduction == "mean"


# --- the header and metadata are checked completely, torch-free, before anything trusts them ---------------

from ganapp import checkpoint_format
from ganapp.checkpoint_format import MAX_HEADER_ENTRIES, read_checkpoint_info
from ganapp.config import ConfigError

MAX_MESSAGE = 400


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(tensors, metadata) of a small trained run, to rewrite with one thing wrong."""
    trainer = Trainer(GANConfig(hidden_dim=16, steps=30, log_every=10))
    trainer.train()
    path = save_checkpoint(trainer, tmp_path_factory.mktemp("saved") / "good.safetensors")
    _, tensors, meta = load_checkpoint(path)
    return tensors, meta


def rewrite(tmp_path, saved, name="bad.safetensors", **changes):
    tensors, meta = saved
    path = tmp_path / name
    save_file(tensors, path, metadata={"ganapp": json.dumps({**meta, **changes})})
    return path


def refused(path, *words):
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert path.name in message and len(message) <= MAX_MESSAGE, message
    for word in words:
        assert word in message, message
    return message


@pytest.mark.parametrize("changes, words", [
    (dict(history=[1, 2, 3]), ("history", "row 0")),
    (dict(history={"step": 1}), ("history", "list")),
    (dict(history=[{"step": 10, "d_loss": "low", "g_loss": 1, "d_real": 0.5, "d_fake": 0.5, "seconds": 1}]),
     ("d_loss", "finite")),
    (dict(history=[{"step": 10, "d_loss": 1, "g_loss": 1, "d_real": 0.5, "d_fake": 0.5, "seconds": 1,
                    "Not A Name!": 1}]), ("name",)),
    (dict(history=[{"step": 10, "d_loss": 1, "g_loss": 1}]), ("lacks d_real",)),
    (dict(seconds="soon"), ("seconds", "'soon'")),
    (dict(seconds=-1.0), ("seconds",)),
    (dict(seconds=float("inf")), ("seconds",)),
    (dict(step=-5), ("step -5",)),
    (dict(step=2001), ("step 2001", "2,000")),
    (dict(step=True), ("step True",)),
    (dict(step=10.0), ("step 10.0",)),
    (dict(format_version=True), ("format version",)),
    (dict(extra="x"), ("unknown", "extra")),
    (dict(config=[1, 2]), ("invalid config", "dictionary")),
])
def test_metadata_with_a_wrong_value_is_refused_in_plain_words(tmp_path, saved, changes, words):
    _, meta = saved
    if "step" in changes and changes["step"] == 2001:
        changes["config"] = {**meta["config"], "steps": 2000}
    refused(rewrite(tmp_path, saved, **changes), *words)


def test_a_checkpoint_at_its_last_step_is_fine_and_history_rows_must_increase(tmp_path, saved):
    _, meta = saved
    config, info = read_checkpoint_info(rewrite(tmp_path, saved, config={**meta["config"], "steps": 30}))
    assert info["step"] == config.steps == 30
    rows = meta["history"]
    refused(rewrite(tmp_path, saved, history=[rows[1], rows[0], rows[2]]), "row 1", "increase")
    refused(rewrite(tmp_path, saved, history=rows + [{**rows[-1], "step": 40}]), "row 3", "at most")


def test_huge_values_are_never_echoed(tmp_path, saved):
    message = refused(rewrite(tmp_path, saved, seconds="x" * 100_000), "seconds")
    assert "x" * 100 not in message
    refused(rewrite(tmp_path, saved, config={**saved[1]["config"], "data": "y" * 100_000}), "data")
    refused(rewrite(tmp_path, saved, **{"k" * 100_000: 1}), "unknown")
    long_name = tmp_path / ("n" * 200 + ".safetensors")
    long_name.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(long_name)
    assert len(str(error.value)) <= MAX_MESSAGE


def raw_file(path, header: bytes, data: bytes = b""):
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)
    return path


def test_deep_json_is_refused_before_it_is_parsed(tmp_path, saved):
    # The safetensors header itself nested 20,000 deep: json.loads would raise RecursionError.
    deep = b'{"a": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    refused(raw_file(tmp_path / "deep_header.safetensors", deep), "nested 20,001 levels")
    # The same inside the ganapp metadata string.
    refused(rewrite(tmp_path, saved, history=json.loads("[" * 900 + "]" * 900)), "nested")
    nested = '{"format": "ganapp-checkpoint", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    header = json.dumps({"__metadata__": {"ganapp": nested}}).encode()
    refused(raw_file(tmp_path / "deep_meta.safetensors", header), "ganapp metadata", "nested")


def test_too_many_header_entries_or_containers_are_refused(tmp_path):
    entries = {f"t{i}": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]} for i in range(MAX_HEADER_ENTRIES + 5)}
    refused(raw_file(tmp_path / "many.safetensors", json.dumps(entries).encode()), "JSON objects and lists")
    refused(raw_file(tmp_path / "items.safetensors", b"{\"a\": [" + b"1, " * 200_000 + b"1]}"), "200,001 items")
    flat = b"{" + b",".join(b'"k%d": 1' % i for i in range(MAX_HEADER_ENTRIES + 5)) + b"}"
    refused(raw_file(tmp_path / "flat.safetensors", flat), "header entries")


@pytest.mark.parametrize("entry, words", [
    ({"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}, ("byte range",)),
    ({"dtype": "Q99", "shape": [1], "data_offsets": [0, 4]}, ("dtype",)),
    ({"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}, ("shape",)),
    ({"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}, ("data_offsets",)),
    ({"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "extra": 1}, ("exactly",)),
    ({"dtype": "F32", "shape": [1], "data_offsets": [0, 40]}, ("truncated",)),
    ({"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}, ("gap",)),
])
def test_damaged_tensor_entries_are_refused(tmp_path, entry, words):
    path = raw_file(tmp_path / "entry.safetensors", json.dumps({"w": entry}).encode(), bytes(8))
    refused(path, *words)


def test_numbers_too_long_for_python_and_duplicate_keys_are_refused(tmp_path):
    long_number = b'{"__metadata__": {}, "w": {"dtype": "U8", "shape": [' + b"9" * 5000 + b'], "data_offsets": [0, 1]}}'
    refused(raw_file(tmp_path / "long.safetensors", long_number, b"\0"), "not a safetensors file")
    twice = b'{"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, "w": {"dtype": "U8", "shape": [1], ' \
            b'"data_offsets": [0, 1]}}'
    refused(raw_file(tmp_path / "twice.safetensors", twice, b"\0"), "twice")


def test_every_shipped_checkpoint_still_loads():
    root = os.path.join(os.path.dirname(__file__), "..", "checkpoints", "runs")
    names = sorted(os.listdir(root))
    paths = [os.path.join(root, name, "checkpoint.safetensors") for name in names
             if os.path.isfile(os.path.join(root, name, "checkpoint.safetensors"))]
    assert len(paths) >= 5
    for path in paths:
        config, tensors, meta = load_checkpoint(path)
        assert meta["step"] == config.steps and len(meta["history"]) == config.steps // config.log_every
    trainer = trainer_from_checkpoint(paths[0])
    assert trainer.step == trainer.config.steps


def test_the_check_sees_the_final_config_before_any_tensor_is_read(tmp_path, saved, monkeypatch):
    path = rewrite(tmp_path, saved, name="ok.safetensors")
    seen = []

    class TooBig(Exception):
        pass

    def check(config):
        seen.append(config)
        raise TooBig(f"hidden_dim {config.hidden_dim} is too large here")

    def no_tensors(*args, **kwargs):
        raise AssertionError("a tensor was read before the check")

    monkeypatch.setattr("ganapp.checkpoint.load_file", no_tensors)
    monkeypatch.setattr("ganapp.training.Trainer.__init__", no_tensors)
    with pytest.raises(TooBig):
        trainer_from_checkpoint(path, steps=90, check=check)
    assert seen[0].steps == 90 and seen[0].hidden_dim == 16
    monkeypatch.undo()
    trainer = trainer_from_checkpoint(path, steps=90, check=seen.append)
    assert trainer.config.steps == 90 and trainer.step == 30 and seen[-1] == trainer.config


def test_continuing_to_fewer_steps_than_the_checkpoint_has_is_refused(tmp_path, saved):
    path = rewrite(tmp_path, saved, name="ok.safetensors")
    with pytest.raises(ConfigError, match="at step 30.*at least"):
        trainer_from_checkpoint(path, steps=20)


def test_reading_a_checkpoints_info_imports_no_torch(tmp_path, saved):
    path = rewrite(tmp_path, saved, name="ok.safetensors")
    script = ("import sys; from ganapp.checkpoint_format import read_checkpoint_info; "
              f"config, meta = read_checkpoint_info({str(path)!r}); assert meta['step'] == 30; "
              "heavy = [m for m in ('torch', 'safetensors', 'numpy') if m in sys.modules]; "
              "assert not heavy, heavy")
    import subprocess
    import sys

    root = os.path.join(os.path.dirname(__file__), "..")
    result = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_history_columns_are_the_trainers():
    from ganapp.training import HISTORY_COLUMNS

    assert checkpoint_format.HISTORY_COLUMNS == HISTORY_COLUMNS
