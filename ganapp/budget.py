"""What a config will cost, from the config alone: parameters, checkpoint bytes, memory.

Every limit is checked before the work starts (STYLE habit 18), so the server must know
a run's size before any process builds its model. This module repeats the arithmetic
of ganapp.models (and of what Trainer.state_tensors and save_checkpoint write) without
importing torch; tests/test_budget.py checks the parameter count against the real
models for many configs and the checkpoint bound against files actually written.

`memory_bytes` is an upper estimate of what one training step holds at its peak, beyond
the fixed cost of the torch runtime (`import torch`, and about 90-105 MB more that the
first step of any config adds here: kernels' code pages, thread pools, the allocator's
arenas; the same for every config, so not counted). It adds up:
 - the data set's training pool (float32; 188 MB for MNIST);
 - parameters, gradients, Adam's two moments and its foreach temporaries, historical
   averages with the copies their penalty makes;
 - activations of G (on the batch plus, with VBN, its reference batch, where VBN's
   per-example statistics cost several tensors per layer) and of three D passes with
   their gradients, im2col buffers of the convolutions included;
 - minibatch discrimination's pairwise tensors: per D pass the distances and exp(-d),
   (B, n, n) each, and in the backward pass a (B, n, n, C) buffer. The CPU kernel of
   torch 2.13 does without that buffer (measured: one cdist backward with B=16, n=512
   peaks at 5.4 B n^2 floats whether C is 20 or 100), but the CUDA kernel of
   `_cdist_backward` allocates `at::empty({batch, r2, r1, m})`
   (aten/src/ATen/native/cuda/DistanceKernel.cu), and "auto" may pick a GPU, so the
   estimate keeps it. This term dominates: batch 1024 with 1024 kernels of dimension 5
   needs 21 GB for that buffer alone;
 - or, when larger, a sample or evaluation pass (2,500 rows for 2-D sets) without
   gradients, plus for image sets an allowance for the metrics' classifier.

Measured on the development machine (torch 2.13+cpu, one thread): the growth of the peak
RSS (/proc/self/status VmHWM, reset through /proc/self/clear_refs) of a fresh process
over building a Trainer, 3 steps and one sample picture, less the growth for the
smallest config of the same kind (ring8 batch 2 hidden 4: 92 MB; digits: 104 MB):
 - ring8, batch 512, MBD 64 kernels x 5: 421 MB measured, 889 MB estimated;
 - ring8, batch 256, hidden 64, MBD 256 kernels x 50: 576 MB, 3,994 MB (3.4 GB of it the
   CUDA-only (B, n, n, C) buffer);
 - ring8, batch 1024, hidden 1024, HA and VBN: 250 MB, 392 MB;
 - ring8, batch 4096, hidden 512, G without BN: 162 MB, 282 MB;
 - digits, batch 256, all five techniques: 51 MB, 121 MB;
 - digits, batch 1024, hidden 256, VBN with 1024 reference rows: 166 MB, 583 MB;
 - digits, batch 64, hidden 2048: 510 MB, 1,003 MB.
So the estimate is 1.5-3.5x the CPU measurement (7x where C is large); tests/test_budget.py
repeats two of these measurements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import TWO_D_DATASETS, GANConfig

FLOAT = 4  # bytes of a float32
SAMPLE_SHAPES = {"ring8": (2,), "grid25": (2,), "spiral": (2,), "drawn": (2,), "digits": (1, 8, 8),
                 "mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28)}
# Rows of each data set's training pool (ganapp.data: TWO_D_POOL_SIZE; digits: 1,797 - 300
# test rows; the IDX sets' standard training files).
TRAINING_ROWS = {"ring8": 20_000, "grid25": 20_000, "spiral": 20_000, "drawn": 20_000, "digits": 1_497,
                 "mnist": 60_000, "fashion-mnist": 60_000}
KERNEL = 4  # the image models' convolutions are 4x4, stride 2
RNG_STATE_BYTES = 5_056  # torch's CPU generator state; the checkpoint keeps two
FIXED_SAMPLES = {"2-D": 1_000, "image": 64}  # training.FIXED_SAMPLES_2D / _IMAGE
EVALUATION_SAMPLES = {"2-D": 2_500, "image": 1_000}  # metrics.MODE_SAMPLES / IMAGE_SAMPLES
CLASSIFIER_ALLOWANCE = 64 * 1024**2  # the image metrics' classifier and its feature batches

# The checkpoint's JSON header: per tensor entry, per history row, and a fixed part.
HEADER_BYTES_PER_TENSOR = 200  # "name":{"dtype":"F32","shape":[...],"data_offsets":[a,b]},
HEADER_BYTES_FIXED = 4_096  # __metadata__, format, config, step, seconds; safetensors' padding
# A history row: 6 loss columns, each at most 4 escaped quotes + name + ": " + a 24-character
# float + ", "; a metric row adds up to 8 metric names of up to 24 characters.
HISTORY_ROW_BYTES = 6 * (4 + 8 + 2 + 24 + 2) + 4
METRIC_ROW_BYTES = 8 * (4 + 24 + 2 + 24 + 2)
HISTORY_EXTRA_ROWS = 64  # a resumed run logs the step it stopped at, once per session


@dataclass(frozen=True)
class Estimate:
    """The size of a run, known from its config before anything is built."""

    parameters: int  # G + D trainable parameters (incl. minibatch-discrimination tensor, VBN/BN affine)
    checkpoint_bytes: int  # upper bound on the size of the checkpoint.safetensors written for this config
    memory_bytes: int  # upper estimate of the peak memory of one training step (beyond torch's own)


@dataclass(frozen=True)
class _Network:
    parameters: list[int]  # numel of each parameter tensor, in module order
    buffers: list[int]  # bytes of each buffer tensor (BN running statistics, VBN reference noise)
    activations_per_row: int  # floats one example keeps alive through forward (with grad)


def estimate(config: GANConfig) -> Estimate:
    """Parameters, checkpoint bytes and peak memory of a run with `config`."""
    shape = SAMPLE_SHAPES[config.data]
    generator, discriminator = _generator(config, shape), _discriminator(config, shape)
    parameters = sum(generator.parameters) + sum(discriminator.parameters)
    return Estimate(parameters=parameters,
                    checkpoint_bytes=_checkpoint_bytes(config, generator, discriminator),
                    memory_bytes=_memory_bytes(config, shape, generator, discriminator))


def describe_bytes(n: int) -> str:
    """'2.2 GB', '350 MB', '12 KB', '512 bytes': decimal units, 2-3 significant digits."""
    n = int(n)
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if abs(n) >= size * 0.9995:  # 999,500 bytes read as 1.0 MB, not 1000 KB
            value = n / size
            text = f"{value:.1f}" if abs(value) < 9.95 else f"{value:.0f}"
            return f"{text} {unit}"
    return f"{n} byte" + ("" if n == 1 else "s")


# ---------------------------------------------------------------------------------------
def _image_channels(width: int) -> tuple[int, int]:
    return max(width // 2, 4), max(width // 4, 4)  # models.image_channels


def _generator(config: GANConfig, shape: tuple[int, ...]) -> _Network:
    """models.build_models' generator: two blocks (layer, norm, ReLU), then the output layer."""
    width, z = config.hidden_dim, config.noise_dim
    if len(shape) == 1:
        weights = [width * z, width, width * width, width]  # Linear(z, w), Linear(w, w)
        norm_channels = [width, width]
        output = [shape[0] * width, shape[0]]  # Linear(w, d)
        outputs_per_row = [width, width]  # per block
        final_per_row = shape[0]
        columns_per_row = 0
    else:
        channels, size = shape[0], shape[1]
        start = size // 4
        wide, narrow = _image_channels(width)
        weights = [z * wide * start**2, wide * start**2,  # Linear(z, wide * start^2)
                   wide * narrow * KERNEL**2]  # ConvTranspose2d(wide, narrow), no bias
        norm_channels = [wide, narrow]
        output = [narrow * channels * KERNEL**2, channels]  # ConvTranspose2d(narrow, channels)
        outputs_per_row = [wide * start**2, narrow * (2 * start) ** 2]
        final_per_row = channels * size**2
        # A transposed convolution's column buffer: out_channels * k^2 per input position.
        columns_per_row = narrow * KERNEL**2 * start**2 + channels * KERNEL**2 * (2 * start) ** 2
    norms: list[int] = []
    buffers: list[int] = []
    if config.virtual_batch_norm:
        for c in norm_channels:
            norms += [c, c]  # gamma, beta
        buffers.append(FLOAT * config.vbn_reference_size * z)  # the reference noise
        per_norm = 10  # per-example statistics, cat of reference and live rows, the normalised copy
    elif config.generator_batch_norm:
        for c in norm_channels:
            norms += [c, c]
            buffers += [FLOAT * c, FLOAT * c, 8]  # running mean, running variance, batches tracked (int64)
        per_norm = 2
    else:
        per_norm = 0
    # Module order: the layers, then the norms, then the output layer.
    parameters = weights + norms + output
    activations = sum(o * (2 + per_norm) for o in outputs_per_row) + 2 * final_per_row + columns_per_row
    return _Network(parameters, buffers, activations)


