"""The training loop: update D, then update G, with the five techniques at named points.

The trainer knows nothing of the UI: it reports through callbacks, can be stopped from
outside through `should_stop`, and raises `TrainingDiverged` when a loss or a weight
stops being finite. A run is fixed by its config and seed: every random stream (data
order, noise, the fixed sample noise, VBN's reference noise) has its own seeded
generator, so runs that differ only in techniques see the same data and noise.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .config import GANConfig
from .data import Dataset, load_dataset
from .models import build_models
from .techniques import HistoricalAverage, discriminator_loss, feature_matching_loss, generator_loss

HISTORY_COLUMNS = ("step", "d_loss", "g_loss", "d_real", "d_fake", "seconds")
FIXED_SAMPLES_2D = 1000  # points in the 2-D picture
FIXED_SAMPLES_IMAGE = 64  # tiles in the image grid


class TrainingDiverged(RuntimeError):
    """A loss or a weight became NaN or infinite; the message says which and when."""


def choose_device(name: str = "auto") -> torch.device:
    """CUDA when present (for 'auto'), else the CPU. Chosen once per trainer."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for, but no CUDA GPU is available; use 'auto' or 'cpu'")
    return torch.device(name)


@dataclass
class StepResult:
    """The tensors of one step, kept on the device until a log step needs numbers."""

    d_loss: torch.Tensor
    g_loss: torch.Tensor
    real_logits: torch.Tensor
    fake_logits: torch.Tensor


@contextmanager
def _frozen(parameters: list[torch.nn.Parameter]):
    """The parameters' requires_grad off inside the block, on again after it (also on an error)."""
    for parameter in parameters:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in parameters:
            parameter.requires_grad_(True)


@dataclass
class _HalfStep:
    """A step whose D half is done: its batch (x_fake keeps G's graph for G's half) and D's numbers."""

    x_real: torch.Tensor
    x_fake: torch.Tensor
    d_loss: torch.Tensor
    real_logits: torch.Tensor
    fake_logits: torch.Tensor


