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

DATASETS = ("ring8", "grid25", "spiral", "drawn", "digits", "mnist", "fashion-mnist")
TWO_D_DATASETS = ("ring8", "grid25", "spiral", "drawn")
HA_MODES = ("off", "uniform", "exponential")
GENERATOR_LOSSES = ("non-saturating", "saturating")
MINIBATCH_REDUCTIONS = ("mean", "sum")
DEVICES = ("auto", "cpu", "cuda")

# Limits a classroom server enforces whatever the UI shows; the CLI may go beyond them.
MAX_STEPS = 1_000_000
MAX_BATCH_SIZE = 4096


class ConfigError(ValueError):
    """A setting is wrong; the message says which one and what would be right."""


@dataclass(frozen=True)
class Bounds:
    """The allowed range of a number setting, as validate() checks it. `low_open`/`high_open`
    mean the bound itself is not allowed; `high` None means no upper bound. The page shows
    and checks these (with the server's own limits on top); tests check that validate()
    agrees with them."""

    low: float
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def allows(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below


def _help(text: str, *, label: str, zh: tuple[str, str], group: str, **extra: Any) -> dict[str, Any]:
    """A field's description, written once: English help, English label, Traditional Chinese
    (label, help) in Taiwan's terms, and the group the form shows it in. Optional: `bounds`,
    `choices` (with `choice_labels`: {value: (English, 中文)}) and `knob_of` (the technique
    switch this knob belongs to: the form disables it while that switch is off)."""
    return {"help": text, "label": label, "label_zh": zh[0], "help_zh": zh[1], "group": group, **extra}


_T = "technique"  # the form's groups
_TRAIN = "training"
_ADV = "advanced"


@dataclass
class GANConfig:
    """Every setting of one run. Plain values only, so it round-trips through JSON."""

    # --- what to learn -------------------------------------------------------------
    data: str = field(default="ring8", metadata=_help(
        "data set: ring8, grid25, spiral, drawn (2-D points; drawn: your own drawing), digits (8x8), "
        "mnist, fashion-mnist (28x28)",
        label="Data set", group="data", menu=DATASETS,
        zh=("資料集", "ring8、grid25、spiral：2-D 的點；drawn：自己畫的 2-D 資料；digits：8×8 影像；"
                    "mnist、fashion-mnist：28×28 影像（第一次使用時下載）")))
    # --- drawn data (issue 10, part 4): the drawing itself, as a compact code (ganapp/drawn.py) ---
    drawn_points: str = field(default="", metadata=_help(
        "the drawn data set (with data drawn): strokes and dots in the box [-3, 3]^2, as the compact code "
        "ganapp writes; on the command line, a JSON file of points or strokes, centred and scaled to fit",
        label="Your drawing", group="data", cli_file=True,
        zh=("你畫的資料", "資料集選 drawn 時使用：在方框 [-3, 3]² 中畫的筆畫與點；每一筆（或每一點）是一個模式")))
    steps: int = field(default=2000, metadata=_help(
        "number of training steps (one D update and one G update each)", label="Training steps",
        group=_TRAIN, bounds=Bounds(1, MAX_STEPS),
        zh=("訓練步數", "每一步更新判別器一次、生成器一次")))
    batch_size: int = field(default=64, metadata=_help(
        "examples per batch, for real and for generated data", label="Batch size", group=_TRAIN,
        bounds=Bounds(2, MAX_BATCH_SIZE), zh=("批次大小", "每個批次的真實資料與生成樣本數")))
    seed: int = field(default=0, metadata=_help(
        "random seed: the same config and seed give the same numbers", label="Seed", group=_TRAIN,
        bounds=Bounds(0, 2**63, high_open=True), zh=("隨機種子", "相同的設定與隨機種子，得到相同的結果")))

    # --- models --------------------------------------------------------------------
    noise_dim: int = field(default=16, metadata=_help(
        "size of the noise vector z fed to the generator", label="Noise size (z)", group=_ADV,
        bounds=Bounds(1, 1024), zh=("雜訊向量 z 的大小", "輸入生成器的雜訊向量 z 有幾個數字")))
    hidden_dim: int = field(default=128, metadata=_help(
        "model width: hidden units of the 2-D MLPs, feature units of the image models", label="Model width",
        group=_ADV, bounds=Bounds(4, 4096), zh=("模型寬度", "2-D 模型的隱藏單元數，影像模型的特徵數")))
    generator_batch_norm: bool = field(default=True, metadata=_help(
        "batch norm in G's hidden layers (DCGAN, the paper); off: no normalisation, where a vanilla GAN "
        "collapses on ring8 at learning rate 3e-4 (docs/results.md). Virtual batch norm replaces it when on",
        label="Batch norm in the generator", group=_ADV,
        zh=("生成器使用批次歸一化", "關閉時生成器沒有歸一化：原始 GAN 在 ring8 上會模式崩潰（mode collapse）")))

    # --- optimisation ----------------------------------------------------------------
    lr_generator: float = field(default=1e-3, metadata=_help(
        "Adam learning rate of the generator", label="Learning rate of the generator", group=_TRAIN,
        bounds=Bounds(0, 1, low_open=True), zh=("生成器的學習率", "生成器（generator）的 Adam 學習率")))
    lr_discriminator: float = field(default=1e-3, metadata=_help(
        "Adam learning rate of the discriminator", label="Learning rate of the discriminator", group=_TRAIN,
        bounds=Bounds(0, 1, low_open=True), zh=("判別器的學習率", "判別器（discriminator）的 Adam 學習率")))
    beta1: float = field(default=0.5, metadata=_help(
        "Adam beta1 (0.5 as in DCGAN and the paper's code)", label="Adam β1", group=_ADV,
        bounds=Bounds(0, 1, high_open=True), zh=("Adam β1", "Adam 的 β1（DCGAN 與論文程式用 0.5）")))
    beta2: float = field(default=0.999, metadata=_help(
        "Adam beta2", label="Adam β2", group=_ADV, bounds=Bounds(0, 1, high_open=True),
        zh=("Adam β2", "Adam 的 β2")))
    generator_loss: str = field(default="non-saturating", metadata=_help(
        "generator loss: non-saturating (-log D(G(z)), the usual one) or saturating (log(1 - D(G(z))), the original minimax)",
        choices=GENERATOR_LOSSES, label="Generator loss", group=_ADV,
        choice_labels={"non-saturating": ("non-saturating", "非飽和"), "saturating": ("saturating", "飽和")},
        zh=("生成器損失", "非飽和：-log D(G(z))，常用的一種；飽和：log(1 - D(G(z)))，原始的極小極大")))

    # --- the five techniques (Salimans et al. 2016, section 3) -------------------------
    feature_matching: bool = field(default=False, metadata=_help(
        "feature matching (sec. 3.1): G matches the mean of D's features on real data instead of fooling D",
        label="Feature matching", group=_T,
        zh=("特徵匹配（feature matching）", "生成器不再設法騙過判別器，而是讓判別器內部特徵的平均值與真實資料一致（3.1 節）")))
    minibatch_discrimination: bool = field(default=False, metadata=_help(
        "minibatch discrimination (sec. 3.2): D sees how close each sample is to the others in its batch",
        label="Minibatch discrimination", group=_T,
        zh=("小批次判別（minibatch discrimination）", "判別器看得到每個樣本和同批次其他樣本有多接近，"
                                                    "所以崩潰的生成器很容易被抓到（3.2 節）")))
    minibatch_kernels: int = field(default=16, metadata=_help(
        "minibatch discrimination: number of kernels B (paper: 100)", label="Kernels (B)", group=_T,
        bounds=Bounds(1, 1024), knob_of="minibatch_discrimination",
        zh=("核數量 B", "小批次判別：比較樣本時用幾組特徵（論文：100）")))
    minibatch_kernel_dim: int = field(default=5, metadata=_help(
        "minibatch discrimination: kernel dimension C (paper: 5)", label="Kernel size (C)", group=_T,
        bounds=Bounds(1, 256), knob_of="minibatch_discrimination",
        zh=("核維度 C", "小批次判別：每組特徵有幾個數字（論文：5）")))
    minibatch_reduction: str = field(default="mean", metadata=_help(
        "minibatch discrimination: mean of exp(-distance) over the other samples (the official ImageNet "
        "code; the default, see docs/results.md) or their sum (the paper's formula; on 2-D data D wins outright)",
        choices=MINIBATCH_REDUCTIONS, label="Closeness to the other samples", group=_T,
        knob_of="minibatch_discrimination",
        choice_labels={"mean": ("mean", "平均"), "sum": ("sum (the paper)", "總和（論文）")},
        zh=("與其他樣本的接近程度", "平均：官方 ImageNet 程式的做法（預設）；總和：論文的公式，"
                                  "在 2-D 資料上判別器會完全獲勝")))
    historical_averaging: str = field(default="off", metadata=_help(
        "historical averaging (sec. 3.3): off, uniform (the paper: average of all past weights) "
        "or exponential (recent weights count more)", choices=HA_MODES, label="Historical averaging", group=_T,
        choice_labels={"off": ("off", "關閉"), "uniform": ("uniform", "均勻"), "exponential": ("exponential", "指數")},
        zh=("歷史平均法（historical averaging）", "把每個玩家拉回它自己過去權重的平均，減少繞圈（3.3 節）。"
                                                "均勻：論文的做法；指數：最近的權重比較重要")))
    historical_averaging_weight: float = field(default=0.001, metadata=_help(
        "historical averaging: weight of the penalty ||theta - average||^2; 0.001 cost the least of "
        "0.001, 0.01, 0.1 and 1 on ring8 and grid25, larger weights lose modes (docs/results.md)",
        label="Weight of the pull to the past", group=_T, bounds=Bounds(0, 100), knob_of="historical_averaging",
        zh=("拉回過去平均的權重", "懲罰項 ||θ - 平均||² 的權重；0.001 影響最小，較大的權重會失去模式")))
    historical_averaging_decay: float = field(default=0.99, metadata=_help(
        "historical averaging, exponential mode: decay of the moving average (0 < decay < 1)",
        label="Decay (exponential mode)", group=_ADV, bounds=Bounds(0, 1, low_open=True, high_open=True),
        knob_of="historical_averaging", zh=("衰減率（指數模式）", "歷史平均法的指數模式：移動平均的衰減率（0 到 1 之間）")))
    label_smoothing: float | None = field(default=None, metadata=_help(
        "one-sided label smoothing (sec. 3.4): the real target alpha, e.g. 0.9; fake targets stay 0",
        label="One-sided label smoothing", group=_T, bounds=Bounds(0.5, 1, low_open=True),
        knob_label=("Target for real data (α)", "真實資料的目標值 α"),
        zh=("單邊的標籤平滑（one-sided label smoothing）", "判別器對真實資料的目標是 α 而不是 1（生成樣本仍是 0），"
                                                        "判別器比較不會過度自信（3.4 節）")))
    virtual_batch_norm: bool = field(default=False, metadata=_help(
        "virtual batch normalization (sec. 3.5): G normalises each example with a fixed reference batch",
        label="Virtual batch normalization", group=_T,
        zh=("虛擬的批次歸一化（virtual batch normalization）", "生成器用一個固定的參考批次來歸一化每個樣本，"
                                                           "而不是用它自己的批次（3.5 節）")))
    vbn_reference_size: int = field(default=64, metadata=_help(
        "virtual batch norm: size of the fixed reference batch", label="Reference batch size", group=_T,
        bounds=Bounds(1, MAX_BATCH_SIZE), knob_of="virtual_batch_norm",
        zh=("參考批次大小", "虛擬的批次歸一化：固定參考批次的大小")))

    # --- reporting -------------------------------------------------------------------
    log_every: int = field(default=10, metadata=_help(
        "record losses every this many steps", label="Record losses every (steps)", group=_ADV,
        bounds=Bounds(1), zh=("每隔幾步記錄損失", "每隔這麼多步記錄一次損失")))
    sample_every: int = field(default=100, metadata=_help(
        "draw the sample picture every this many steps", label="Draw a picture every (steps)", group=_ADV,
        bounds=Bounds(1), zh=("每隔幾步畫一張圖", "每隔這麼多步畫一張樣本圖")))
    metrics_every: int = field(default=250, metadata=_help(
        "compute quality metrics every this many steps (0: never)", label="Measure quality every (steps; 0: never)",
        group=_ADV, bounds=Bounds(0), zh=("每隔幾步量測品質（0：不量測）", "每隔這麼多步計算一次品質指標")))
    device: str = field(default="auto", metadata=_help(
        "auto (CUDA when present, else CPU), cpu or cuda", choices=DEVICES, label="Device", group=_ADV,
        zh=("裝置", "auto：有 CUDA 就用，否則用 CPU")))

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
        self._check_drawing()
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

    def _check_drawing(self) -> None:
        """data "drawn" needs a drawing; a drawing is valid and only given with data "drawn"."""
        from . import drawn  # torch-free and numpy-free, like this module

        if self.data == "drawn" and not self.drawn_points:
            raise ConfigError("data 'drawn' needs a drawing: give drawn_points (on the command line a JSON "
                              "file, see --help)")
        if self.drawn_points:
            if self.data != "drawn":
                raise ConfigError(f"drawn_points is only used with data 'drawn'; data is {short_repr(self.data)}")
            try:
                drawn.decode(self.drawn_points)
            except drawn.DrawingError as error:
                raise ConfigError(f"drawn_points: {short_repr(str(error), 200, quote=False)}") from None

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


def field_meta(name: str) -> dict[str, Any]:
    """Everything written about one field (help, labels in both languages, group, bounds...)."""
    return dict(next(f.metadata for f in fields(GANConfig) if f.name == name))
