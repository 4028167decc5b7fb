"""Named starting points for the app's preset menu: a few settings each, the rest default.

Each preset is a partial GANConfig as a plain dict; `preset_config` fills in the defaults
and validates, so a wrong preset fails loudly in the tests rather than in a classroom.
Every technique preset has a vanilla partner ("ring8: vanilla", "digits: vanilla") with
the same data set, seed and steps, so the two runs can be compared side by side.

PRESET_NOTES says, in one sentence each, what the pair showed when measured over seeds
0-2 (the preset itself uses seed 0). The numbers come from docs/results.md and can be
rerun with `python scripts/check_presets.py --seeds 3`. Where a technique does not help
on our data sets, its note says so: the presets show what each technique does here,
not what we would like it to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import GANConfig

# Measured on the project's 2 shared cores, one process per run: 10-35 s a ring8 run,
# 16-37 s a digits run (evaluation included). Digits use seed 1, where both of its
# techniques show (it was chosen when minibatch discrimination still summed, and helped in seeds 1-2 only).
_RING8 = {"data": "ring8", "steps": 2000, "seed": 0}
_DIGITS = {"data": "digits", "steps": 1000, "seed": 1, "sample_every": 50}
# The classic mode-collapse setting: G without batch norm, slower learning rates.
_RING8_NO_BN = {**_RING8, "generator_batch_norm": False, "lr_generator": 3e-4, "lr_discriminator": 3e-4}

PRESETS: dict[str, dict[str, Any]] = {
    "ring8: vanilla": {**_RING8},
    "ring8: virtual batch norm": {**_RING8, "virtual_batch_norm": True},
    "ring8: feature matching": {**_RING8, "feature_matching": True},
    "ring8: label smoothing 0.9": {**_RING8, "label_smoothing": 0.9},
    "ring8: historical averaging": {**_RING8, "historical_averaging": "uniform"},
    "ring8: historical averaging 0.1 (too strong)": {**_RING8, "historical_averaging": "uniform",
                                                     "historical_averaging_weight": 0.1},
    "ring8: minibatch discrimination": {**_RING8, "minibatch_discrimination": True},
    "ring8: minibatch discrimination, summed (the paper's formula)": {
        **_RING8, "minibatch_discrimination": True, "minibatch_reduction": "sum"},
    "ring8: the paper's methods (MBD + LS + VBN)": {
        **_RING8, "minibatch_discrimination": True, "label_smoothing": 0.9, "virtual_batch_norm": True},
    "ring8, G without batch norm: vanilla": {**_RING8_NO_BN},
    "ring8, G without batch norm: minibatch discrimination": {**_RING8_NO_BN, "minibatch_discrimination": True},
    "ring8, G without batch norm: label smoothing 0.9": {**_RING8_NO_BN, "label_smoothing": 0.9},
    "ring8, G without batch norm: feature matching": {**_RING8_NO_BN, "feature_matching": True},
    "ring8, G without batch norm: virtual batch norm": {**_RING8_NO_BN, "virtual_batch_norm": True},
    "ring8, G without batch norm: historical averaging": {**_RING8_NO_BN, "historical_averaging": "uniform"},
    "digits: vanilla": {**_DIGITS},
    "digits: minibatch discrimination": {**_DIGITS, "minibatch_discrimination": True},
    "digits: feature matching": {**_DIGITS, "feature_matching": True},
}

# One sentence per preset: what it shows, with the measured evidence (seeds 0-2, mean ± std).
PRESET_NOTES: dict[str, str] = {
    "ring8: vanilla": (
        "The baseline for every ring8 preset: the batch norm in G already keeps all 8 modes "
        "(seeds 0-2: 8 ± 0 modes, 11.5 ± 4.4% high-quality samples)."),
    "ring8: virtual batch norm": (
        "Sharper modes: 29.9 ± 7.0% high-quality samples against vanilla's 11.5 ± 4.4%, higher in each of "
        "seeds 0-2 (modes 7.7 ± 0.6 against 8 ± 0)."),
    "ring8: feature matching": (
        "G matches D's average features rather than fooling D, so samples smear between the modes: "
        "3.9 ± 2.5% high-quality against vanilla's 11.5 ± 4.4%, lower in each of seeds 0-2 (7.3 ± 1.2 modes)."),
    "ring8: label smoothing 0.9": (
        "No reliable effect (seeds 0-2: 8 ± 0 modes, 13.6 ± 4.4% high-quality against vanilla's 11.5 ± 4.4%): "
        "D never grows confident on ring8 (D(real) stays about 0.6-0.85 either way), so capping its target "
        "at 0.9 changes little."),
    "ring8: historical averaging": (
        "No effect beyond seed noise at the default weight 0.001 (seeds 0-2: 7.3 ± 1.2 modes, 9.1 ± 5.9% "
        "high-quality against vanilla's 8 ± 0 and 11.5 ± 4.4%); we found no setting where it helps."),
    "ring8: historical averaging 0.1 (too strong)": (
        "Too strong: the pull toward the average of all past weights keeps both players near their start, "
        "and samples spread off the modes (seeds 0-2: 0.9 ± 0.3% high-quality against vanilla's 11.5 ± 4.4%)."),
    "ring8: minibatch discrimination": (
        "As good as vanilla, not better, because vanilla already keeps every mode here (seeds 0-2: 8 ± 0 modes, "
        "11.1 ± 3.3% high-quality against 11.5 ± 4.4%). Compare it with the summed preset below to see why "
        "ganapp averages over the other samples."),
    "ring8: minibatch discrimination, summed (the paper's formula)": (
        "The paper's sum over the other 63 samples: D spots a collapsed batch too easily, wins outright, and G "
        "shrinks to a point (seeds 0-2: 2.0 ± 3.5 modes, 0.6 ± 1.1% high-quality; with seeds 1 and 2 no sample "
        "lands on a mode). The mean form (the preset above) keeps all 8."),
    "ring8: the paper's methods (MBD + LS + VBN)": (
        "The paper's 'our methods' set (Table 3): the best ring8 row, all 8 modes in every seed with 30.5 ± 4.2% "
        "high-quality samples (vanilla 11.5 ± 4.4%) and the most even modes (mode KL 0.16 ± 0.03 against 0.41 ± 0.25)."),
    "ring8, G without batch norm: vanilla": (
        "The classic mode collapse: without batch norm in G (and at learning rate 3e-4) the generator piles its "
        "samples onto one place (seeds 0-4: 1.0 ± 0.7 modes covered, at most 2 in any seed)."),
    "ring8, G without batch norm: minibatch discrimination": (
        "Minibatch discrimination's classic effect: D sees the collapsed batch, and G spreads over the ring "
        "(seeds 0-4: 7.8 ± 0.4 modes against vanilla's 1.0 ± 0.7, more in every seed; the samples are still "
        "loose, 2.8 ± 2.0% high-quality)."),
    "ring8, G without batch norm: label smoothing 0.9": (
        "Label smoothing's effect: capping D's real target at 0.9 keeps D from growing over-confident, and G "
        "keeps all 8 modes in every one of seeds 0-4 (vanilla: 1.0 ± 0.7); samples stay loose (2.7 ± 1.9% "
        "high-quality)."),
    "ring8, G without batch norm: feature matching": (
        "G matches D's average features instead of fooling D, which spreads it over the ring (seeds 0-4: "
        "7.4 ± 0.5 modes against vanilla's 1.0 ± 0.7), but few samples sit on a mode (1.0 ± 0.2% high-quality)."),
    "ring8, G without batch norm: virtual batch norm": (
        "Normalising each sample against a fixed reference batch is enough to stop the collapse and gives the "
        "sharpest samples of this group (seeds 0-4: 8 ± 0 modes, 17.6 ± 3.9% high-quality, vanilla 1.0 ± 0.7 "
        "and 0.8 ± 0.9%)."),
    "ring8, G without batch norm: historical averaging": (
        "No rescue: at the default weight 0.001 G still collapses (seeds 0-4: 1.6 ± 0.9 modes against "
        "vanilla's 1.0 ± 0.7, within seed noise)."),
    "digits: vanilla": (
        "The baseline for the digits presets (seeds 0-2: classifier score 6.61 ± 0.16, Frechet distance "
        "132 ± 31, all 10 classes; real held-out digits score 9.39 and 23.3)."),
    "digits: minibatch discrimination": (
        "Clearly better samples in every seed (seeds 0-2: classifier score 7.67 ± 0.18 against vanilla's "
        "6.61 ± 0.16, Frechet distance 44 ± 11 against 132 ± 31; real held-out digits: 9.39 and 23.3)."),
    "digits: feature matching": (
        "Better after 1000 steps: classifier score 6.84 ± 0.12 against vanilla's 6.61 ± 0.16 (higher in each of "
        "seeds 0-2), Frechet distance lower in seeds 1 and 2; at 600 steps it was still worse in every seed."),
}


def preset_config(name: str) -> GANConfig:
    """The full, validated config of preset `name`; KeyError names the known presets."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return GANConfig.from_dict(dict(PRESETS[name]))


