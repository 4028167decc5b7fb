"""The budget estimate: exact parameter counts, checkpoint bounds, memory upper bounds."""

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch.set_num_threads(1)  # small models: one thread is fastest, and tests share 2 cores

from ganapp import budget
from ganapp.budget import Estimate, describe_bytes, estimate
from ganapp.checkpoint import save_checkpoint
from ganapp.checkpoint_format import read_checkpoint_info
from ganapp.config import DATASETS, GANConfig
from ganapp.drawn import shape
from ganapp.models import build_models
from ganapp.training import Trainer

ROOT = Path(__file__).resolve().parent.parent
GiB = 1024**3

configs = st.builds(
    lambda data_set, **values: GANConfig(**data_set, **values),
    # A drawn data set needs its drawing (ganapp.drawn); the others have none.
    data_set=st.sampled_from(DATASETS).map(lambda d: {"data": d, "drawn_points": shape("ring") if d == "drawn" else ""}),
    hidden_dim=st.integers(4, 80),
    noise_dim=st.integers(1, 40),
    generator_batch_norm=st.booleans(),
    virtual_batch_norm=st.booleans(),
    vbn_reference_size=st.integers(1, 16),
    minibatch_discrimination=st.booleans(),
    minibatch_kernels=st.integers(1, 24),
    minibatch_kernel_dim=st.integers(1, 12),
    historical_averaging=st.sampled_from(["off", "uniform", "exponential"]),
    feature_matching=st.booleans(),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_parameters_are_exactly_those_of_the_built_models(config):
    generator, discriminator = build_models(config, budget.SAMPLE_SHAPES[config.data])
    real = sum(p.numel() for p in generator.parameters()) + sum(p.numel() for p in discriminator.parameters())
    assert estimate(config).parameters == real


def test_the_data_facts_it_repeats_agree_with_the_engine():
    from ganapp import data, metrics, training

    for name in ("ring8", "grid25", "spiral", "digits"):
        dataset = data.load_dataset(name)
        assert budget.SAMPLE_SHAPES[name] == dataset.sample_shape and budget.TRAINING_ROWS[name] == len(dataset)
    for name in ("mnist", "fashion-mnist"):
        assert budget.SAMPLE_SHAPES[name] == (1, data.IDX_IMAGE_SIZE, data.IDX_IMAGE_SIZE)
    assert set(budget.SAMPLE_SHAPES) == set(DATASETS)
    assert budget.FIXED_SAMPLES == {"2-D": training.FIXED_SAMPLES_2D, "image": training.FIXED_SAMPLES_IMAGE}
    assert budget.EVALUATION_SAMPLES == {"2-D": metrics.MODE_SAMPLES, "image": metrics.IMAGE_SAMPLES}
    assert budget.RNG_STATE_BYTES == torch.Generator().get_state().numel()


SMALL = [
    dict(data="ring8", steps=30, log_every=1),
    dict(data="ring8", steps=12, hidden_dim=48, generator_batch_norm=False, minibatch_discrimination=True,
         minibatch_kernels=7, minibatch_kernel_dim=3),
    dict(data="spiral", steps=9, historical_averaging="uniform", virtual_batch_norm=True, vbn_reference_size=5),
    dict(data="digits", steps=6, log_every=2, hidden_dim=32, feature_matching=True, minibatch_discrimination=True,
         historical_averaging="exponential", label_smoothing=0.9, virtual_batch_norm=True),
    dict(data="digits", steps=4, hidden_dim=8, noise_dim=3),
]


@pytest.mark.parametrize("values", SMALL)
def test_checkpoint_bytes_bound_the_file_save_checkpoint_writes(tmp_path, values):
    config = GANConfig(batch_size=16, **values)
    trainer = Trainer(config)
    trainer.train()  # every optimizer state exists after a step, and the history is full
    size = save_checkpoint(trainer, tmp_path / "c.safetensors").stat().st_size
    bound = estimate(config).checkpoint_bytes
    assert size <= bound <= 1.5 * size + 64 * 1024


def test_checkpoint_bytes_bound_a_history_with_metrics(tmp_path):
    from ganapp.metrics import evaluator_for

    config = GANConfig(data="ring8", steps=20, log_every=1, metrics_every=1, batch_size=16, hidden_dim=16)
    trainer = Trainer(config)
    trainer.train(evaluate=evaluator_for(trainer))
    assert len(trainer.history[-1]) > 6  # metric columns joined the rows
    size = save_checkpoint(trainer, tmp_path / "c.safetensors").stat().st_size
    assert size <= estimate(config).checkpoint_bytes <= 1.5 * size + 64 * 1024


def test_checkpoint_bytes_bound_every_shipped_checkpoint():
    paths = sorted(glob.glob(str(ROOT / "checkpoints" / "runs" / "*" / "checkpoint.safetensors")))
    assert paths
    for path in paths:
        config, _ = read_checkpoint_info(path)
        size = os.path.getsize(path)
        assert size <= estimate(config).checkpoint_bytes <= 1.5 * size, path


def test_the_issues_examples():
    # 2.16 GB: MBD's tensor T of 512 x 1024 x 256 floats, with Adam's moments and HA's average.
    big = estimate(GANConfig(batch_size=2, hidden_dim=512, minibatch_discrimination=True, minibatch_kernels=1024,
                             minibatch_kernel_dim=256, historical_averaging="uniform"))
    assert 2.0e9 < big.checkpoint_bytes < 2.3e9
    assert describe_bytes(big.checkpoint_bytes) == "2.2 GB"
    # Batch 1024 with 1024 kernels: the pairwise tensors alone are tens of GB.
    wide = estimate(GANConfig(batch_size=1024, minibatch_discrimination=True, minibatch_kernels=1024))
    assert wide.memory_bytes > 8 * GiB
    assert isinstance(wide, Estimate)


@settings(max_examples=100, deadline=None)
@given(configs, st.integers(2, 2000), st.integers(1, 1023))
def test_memory_grows_with_the_batch_and_the_kernels(config, batch, kernels):
    config = config.replace(batch_size=batch, minibatch_kernels=kernels)
    base = estimate(config).memory_bytes
    assert estimate(config.replace(batch_size=batch + 1)).memory_bytes >= base
    assert estimate(config.replace(minibatch_kernels=kernels + 1)).memory_bytes >= base
    assert estimate(config.replace(minibatch_kernel_dim=config.minibatch_kernel_dim + 1)).memory_bytes >= base
    assert estimate(config.replace(hidden_dim=config.hidden_dim + 1)).memory_bytes >= base


def test_describe_bytes():
    assert describe_bytes(2_160_000_000) == "2.2 GB"
    assert describe_bytes(350_000_000) == "350 MB"
    assert describe_bytes(12_345) == "12 KB"
    assert describe_bytes(999_600) == "1.0 MB"
    assert describe_bytes(512) == "512 bytes"
    assert describe_bytes(1) == "1 byte"
    assert describe_bytes(21 * 10**12) == "21 TB"


MEASURE = r"""
import json, sys
import torch
torch.set_num_threads(1)
from ganapp.config import GANConfig
from ganapp.training import Trainer

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024

config = GANConfig.from_dict(json.loads(sys.argv[1]))
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak (VmHWM) starts again from the current RSS
base = status("VmRSS")
trainer = Trainer(config)
for _ in range(3):
    trainer.train_step()
trainer.fixed_samples()
print(status("VmHWM") - base)
"""


def peak_growth(values: dict) -> int:
    """Growth of the peak RSS of a fresh process over building a Trainer and 3 steps."""
    result = subprocess.run([sys.executable, "-c", MEASURE, json.dumps(values)], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-2000:]
    return int(result.stdout.split()[-1])


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux's /proc to measure memory")
def test_memory_is_an_upper_bound_of_what_a_step_uses():
    # The first step of any config costs the same ~100 MB (code pages, thread pools):
    # measure it with the smallest config and compare what comes on top.
    runtime = peak_growth(dict(data="ring8", batch_size=2, hidden_dim=4))
    for values in (dict(data="ring8", batch_size=512, minibatch_discrimination=True, minibatch_kernels=64),
                   dict(data="ring8", batch_size=1024, hidden_dim=1024, historical_averaging="uniform",
                        virtual_batch_norm=True)):
        measured = peak_growth(values) - runtime
        estimated = estimate(GANConfig(**values)).memory_bytes
        assert measured <= estimated <= 5 * measured + 64 * 1024**2, (values, measured, estimated)
