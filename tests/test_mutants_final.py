"""Tests for the mutants that the final mutation run (docs/testing.md, "Figures") showed
surviving the engine's suite and that are not equivalent: each test names the behaviour
a surviving mutant changed. Fast tests only (they run once per mutant under mutmut).

tests/test_techniques.py, tests/test_training.py and the checkpoint tests stay the main
suites; this file only adds to them.
"""

from __future__ import annotations

import torch

torch.set_num_threads(1)  # small tensors: one thread is fastest, and the machine is shared

from ganapp.checkpoint import save_checkpoint, trainer_from_checkpoint
from ganapp.config import GANConfig
from ganapp.techniques import HistoricalAverage
from ganapp.training import Trainer


def tiny(**changes) -> GANConfig:
    return GANConfig(**{**dict(data="ring8", batch_size=16, hidden_dim=16, steps=4, log_every=2, device="cpu"),
                        **changes})


# --- historical averaging ----------------------------------------------------------------
def test_ha_penalty_of_a_player_without_parameters_is_a_zero_tensor():
    """An exponential average of no parameters has no averages (an empty list): its
    penalty is still a 0-dim tensor equal to 0 -- a loss term that `+` and `.backward()`
    callers can use -- not a Python number and not an IndexError."""
    for weight in (1.0, 3.0):
        penalty = HistoricalAverage([], mode="exponential", weight=weight).penalty()
        assert isinstance(penalty, torch.Tensor)
        assert penalty.shape == () and penalty.dtype == torch.get_default_dtype()
        assert penalty.item() == 0.0


# --- checkpoint ----------------------------------------------------------------------------
def test_a_checkpoint_continues_on_the_device_its_caller_names_not_the_one_in_its_config(tmp_path):
    """A run trained on a GPU machine (config device "cuda") is sampled or continued on a
    CPU-only one with `--device cpu`: trainer_from_checkpoint must build the trainer on the
    device it is given, not re-choose it from the config (which on this machine raises,
    and on a GPU machine would pick the GPU)."""
    cpu = torch.device("cpu")
    trainer = Trainer(tiny(device="cuda"), device=cpu)
    trainer.train()
    path = save_checkpoint(trainer, tmp_path / "gpu-run.safetensors")

    restored = trainer_from_checkpoint(path, device=cpu)
    assert restored.config.device == "cuda"  # the config is kept as it was written
    assert restored.device == cpu
    assert all(p.device == cpu for p in restored.generator.parameters())
    assert restored.step == trainer.step == 4
    for mine, theirs in zip(restored.generator.parameters(), trainer.generator.parameters()):
        assert torch.equal(mine, theirs)
