"""`python -m ganapp bench`: ganapp's training step against a bare PyTorch loop.

The bare loop is written here, by hand, with the same architecture, optimizer, batch,
data sampling and noise as ganapp's vanilla step (the pytorch/examples DCGAN step: one
generated batch used detached for D and attached for G). The two are interleaved in one
process, round after round, so a busy shared machine slows both alike; each side's
throughput is its best round. Then the cost of each technique relative to vanilla: the
median over interleaved rounds of the within-round ratio, and on its own line
minibatch discrimination's cost on the 2-D MLP, the slower run of the lesson's pair,
measured apart over 4 x repeats + 1 short rounds (the median, and the middle half of the ratios
to show the noise), with its compiled loops and, in the same rounds, its tensor formula.
The last line printed is `ratio X`: the lowest ganapp/bare throughput ratio measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .config import GANConfig
from .models import image_channels
from .techniques import minibatch_kernel
from .training import Trainer

MODELS = (("2-D MLP (ring8)", "ring8"), ("image DCGAN (digits 8x8)", "digits"))
TECHNIQUES = (
    ("feature matching", dict(feature_matching=True)),
    ("minibatch discrimination", dict(minibatch_discrimination=True)),
    ("historical averaging", dict(historical_averaging="uniform")),
    ("label smoothing", dict(label_smoothing=0.9)),
    ("virtual batch norm", dict(virtual_batch_norm=True)),
    ("all five", dict(feature_matching=True, minibatch_discrimination=True, historical_averaging="uniform",
                      label_smoothing=0.9, virtual_batch_norm=True)),
)


def bare_models(config: GANConfig, sample_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    """The vanilla architecture of ganapp.models, written out as plain nn.Sequential."""
    width, nz = config.hidden_dim, config.noise_dim
    if len(sample_shape) == 1:
        generator = nn.Sequential(nn.Linear(nz, width), nn.BatchNorm1d(width), nn.ReLU(),
                                  nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(),
                                  nn.Linear(width, sample_shape[0]))
        discriminator = nn.Sequential(nn.Linear(sample_shape[0], width), nn.LeakyReLU(0.2),
                                      nn.Linear(width, width), nn.LeakyReLU(0.2), nn.Linear(width, 1))
        return generator, discriminator
    channels, size = sample_shape[0], sample_shape[1]
    start, (wide, narrow) = size // 4, image_channels(width)
    generator = nn.Sequential(
        nn.Linear(nz, wide * start * start), nn.Unflatten(1, (wide, start, start)), nn.BatchNorm2d(wide), nn.ReLU(),
        nn.ConvTranspose2d(wide, narrow, 4, 2, 1, bias=False), nn.BatchNorm2d(narrow), nn.ReLU(),
        nn.ConvTranspose2d(narrow, channels, 4, 2, 1), nn.Tanh())
    discriminator = nn.Sequential(
        nn.Conv2d(channels, narrow, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(narrow, wide, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(wide * start * start, width), nn.LeakyReLU(0.2), nn.Linear(width, 1))
    return generator, discriminator


def bare_loop(config: GANConfig, data: torch.Tensor) -> Callable[[int], None]:
    """A hand-written GAN step: returns run(steps)."""
    generator, discriminator = bare_models(config, tuple(data.shape[1:]))
    betas = (config.beta1, config.beta2)
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr_generator, betas=betas, foreach=True)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr_discriminator, betas=betas, foreach=True)
    data_rng = torch.Generator().manual_seed(1)
    noise_rng = torch.Generator().manual_seed(2)
    b, nz = config.batch_size, config.noise_dim

    def run(steps: int) -> None:
        for _ in range(steps):
            x = data[torch.randint(len(data), (b,), generator=data_rng)]
            z = torch.randn(b, nz, generator=noise_rng)
            fake = generator(z)
            out_real = discriminator(x).squeeze(1)
            out_fake = discriminator(fake.detach()).squeeze(1)
            loss_d = (F.binary_cross_entropy_with_logits(out_real, torch.ones_like(out_real))
                      + F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake)))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            out = discriminator(fake).squeeze(1)
            loss_g = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
    return run


def ganapp_loop(config: GANConfig) -> Callable[[int], None]:
    trainer = Trainer(config)

    def run(steps: int) -> None:
        for _ in range(steps):
            trainer.train_step()
    return run


def without_compiled_loops(run: Callable[[int], None]) -> Callable[[int], None]:
    """`run` with minibatch discrimination's tensor formula in place of its compiled loops."""
    def formula(steps: int) -> None:
        enabled, minibatch_kernel.ENABLED = minibatch_kernel.ENABLED, False
        try:
            run(steps)
        finally:
            minibatch_kernel.ENABLED = enabled
    return formula