def _discriminator(config: GANConfig, shape: tuple[int, ...]) -> _Network:
    """models.build_models' discriminator: a body to `width` features, the output layer and,
    with minibatch discrimination, its tensor T (A, B, C) and a bias-free output for o(x)."""
    width = config.hidden_dim
    if len(shape) == 1:
        parameters = [width * shape[0], width, width * width, width]
        activations = 4 * width
    else:
        channels, size = shape[0], shape[1]
        wide, narrow = _image_channels(width)
        half, quarter = size // 2, size // 4
        parameters = [narrow * channels * KERNEL**2, narrow,  # Conv2d(channels, narrow)
                      wide * narrow * KERNEL**2, wide,  # Conv2d(narrow, wide)
                      width * wide * quarter**2, width]  # Linear(wide * (size/4)^2, width)
        outputs = narrow * half**2 + wide * quarter**2  # each kept twice: conv and LeakyReLU
        columns = channels * KERNEL**2 * half**2 + narrow * KERNEL**2 * quarter**2  # im2col
        activations = 2 * outputs + columns + 2 * width + channels * size**2
    parameters += [width, 1]  # Linear(width, 1)
    if config.minibatch_discrimination:
        b, c = config.minibatch_kernels, config.minibatch_kernel_dim
        parameters += [width * b * c, b]  # T, and Linear(B, 1, bias=False)
    return _Network(parameters, [], activations)


