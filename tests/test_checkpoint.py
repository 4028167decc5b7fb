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
