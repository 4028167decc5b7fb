"""One config object for a training run, shared by the UI, the CLI and the checkpoint.

Every technique of Salimans et al. (2016) is a field here, off by default, with its
knob beside it (see ../shared/techniques.md for the decisions behind each default).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any, get_args, get_type_hints

DATASETS = ("ring8", "grid25", "spiral", "digits", "mnist", "fashion-mnist")
TWO_D_DATASETS = ("ring8", "grid25", "spiral")
HA_MODES = ("off", "uniform", "exponential")
GENERATOR_LOSSES = ("non-saturating", "saturating")
MINIBATCH_REDUCTIONS = ("mean", "sum")
DEVICES = ("auto", "cpu", "cuda")

# Limits a classroom server enforces whatever the UI shows; the CLI may go beyond them.
MAX_STEPS = 1_000_000
MAX_BATCH_SIZE = 4096


class ConfigError(ValueError):
    """A setting is wrong; the message says which one and what would be right."""


def _help(text: str, **extra: Any) -> dict[str, Any]:
    return {"help": text, **extra}


@dataclass
class GANConfig:
    """Every setting of one run. Plain values only, so it round-trips through JSON."""

    # --- what to learn -------------------------------------------------------------
    data: str = field(default="ring8", metadata=_help(
        "data set: ring8, grid25, spiral (2-D points), digits (8x8), mnist, fashion-mnist (28x28)"))
    steps: int = field(default=2000, metadata=_help("number of training steps (one D update and one G update each)"))
    batch_size: int = field(default=64, metadata=_help("examples per batch, for real and for generated data"))
    seed: int = field(default=0, metadata=_help("random seed: the same config and seed give the same numbers"))

    # --- models --------------------------------------------------------------------
    noise_dim: int = field(default=16, metadata=_help("size of the noise vector z fed to the generator"))
    hidden_dim: int = field(default=128, metadata=_help(
        "model width: hidden units of the 2-D MLPs, feature units of the image models"))
    generator_batch_norm: bool = field(default=True, metadata=_help(
        "batch norm in G's hidden layers (DCGAN, the paper); off: no normalisation, where a vanilla GAN "
        "collapses on ring8 at learning rate 3e-4 (docs/results.md). Virtual batch norm replaces it when on"))

    # --- optimisation ----------------------------------------------------------------
    lr_generator: float = field(default=1e-3, metadata=_help("Adam learning rate of the generator"))
    lr_discriminator: float = field(default=1e-3, metadata=_help("Adam learning rate of the discriminator"))
    beta1: float = field(default=0.5, metadata=_help("Adam beta1 (0.5 as in DCGAN and the paper's code)"))
    beta2: float = field(default=0.999, metadata=_help("Adam beta2"))
    generator_loss: str = field(default="non-saturating", metadata=_help(
        "generator loss: non-saturating (-log D(G(z)), the usual one) or saturating (log(1 - D(G(z))), the original minimax)",
        choices=GENERATOR_LOSSES))

    # --- the five techniques (Salimans et al. 2016, section 3) -------------------------
    feature_matching: bool = field(default=False, metadata=_help(
        "feature matching (sec. 3.1): G matches the mean of D's features on real data instead of fooling D"))
    minibatch_discrimination: bool = field(default=False, metadata=_help(
        "minibatch discrimination (sec. 3.2): D sees how close each sample is to the others in its batch"))
    minibatch_kernels: int = field(default=16, metadata=_help("minibatch discrimination: number of kernels B (paper: 100)"))
    minibatch_kernel_dim: int = field(default=5, metadata=_help("minibatch discrimination: kernel dimension C (paper: 5)"))
    minibatch_reduction: str = field(default="mean", metadata=_help(
        "minibatch discrimination: mean of exp(-distance) over the other samples (the official ImageNet "
        "code; the default, see docs/results.md) or their sum (the paper's formula; on 2-D data D wins outright)",
        choices=MINIBATCH_REDUCTIONS))
    historical_averaging: str = field(default="off", metadata=_help(
        "historical averaging (sec. 3.3): off, uniform (the paper: average of all past weights) "
        "or exponential (recent weights count more)", choices=HA_MODES))
    historical_averaging_weight: float = field(default=0.001, metadata=_help(
        "historical averaging: weight of the penalty ||theta - average||^2; 0.001 cost the least of "
        "0.001, 0.01, 0.1 and 1 on ring8 and grid25, larger weights lose modes (docs/results.md)"))
    historical_averaging_decay: float = field(default=0.99, metadata=_help(
        "historical averaging, exponential mode: decay of the moving average (0 < decay < 1)"))
    label_smoothing: float | None = field(default=None, metadata=_help(
        "one-sided label smoothing (sec. 3.4): the real target alpha, e.g. 0.9; fake targets stay 0"))
    virtual_batch_norm: bool = field(default=False, metadata=_help(
        "virtual batch normalization (sec. 3.5): G normalises each example with a fixed reference batch"))
    vbn_reference_size: int = field(default=64, metadata=_help("virtual batch norm: size of the fixed reference batch"))

    # --- reporting -------------------------------------------------------------------
    log_every: int = field(default=10, metadata=_help("record losses every this many steps"))
    sample_every: int = field(default=100, metadata=_help("draw the sample picture every this many steps"))
    metrics_every: int = field(default=250, metadata=_help("compute quality metrics every this many steps (0: never)"))
    device: str = field(default="auto", metadata=_help("auto (CUDA when present, else CPU), cpu or cuda", choices=DEVICES))

    # ------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        self.validate()

    @property
    def is_image(self) -> bool:
        return self.data not in TWO_D_DATASETS

    @property
    def techniques(self) -> list[str]:
        """Short names of the techniques that are on, in the paper's order."""
        on = []
        if self.feature_matching:
            on.append("FM")
        if self.minibatch_discrimination:
            on.append("MBD" if self.minibatch_reduction == "mean" else "MBD-sum")
        if self.historical_averaging != "off":
            on.append("HA" if self.historical_averaging == "uniform" else "HA-exp")
        if self.label_smoothing is not None:
            on.append("LS")
        if self.virtual_batch_norm:
            on.append("VBN")
        return on

    def validate(self) -> None:
        """Check every field; raise ConfigError with a sentence a student can act on."""
        self._check_types()

        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ConfigError(message)

        need(self.data in DATASETS, f"data must be one of {', '.join(DATASETS)}; got {short_repr(self.data)}")
        need(1 <= self.steps <= MAX_STEPS, f"steps must be between 1 and {MAX_STEPS:,}; got {short_repr(self.steps)}")
        need(2 <= self.batch_size <= MAX_BATCH_SIZE,
             f"batch_size must be between 2 and {MAX_BATCH_SIZE} (batch statistics need two examples); "
             f"got {short_repr(self.batch_size)}")
        need(0 <= self.seed < 2**63, f"seed must be a whole number >= 0; got {short_repr(self.seed)}")
        need(1 <= self.noise_dim <= 1024, f"noise_dim must be between 1 and 1024; got {short_repr(self.noise_dim)}")
        need(4 <= self.hidden_dim <= 4096, f"hidden_dim must be between 4 and 4096; got {short_repr(self.hidden_dim)}")
        for name in ("lr_generator", "lr_discriminator"):
            value = getattr(self, name)
            need(0 < value <= 1, f"{name} (learning rate) must be > 0 and at most 1; got {short_repr(value)}")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            need(0 <= value < 1, f"{name} must be >= 0 and < 1; got {short_repr(value)}")
        need(self.generator_loss in GENERATOR_LOSSES,
             f"generator_loss must be one of {', '.join(GENERATOR_LOSSES)}; got {short_repr(self.generator_loss)}")
        need(1 <= self.minibatch_kernels <= 1024,
             f"minibatch_kernels (B) must be between 1 and 1024; got {short_repr(self.minibatch_kernels)}")
        need(1 <= self.minibatch_kernel_dim <= 256,
             f"minibatch_kernel_dim (C) must be between 1 and 256; got {short_repr(self.minibatch_kernel_dim)}")
        need(self.minibatch_reduction in MINIBATCH_REDUCTIONS,
             f"minibatch_reduction must be one of {', '.join(MINIBATCH_REDUCTIONS)}; "
             f"got {short_repr(self.minibatch_reduction)}")
        need(self.historical_averaging in HA_MODES,
             f"historical_averaging must be one of {', '.join(HA_MODES)}; got {short_repr(self.historical_averaging)}")
        need(0 <= self.historical_averaging_weight <= 100,
             "historical_averaging_weight must be between 0 and 100; "
             f"got {short_repr(self.historical_averaging_weight)}")
        need(0 < self.historical_averaging_decay < 1,
             "historical_averaging_decay must be strictly between 0 and 1; "
             f"got {short_repr(self.historical_averaging_decay)}")
        if self.label_smoothing is not None:
            need(0.5 < self.label_smoothing <= 1,
                 "label_smoothing is the real target alpha and must be > 0.5 and <= 1 (e.g. 0.9); "
                 f"got {short_repr(self.label_smoothing)}")
        need(1 <= self.vbn_reference_size <= MAX_BATCH_SIZE,
             f"vbn_reference_size must be between 1 and {MAX_BATCH_SIZE}; got {short_repr(self.vbn_reference_size)}")
        for name in ("log_every", "sample_every"):
            value = getattr(self, name)
            need(value >= 1, f"{name} must be at least 1; got {short_repr(value)}")
        need(self.metrics_every >= 0,
             f"metrics_every must be >= 0 (0 turns metrics off); got {short_repr(self.metrics_every)}")
        need(self.device in DEVICES, f"device must be one of {', '.join(DEVICES)}; got {short_repr(self.device)}")

    def _check_types(self) -> None:
        hints = get_type_hints(type(self))
        for f in fields(self):
            value = getattr(self, f.name)
            allowed = _allowed_types(hints[f.name])
            if isinstance(value, bool) and bool not in allowed:
                raise ConfigError(f"{f.name} must be a {_type_words(allowed)}; got {short_repr(value)}")
            if isinstance(value, int) and not isinstance(value, bool) and float in allowed and int not in allowed:
                try:
                    value = float(value)  # 1 is a fine learning rate
                except OverflowError:  # a whole number beyond any float
                    raise ConfigError(f"{f.name} must be a finite number; got {short_repr(value)}") from None
                setattr(self, f.name, value)
            if not isinstance(value, allowed):
                raise ConfigError(f"{f.name} must be a {_type_words(allowed)}; got {short_repr(value)}")
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{f.name} must be a finite number; got {short_repr(value)}")

    # --- plain dict / JSON -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "GANConfig":
        if not isinstance(values, dict):
            raise ConfigError(f"a config must be a dictionary of settings; got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(short_repr(k, quote=not isinstance(k, str)) for k in values if k not in known)
        if unknown:
            shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            raise ConfigError(f"unknown setting(s): {shown}")
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "GANConfig":
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"the config is not valid JSON: {error}") from None
        except (ValueError, RecursionError):  # a number too long to read, or nesting too deep
            raise ConfigError("the config is not valid JSON: a number is too long or the nesting too deep") from None
        return cls.from_dict(values)

    def replace(self, **changes: Any) -> "GANConfig":
        return dataclasses.replace(self, **changes)


