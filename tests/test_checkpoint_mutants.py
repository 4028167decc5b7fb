"""Checkpoint tests written to kill mutants that tests/test_checkpoint.py lets live
(docs/testing.md). tests/test_checkpoint.py is the checkpoint's main suite; this file only
adds what the mutation run showed missing."""

import pytest
import torch

torch.set_num_threads(1)  # small models: one thread is fastest, and tests share 2 cores

from ganapp.checkpoint import save_checkpoint, trainer_from_checkpoint
from ganapp.config import GANConfig
from ganapp.training import Trainer


def tiny(**changes) -> GANConfig:
    return GANConfig(**{**dict(data="ring8", batch_size=16, hidden_dim=16, steps=10, device="cpu"), **changes})


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