# ---------------------------------------------------------------------------------------
def _checkpoint_bytes(config: GANConfig, generator: _Network, discriminator: _Network) -> int:
    """Every tensor Trainer.state_tensors returns, as float32 unless noted, plus the header."""
    tensors = 0
    data = 0
    for network in (generator, discriminator):
        count = len(network.parameters)
        numel = sum(network.parameters)
        data += FLOAT * numel + sum(network.buffers)  # weights and buffers
        data += 2 * FLOAT * numel + FLOAT * count  # Adam: exp_avg, exp_avg_sq, a float32 step each
        tensors += 4 * count + len(network.buffers)
        if config.historical_averaging != "off":
            data += FLOAT * numel + 8  # one average per parameter, an int64 count
            tensors += count + 1
    data += 2 * RNG_STATE_BYTES
    tensors += 2
    rows = math.ceil(config.steps / config.log_every) + HISTORY_EXTRA_ROWS
    metric_rows = min(rows, math.ceil(config.steps / config.metrics_every) + HISTORY_EXTRA_ROWS) \
        if config.metrics_every else 0
    header = (HEADER_BYTES_FIXED + len(config.drawn_points) + HEADER_BYTES_PER_TENSOR * tensors
              + HISTORY_ROW_BYTES * rows + METRIC_ROW_BYTES * metric_rows)
    return 8 + header + data


def _memory_bytes(config: GANConfig, shape: tuple[int, ...], generator: _Network,
                  discriminator: _Network) -> int:
    n = config.batch_size
    sample = math.prod(shape)
    kind = "2-D" if config.data in TWO_D_DATASETS else "image"
    parameters = sum(generator.parameters) + sum(discriminator.parameters)
    largest = max(generator.parameters + discriminator.parameters)

    data_set = TRAINING_ROWS[config.data] * (FLOAT * sample + 8)  # float32 pool, int64 labels
    # Parameters, gradients, Adam's two moments and two foreach temporaries.
    state = FLOAT * parameters * 6 + sum(generator.buffers)
    if config.historical_averaging != "off":
        # The running sums, the averages penalty() divides out, (theta - average)^2 of the largest.
        state += FLOAT * (2 * parameters + 2 * largest)

    generator_rows = n + (config.vbn_reference_size if config.virtual_batch_norm else 0)
    # Forward activations and their gradients: G once, D three times (real and fake for
    # D's update, fake again for G's; feature matching's extra pass keeps no graph).
    step = 2 * FLOAT * (generator_rows * generator.activations_per_row
                        + 3 * n * discriminator.activations_per_row)
    step += 2 * FLOAT * n * (sample + config.noise_dim)  # the real batch and z
    if config.minibatch_discrimination:
        b, c = config.minibatch_kernels, config.minibatch_kernel_dim
        pairwise = b * n * n
        # Two D passes alive at once keep distances and exp(-d) each; the backward pass
        # adds the incoming gradient, exp's and neg's, and cdist's (B, n, n, C) buffer.
        step += FLOAT * pairwise * (2 * 2 + 4 + c)
        step += FLOAT * 6 * n * b * c  # M = f(x) T and its transposed copy, per pass
    # A sample picture or an evaluation: G without gradients on more rows; then a classifier.
    rows = max(FIXED_SAMPLES[kind], EVALUATION_SAMPLES[kind]) + generator_rows - n
    evaluation = FLOAT * rows * generator.activations_per_row
    if kind == "image":
        evaluation += CLASSIFIER_ALLOWANCE
    return data_set + state + max(step, evaluation)