class Trainer:
    """Owns the models, the optimizers and every piece of run state that a checkpoint keeps."""

    def __init__(self, config: GANConfig, *, dataset: Dataset | None = None, device: torch.device | None = None):
        config.validate()
        self.config = config
        self.device = device or choose_device(config.device)
        dataset = dataset if dataset is not None else load_dataset(config.data, seed=config.seed, drawing=config.drawn_points)
        self.dataset = dataset.to(self.device)
        generator, discriminator = build_models(config, self.dataset.sample_shape)
        self.generator, self.discriminator = generator.to(self.device), discriminator.to(self.device)
        betas = (config.beta1, config.beta2)
        # foreach=True: one fused call over all parameters; torch leaves it off on the CPU,
        # where the per-tensor loop was most of the optimizer's time for these small models.
        self.generator_optimizer = torch.optim.Adam(self.generator.parameters(), lr=config.lr_generator, betas=betas,
                                                    foreach=True)
        self.discriminator_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr_discriminator,
                                                        betas=betas, foreach=True)
        self._discriminator_parameters = [p for p in self.discriminator.parameters() if p.requires_grad]
        self.generator_average = self.discriminator_average = None
        if config.historical_averaging != "off":
            kwargs = dict(mode=config.historical_averaging, weight=config.historical_averaging_weight,
                          decay=config.historical_averaging_decay)
            self.generator_average = HistoricalAverage(self.generator.parameters(), **kwargs).to(self.device)
            self.discriminator_average = HistoricalAverage(self.discriminator.parameters(), **kwargs).to(self.device)
        # Random streams live on the CPU, so a run gives the same data order on any device.
        self.data_rng = torch.Generator().manual_seed(config.seed + 1)
        self.noise_rng = torch.Generator().manual_seed(config.seed + 2)
        n_fixed = FIXED_SAMPLES_IMAGE if self.dataset.is_image else FIXED_SAMPLES_2D
        fixed_rng = torch.Generator().manual_seed(config.seed + 3)
        self.fixed_noise = torch.randn(n_fixed, config.noise_dim, generator=fixed_rng).to(self.device)
        self.real_target = 1.0 if config.label_smoothing is None else config.label_smoothing
        self.saturating = config.generator_loss == "saturating"
        self.step = 0
        self.seconds = 0.0  # training time, summed over resumed sessions
        self.history: list[dict[str, float]] = []  # one row per logged step (HISTORY_COLUMNS + metrics)
        self._half: _HalfStep | None = None  # a step whose D half was taken by hand (d_step)

    # ------------------------------------------------------------------------------------
    def train_step(self) -> StepResult:
        """One step: (1) update D on a real and a generated batch, (2) update G.

        Composed of the two halves a paused run can also take one at a time (ganapp.server.control):
        `d_step` (draws the batch, updates D) and `g_step` (updates G on that batch). A step whose
        D half was already taken by hand only takes its G half here."""
        if self._half is None:
            self.d_step()
        return self.g_step()

    @property
    def half_step(self) -> bool:
        """Whether D has taken its turn of the next step and G's turn is due."""
        return self._half is not None

    def d_step(self) -> StepResult:
        """D's half of the next step: draw the real batch and the noise, update D. The step
        number does not move; `g_step` completes the step. Taken twice in a row, the second
        draws a new batch and updates D again (the first batch's G turn is skipped)."""
        config, device = self.config, self.device
        x_real = self.dataset.sample(config.batch_size, self.data_rng).to(device, non_blocking=True)
        z = torch.randn(config.batch_size, config.noise_dim, generator=self.noise_rng).to(device, non_blocking=True)

        # (1) update D: real toward alpha (1 without label smoothing), fake toward exactly 0.
        # D sees the real and the generated batch separately (Discriminator.logits), so minibatch
        # features compare real with real and fake with fake (techniques.md, section 2).
        x_fake = self.generator(z)
        real_logits, fake_logits = self.discriminator.logits(x_real, x_fake.detach())
        d_loss = discriminator_loss(real_logits, fake_logits, self.real_target)
        if self.discriminator_average is not None:
            self.discriminator_average.update()
            d_loss = d_loss + self.discriminator_average.penalty()
        self.discriminator_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        self.discriminator_optimizer.step()
        self._half = _HalfStep(x_real, x_fake, d_loss.detach(), real_logits.detach(), fake_logits.detach())
        return StepResult(self._half.d_loss, torch.tensor(float("nan")), self._half.real_logits,
                          self._half.fake_logits)

    def g_step(self) -> StepResult:
        """G's half of the step: update G against the current D, on the batch of the D half
        just taken; without one (a G step by hand), on a new batch while D sits this step out
        (D's loss and outputs on that batch are then measured, not trained on). Does not move
        the step number; the caller (train) does."""
        config = self.config
        half, self._half = self._half, None
        if half is None:
            x_real = self.dataset.sample(config.batch_size, self.data_rng).to(self.device, non_blocking=True)
            z = torch.randn(config.batch_size, config.noise_dim, generator=self.noise_rng).to(self.device,
                                                                                               non_blocking=True)
            x_fake = self.generator(z)
            with torch.no_grad():  # D has no running statistics: measuring it changes nothing
                real_logits, _ = self.discriminator(x_real)
                fake_logits, _ = self.discriminator(x_fake)
                d_loss = discriminator_loss(real_logits, fake_logits, self.real_target)
                if self.discriminator_average is not None:
                    d_loss = d_loss + self.discriminator_average.penalty()
            half = _HalfStep(x_real, x_fake, d_loss, real_logits, fake_logits)
        x_real, x_fake = half.x_real, half.x_fake

        # (2) update G, against the D just updated. D is held fixed for this pass: its weights
        # need no gradient here (D's step starts its own from None), so autograd skips every
        # product that leads to them alone; G's gradient is the same, number for number.
        with _frozen(self._discriminator_parameters):
            fake_logits_for_g, fake_features = self.discriminator(x_fake)
        if config.feature_matching:
            # The same real batch through the updated D; the official code draws a second
            # batch, but reusing this one keeps the data order the same with FM on or off.
            with torch.no_grad():
                _, real_features = self.discriminator(x_real)
            g_loss = feature_matching_loss(real_features, fake_features)
        else:
            g_loss = generator_loss(fake_logits_for_g, saturating=self.saturating)
        if self.generator_average is not None:
            self.generator_average.update()
            g_loss = g_loss + self.generator_average.penalty()
        self.generator_optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        self.generator_optimizer.step()
        return StepResult(half.d_loss, g_loss.detach(), half.real_logits, half.fake_logits)

    # ------------------------------------------------------------------------------------
    def train(self, *, on_log: Callable[[dict[str, float]], Any] | None = None,
              on_samples: Callable[[int, np.ndarray], Any] | None = None,
              on_metrics: Callable[[int, dict[str, Any]], Any] | None = None,
              should_stop: Callable[[], bool] | None = None,
              evaluate: Callable[["Trainer"], dict[str, Any]] | None = None,
              gate: Callable[["Trainer"], str | None] | None = None,
              on_step: Callable[[str, dict[str, float]], Any] | None = None) -> str:
        """Train up to config.steps; returns 'finished' or 'stopped'.

        on_log gets each history row; on_samples the step and the fixed-noise samples
        (numpy, (n, 2) or (n, C, H, W)); evaluate, when given, is called every
        metrics_every steps and its numbers join the history row and go to on_metrics.
        Raises TrainingDiverged on NaN or infinity.

        gate (play, pause, one step: ganapp.server.control) is asked before each step and
        may wait (a paused run; its waiting is not training time). It answers None (train
        on), "stop", or a step to take and report at once: "d" (D's half), "g" (G's half,
        or G alone), "step" (a whole step). A reported whole or G step logs a history row
        whatever log_every says; on_step then gets the kind and that row (for "d": D's loss
        and outputs of the half step, no row kept). A gate never changes the numbers: a run
        stepped by hand with whole steps equals the run trained straight.
        """
        config = self.config
        if self.step == 0 and on_samples is not None:
            on_samples(0, self.fixed_samples())
        started = time.perf_counter() - self.seconds
        while self.step < config.steps:
            if should_stop is not None and should_stop():
                self.seconds = time.perf_counter() - started
                return "stopped"
            kind = None
            if gate is not None:
                waiting = time.perf_counter()
                kind = gate(self)
                started += time.perf_counter() - waiting  # a paused run is not training
                if kind == "stop":
                    self.seconds = time.perf_counter() - started
                    return "stopped"
                if kind == "d":
                    result = self.d_step()
                    if on_step is not None:
                        on_step("d", self._half_row(result))
                    continue
            result = self.g_step() if kind == "g" else self.train_step()
            self.step += 1
            last = self.step == config.steps
            row = None
            if self.step % config.log_every == 0 or last or kind is not None:
                self.seconds = time.perf_counter() - started
                row = self._log_row(result)
                if evaluate is not None and config.metrics_every and (self.step % config.metrics_every == 0 or last):
                    measured = evaluate(self)
                    row.update({k: v for k, v in measured.items() if isinstance(v, (int, float))})
                    if on_metrics is not None:
                        on_metrics(self.step, measured)
                    started = time.perf_counter() - self.seconds  # evaluation is not training time
                self.history.append(row)
                if on_log is not None:
                    on_log(row)
            if on_samples is not None and (self.step % config.sample_every == 0 or last):
                on_samples(self.step, self.fixed_samples())
            if kind is not None and on_step is not None:
                on_step(kind, row)
        self.seconds = time.perf_counter() - started
        return "finished"

    def _half_row(self, result: StepResult) -> dict[str, float]:
        """D's numbers after a D half step (the step number is the last whole step's)."""
        return {"step": self.step, "d_loss": float(result.d_loss),
                "d_real": float(torch.sigmoid(result.real_logits).mean()),
                "d_fake": float(torch.sigmoid(result.fake_logits).mean())}

    def _log_row(self, result: StepResult) -> dict[str, float]:
        row = {
            "step": self.step,
            "d_loss": float(result.d_loss),
            "g_loss": float(result.g_loss),
            "d_real": float(torch.sigmoid(result.real_logits).mean()),
            "d_fake": float(torch.sigmoid(result.fake_logits).mean()),
            "seconds": round(self.seconds, 3),
        }
        for name in ("d_loss", "g_loss"):
            if not math.isfinite(row[name]):
                raise TrainingDiverged(
                    f"training diverged at step {self.step}: {name} became {row[name]}. "
                    "Try a smaller learning rate or different techniques.")
        for network_name, network in (("generator", self.generator), ("discriminator", self.discriminator)):
            for name, parameter in network.named_parameters():
                if not torch.isfinite(parameter).all():
                    raise TrainingDiverged(
                        f"training diverged at step {self.step}: a weight of the {network_name} ({name}) "
                        "is no longer finite. Try a smaller learning rate.")
        return row

    # ------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, noise: torch.Tensor) -> np.ndarray:
        """G(noise) as numpy, in eval mode (BN uses running statistics; VBN its reference
        batch), so drawing samples changes no training state."""
        was_training = self.generator.training
        self.generator.eval()
        try:
            out = self.generator(noise.to(self.device))
        finally:
            self.generator.train(was_training)
        return out.float().cpu().numpy()

    def fixed_samples(self) -> np.ndarray:
        return self.generate(self.fixed_noise)

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        rng = torch.Generator().manual_seed(seed)
        return self.generate(torch.randn(n, self.config.noise_dim, generator=rng))

    # ------------------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor of the run state, by name (models, optimizers, averages, RNGs)."""
        tensors: dict[str, torch.Tensor] = {}
        for prefix, module in (("generator", self.generator), ("discriminator", self.discriminator),
                               ("generator_average", self.generator_average),
                               ("discriminator_average", self.discriminator_average)):
            if module is not None:
                tensors.update({f"{prefix}.{k}": v for k, v in module.state_dict().items()})
        for prefix, optimizer in (("generator_optimizer", self.generator_optimizer),
                                  ("discriminator_optimizer", self.discriminator_optimizer)):
            for index, state in optimizer.state_dict()["state"].items():
                for key, value in state.items():
                    tensors[f"{prefix}.{index}.{key}"] = torch.as_tensor(value)
        tensors["rng.data"] = self.data_rng.get_state()
        tensors["rng.noise"] = self.noise_rng.get_state()
        return tensors

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Inverse of state_tensors; raises ValueError naming what does not fit."""
        for prefix, module in (("generator", self.generator), ("discriminator", self.discriminator),
                               ("generator_average", self.generator_average),
                               ("discriminator_average", self.discriminator_average)):
            if module is None:
                continue
            own = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
            expected = module.state_dict()
            missing = sorted(set(expected) - set(own))
            unexpected = sorted(set(own) - set(expected))
            wrong_shape = sorted(k for k in set(own) & set(expected) if own[k].shape != expected[k].shape)
            if missing or unexpected or wrong_shape:
                detail = "; ".join(part for part in (
                    f"missing {', '.join(missing[:4])}" if missing else "",
                    f"unexpected {', '.join(unexpected[:4])}" if unexpected else "",
                    f"wrong shape for {', '.join(wrong_shape[:4])}" if wrong_shape else "") if part)
                raise ValueError(f"the checkpoint's {prefix} does not match its config's architecture ({detail})")
            module.load_state_dict({k: v.to(self.device) for k, v in own.items()})
        for prefix, optimizer in (("generator_optimizer", self.generator_optimizer),
                                  ("discriminator_optimizer", self.discriminator_optimizer)):
            state_dict = optimizer.state_dict()
            state: dict[int, dict[str, torch.Tensor]] = {}
            for key, value in tensors.items():
                if key.startswith(prefix + "."):
                    _, index, name = key.split(".", 2)
                    state.setdefault(int(index), {})[name] = value.to(self.device) if name != "step" else value
            state_dict["state"] = state
            optimizer.load_state_dict(state_dict)
        self.data_rng.set_state(tensors["rng.data"])
        self.noise_rng.set_state(tensors["rng.noise"])