def round_times(loops: dict[str, Callable[[int], None]], *, steps: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per step of each loop in each of `repeats` interleaved rounds.

    Rounds are short and alternate their order (A B, B A, ...), so a burst of load from
    another process on a shared machine hits both sides alike.
    """
    for run in loops.values():
        run(max(steps // 10, 5))  # warm up allocators and caches
    times: dict[str, list[float]] = {name: [] for name in loops}
    names = list(loops)
    for round_index in range(repeats):
        for name in (names if round_index % 2 == 0 else names[::-1]):
            started = time.perf_counter()
            loops[name](steps)
            times[name].append((time.perf_counter() - started) / steps)
    return times


def best_throughputs(loops: dict[str, Callable[[int], None]], *, steps: int, repeats: int) -> dict[str, float]:
    """Steps per second of each loop, best of `repeats` interleaved rounds: its undisturbed speed."""
    return {name: 1 / min(times) for name, times in round_times(loops, steps=steps, repeats=repeats).items()}


def median_cost(times: list[float], vanilla: list[float]) -> float:
    """The median over rounds of (time per step) / (vanilla's time per step in the same round).

    A ratio of two neighbours in time cancels most of a shared machine's changing load,
    where the ratio of two bests can pair a lucky round with an unlucky one.
    """
    ratios = sorted(t / v for t, v in zip(times, vanilla))
    middle = len(ratios) // 2
    return ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2


def steps_for(run: Callable[[int], None], seconds: float) -> int:
    """How many steps of `run` take about `seconds` (measured on a few steps)."""
    run(3)
    started = time.perf_counter()
    run(5)
    per_step = (time.perf_counter() - started) / 5
    return max(int(seconds / per_step), 5)


def main(*, repeats: int = 15, seconds: float = 0.3, threads: int = 1) -> int:
    torch.set_num_threads(threads)
    print(f"ganapp bench: best of {repeats} interleaved rounds of about {seconds} s each, {threads} torch thread(s), "
          f"torch {torch.__version__}, CPU")
    ratios = []
    print(f"\n{'model':<28}{'bare steps/s':>14}{'ganapp steps/s':>16}{'ratio':>8}")
    for label, data in MODELS:
        config = GANConfig(data=data)
        trainer_data = Trainer(config).dataset.data  # the same tensor the trainer samples from
        loops = {"bare": bare_loop(config, trainer_data), "ganapp": ganapp_loop(config)}
        speeds = best_throughputs(loops, steps=steps_for(loops["bare"], seconds), repeats=repeats)
        ratio = speeds["ganapp"] / speeds["bare"]
        ratios.append(ratio)
        print(f"{label:<28}{speeds['bare']:>14.0f}{speeds['ganapp']:>16.0f}{ratio:>8.3f}")

    print("\ncost of each technique: time per step relative to vanilla ganapp (1.00 = free), the median over "
          "interleaved rounds of the ratio within a round")
    print(f"{'technique':<28}" + "".join(f"{label.split(' (')[0]:>18}" for label, _ in MODELS))
    relative: dict[str, list[float]] = {name: [] for name, _ in TECHNIQUES}
    for _, data in MODELS:
        loops = {"vanilla": ganapp_loop(GANConfig(data=data))}
        loops.update({name: ganapp_loop(GANConfig(data=data, **changes)) for name, changes in TECHNIQUES})
        times = round_times(loops, steps=steps_for(loops["vanilla"], seconds / 2), repeats=max(repeats // 3, 3))
        for name, _ in TECHNIQUES:
            relative[name].append(median_cost(times[name], times["vanilla"]))
    for name, values in relative.items():
        print(f"{name:<28}" + "".join(f"{v:>17.2f}x" for v in values))
    # The slowest run of the lesson's pair (issue 11): MBD against vanilla on the 2-D MLP,
    # measured apart over more rounds than the table's, since it is a figure with a goal;
    # and, in the same rounds, MBD with its tensor formula instead of the compiled loops.
    loops = {"vanilla": ganapp_loop(GANConfig(data="ring8")),
             "mbd": ganapp_loop(GANConfig(data="ring8", minibatch_discrimination=True)),
             "formula": without_compiled_loops(ganapp_loop(GANConfig(data="ring8", minibatch_discrimination=True)))}
    # Many short rounds: their neighbours in time are closer, and the median of more ratios is steadier.
    rounds = 4 * repeats + 1
    times = round_times(loops, steps=steps_for(loops["vanilla"], seconds / 6), repeats=rounds)
    for name, how in (("mbd", "compiled loops"), ("formula", "tensor formula")):
        if name == "mbd" and not minibatch_kernel.ENABLED:
            how = "tensor formula: numba is not installed"
        costs = sorted(t / v for t, v in zip(times[name], times["vanilla"]))
        print(f"minibatch discrimination on the 2-D MLP ({how}): {median_cost(times[name], times['vanilla']):.2f}x "
              f"vanilla (median of {rounds} interleaved rounds; middle half {costs[len(costs) // 4]:.2f}x-"
              f"{costs[(3 * len(costs)) // 4]:.2f}x)")
    print(f"ratio {min(ratios):.3f}")
    return 0