def short_repr(value: Any, limit: int = 60, *, quote: bool = True) -> str:
    """repr(value) cut to about `limit` characters, so that a message never echoes a huge value."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"a whole number of about {int(value.bit_length() * math.log10(2)) + 1:,} digits"
    if isinstance(value, (list, tuple, dict, set, frozenset)) and len(value) > limit:
        return f"a {type(value).__name__} of {len(value):,} items"
    if isinstance(value, str) and not quote:
        text = value
    else:
        try:
            text = repr(value)
        except (RecursionError, ValueError):  # deep nesting; an int beyond Python's str limit
            text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _allowed_types(hint: Any) -> tuple[type, ...]:
    args = get_args(hint)
    if not args:
        return (hint,)
    return tuple(type(None) if a is type(None) else a for a in args)


def _type_words(types: tuple[type, ...]) -> str:
    words = {bool: "true/false value", int: "whole number", float: "number", str: "text", type(None): "nothing (off)"}
    return " or ".join(words.get(t, t.__name__) for t in types)


def field_help(name: str) -> str:
    return next(f.metadata.get("help", "") for f in fields(GANConfig) if f.name == name)


def field_choices(name: str) -> tuple[str, ...] | None:
    return next(f.metadata.get("choices") for f in fields(GANConfig) if f.name == name)