# ---------------------------------------------------------------------------------------
# Ready-made runs: finished runs shipped in checkpoints/runs/ (made by the commands in its
# README), which the app opens in about a second, for a class that cannot wait.
READY_MADE_DIR = Path(__file__).resolve().parents[1] / "checkpoints" / "runs"

READY_MADE_NOTES: dict[str, str] = {
    "ring8-no-batch-norm-vanilla": "ring8, G without batch norm, learning rates 3e-4, 2000 steps, seed 0: the classic "
                                   "mode collapse, every sample on one streak through one mode.",
    "ring8-no-batch-norm-minibatch-discrimination": "The same with minibatch discrimination: D sees the collapse, and "
                                                    "G spreads over the ring and covers all 8 modes.",
    "ring8-vanilla": "ring8, no technique, 2000 steps, seed 0: all 8 modes, 16.1% of samples high-quality.",
    "ring8-virtual-batch-norm": "ring8 with virtual batch norm, 2000 steps, seed 0: all 8 modes, and more than "
                                "twice vanilla's share of samples on a mode (37.6% high-quality).",
    "ring8-minibatch-discrimination": "ring8 with minibatch discrimination (mean over the other samples), 2000 "
                                      "steps, seed 0: all 8 modes, 14.4% high-quality, like vanilla.",
    "ring8-minibatch-discrimination-summed": "ring8 with the paper's summed minibatch features, 2000 steps, seed 0: "
                                             "D wins outright, 6 modes and only 1.9% of samples on a mode.",
    "ring8-our-methods": "ring8 with the paper's methods (MBD + label smoothing + VBN), 2000 steps, seed 0: all 8 "
                         "modes, 26.6% high-quality, the most even modes (mode KL 0.12).",
    "digits-vanilla": "digits, no technique, 1000 steps, seed 1: classifier score 7.12, Frechet distance 99.3 "
                      "(real held-out digits: 9.39 and 23.3).",
    "digits-minibatch-discrimination": "digits with minibatch discrimination, 1000 steps, seed 1: much closer to "
                                       "real digits than vanilla (Frechet distance 43.9 against 99.3, classifier "
                                       "score 7.34 against 7.12).",
}


def ready_made_runs() -> list[str]:
    """The names of the shipped runs whose checkpoint is present, in READY_MADE_NOTES' order."""
    return [name for name in READY_MADE_NOTES if (READY_MADE_DIR / name / "checkpoint.safetensors").is_file()]


def ready_made_checkpoint(name: str) -> Path:
    """The checkpoint of ready-made run `name`; KeyError for any other name (never a path)."""
    if name not in ready_made_runs():
        raise KeyError(f"unknown ready-made run {name!r}; known: {', '.join(ready_made_runs())}")
    return READY_MADE_DIR / name / "checkpoint.safetensors"
